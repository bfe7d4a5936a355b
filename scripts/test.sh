#!/usr/bin/env bash
# Install what the tests need, then lint, type-check and run the test suite.
# Extra arguments go to pytest, e.g.  scripts/test.sh -k multipart -x
# The suite runs on MMREC_TEST_WORKERS pytest-xdist workers (3; 0: one process), a test
# file per worker: most tests wait on real-time streams, so they overlap well on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --dev || exit 1
export PATH="$PWD/.venv/bin:$PATH"

status=0
echo "== ruff"; ruff check mmrec tests benchmarks || status=1
echo "== mypy (strict)"; mypy || status=1
echo "== pytest"
workers=${MMREC_TEST_WORKERS:-3}
parallel=()
if [ "$workers" -gt 0 ]; then parallel=(-n "$workers" --dist loadfile); fi
pytest -q -rs "${parallel[@]}" "$@"; rc=$?  # -rs: say why a test was skipped (e.g. no loop mount)
# pytest exits 5 when no test was collected: that is not a failure of the code.
if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then status=1; fi
exit "$status"
