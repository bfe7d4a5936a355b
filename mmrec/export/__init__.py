"""Export a take for editing: per camera a MOV of its JPEGs on one frame grid, and a
multicam timeline (OpenTimelineIO: FCP 7 XML, FCPXML, CMX 3600 EDL, .otio, MLT).

The path of one frame::

    index.csv time ─▶ grid.FrameGrid (rate, time-of-day slots) ─▶ slots.plan_camera
    seg-NNNN.mkv packet ─▶ source.iter_packets ─▶ mov.MovWriter (same bytes, slot k)
    what was written ─▶ timeline.build_timeline ─▶ OTIO adapters, mlt.mlt_xml
    every filler/repeat ─▶ manifest.ExportManifest (export.json)

:func:`mmrec.export.job.export_take` runs it all.
"""

from __future__ import annotations

from mmrec.export.job import ExportOptions, ExportResult, export_take

__all__ = ["ExportOptions", "ExportResult", "export_take"]
