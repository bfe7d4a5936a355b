"""The multicam timeline of an export, built with OpenTimelineIO, and its files.

One video track per camera, in the manifest's order, named after the camera; on it, clips
(named after the camera too) that reference the camera's exported MOV wherever the camera
has a picture, and gaps where its MOV shows the filler. Every MOV starts at the export's
start timecode and the timeline's ``global_start_time`` is that timecode, so a clip's
source time is its timeline time: the cameras are aligned on the take timeline by
construction. The timeline's metadata (``mmrec``) carries the take id, the rate, the time
column used and each camera's clock quality.

Files are written through OTIO's maintained adapters (FCP 7 XML for Premiere and Resolve,
FCPXML for Final Cut and Resolve, one CMX 3600 EDL per camera since the format has one
video track, ``.otio``) and :mod:`mmrec.export.mlt` (melt, Shotcut); each is written to a
temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

import opentimelineio as otio

from mmrec.errors import ConfigError, RecordingError
from mmrec.export.mlt import mlt_xml
from mmrec.store.names import safe_name
from mmrec.timeline.grid import FrameGrid
from mmrec.timeline.rate import is_drop_frame
from mmrec.timeline.slots import SlotKind, runs

# format name -> (OTIO adapter or "mlt", file suffix)
TIMELINE_FORMATS: Final = {
    "xml": ("fcp_xml", ".xml"),
    "fcpxml": ("fcpx_xml", ".fcpxml"),
    "edl": ("cmx_3600", ".edl"),
    "otio": ("otio_json", ".otio"),
    "mlt": ("mlt", ".mlt"),
}


@dataclass(frozen=True, slots=True)
class TrackSpec:
    """One camera on the timeline."""

    camera: str
    file: Path  # its exported MOV
    size: tuple[int, int]
    kinds: Sequence[SlotKind]  # per slot of the grid
    metadata: dict[str, Any]


def _rt(value: int, rate: float) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(value, rate)


def build_timeline(
    name: str, grid: FrameGrid, tracks: Sequence[TrackSpec], metadata: dict[str, Any]
) -> otio.schema.Timeline:
    rate = float(grid.rate)
    tl = otio.schema.Timeline(name=name, global_start_time=_rt(grid.label, rate))
    tl.metadata["mmrec"] = metadata
    for spec in tracks:
        track = otio.schema.Track(name=spec.camera, kind=otio.schema.TrackKind.Video)
        available = otio.opentime.TimeRange(_rt(grid.label, rate), _rt(grid.frames, rate))
        url = spec.file.resolve().as_uri()
        at = 0
        for first, last in runs(
            [SlotKind.FILLER if k is SlotKind.FILLER else SlotKind.FRESH for k in spec.kinds],
            SlotKind.FRESH,
        ):
            if first > at:
                track.append(
                    otio.schema.Gap(
                        source_range=otio.opentime.TimeRange(_rt(0, rate), _rt(first - at, rate))
                    )
                )
            ref = otio.schema.ExternalReference(target_url=url, available_range=available)
            ref.name = spec.file.name
            ref.metadata["mmrec"] = {"width": spec.size[0], "height": spec.size[1]}
            if is_drop_frame(grid.rate):
                # otio-fcp-adapter writes a file's timecode as NDF unless told (as it
                # would be when read from a DF file); the MOV's tmcd track is DF
                ref.metadata["fcp_xml"] = {"timecode": {"displayformat": "DF"}}
            clip = otio.schema.Clip(
                name=spec.camera,
                media_reference=ref,
                source_range=otio.opentime.TimeRange(
                    _rt(grid.label + first, rate), _rt(last - first + 1, rate)
                ),
            )
            clip.metadata["mmrec"] = spec.metadata
            track.append(clip)
            at = last + 1
        if at < grid.frames:
            track.append(
                otio.schema.Gap(
                    source_range=otio.opentime.TimeRange(_rt(0, rate), _rt(grid.frames - at, rate))
                )
            )
        tl.tracks.append(track)
    return tl


def parse_formats(text: str) -> tuple[str, ...]:
    """``mov,xml,...`` -> the formats, checked; ConfigError names an unknown one."""
    known = ("mov", *TIMELINE_FORMATS)
    out = []
    for f in text.split(","):
        f = f.strip().lower()
        if not f:
            continue
        if f not in known:
            raise ConfigError(f"unknown format {f!r} (known: {', '.join(known)})")
        out.append(f)
    if not out:
        raise ConfigError("no format given")
    return tuple(dict.fromkeys(out))


def _write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise RecordingError(f"cannot write {path}: {exc.strerror}") from exc
    return path


def load_adapters(formats: Sequence[str]) -> None:
    """Import the OTIO adapters ``formats`` need (OTIO loads each on first use)."""
    for fmt in formats:
        adapter = TIMELINE_FORMATS.get(fmt, ("mlt", ""))[0]
        if adapter != "mlt":
            otio.adapters.from_name(adapter).module()


def write_timelines(
    tl: otio.schema.Timeline, formats: Sequence[str], out_dir: Path, stem: str
) -> list[Path]:
    """Write ``tl`` in each timeline format of ``formats``; returns the files."""
    written: list[Path] = []
    for fmt in formats:
        if fmt not in TIMELINE_FORMATS:
            continue
        adapter, suffix = TIMELINE_FORMATS[fmt]
        if fmt == "edl":
            # CMX 3600 has one video track: one EDL per camera
            for track in tl.tracks:
                one = otio.schema.Timeline(
                    name=f"{tl.name} {track.name}", global_start_time=tl.global_start_time
                )
                one.tracks.append(track.deepcopy())
                text = _adapter_text(one, adapter, fmt)
                written.append(_write_text(out_dir / f"{stem}.{_stem(track.name)}{suffix}", text))
            continue
        text = mlt_xml(tl) if adapter == "mlt" else _adapter_text(tl, adapter, fmt)
        if fmt == "fcpxml":
            text = _fcpxml_sizes(text, tl)
        written.append(_write_text(out_dir / f"{stem}{suffix}", text))
    return written


def _stem(name: str) -> str:
    return safe_name(name)


def _adapter_text(tl: otio.schema.Timeline, adapter: str, fmt: str) -> str:
    try:
        with fcpx_exact_times(), fcpx_known_sizes(tl):
            return str(otio.adapters.write_to_string(tl, adapter_name=adapter))
    except otio.exceptions.OTIOError as exc:
        raise RecordingError(f"cannot write the {fmt} timeline: {exc}") from exc


def _fcpxml_sizes(text: str, tl: otio.schema.Timeline) -> str:
    """Give each FCPXML ``format`` the frame size of its assets: the adapter names formats
    from ffprobe's answer but writes no ``width``/``height``, which Final Cut needs for any
    size it has no preset name for."""
    from xml.etree import ElementTree as ET

    sizes: dict[str, tuple[int, int]] = {}
    for clip in tl.find_clips():
        meta = clip.media_reference.metadata.get("mmrec", {})
        if "width" in meta:
            sizes[clip.media_reference.target_url] = (int(meta["width"]), int(meta["height"]))
    root = ET.fromstring(text)
    by_format: dict[str, set[tuple[int, int]]] = {}
    for asset in root.iter("asset"):
        size = sizes.get(asset.get("src", ""))
        if size is not None and asset.get("format"):
            by_format.setdefault(asset.get("format", ""), set()).add(size)
    for fmt in root.iter("format"):
        found = by_format.get(fmt.get("id", ""), set())
        if len(found) == 1:
            w, h = next(iter(found))
            fmt.set("width", str(w))
            fmt.set("height", str(h))
    ET.indent(root)
    head = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n\n'
    return head + ET.tostring(root, encoding="unicode") + "\n"


def read_timeline(path: Path) -> otio.schema.Timeline:
    """A timeline file read back through its OTIO adapter (with the FCPXML fixes below)."""
    with fcpx_exact_times():
        return otio.adapters.read_from_file(str(path))


_TRUNCATED_NTSC: Final = {
    23: Fraction(24000, 1001),
    29: Fraction(30000, 1001),
    47: Fraction(48000, 1001),
    59: Fraction(60000, 1001),
    119: Fraction(120000, 1001),
}


@contextlib.contextmanager
def fcpx_known_sizes(tl: otio.schema.Timeline) -> Iterator[None]:
    """Name FCPXML formats from the frame sizes the export knows, while the adapter runs:
    ``otio-fcpx-xml-adapter`` runs ``ffprobe`` on a clip's file each time it names its
    format (measured: 9 runs, 0.13-0.23 s, a sixth of a 20 s take's export). Same names
    as it would make (``FFVideoFormat1080p30``, ``FFVideoFormat320x240p30``); a file it
    is not told about is probed as before."""
    mod = otio.adapters.from_name("fcpx_xml").module()
    sizes: dict[str, tuple[int, int]] = {}
    for clip in tl.find_clips():
        meta = clip.media_reference.metadata.get("mmrec", {})
        if "width" in meta:
            url = str(clip.media_reference.target_url)
            sizes[unquote(url.replace("file://", ""))] = (int(meta["width"]), int(meta["height"]))
    original = mod.format_name

    def known(frame_rate: object, path: str) -> str:
        size = sizes.get(unquote(path.replace("file://", "")))
        if size is None:
            return str(original(frame_rate, path))
        text = f"{size[0]}x{size[1]}"
        if "1920" in text:
            text = "1080"
        if text.endswith("1280"):
            text = "720"
        return f"FFVideoFormat{text}p{frame_rate}"

    mod.format_name = known
    try:
        yield
    finally:
        mod.format_name = original


@contextlib.contextmanager
def fcpx_exact_times() -> Iterator[None]:
    """Fix two defects of ``otio-fcpx-xml-adapter`` 1.0.0 (its last release) while it runs.

    It turns FCPXML times ("2348737/30s") into frames with ``int(float)``: truncation, so a
    connected clip 123 frames in was written 122 frames in (seen on a simulated take whose
    timecode starts at 21:44:47:05); it takes a format's rate as ``int(1/frameDuration)``,
    29 for 30000/1001; and it knows 29.97 only as the key ``29.97``, so at 30000/1001 it
    wrote formats without a frame duration. Times are rounded to the nearest frame at the
    exact rate here, and the NTSC rates are added as they are (floats of n/1001).
    The module's functions are swapped back afterwards; writes run in one thread.
    """
    # OTIO loads an adapter as a module of its own (opentimelineio.adapters.fcpx_xml):
    # that one is patched, not otio_fcpx_xml_adapter.fcpx_xml.
    mod = otio.adapters.from_name("fcpx_xml").module()

    def exact(rational_number: str | None, fps: float) -> otio.opentime.RationalTime:
        # Its callers pass a format's rate as int(1/frameDuration): 29 for 30000/1001.
        rate = _TRUNCATED_NTSC.get(fps) if isinstance(fps, int) else None
        rate = rate or Fraction(fps).limit_denominator(1001)
        frames = 0
        if rational_number not in (None, "0s"):
            assert rational_number is not None
            frames = round(Fraction(rational_number.rstrip("s")) * rate)
        return otio.opentime.RationalTime(frames, float(rate))

    durations = mod.FRAMERATE_FRAMEDURATION
    added = {
        float(Fraction(24000, 1001)): "1001/24000s",
        float(Fraction(30000, 1001)): "1001/30000s",
        float(Fraction(60000, 1001)): "1001/60000s",
        48: "1/48s",
        100: "1/100s",
        120: "1/120s",
    }
    fresh = {k: v for k, v in added.items() if k not in durations}
    original = mod.to_rational_time
    mod.to_rational_time = exact
    durations.update(fresh)
    try:
        yield
    finally:
        mod.to_rational_time = original
        for k in fresh:
            durations.pop(k, None)
