"""A camera's ``index.csv`` and ``probes.csv``: their columns, writing the index as frames
are written, reading both back, and adding the refined times.

``index.csv`` has one row per frame written (:data:`INDEX_COLUMNS`; ``refined_ns`` is
added after the take by :mod:`mmrec.timeline.refined`), ``probes.csv`` one per
``/status`` clock probe (:data:`PROBE_COLUMNS`). Both are read as far as they go: a last
line cut short by a crash is skipped, columns this version does not know are ignored, and
what cannot be read at all is a :class:`~mmrec.errors.TakeError`. While a take is written,
:class:`IndexFile` holds whole rows only (a row the disk cut short is cut back). The take
around them (folders, segments, the manifest) is :mod:`mmrec.store.take`.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from mmrec.errors import ExceptionMap, RecordingError, TakeError, map_exceptions, translate

INDEX: Final = "index.csv"
INDEX_COLUMNS: Final = (
    "seq",  # per-camera frame number, 0.. (frames written)
    "segment",  # segment number: <camera>/seg-<segment:04d>.mkv
    "pts",  # presentation timestamp in TIME_BASE units on the take timeline
    "time_ns",  # frame time on the take timeline, ns (aligned capture, else arrival)
    "arrival_ns",  # arrival of the frame's last byte on the take timeline, ns
    "device_ts",  # X-Timestamp as received ('' if none)
    "size",  # JPEG bytes
    "conn",  # connection number (a change: a new connection; frames may have been missed)
)
# Columns of takes written before ``conn`` existed; read as conn = None.
INDEX_COLUMNS_V1: Final = INDEX_COLUMNS[:7]
REFINED_COLUMN: Final = "refined_ns"  # added after the take (mmrec.timeline.refined)
PROBES: Final = "probes.csv"
PROBE_COLUMNS: Final = (
    "t0_ns",  # request written, take timeline (recorder clock), ns
    "device_ns",  # the node's clock in its answer (Unix ns on the device's clock)
    "t1_ns",  # first byte of the answer, take timeline, ns
)
_CSV_SPECIAL: Final = re.compile(rb'[,"\r\n]')

# Reading a take back: what can go wrong, and what it becomes (mmrec.errors.map_exceptions).
# UnicodeDecodeError and json's errors are ValueErrors; a field of the wrong shape is a
# TypeError (dataclass constructors); csv.Error is a line csv cannot read (a field past
# its limit).
TAKE_ERRORS: Final[ExceptionMap] = {(OSError, ValueError, TypeError, csv.Error): TakeError}


@dataclass(frozen=True, slots=True)
class IndexRow:
    seq: int
    segment: int
    pts: int
    time_ns: int
    arrival_ns: int
    device_ts: str
    size: int
    conn: int | None = None  # None: a take from before the column existed
    refined_ns: int | None = None  # None: the take has not been refined

    @property
    def best_ns(self) -> int:
        """The frame's best time on the take timeline: refined when the take has it."""
        return self.time_ns if self.refined_ns is None else self.refined_ns


