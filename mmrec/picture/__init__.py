"""Pictures for people to look at, shared by the live preview and the review proxies.

A JPEG is decoded at the scale its tile needs (``decode``) to the one YUV picture type
(``yuv``), placed by the tile layout (``layout``), drawn with its marks (``compose``) and
labels (``text``), and written as H.264 (``h264``) or a still JPEG (``still``).
"""
