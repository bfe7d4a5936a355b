"""What a camera's writer lost, turned into events as it happens.

The writer threads count what they could not write (a full queue, a failed write) and
keep the error; the take looks at those counters about once a second, on the event loop,
and logs the changes: a write error and its end, a run of dropped frames when it begins
and how many it lost when it ends. So the manifest's timeline says when mmrec lost
frames and why, not only how many in the end. Failures of the files themselves (disk
full, folder gone, I/O error) the writer reports as they happen, with the frames they
cost and the gap (:class:`mmrec.store.health.WriteChange`): they are not said twice here.
"""

from __future__ import annotations

from mmrec.session.events import EventKind, EventLog
from mmrec.session.outcome import strip_camera
from mmrec.store.files import WriterStats


class LossWatch:
    """One camera's writer losses, as last seen; :meth:`look` logs what changed."""

    def __init__(self, camera: str, events: EventLog) -> None:
        self.camera = camera
        self._events = events
        self._error: str | None = None
        self._dropped = 0
        self._run_from: int | None = None  # the dropped count when a run of drops began

    def look(self, w: WriterStats, at_mono_ns: int | None = None, *, last: bool = False) -> None:
        """Log what changed since the last look (``at_mono_ns``: the event's time; now
        by default). The ``last`` look ends no run of drops: the take does."""
        name = self.camera
        error = None if w.state.failing else w.error  # the files' failures: said by the writer
        if error != self._error:
            self._error = error
            detail = strip_camera(error, name) if error is not None else "writing again"
            self._events.add(EventKind.DISK, detail, name, at_mono_ns)
        dropped = w.dropped - w.lost  # a full queue (the disk too slow), not failed writes
        new = dropped - self._dropped
        if new and self._run_from is None:
            self._run_from = self._dropped
            why = strip_camera(error, name) if error else "the disk is not keeping up"
            self._events.add(EventKind.ALERT, f"dropping frames: {why}", name, at_mono_ns)
        elif not new and not last and self._run_from is not None:
            lost = dropped - self._run_from
            self._run_from = None
            self._events.add(
                EventKind.ALERT, f"no longer dropping frames; {lost} lost", name, at_mono_ns
            )
        self._dropped = dropped

    def finish(self, w: WriterStats, at_mono_ns: int) -> None:
        """The last look, at the end of the take: a run of drops still going is closed."""
        self.look(w, at_mono_ns, last=True)
        if self._run_from is not None:
            lost = self._dropped - self._run_from
            self._run_from = None
            self._events.add(
                EventKind.ALERT, f"{lost} frame(s) lost until the end", self.camera, at_mono_ns
            )
