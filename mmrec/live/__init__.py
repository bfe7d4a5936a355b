"""The live multiview while recording: the preview (``preview``) over the mosaic's tiles
(``mosaic``), when it ticks and what a tick decodes (``schedule``), and its web server on
127.0.0.1 (``server``). Pictures are decoded and drawn with :mod:`mmrec.picture`."""
