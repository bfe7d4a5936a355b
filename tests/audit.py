"""The independent take auditor (``shared/tools/audit_take.py``, outside this repository:
it reads only manifest.json, index.csv and what ffprobe says), run on a take folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def auditor() -> Path | None:
    """``shared/tools/audit_take.py`` in a folder above this checkout, if there is one."""
    for parent in Path(__file__).resolve().parents:
        found = parent / "shared" / "tools" / "audit_take.py"
        if found.is_file():
            return found
    return None


def audit(take: Path, *args: str) -> str:
    """Run the auditor on ``take``: its report if it passes; the test fails on a problem
    (and is skipped, saying why, where the auditor is not around, e.g. in CI)."""
    tool = auditor()
    if tool is None:
        pytest.skip("shared/tools/audit_take.py not found above this checkout")
    out = subprocess.run(
        [sys.executable, str(tool), str(take), *args], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def audit_if_present(take: Path, *args: str) -> None:
    """:func:`audit` where the auditor is around; nothing (the test goes on) where not."""
    if auditor() is not None:
        audit(take, *args)
