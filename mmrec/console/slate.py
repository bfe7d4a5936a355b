"""The slate: scene and take numbers, auto-incremented, and a free note per take.

Pure. A take is named ``scene-<scene>-take-<take>`` (so its folder sorts by time, then
reads as the clapperboard does); after each take the take number goes up by one, and a
new scene starts again at take 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from mmrec.errors import ConfigError
from mmrec.wire.status import clean_text

_SCENE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,23}")
MAX_NOTE: Final = 500


@dataclass(frozen=True, slots=True)
class Slate:
    scene: str = "1"
    take: int = 1
    note: str = ""

    def __post_init__(self) -> None:
        if not _SCENE.fullmatch(self.scene):
            raise ConfigError(
                f"scene {self.scene!r}: 1-24 letters, digits, '.', '_' or '-' (e.g. 12A)"
            )
        if not 1 <= self.take <= 9999:
            raise ConfigError(f"take {self.take}: must be 1-9999")
        note, _ = clean_text(self.note, "note", MAX_NOTE)
        object.__setattr__(self, "note", note)

    @property
    def name(self) -> str:
        return f"scene-{self.scene}-take-{self.take}"

    def after_take(self) -> Slate:
        """The slate for the next take: same scene, next take number, no note."""
        return replace(self, take=self.take + 1, note="")

    def set(self, scene: str | None, take: int | None, note: str | None) -> Slate:
        """The operator's changes; a new scene without a take number starts at take 1."""
        new_scene = scene if scene is not None else self.scene
        if take is None:
            take = self.take if new_scene == self.scene else 1
        return Slate(new_scene, take, self.note if note is None else note)
