"""ADTOF (offline drum transcriber, bench-only peer) from our .venv.

`run_adtof(files)` runs bench/streams/adtof_peer.py inside .venv-adtof (bash
bench/setup_adtof.sh) in a subprocess and returns its OUT.json. ADTOF's weights are
CC BY-NC-SA: they stay in that venv, and nothing here imports the port.

    .venv/bin/python -m bench.adtof data/streams [--conditions clean] [--out adtof.json]

scores ADTOF's events on a stream set (bench.streams) per class and condition: truth notes
of a class closer than 10 ms are one onset, one-to-one matching within +-25 ms (--tol-ms),
closest pairs first, counts summed over the streams. The same rules as bench.stream_eval's
class scores (which use +-50 ms). ADTOF sees the whole file (bidirectional GRU): an offline
ceiling, not a live system.

Imports only the standard library and numpy.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "bench" / "streams" / "adtof_peer.py"
LABELS = ("kick", "snare", "hihat", "toms", "cymbals")


def run_adtof(files: list[str], python: Path = ROOT / ".venv-adtof" / "bin" / "python"
              ) -> dict | None:
    """{"version", "events": {path: [[time_s, label], ...]}, "seconds", "errors"}, or None
    (and one line on stderr) when the ADTOF venv is missing."""
    python = Path(python)
    if not python.exists():
        print(f"ADTOF skipped: {python} not found (bash bench/setup_adtof.sh)", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as d:
        jobs, out = Path(d) / "jobs.json", Path(d) / "out.json"
        jobs.write_text(json.dumps({"files": [str(f) for f in files]}))
        subprocess.run([str(python), str(PEER), str(jobs), str(out)], check=True)
        return json.loads(out.read_text())


# ---- scoring (a small copy of bench.stream_eval's rules: stdlib + numpy only) ------------
def group(times, merge_s: float = 0.010) -> np.ndarray:
    t = np.sort(np.asarray(times, float))
    out: list[float] = []
    for x in t:
        if not out or x - out[-1] >= merge_s:
            out.append(float(x))
    return np.asarray(out)


def n_matched(ref, est, tol_s: float) -> int:
    """One-to-one pairs with |est - ref| <= tol_s, closest first."""
    cand = sorted((abs(e - r), i, j) for i, r in enumerate(ref) for j, e in enumerate(est)
                  if abs(e - r) <= tol_s + 1e-9)
    used_r, used_e = set(), set()
    for _, i, j in cand:
        if i not in used_r and j not in used_e:
            used_r.add(i)
            used_e.add(j)
    return len(used_r)


def class_counts(truth, events, tol_ms: float = 25.0) -> dict:
    """truth, events: [(time_s, label)] -> {label: {"tp", "fp", "fn"}}."""
    out = {}
    for c in LABELS:
        ref = group([t for t, lab in truth if lab == c])
        est = np.sort(np.unique([t for t, lab in events if lab == c]))
        tp = n_matched(ref, est, tol_ms / 1000)
        out[c] = {"tp": tp, "fp": len(est) - tp, "fn": len(ref) - tp}
    return out


def prf(c: dict) -> dict:
    tp, fp, fn = c["tp"], c["fp"], c["fn"]
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {**c, "p": p, "r": r, "f": f}


def read_truth(path: Path) -> list[tuple[float, str]]:
    with open(path, newline="") as f:
        return [(float(r["time_s"]), r["label"]) for r in csv.DictReader(f)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("streams", type=Path, help="a bench.streams output dir (streams.csv)")
    ap.add_argument("--conditions", nargs="*", help="only these conditions")
    ap.add_argument("--tol-ms", type=float, default=25.0)
    ap.add_argument("--python", type=Path, default=ROOT / ".venv-adtof" / "bin" / "python")
    ap.add_argument("--out", type=Path, help="write the raw peer output and the scores here")
    a = ap.parse_args(argv)
    with open(a.streams / "streams.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f)
                if not a.conditions or r["condition"] in a.conditions]
    res = run_adtof([str(a.streams / r["audio"]) for r in rows], a.python)
    if res is None:
        return 1
    print(f"ADTOF: {res['version']}; {len(rows)} streams in {res['seconds']:.1f} s")
    for f, msg in res["errors"].items():
        print(f"error {f}: {msg}", file=sys.stderr)
    sums: dict = {}
    for r in rows:
        ev = res["events"].get(str(a.streams / r["audio"]))
        if ev is None:
            continue
        counts = class_counts(read_truth(a.streams / r["truth"]), ev, a.tol_ms)
        per = sums.setdefault(r["condition"], {c: {"tp": 0, "fp": 0, "fn": 0} for c in LABELS})
        for c in LABELS:
            per[c] = {k: per[c][k] + counts[c][k] for k in ("tp", "fp", "fn")}
    scores = {cond: {c: prf(v) for c, v in per.items()} for cond, per in sums.items()}
    print(f"F per class, +-{a.tol_ms:g} ms (tp/fp/fn)")
    for cond, per in scores.items():
        print(f"  {cond:10s} " + "  ".join(
            f"{c} {s['f']:.3f} ({s['tp']}/{s['fp']}/{s['fn']})" for c, s in per.items()))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"adtof": res, "scores": scores, "tol_ms": a.tol_ms},
                                    indent=1))
    return 0 if not res["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
