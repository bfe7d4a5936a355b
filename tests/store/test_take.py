"""Reading a take back: every way it can be unreadable is a TakeError naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmrec.errors import TakeError
from mmrec.ingest.stream import CameraState
from mmrec.store.index import (
    INDEX_COLUMNS,
    INDEX_COLUMNS_V1,
    PROBE_COLUMNS,
    read_index,
    read_probes,
)
from mmrec.store.take import CameraEntry, Manifest, load_manifest, write_manifest


def test_a_manifest_reads_back(tmp_path: Path) -> None:
    m = Manifest("t1", "2026-01-01T00:00:00Z", 1, "00:00:00:00")
    write_manifest(tmp_path, m)
    assert load_manifest(tmp_path) == m


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, r"no manifest\.json here"),
        (b"{", r"manifest\.json: unreadable manifest"),
        (b"\xff\xfe", r"manifest\.json: unreadable manifest"),
        (b'{"format": "other"}', "not an mmrec take manifest"),
        (b'{"format": "mmrec-take/1", "cameras": [{"nope": 1}]}', "unreadable manifest"),
    ],
)
def test_unreadable_manifests(tmp_path: Path, content: bytes | None, match: str) -> None:
    if content is not None:
        (tmp_path / "manifest.json").write_bytes(content)
    with pytest.raises(TakeError, match=match):
        load_manifest(tmp_path)


def test_a_manifest_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").mkdir()
    with pytest.raises(TakeError, match="unreadable manifest"):
        load_manifest(tmp_path)


def test_index_rows_and_a_cut_last_line(tmp_path: Path) -> None:
    path = tmp_path / "index.csv"
    path.write_text(",".join(INDEX_COLUMNS) + "\n0,0,0,10,12,1.5,100,1\n1,0,33,33", "utf-8")
    assert [r.seq for r in read_index(path)] == [0]


@pytest.mark.parametrize(
    ("header", "line", "conn", "refined"),
    [
        (INDEX_COLUMNS_V1, "0,0,0,10,12,1.5,100", None, None),  # a take from before conn
        (INDEX_COLUMNS, "0,0,0,10,12,1.5,100,3", 3, None),  # as recorded
        ((*INDEX_COLUMNS, "refined_ns"), "0,0,0,10,12,1.5,100,3,9", 3, 9),  # refined
        ((*INDEX_COLUMNS, "refined_ns", "later"), "0,0,0,10,12,1.5,100,3,9,x", 3, 9),
    ],
)
def test_old_and_new_index_headers_read(
    tmp_path: Path, header: tuple[str, ...], line: str, conn: int | None, refined: int | None
) -> None:
    path = tmp_path / "index.csv"
    path.write_text(",".join(header) + "\n" + line + "\n", "utf-8")
    (row,) = read_index(path)
    assert (row.time_ns, row.arrival_ns, row.device_ts, row.size) == (10, 12, "1.5", 100)
    assert (row.conn, row.refined_ns) == (conn, refined)
    assert row.best_ns == (10 if refined is None else refined)


def test_probes_read_back_and_a_cut_last_line(tmp_path: Path) -> None:
    path = tmp_path / "probes.csv"
    path.write_text(",".join(PROBE_COLUMNS) + "\n-5,1700,7\n10,1800,12\n20,1900,2", "utf-8")
    assert read_probes(path) == [(-5, 1700, 7), (10, 1800, 12)]  # t1 < t0: cut short
    path.write_text("t0,dev\n1,2,3\n", "utf-8")
    with pytest.raises(TakeError, match="probe columns"):
        read_probes(path)


def test_a_missing_index_is_for_the_caller_to_judge(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(read_index(tmp_path / "index.csv"))


@pytest.mark.parametrize(
    "content",
    [
        b"seq,segment\n",  # other columns
        b"seq,segment,pts,time_ns,arrival_ns,device_ts,size\n0,0,\xff\n",  # not UTF-8
        # a field past csv's limit (garbage where a line end should be)
        b'seq,segment,pts,time_ns,arrival_ns,device_ts,size\n0,0,0,1,2,"' + b"x" * 200_000,
    ],
)
def test_unreadable_indexes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "index.csv"
    path.write_bytes(content)
    with pytest.raises(TakeError, match="index"):
        list(read_index(path))


def test_an_index_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "index.csv").mkdir()
    with pytest.raises(TakeError, match=r"cannot read .*index\.csv"):
        list(read_index(tmp_path / "index.csv"))


def test_camera_states_are_plain_strings_in_the_manifest(tmp_path: Path) -> None:
    cams = tuple(CameraEntry(s.name, s.name, "u", state=s) for s in CameraState)
    write_manifest(tmp_path, Manifest("t1", "2026-01-01T00:00:00Z", 1, "00:00:00:00", cams))
    doc = json.loads((tmp_path / "manifest.json").read_text("utf-8"))
    assert [c["state"] for c in doc["cameras"]] == [
        "connecting", "streaming", "stalled", "backoff", "stopped"
    ]  # fmt: skip
    assert [c.state for c in load_manifest(tmp_path).cameras] == list(CameraState)
