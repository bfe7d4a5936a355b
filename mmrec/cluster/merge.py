"""The hosts' parts of a cluster take, merged into one take: one id, one timeline.

A cluster take's folder (``OUT/<take-id>/``) holds each host's folder under ``hosts/``
(see :mod:`mmrec.cluster.host`): its ``host.json`` and its own take. Every host started
its take at the same agreed instant on the reference clock (mapped onto its own clock),
so pts 0 of every host's files is that instant: the merged manifest only has to list
them. Its ``start_realtime_ns`` is that instant on the reference clock; every camera's
entry is its host's, with paths relative to the merged folder (the take reader, ``mmrec
proxy``/``export`` and the audit read it as any take), its clock uncertainty widened by
its host's (the host's clock mapping is part of how its frames were placed), and
``hosts`` says for each host where its part is, its clock mapping and what is missing.

A host that died mid-take left a manifest of a moment before (state ``recording``): its
cameras are listed with the segments found on disk (the manifest lags by up to a second),
their outcome ``lost`` with the reason, and the merged take's state is ``recording``
until that host's folder is repaired (``mmrec repair``) and the merge run again. A host
that never started its take has its cameras as ``nothing``.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from mmrec import __version__
from mmrec.cluster.host import HOST_JSON, JOB, HostJob, HostRecord
from mmrec.errors import TakeError
from mmrec.session.outcome import Outcome
from mmrec.store.names import unique_name
from mmrec.store.take import (
    CameraEntry,
    ClockInfo,
    HostEntry,
    Manifest,
    TakeEvent,
    load_manifest,
    rebase,
    write_manifest,
)
from mmrec.timeline.timecode import timecode_at, utc_offset_s, zone_name

HOSTS: Final = "hosts"
_STATE_RANK: Final = {"recording": 0, "recovered": 1, "finished": 2}


@dataclass(frozen=True, slots=True)
class HostPart:
    """One host's part as found on disk."""

    folder: Path
    record: HostRecord
    job: HostJob | None
    manifest: Manifest | None  # None: its take never started (or its folder is gone)

    @property
    def take_dir(self) -> Path | None:
        return self.folder / self.record.take_dir if self.record.take_dir else None


