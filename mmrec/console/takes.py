"""The console's list of takes: what it shows of each finished take, read from the take's
final manifest (its outcome, as :mod:`mmrec.session.outcome` judged it, and each camera's
counts). Pure: :class:`~mmrec.console.shoot.Shoot` keeps the list and adds the contact
sheet once it is made.
"""

from __future__ import annotations

from pathlib import Path

from mmrec.console.view import TakeCameraSummary, TakeSummary
from mmrec.store.take import Manifest


def take_summary(m: Manifest, take_dir: Path, slate: str, note: str) -> TakeSummary:
    """A finished take (its final manifest ``m``, in ``take_dir``) as the console lists it."""
    cams = tuple(
        TakeCameraSummary(
            c.name,
            c.frames,
            c.dropped,
            len(c.gaps),
            c.reconnects,
            c.state,
            c.outcome,
            c.outcome_detail,
        )
        for c in m.cameras
    )
    return TakeSummary(
        id=m.take_id,
        dir=str(take_dir),
        slate=slate,
        note=note,
        started_utc=m.started_utc,
        timecode=m.timecode,
        duration_s=round((m.duration_ns or 0) / 1e9, 2),
        cameras=cams,
        # the final manifest's outcome (mmrec.session.outcome): complete, gaps, lost, nothing
        ok=m.outcome == "complete",
        outcome=m.outcome,
        outcome_detail=m.outcome_detail,
    )
