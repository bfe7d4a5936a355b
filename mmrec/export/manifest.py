"""``export.json``: what an export wrote, slot by slot where it matters.

Written beside the files (atomically) so that an editor, an assistant or a script can see
which slots of which camera show a filler or a repeated picture, what rate and timecode
were used, and how well each camera's clock was known.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from mmrec.errors import RecordingError

FORMAT: Final = "mmrec-export/1"
MANIFEST: Final = "export.json"
_RANGE: Final = re.compile(r"\[\s*(-?\d+),\s*(-?\d+)\s*\]")


@dataclass(frozen=True, slots=True)
class CameraRecord:
    name: str
    dir: str
    file: str | None  # the MOV, relative to the export folder (None: not written)
    width: int
    height: int
    slots: int
    fresh: int  # slots showing a frame captured within one period before the instant
    repeat_slots: tuple[tuple[int, int], ...]  # [first, last] slot ranges of held pictures
    filler_slots: tuple[tuple[int, int], ...]  # [first, last] slot ranges of the filler
    frames_shown: int
    frames_skipped: int  # frames within the shown span that no slot shows
    missing_packets: int  # index rows whose JPEG was not in the segments (filler instead)
    warm_from_slot: int | None  # first slot after the clock model's warm-up (live times)
    bytes: int
    clock: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ExportManifest:
    take_id: str
    take_dir: str
    created_utc: str
    rate: str  # "30000/1001"
    rate_from: str  # "given" (--fps), "nominal" (the cameras said), "measured", "default"
    start_timecode: str
    frames: int
    duration_s: float
    start_ns: int  # slot 0 on the take timeline
    period_ns: float
    hold_s: float
    time_column: str  # index.csv column the times came from
    utc_offset_s: int | None  # the take's zone (None: inferred from its timecode)
    cameras: tuple[CameraRecord, ...]
    timelines: tuple[str, ...]
    warnings: tuple[str, ...]
    format: str = FORMAT

    def to_json(self) -> str:
        text = json.dumps(asdict(self), indent=2)
        # slot ranges on one line each: [59, 122], not four lines
        return _RANGE.sub(r"[\1, \2]", text) + "\n"


def write_manifest(out_dir: Path, manifest: ExportManifest) -> Path:
    path = out_dir / MANIFEST
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_text(manifest.to_json(), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise RecordingError(f"cannot write {path}: {exc.strerror}") from exc
    return path


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """The export's manifest as plain JSON (for tools and tests)."""
    data: dict[str, Any] = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    return data
