"""safe_name/unique_name: every input becomes one safe path component."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmrec.store.names import DEFAULT_MAX_LEN, safe_name, unique_name

SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
RESERVED_STEMS = (
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
)


def assert_safe(name: str, max_len: int = DEFAULT_MAX_LEN) -> None:
    assert SAFE.match(name), name
    assert 1 <= len(name) <= max_len
    assert not name.endswith(".")
    assert name not in {".", ".."}
    assert name.split(".", 1)[0].lower() not in RESERVED_STEMS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("iphone-16-plus", "iphone-16-plus"),
        ("Cam A (front)", "Cam-A-front"),
        ("Café Ümlaut", "Cafe-Umlaut"),
        ("../x", "x"),
        ("a/b", "a-b"),
        ("a\\b", "a-b"),
        ("ev\x00il", "ev-il"),
        (".", "camera"),
        ("..", "camera"),
        ("", "camera"),
        ("///", "camera"),
        ("\u200b\u200b", "camera"),
        (".hidden", "hidden"),
        ("-rf", "rf"),
        ("CON", "x-CON"),
        ("nul.txt", "x-nul.txt"),
        ("com1", "x-com1"),
        ("console", "console"),
        ("日本語カメラ", "camera"),
    ],
)
def test_safe_name_examples(text: str, expected: str) -> None:
    assert safe_name(text) == expected
    assert_safe(safe_name(text))


def test_safe_name_is_bounded() -> None:
    name = safe_name("x" * 10_000)
    assert len(name) == DEFAULT_MAX_LEN
    assert len(safe_name("y" * 100, max_len=16)) == 16


def test_safe_name_fallback_is_made_safe() -> None:
    assert safe_name("", fallback="../cam 1") == "cam-1"
    assert safe_name("", fallback="") == "camera"


@given(st.text())
def test_safe_name_always_one_safe_component(text: str) -> None:
    assert_safe(safe_name(text))


@given(st.text(), st.integers(min_value=8, max_value=100))
def test_safe_name_respects_any_max_len(text: str, max_len: int) -> None:
    assert_safe(safe_name(text, max_len=max_len), max_len)


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=30))
def test_safe_name_is_idempotent(text: str) -> None:
    once = safe_name(text)
    assert safe_name(once) == once


def test_unique_name_suffixes_ignoring_case() -> None:
    assert unique_name("cam", []) == "cam"
    assert unique_name("cam", ["CAM"]) == "cam-2"
    assert unique_name("cam", ["cam", "cam-2"]) == "cam-3"
    assert unique_name("../cam", ["cam"]) == "cam-2"
    long = "z" * 64
    got = unique_name(long, [long])
    assert got.endswith("-2") and len(got) == 64


@given(st.lists(st.text(max_size=80), max_size=30))
def test_unique_name_gives_distinct_safe_names(texts: list[str]) -> None:
    taken: list[str] = []
    for text in texts:
        name = unique_name(text, taken)
        assert_safe(name)
        assert name.casefold() not in {t.casefold() for t in taken}
        taken.append(name)
