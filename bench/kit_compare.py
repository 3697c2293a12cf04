"""Two runs of bench.kit_grooves on the same grooves, paired by stream.

    .venv/bin/python -m bench.kit_compare runs/kg-A/results.json runs/kg-B/results.json
    .venv/bin/python -m bench.kit_compare A.json B.json --systems profile generic  # B's generic

For each class: F of A and of B (pooled over the streams both ran), B - A, and the 95 %
interval of that difference from resampling whole streams (both runs resampled alike:
paired), per condition too. Streams are matched by id (condition/groove), so both runs
must have played the same grooves (same --seed, --streams-per-kit, --seconds, kits).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bench.stream_eval import LABELS, prf
from drumclassifier.evaluate import cluster_bootstrap


def counts(rows: list[dict], system: str, label: str) -> np.ndarray:
    """[S, 3] tp, fp, fn of one class per stream."""
    return np.array([[r[system]["classes"][label][k] for k in ("tp", "fp", "fn")]
                     for r in rows], float)


def f_of(c: np.ndarray) -> float:
    tp, fp, fn = c.sum(0)
    return prf(int(tp), int(fp), int(fn))["f"]


def compare(a: dict, b: dict, sys_a: str = "profile", sys_b: str = "profile",
            conditions: list[str] | None = None, n_boot: int = 2000) -> list[dict]:
    """Per condition ('all' first) and class: {condition, label, f_a, f_b, diff, lo, hi}."""
    by_id = {r["id"]: r for r in b["streams"]}
    pairs = [(r, by_id[r["id"]]) for r in a["streams"] if r["id"] in by_id]
    if not pairs:
        raise SystemExit("the two runs share no stream (same --seed and kits?)")
    conds = conditions or sorted({r["condition"] for r, _ in pairs})
    out = []
    for cond in ["all", *conds]:
        sel = [(ra, rb) for ra, rb in pairs if cond == "all" or ra["condition"] == cond]
        for lab in LABELS:
            ca = counts([ra for ra, _ in sel], sys_a, lab)
            cb = counts([rb for _, rb in sel], sys_b, lab)
            if ca[:, [0, 2]].sum() == 0:        # the class was never played
                continue

            def diff(idx, ca=ca, cb=cb):
                return f_of(cb[idx]) - f_of(ca[idx])
            lo, hi = cluster_bootstrap([ra["id"] for ra, _ in sel], diff, n_boot)
            out.append({"condition": cond, "label": lab, "f_a": f_of(ca), "f_b": f_of(cb),
                        "diff": f_of(cb) - f_of(ca), "lo": lo, "hi": hi, "streams": len(sel)})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("a", type=Path, help="results.json of the run compared against")
    ap.add_argument("b", type=Path, help="results.json of the run compared")
    ap.add_argument("--systems", nargs=2, default=["profile", "profile"],
                    metavar=("SYS_A", "SYS_B"), help="which system of each run "
                    "(generic or profile; default: profile profile)")
    a = ap.parse_args(argv)
    ra, rb = (json.loads(p.read_text()) for p in (a.a, a.b))
    rows = compare(ra, rb, *a.systems)
    print(f"B = {a.b} ({a.systems[1]}) against A = {a.a} ({a.systems[0]}); class F, "
          "B - A [95 % interval, streams resampled]")
    print("| condition | streams | " + " | ".join(LABELS) + " |")
    print("|---|---|" + "---|" * len(LABELS))
    for cond in dict.fromkeys(r["condition"] for r in rows):
        cells = {r["label"]: f"{r['f_a']:.3f} -> {r['f_b']:.3f}, {r['diff']:+.3f} "
                             f"[{r['lo']:+.3f}, {r['hi']:+.3f}]"
                 for r in rows if r["condition"] == cond}
        n = next(r["streams"] for r in rows if r["condition"] == cond)
        print(f"| {cond} | {n} | " + " | ".join(cells.get(c, "-") for c in LABELS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
