"""Export a take for editing: per camera a MOV of its JPEGs on one frame grid, and a
multicam timeline (OpenTimelineIO: FCP 7 XML, FCPXML, CMX 3600 EDL, .otio, MLT).

The path of one frame::

    index.csv time ─▶ timeline.grid.take_grid (rate, time-of-day slots) ─▶ timeline.slots
    seg-NNNN.mkv packet ─▶ store.reader.CameraFrames.packets ─▶ mov.MovWriter (slot k)
    what was written ─▶ timeline.build_timeline ─▶ OTIO adapters, mlt.mlt_xml
    every filler/repeat ─▶ manifest.ExportManifest (export.json)

:func:`mmrec.export.job.export_take` runs it all.
"""

from __future__ import annotations

from mmrec.export.job import ExportOptions, ExportResult, export_take

__all__ = ["ExportOptions", "ExportResult", "export_take"]
