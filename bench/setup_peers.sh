#!/usr/bin/env bash
# Create .venv-bench: a SEPARATE virtualenv with the peer onset detectors (aubio, librosa)
# that bench/stream_eval.py runs in a subprocess. They are never runtime dependencies of
# drumclassifier.
#
#   bash bench/setup_peers.sh            # creates/updates .venv-bench next to .venv
#   BENCH_VENV=/path bash bench/setup_peers.sh
#
# aubio: PyPI's `aubio` 0.4.9 is a source distribution (no wheels); it is built with the
# system C compiler. If that build fails, the script falls back to `aubio-ledfx`, a
# maintained fork on PyPI that ships wheels and imports as `aubio`. If neither installs,
# the benchmark reports librosa only (and says so).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${BENCH_VENV:-.venv-bench}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
echo '*' > "$VENV/.gitignore"          # never committed
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q -r bench/requirements-peers.txt
if ! "$VENV/bin/python" -c "import aubio" 2>/dev/null; then
    if ! "$VENV/bin/pip" install -q "aubio==0.4.9"; then
        echo "aubio 0.4.9 did not build; trying the aubio-ledfx wheels" >&2
        "$VENV/bin/pip" install -q aubio-ledfx || echo "no aubio: peers = librosa only" >&2
    fi
fi
"$VENV/bin/python" - <<'PY'
import importlib
for m in ("librosa", "aubio"):
    try:
        mod = importlib.import_module(m)
        print(f"{m} {getattr(mod, '__version__', '?')}")
    except Exception as e:   # reported, the benchmark skips that peer
        print(f"{m}: not available ({type(e).__name__}: {e})")
PY