class IndexFile:
    """A camera's ``index.csv`` being written (by its writer thread): each row in one
    ``write``, after any rows the disk refused before (kept in memory meanwhile); a row
    cut short is cut back, so the file holds whole rows only. :meth:`open` starts it in a
    camera folder: new (the header), a copy of the index being left, or given rows."""

    def __init__(self) -> None:
        self.fd = -1
        self.dir: Path | None = None  # the camera folder it is in
        self._size = 0  # bytes of whole rows in it: a row cut short is cut back to this
        self._pending = bytearray()  # rows the index refused (disk full); written first

    def open(self, cam: Path, copy_from: Path | None = None, rows: bytes = b"") -> None:
        """Start ``cam/index.csv`` (atomically: written whole, then renamed into place)
        with the header and ``rows``, or as a copy of ``copy_from``."""
        head = (",".join(INDEX_COLUMNS) + "\n").encode()
        body = head + rows
        if copy_from is not None:
            with contextlib.suppress(OSError):
                body = copy_from.read_bytes() or head
        tmp = cam / f"{INDEX}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            write_all(fd, body)
            os.replace(tmp, cam / INDEX)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # never left beside the index it failed to replace
            raise
        old, self.fd = self.fd, fd
        self.dir = cam
        self._size = len(body)
        if old >= 0:
            with contextlib.suppress(OSError):
                os.close(old)

    def append(self, row: bytes) -> None:
        """One row; OSError if the disk refuses it (it is kept and written first next time)."""
        self._pending += row
        self.flush()

    def flush(self) -> None:
        """Write the rows the disk refused before (OSError if it still does)."""
        if not self._pending:
            return
        rows = bytes(self._pending)
        try:
            write_all(self.fd, rows)
        except OSError:
            # a row cut short by a full disk: cut back to whole rows (ours, just written)
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self._size)
                os.lseek(self.fd, self._size, os.SEEK_SET)
            raise
        self._size += len(rows)
        self._pending.clear()

    def drop_segments(self, numbers: set[int]) -> None:
        """Rewrite the index without the rows of segments ``numbers`` (best effort)."""
        if self.dir is None:
            return
        with contextlib.suppress(OSError):
            self.flush()
        try:
            lines = (self.dir / INDEX).read_bytes().splitlines(keepends=True)
        except OSError:
            return
        # seq,segment,... : the segment number is the second field (never quoted)
        kept = [ln for ln in lines[1:] if int(ln.split(b",", 2)[1]) not in numbers]
        with contextlib.suppress(OSError):
            self.open(self.dir, rows=b"".join(kept))

    def unlinked(self) -> bool:
        """True if the open index was deleted (OSError if it cannot be told)."""
        return self.fd >= 0 and os.fstat(self.fd).st_nlink == 0

    def gone(self) -> bool:
        """No index to append to: none open, deleted, or not to be looked at."""
        try:
            return self.fd < 0 or os.fstat(self.fd).st_nlink == 0
        except OSError:
            return True

    def sync(self) -> None:
        if self.fd >= 0:
            os.fdatasync(self.fd)

    def close(self, *, sync: bool) -> None:
        """Write what is pending (durable with ``sync``) and close; best effort."""
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            self.flush()
            if sync:
                os.fdatasync(self.fd)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1


def csv_field(text: str) -> bytes:
    """``text`` as one CSV field in UTF-8, quoted only when it must be (as ``csv`` does):
    a header value from the network may hold commas, quotes or stray line ends."""
    raw = text.encode("utf-8", "replace")
    if _CSV_SPECIAL.search(raw):
        return b'"' + raw.replace(b'"', b'""') + b'"'
    return raw


def write_all(fd: int, data: bytes) -> None:
    """``data`` into ``fd`` in full, or OSError (a short write finished, or refused)."""
    done = os.write(fd, data)
    while done < len(data):  # a short write (a signal, a full disk): finish it or raise
        n = os.write(fd, data[done:])
        if n <= 0:
            raise OSError(errno.ENOSPC, f"short write to {INDEX}")
        done += n


def read_index(path: Path) -> Iterator[IndexRow]:
    """Rows of a camera's ``index.csv``; a last line cut short by a crash is skipped.

    Takes from before ``conn`` and ``refined_ns`` existed read with those None; columns
    this version does not know are ignored (a newer mmrec's take still reads). Raises
    :class:`FileNotFoundError` if there is none (the caller decides what a camera without
    an index means) and :class:`TakeError` if it cannot be read.
    """
    where = f"cannot read {path}"
    try:
        with open(path, newline="", encoding="utf-8") as f, map_exceptions(TAKE_ERRORS, where):
            yield from _index_rows(f, path)
    except FileNotFoundError:
        raise
    except OSError as exc:  # from open(); what reading raises is mapped inside
        raise translate(exc, TAKE_ERRORS, where) from exc


def _index_rows(f: TextIO, path: Path) -> Iterator[IndexRow]:
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None:
        return
    cols = _index_columns(header, path)
    seq, seg, pts, time, arrival, device, size = cols.required
    conn, refined = cols.conn, cols.refined
    for row in reader:
        if len(row) != cols.width:
            continue  # a line cut short by a crash
        with contextlib.suppress(ValueError):
            yield IndexRow(
                int(row[seq]),
                int(row[seg]),
                int(row[pts]),
                int(row[time]),
                int(row[arrival]),
                row[device],
                int(row[size]),
                int(row[conn]) if conn >= 0 else None,
                int(row[refined]) if refined >= 0 and row[refined] else None,
            )


@dataclass(frozen=True, slots=True)
class _Columns:
    width: int
    required: tuple[int, ...]  # where each of INDEX_COLUMNS_V1 is
    conn: int  # -1: not there (a take from before the column)
    refined: int  # -1: not refined


