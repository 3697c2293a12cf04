#!/usr/bin/env bash
# Create .venv-adtof: a SEPARATE virtualenv with ADTOF-pytorch (xavriley/ADTOF-pytorch, a
# PyTorch port of ADTOF's Frame_RNN drum transcriber), a BENCH-ONLY peer that
# bench/streams/adtof_peer.py runs in a subprocess. Never a dependency of drumclassifier or
# realtime, and never vendored: its weights are CC BY-NC-SA, so neither its code nor its
# weights are committed here. They live only in .venv-adtof and the source dir.
#
#   bash bench/setup_adtof.sh                          # clones into data/peers/ (needs GitHub)
#   ADTOF_DIR=/path/to/ADTOF-pytorch bash bench/setup_adtof.sh   # from a local copy
#   ADTOF_VENV=/path bash bench/setup_adtof.sh         # another venv location
#
# The weights ship inside the port's repository (src/adtof_pytorch/data/*.pth, a plain file,
# not Git LFS) and are installed with the package: nothing is downloaded at run time.
# torch is pinned by constraints.txt (the pair .venv uses); the PyPI torch wheel for Linux is
# the CUDA build, so this venv is several GB, like .venv. librosa and pretty_midi are the
# port's other dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${ADTOF_VENV:-.venv-adtof}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
SRC=${ADTOF_DIR:-data/peers/ADTOF-pytorch}
if [ ! -f "$SRC/pyproject.toml" ]; then
    if [ -n "${ADTOF_DIR:-}" ]; then
        echo "ADTOF_DIR=$ADTOF_DIR has no pyproject.toml" >&2
        exit 1
    fi
    mkdir -p "$(dirname "$SRC")"
    git clone --depth 1 https://github.com/xavriley/ADTOF-pytorch "$SRC"
fi
WEIGHTS="$SRC/src/adtof_pytorch/data/adtof_frame_rnn_pytorch_weights.pth"
if ! head -c 2 "$WEIGHTS" 2>/dev/null | grep -q PK; then
    # a torch checkpoint is a zip ("PK"); a Git LFS pointer or a missing file is not
    echo "$WEIGHTS is missing or not a torch checkpoint (Git LFS pointer?)" >&2
    exit 1
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
echo '*' > "$VENV/.gitignore"          # never committed
"$VENV/bin/pip" install -q --upgrade pip
# non-editable: the package and its weights are copied into the venv
"$VENV/bin/pip" install -q -c constraints.txt soundfile "$SRC"
COMMIT=$(git -C "$SRC" rev-parse HEAD 2>/dev/null || echo "${ADTOF_COMMIT:-unknown}")
echo "$COMMIT" > "$VENV/adtof-source-commit"
"$VENV/bin/python" - <<'PY'
import hashlib
import importlib.metadata as md
import sys

import torch

from adtof_pytorch import calculate_n_bins, create_frame_rnn_model, get_default_weights_path

w = get_default_weights_path()
model = create_frame_rnn_model(calculate_n_bins())
sd = torch.load(w, map_location="cpu")
res = model.load_state_dict(sd.get("model_weights", sd), strict=False)
missing = [k for k in res.missing_keys if not k.endswith("num_batches_tracked")]
if missing or res.unexpected_keys:     # the port would silently run random weights
    sys.exit(f"weights do not fit the model: missing {missing}, unexpected {res.unexpected_keys}")
digest = hashlib.sha256(open(w, "rb").read()).hexdigest()[:16]
print(f"python {sys.version.split()[0]}")
for p in ("adtof-pytorch", "torch", "librosa", "numpy", "soundfile", "pretty_midi"):
    print(f"{p} {md.version(p)}")
print(f"weights {w} sha256 {digest}... (CC BY-NC-SA: bench only)")
PY
echo "source commit $COMMIT"
