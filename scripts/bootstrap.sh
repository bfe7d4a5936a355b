#!/usr/bin/env bash
# Set up everything mmrec needs, idempotently: system libraries, a virtual environment
# in .venv, and the Python packages. Usage: scripts/bootstrap.sh [--dev]
#   --dev  also install the test tools (pytest, mypy, ruff, ...), ffmpeg and mkvtoolnix for
#          cross-checks, MLT's melt (the editing engine that renders exported timelines in
#          the tests), Debian's chromium (the console's real-browser test, driven by
#          Playwright with the system browser: Playwright's own browser download is not
#          used) and prometheus's promtool (checks the console's /metrics); and the
#          cluster extra (Ray), so the cluster tests run.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

say() { printf '\033[1mmmrec setup:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mmmrec setup: %s\033[0m\n' "$*" >&2; exit 1; }

# 1. A Python >= 3.11.
py=""
for cand in python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 &&
        "$cand" -c 'import sys; raise SystemExit(sys.version_info < (3, 11))' 2>/dev/null; then
        py=$(command -v "$cand"); break
    fi
done
[ -n "$py" ] || die "needs Python 3.11 or newer (try: sudo apt-get install python3)"

# 2. System packages: libjpeg-turbo's TurboJPEG library, venv support, ffmpeg for tests.
need=()
ldconfig -p 2>/dev/null | grep -q 'libturbojpeg\.so' || need+=(libturbojpeg0)
"$py" -c 'import ensurepip, venv' 2>/dev/null || need+=("python3-venv")
if [ "$dev" = 1 ]; then
    command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
    command -v melt >/dev/null 2>&1 || need+=(melt)
    command -v mkvinfo >/dev/null 2>&1 || need+=(mkvtoolnix)
    # the disk-fault tests make a small ext4 file system and loop-mount it (as root)
    command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
    command -v mount >/dev/null 2>&1 || need+=(mount)
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
    command -v promtool >/dev/null 2>&1 || need+=(prometheus)
fi
if [ "${#need[@]}" -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        if [ -n "$sudo" ] && ! command -v sudo >/dev/null 2>&1; then
            die "needs ${need[*]}: run as root: apt-get install ${need[*]}"
        fi
        say "installing system packages: ${need[*]}"
        $sudo apt-get update -qq || say "apt-get update failed; trying the install anyway"
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            "${need[@]}" >/dev/null ||
            die "could not install ${need[*]}; install them with your package manager and retry"
    else
        die "needs ${need[*]} (libjpeg-turbo's libturbojpeg, python venv, ffmpeg); install them and retry"
    fi
fi

# 3. The virtual environment and the Python packages (skipped when nothing changed).
if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $py"
    "$py" -m venv .venv || die "could not create .venv (on Debian/Ubuntu: apt-get install python3-venv)"
fi
extras="."
[ "$dev" = 1 ] && extras=".[dev,cluster]"
stamp=".venv/.mmrec-installed-$dev"
hash=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$hash" ]; then
    say "installing Python packages ($extras)"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    .venv/bin/python -m pip install -q -e "$extras" || die "pip install failed (see above)"
    echo "$hash" > "$stamp"
fi
.venv/bin/python -c 'import turbojpeg; turbojpeg.TurboJPEG()' 2>/dev/null ||
    say "warning: libturbojpeg could not be loaded; decoding falls back to PyAV (slower)"