def _index_columns(header: list[str], path: Path) -> _Columns:
    """Where each column is, by name (columns this version does not know are ignored);
    TakeError naming the missing ones if the header is not an index's."""
    where = {name: i for i, name in enumerate(header)}
    missing = [c for c in INDEX_COLUMNS_V1 if c not in where]
    if missing:
        raise TakeError(f"{path}: unexpected index columns {header} (no {', '.join(missing)})")
    return _Columns(
        len(header),
        tuple(where[c] for c in INDEX_COLUMNS_V1),
        where.get("conn", -1),
        where.get(REFINED_COLUMN, -1),
    )


@dataclass(frozen=True, slots=True, eq=False)
class IndexTable:
    """A camera's ``index.csv`` as written: the header and each row's fields, as text.

    For a tool that adds a column (the refinement) without touching any other: the rows
    are the ones :func:`read_index` yields, in the same order.
    """

    path: Path
    header: tuple[str, ...]
    rows: list[list[str]]

    def column(self, name: str) -> list[str]:
        """One column's fields; ValueError if the index has no such column."""
        i = self.header.index(name)
        return [r[i] for r in self.rows]


def read_index_table(path: Path) -> IndexTable:
    """The index at ``path`` as an :class:`IndexTable` (a line cut short by a crash is
    left out, as :func:`read_index` leaves it). :class:`FileNotFoundError` if there is
    none, :class:`TakeError` if it cannot be read."""
    where = f"cannot read {path}"
    rows: list[list[str]] = []
    try:
        with open(path, newline="", encoding="utf-8") as f, map_exceptions(TAKE_ERRORS, where):
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                return IndexTable(path, INDEX_COLUMNS, [])
            cols = _index_columns(header, path)
            text = cols.required[5]  # device_ts: any text
            numeric = [i for i in cols.required if i != text]
            if cols.conn >= 0:  # (a refined_ns field is replaced, never a reason to drop a row)
                numeric.append(cols.conn)
            width = cols.width
            for row in reader:
                if len(row) != width:
                    continue
                try:
                    for i in numeric:
                        int(row[i])
                except ValueError:
                    continue
                rows.append(row)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise translate(exc, TAKE_ERRORS, where) from exc
    return IndexTable(path, tuple(header), rows)


def write_refined(table: IndexTable, refined_ns: Sequence[int]) -> None:
    """Write ``table`` back with its ``refined_ns`` column set, one value per row (a column
    already there is replaced); every other field stays as written.

    Atomic: a temporary file, fsynced, renamed over the index; a crash leaves the old
    index or the new one, never a mix. :class:`RecordingError` if it cannot be written
    (the index is then unchanged), ValueError if the count differs from the rows'.
    """
    if len(refined_ns) != len(table.rows):
        raise ValueError(f"{table.path}: {len(table.rows)} rows, {len(refined_ns)} refined times")
    keep = [i for i, h in enumerate(table.header) if h != REFINED_COLUMN]
    header = [table.header[i] for i in keep] + [REFINED_COLUMN]
    path = table.path
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(
                [row[i] for i in keep] + [str(t)]
                for row, t in zip(table.rows, refined_ns, strict=True)
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise RecordingError(f"cannot write {path}: {exc.strerror}") from exc


def read_probes(path: Path) -> list[tuple[int, int, int]]:
    """A camera's ``probes.csv`` as ``(t0_ns, device_ns, t1_ns)`` rows (a line cut short by
    a crash is skipped). :class:`FileNotFoundError` if there is none (a take from before
    probes were kept, or a camera that never answered one), :class:`TakeError` if it
    cannot be read."""
    where = f"cannot read {path}"
    out: list[tuple[int, int, int]] = []
    try:
        with open(path, newline="", encoding="utf-8") as f, map_exceptions(TAKE_ERRORS, where):
            reader = csv.reader(f)
            header = next(reader, None)
            if header is not None and tuple(header[:3]) != PROBE_COLUMNS:
                raise TakeError(f"{path}: unexpected probe columns {header}")
            for row in reader:
                with contextlib.suppress(ValueError, IndexError):
                    t0, dev, t1 = int(row[0]), int(row[1]), int(row[2])
                    if t1 >= t0:  # else a line cut short
                        out.append((t0, dev, t1))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise translate(exc, TAKE_ERRORS, where) from exc
    return out