def find_parts(take_dir: Path) -> list[HostPart]:
    """Every host folder under ``take_dir/hosts/`` with a ``host.json``."""
    parts: list[HostPart] = []
    root = Path(take_dir) / HOSTS
    if not root.is_dir():
        raise TakeError(f"{take_dir}: no {HOSTS}/ folder here; is this a cluster take?")
    for folder in sorted(p for p in root.iterdir() if (p / HOST_JSON).is_file()):
        try:
            record = HostRecord.from_json((folder / HOST_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError) as exc:
            raise TakeError(f"{folder / HOST_JSON}: unreadable ({exc})") from exc
        job = None
        if (folder / JOB).is_file():
            job = HostJob.from_json((folder / JOB).read_text(encoding="utf-8"))
        manifest = None
        if record.take_dir and (folder / record.take_dir).is_dir():
            manifest = load_manifest(folder / record.take_dir)
        parts.append(HostPart(folder, record, job, manifest))
    if not parts:
        raise TakeError(f"{take_dir}: no host has written its {HOST_JSON} under {HOSTS}/")
    return parts


def merge_take(take_dir: Path, *, died: dict[str, str] | None = None) -> Manifest:
    """Merge the hosts' parts under ``take_dir`` into ``take_dir/manifest.json`` and return
    it. ``died``: hosts the coordinator saw die or freeze, with what it saw (kept in the
    host's note)."""
    take_dir = Path(os.path.abspath(take_dir))
    parts = find_parts(take_dir)
    died = died or {}
    starts = {p.record.start_ref_ns for p in parts if p.record.start_ref_ns is not None}
    if not starts:
        raise TakeError(f"{take_dir}: no host started its take")
    if len(starts) > 1:
        raise TakeError(f"{take_dir}: the hosts started on different instants: {sorted(starts)}")
    start_ref = starts.pop()
    take_id = parts[0].record.cluster_take
    cameras: list[CameraEntry] = []
    hosts: list[HostEntry] = []
    events: list[TakeEvent] = []
    states: list[str] = []
    ends: list[int] = []
    for part in parts:
        entry, cams, evs, state, end = _merge_part(take_dir, part, died.get(part.record.host))
        hosts.append(entry)
        for c in cams:
            c = replace(c, dir=unique_name(c.dir, {x.dir for x in cameras}))
            cameras.append(c)
        events += evs
        states.append(state)
        if end is not None:
            ends.append(end)
    events.sort(key=lambda e: e.t_ns)
    outcome = max(
        (Outcome(c.outcome or Outcome.NOTHING) for c in cameras),
        default=Outcome.NOTHING,
        key=lambda o: o.severity,
    )
    not_whole = [c.name for c in cameras if c.outcome != Outcome.COMPLETE]
    offset = utc_offset_s(start_ref)
    duration = max(ends) if ends else None
    started = dt.datetime.fromtimestamp(start_ref / 1e9, dt.UTC)
    ended = dt.datetime.fromtimestamp((start_ref + duration) / 1e9, dt.UTC) if duration else None
    manifest = Manifest(
        take_id=take_id,
        started_utc=started.isoformat().replace("+00:00", "Z"),
        start_realtime_ns=start_ref,
        timecode=timecode_at(start_ref, offset_s=offset),
        cameras=tuple(cameras),
        state=min(states, key=lambda s: _STATE_RANK.get(s, 0)) if states else "recording",
        ended_utc=ended.isoformat().replace("+00:00", "Z") if ended else None,
        duration_ns=duration,
        tool={"name": "mmrec", "version": __version__, "merged": "mmrec cluster merge"},
        events=tuple(events),
        outcome=str(outcome),
        outcome_detail=(
            f"{len(cameras)} camera(s) on {len(hosts)} host(s), all complete"
            if not not_whole
            else f"not complete: {', '.join(not_whole)}"
        ),
        utc_offset_s=offset,
        zone=zone_name(start_ref) or None,
        hosts=tuple(hosts),
    )
    write_manifest(take_dir, manifest)
    return manifest


def _merge_part(
    take_dir: Path, part: HostPart, seen: str | None
) -> tuple[HostEntry, list[CameraEntry], list[TakeEvent], str, int | None]:
    rec = part.record
    mapping = rec.clock_mapping()
    host_unc = mapping.uncertainty_ns if mapping else None
    chrony_unc = None
    if rec.chrony:
        from mmrec.cluster.clock import ChronyTracking

        chrony_unc = ChronyTracking(**rec.chrony).uncertainty_ns
    man = part.manifest
    names = tuple(n for n, _ in part.job.cameras) if part.job else ()
    host_dir = part.take_dir or part.folder
    rel = (
        str(host_dir.relative_to(take_dir)) if host_dir.is_relative_to(take_dir) else str(host_dir)
    )
    entry = HostEntry(
        name=rec.host,
        dir=rel,
        state="missing"
        if man is None
        else ("finished" if rec.state == "finished" else "recording"),
        cameras=names,
        clock_offset_ns=mapping.offset_ns if mapping else None,
        clock_drift_ppm=mapping.drift_ppm if mapping else None,
        clock_uncertainty_ns=host_unc,
        clock_samples=len(rec.samples),
        chrony_uncertainty_ns=chrony_unc,
    )
    if man is None:
        why = seen or rec.error or f"its take never started (host state {rec.state!r})"
        cams = [
            CameraEntry(name=n, dir=n, url=u, state="host-lost", outcome=str(Outcome.NOTHING),
                        outcome_detail=f"host {rec.host}: {why}")
            for n, u in (part.job.cameras if part.job else ())
        ]  # fmt: skip
        return replace(entry, note=f"nothing from this host: {why}"), cams, [], "recording", None
    assert part.take_dir is not None
    man = rebase(man, part.take_dir, take_dir)
    # finished by its recorder, or finished since by 'mmrec repair' (which leaves host.json
    # as the recorder left it): its cameras' own outcomes stand
    whole = man.state == "recovered" or (man.state == "finished" and rec.state == "finished")
    cams = []
    for c in man.cameras:
        c = replace(
            c,
            segments=_segments_on_disk(take_dir, part.take_dir, c),
            clock=_widen(c.clock, host_unc, rec.host),
        )
        if not whole:
            why = seen or f"the recorder stopped mid-take (host state {rec.state!r})"
            c = replace(
                c,
                outcome=str(Outcome.LOST),
                outcome_detail=(
                    f"host {rec.host}: {why}; its files hold what was written until then "
                    f"(finalize them with 'mmrec repair {part.take_dir}', then merge again)"
                ),
            )
        cams.append(c)
    events = [replace(e, detail=f"[{rec.host}] {e.detail}") for e in man.events]
    note: str | None = None
    if not whole:
        note = (
            f"{seen or 'its recorder stopped mid-take'}: its manifest is of "
            f"{(man.duration_ns or 0) / 1e9:.1f} s into the take or earlier"
        )
        events.append(TakeEvent(man.duration_ns or 0, "host", f"host {rec.host}: {note}"))
    end = man.duration_ns
    if rec.stop_ref_ns is not None and rec.start_ref_ns is not None and whole:
        end = rec.stop_ref_ns - rec.start_ref_ns
    return replace(entry, note=note), cams, events, man.state if whole else "recording", end


def _segments_on_disk(take_dir: Path, host_take: Path, cam: CameraEntry) -> tuple[str, ...]:
    """The camera's segments: the manifest's and any newer one on disk (a host that died
    left a manifest up to a second older than its files)."""
    listed = list(cam.segments)
    folder = host_take / cam.dir
    if folder.is_dir():
        for seg in sorted(folder.glob("seg-*.mkv")):
            full = Path(os.path.abspath(seg))
            rel = str(full.relative_to(take_dir)) if full.is_relative_to(take_dir) else str(full)
            if rel not in listed:
                listed.append(rel)
    return tuple(listed)


def _widen(clock: ClockInfo | None, host_unc: int | None, host: str) -> ClockInfo | None:
    """The camera's clock as stated, its uncertainty including its host's mapping."""
    if clock is None or host_unc is None:
        return clock
    unc = None if clock.uncertainty_ns is None else clock.uncertainty_ns + host_unc
    note = f"includes host {host}'s clock mapping (±{host_unc / 1e6:.3f} ms)"
    return replace(clock, uncertainty_ns=unc, note=f"{clock.note}; {note}" if clock.note else note)
