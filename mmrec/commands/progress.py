"""The frame progress bar and warning printer that `mmrec export` and `mmrec proxy` share.

Both commands render a take frame by frame in threads and report ``(done, total)``; the
bar goes to stderr and disappears when the work ends, so stdout holds only the summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

ProgressFn = Callable[[int, int], None]


def warner(err: Console) -> Callable[[str], None]:
    """A ``warn`` callback that prints one yellow warning line to ``err``."""

    def warn(text: str) -> None:
        err.print(f"[yellow]warning:[/] {text}", soft_wrap=True)

    return warn


@contextmanager
def frame_progress(label: str, err: Console, *, quiet: bool) -> Iterator[ProgressFn | None]:
    """Yield a ``progress(done, total)`` callback drawing a bar on ``err``, or None if quiet."""
    if quiet:
        yield None
        return
    with Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} frames"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress
