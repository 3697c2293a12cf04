"""Peer onset detectors, run inside .venv-bench (bench/setup_peers.sh), never in .venv.

    .venv-bench/bin/python bench/streams/peers.py JOBS.json OUT.json

JOBS.json: {"files": [path, ...], "methods": {name: {"tool": "aubio"|"librosa", ...}}}
  aubio:   method (hfc, specflux, ...), buf_size, hop_size, threshold (null: aubio's
           default), minioi_ms (null: default), silence_db (null: default)
  librosa: kwargs for librosa.onset.onset_detect (y and sr from librosa.load's defaults:
           22050 Hz mono), always units="time", backtrack=False
OUT.json: {"versions": {...}, "onsets": {name: {path: [seconds...]}}, "seconds": {name: s},
           "errors": {name: message}}

Standalone on purpose: imports only numpy, soundfile and the peer under test.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
import soundfile as sf


def aubio_onsets(path: str, p: dict) -> list[float]:
    import aubio
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = np.ascontiguousarray(x.mean(1), dtype=np.float32)
    hop, buf = int(p.get("hop_size", 256)), int(p.get("buf_size", 512))
    o = aubio.onset(p.get("method", "default"), buf, hop, sr)
    if p.get("threshold") is not None:
        o.set_threshold(float(p["threshold"]))
    if p.get("minioi_ms") is not None:
        o.set_minioi_ms(float(p["minioi_ms"]))
    if p.get("silence_db") is not None:
        o.set_silence(float(p["silence_db"]))
    out = []
    n = len(x) // hop * hop
    x = np.concatenate([x[:n], np.zeros(hop, np.float32)]) if n < len(x) else x
    for i in range(0, len(x), hop):
        if o(x[i:i + hop]):
            out.append(float(o.get_last_s()))    # aubio subtracts its own delay
    return out


def librosa_onsets(path: str, p: dict) -> list[float]:
    import librosa
    y, sr = librosa.load(path)                   # the defaults users call it with
    kw = {k: v for k, v in p.items() if k != "tool"}
    t = librosa.onset.onset_detect(y=y, sr=sr, units="time", backtrack=False, **kw)
    return [float(v) for v in t]


def versions() -> dict:
    v = {}
    for m in ("aubio", "librosa"):
        try:
            mod = __import__(m)
            ver = getattr(mod, "__version__", None) or getattr(mod, "version", "?")
            v[m] = ver if isinstance(ver, str) else "?"
        except Exception as e:  # noqa: BLE001 - a missing peer is reported, not fatal
            v[m] = f"unavailable: {type(e).__name__}: {e}"
    return v


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as f:
        jobs = json.load(f)
    res = {"versions": versions(), "onsets": {}, "seconds": {}, "errors": {}}
    for name, p in jobs["methods"].items():
        fn = aubio_onsets if p["tool"] == "aubio" else librosa_onsets
        t0 = time.perf_counter()
        try:
            res["onsets"][name] = {f: fn(f, p) for f in jobs["files"]}
        except Exception as e:  # noqa: BLE001 - a failing peer is reported, the others go on
            res["errors"][name] = f"{type(e).__name__}: {e}"
        res["seconds"][name] = time.perf_counter() - t0
    with open(argv[1], "w") as f:
        json.dump(res, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
