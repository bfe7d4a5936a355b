"""An MLT XML project from an OTIO timeline: every track side by side (melt, Shotcut).

MLT's own format, so MLT's ``melt`` renders the timeline headless and Shotcut opens it.
Each OTIO track becomes a playlist (clips as entries, gaps as blanks) composited into one
cell of a grid over a black background, in track order, left to right and top to bottom;
the profile (the frame) is the grid at the largest camera's size, at the timeline's rate.

Written here rather than with the ``otio-mlt-adapter`` package (0.3.0, 2021): that adapter
reads a clip's source times as frame numbers of the file, so media whose timecode starts at
10:00:00:00 would be read from frame 1,080,000, and it stacks tracks without compositing
them, so only one would show. Source times here are taken relative to the media's
``available_range`` (frame 0 of the file is its start timecode).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any
from urllib.parse import unquote, urlparse
from xml.etree import ElementTree as ET

import opentimelineio as otio

from mmrec.errors import RecordingError

DEFAULT_SIZE = (1920, 1080)


def _prop(parent: ET.Element, name: str, value: object) -> None:
    ET.SubElement(parent, "property", name=name).text = str(value)


def _frames(t: otio.opentime.RationalTime, rate: float) -> int:
    value: float = t.value_rescaled_to(rate)
    return round(value)


def _path(url: str) -> str:
    parsed = urlparse(url)
    return unquote(parsed.path) if parsed.scheme == "file" else url


def _size(track: Any) -> tuple[int, int]:
    for item in track:
        if isinstance(item, otio.schema.Clip):
            meta = item.media_reference.metadata.get("mmrec", {})
            if "width" in meta and "height" in meta:
                return int(meta["width"]), int(meta["height"])
    return DEFAULT_SIZE


def mlt_xml(tl: otio.schema.Timeline) -> str:
    """The timeline as MLT XML (a multiview of its video tracks)."""
    tracks = [t for t in tl.tracks if t.kind == otio.schema.TrackKind.Video]
    if not tracks:
        raise RecordingError("an MLT project needs at least one video track")
    rate_f = tl.duration().rate
    rate = Fraction(rate_f).limit_denominator(1001)
    length = max(1, _frames(tl.duration(), rate_f))
    cw = max(_size(t)[0] for t in tracks)
    ch = max(_size(t)[1] for t in tracks)
    cols = math.ceil(math.sqrt(len(tracks)))
    rows = math.ceil(len(tracks) / cols)
    w, h = cols * cw, rows * ch
    g = math.gcd(w, h)

    root = ET.Element("mlt", LC_NUMERIC="C", title=tl.name, producer="main")
    ET.SubElement(
        root,
        "profile",
        description=f"{tl.name} multiview",
        width=str(w),
        height=str(h),
        progressive="1",
        sample_aspect_num="1",
        sample_aspect_den="1",
        display_aspect_num=str(w // g),
        display_aspect_den=str(h // g),
        frame_rate_num=str(rate.numerator),
        frame_rate_den=str(rate.denominator),
        colorspace="601",
    )
    black = ET.SubElement(root, "producer", id="black", attrib={"in": "0", "out": str(length - 1)})
    _prop(black, "mlt_service", "color")
    _prop(black, "resource", "black")
    _prop(black, "length", length)
    background = ET.SubElement(root, "playlist", id="background")
    ET.SubElement(background, "entry", producer="black", attrib={"in": "0", "out": str(length - 1)})

    producers: dict[str, str] = {}
    playlists = []
    for i, track in enumerate(tracks):
        pl = ET.Element("playlist", id=f"track{i}")
        _prop(pl, "title", track.name)
        for item in track:
            n = _frames(item.duration(), rate_f)
            if n <= 0:
                continue
            if not isinstance(item, otio.schema.Clip) or not hasattr(
                item.media_reference, "target_url"
            ):
                ET.SubElement(pl, "blank", length=str(n))
                continue
            ref = item.media_reference
            url = ref.target_url
            pid = producers.get(url)
            if pid is None:
                pid = producers[url] = f"source{len(producers)}"
                prod = ET.SubElement(root, "producer", id=pid)
                _prop(prod, "resource", _path(url))
                _prop(prod, "mlt_service", "avformat")
                _prop(prod, "mute_on_pause", 0)
            origin = ref.available_range.start_time if ref.available_range else None
            start = item.source_range.start_time
            first = _frames(start - origin if origin is not None else start, rate_f)
            entry = ET.SubElement(
                pl, "entry", producer=pid, attrib={"in": str(first), "out": str(first + n - 1)}
            )
            _prop(entry, "title", item.name)
        playlists.append(pl)
    root.extend(playlists)

    tractor = ET.SubElement(root, "tractor", id="main", attrib={"in": "0", "out": str(length - 1)})
    _prop(tractor, "title", tl.name)
    multitrack = ET.SubElement(tractor, "multitrack")
    ET.SubElement(multitrack, "track", producer="background")
    for i in range(len(tracks)):
        ET.SubElement(multitrack, "track", producer=f"track{i}")
    for i in range(len(tracks)):
        x, y = (i % cols) * cw, (i // cols) * ch
        tr = ET.SubElement(tractor, "transition", id=f"cell{i}")
        _prop(tr, "mlt_service", "composite")
        _prop(tr, "a_track", 0)
        _prop(tr, "b_track", i + 1)
        _prop(tr, "geometry", f"{x}/{y}:{cw}x{ch}:100")
        _prop(tr, "halign", "centre")
        _prop(tr, "valign", "centre")
        _prop(tr, "always_active", 1)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
