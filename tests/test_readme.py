"""Every module path and dotted name the README mentions exists in the tree."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
# `mmrec/store/mkv.py`, `mmrec/wire/`, `benchmarks/bench_proxy.py`, ...
PATHS = sorted(set(re.findall(r"\b((?:mmrec|tests|benchmarks|scripts)/[\w/.-]*\w/?)", README)))
# mmrec.store.names.safe_name, mmrec.timeline.refine_take, ...
NAMES = sorted(set(re.findall(r"\bmmrec(?:\.[A-Za-z_]\w*)+", README)))


def test_the_readme_names_modules_at_all() -> None:
    assert len(PATHS) > 10 and len(NAMES) > 3  # the patterns still find them


@pytest.mark.parametrize("path", PATHS)
def test_path_exists(path: str) -> None:
    assert (ROOT / path).exists(), f"README mentions {path}, which is not in the tree"


@pytest.mark.parametrize("name", NAMES)
def test_dotted_name_resolves(name: str) -> None:
    parts = name.split(".")
    # the longest importable prefix, then attributes
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            assert hasattr(obj, attr), f"README mentions {name}: {attr!r} not found"
            obj = getattr(obj, attr)
        return
    pytest.fail(f"README mentions {name}, which does not import")
