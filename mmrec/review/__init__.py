"""After the take: synced review proxies, a multiview and a contact sheet.

The take read back (``source``) -> what each output frame shows (``plan``, pure) -> the
threads that draw and encode it (``pipeline``: ``render`` per camera, ``multiview``) ->
the files (``mmrec.picture.h264``), and the contact sheet (``contact``); ``proxy`` runs
the whole pass (:func:`make_proxies`).
"""

from mmrec.review.options import ProxyOptions
from mmrec.review.proxy import CameraProxy, ProxyResult, StageCPU, make_proxies, x264_options

__all__ = ["CameraProxy", "ProxyOptions", "ProxyResult", "StageCPU", "make_proxies", "x264_options"]
