"""One timeline for all cameras: each device clock mapped onto the recorder's, and timecode.

``refine_take(take_dir)`` (:mod:`mmrec.timeline.refined`) refines a take on disk after the
fact: the recorder runs it at the end of each take, ``mmrec repair`` on a recovered one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmrec.timeline.refined import refine_take

__all__ = ["refine_take"]


def __getattr__(name: str) -> Any:
    # Lazy: the refinement needs numpy, which the live clock model does not.
    if name == "refine_take":
        from mmrec.timeline.refined import refine_take

        return refine_take
    raise AttributeError(name)
