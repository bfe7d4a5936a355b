#!/usr/bin/env bash
# Install what mmrec needs, then record 4 simulated phones for 20 s (no phones needed).
# Extra arguments go to 'mmrec record', e.g.  scripts/demo.sh --duration 60 --out /tmp/takes
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/mmrec record --sim 4 --duration 20 "$@"
