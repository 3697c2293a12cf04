"""Per-kit calibration of one model against another: which embedding calibrates better?

bench/calibration.py --json writes, per model, the counts of its simulated drummers (the
same seeded draws of calibration and test hits for every model of one split). This reads
one or more such files per arm (an arm = a training recipe, one file per seed) and prints
the anytime recall per class at one minimum confidence, the median decision context,
and the calibrated recall at fixed contexts; every figure is the mean over the arm's
models and draws, with the standard deviation over models.

    for s in 0 1; do for a in baseline metric; do
      .venv/bin/python -m bench.calibration -w runs/exp/$a-s$s/last.pt --split val --k 8 \\
          --draws 20 --threads 1 --min-confidence 0.95 --out /tmp/c.png \\
          --json runs/exp/calib/$a-s$s-val.json
    done; done
    .venv/bin/python -m bench.calibration_compare baseline=runs/exp/calib/baseline-s*-val.json \\
        metric=runs/exp/calib/metric-s*-val.json

The difference against the first arm pairs models by their order on the command line
(seed 0 with seed 0, ...) and is given per pair: with two seeds per arm, read it as an
indication, not a verdict.
"""
from __future__ import annotations

import argparse
import glob
import json
import sys

import numpy as np

from realtime.config import DecisionConfig

from .calibration import nan_means_quiet, nan_recall


def load(path: str) -> dict:
    d = json.loads(open(path).read())
    for k in ("anytime_ok", "anytime_tot", "anytime_median_ms", "fixed_ok", "fixed_tot"):
        d[k] = np.asarray(d[k], float)
    return d


def summary(d: dict, system: str, k: int, confidence: float) -> dict:
    """One model's figures: anytime recall per class [C], median ms, fixed-context mean [X]."""
    si, ki = d["systems"].index(system), d["k"].index(k)
    mi = int(np.argmin(np.abs(np.asarray(d["min_confidence"]) - confidence)))
    if abs(d["min_confidence"][mi] - confidence) > 1e-9:
        sys.exit(f"error: min confidence {confidence:g} not measured (has {d['min_confidence']})")
    ok, tot = d["anytime_ok"][si, ki, mi], d["anytime_tot"][si, ki, mi]  # [draw, class]
    recall = np.nanmean(nan_recall(ok, tot), 0)                          # [C]; NaN: no hits
    fixed = np.nanmean(nan_recall(d["fixed_ok"][ki], d["fixed_tot"][ki]), 0)  # [X, C]
    return {"recall": recall, "ms": d["anytime_median_ms"][si, ki, mi],
            "fixed": np.nanmean(fixed, 1)}                                   # [X]


def main(argv=None) -> int:
    with nan_means_quiet():
        return _main(argv)


def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("arms", nargs="+", metavar="NAME=GLOB",
                    help="an arm's --json files (one per model), e.g. metric='runs/x-s*.json'")
    ap.add_argument("--system", default="shipped", help="the fitting variant to read")
    ap.add_argument("--k", type=int, default=8, help="hits taught per piece")
    ap.add_argument("--confidence", type=float, default=DecisionConfig().min_confidence,
                    help="anytime min confidence (default: the live one, %(default)s)")
    args = ap.parse_args(argv)

    arms: list[tuple[str, list[dict]]] = []
    for spec in args.arms:
        name, eq, pattern = spec.partition("=")
        files = sorted(glob.glob(pattern)) if eq else []
        if not files:
            sys.exit(f"error: {spec!r}: expected NAME=GLOB matching --json files")
        arms.append((name, [load(f) for f in files]))
    ref = arms[0][1][0]
    for name, ds in arms:
        for d in ds:
            same = all(d[k] == ref[k] for k in ("split", "seed", "draws", "kits", "labels"))
            if not same:
                sys.exit(f"error: arm {name}: {d['weights']} was measured on other draws "
                         f"(split/seed/draws/kits differ from {ref['weights']})")
    labels = ref["labels"]
    print(f"split {ref['split']} ({len(ref['kits'])} kits), {ref['draws']} draws, K={args.k}, "
          f"variant {args.system!r}; mean over models and draws, ± sd over models\n")
    print(f"anytime, min confidence {args.confidence:g}")
    print("| arm | models | " + " | ".join(labels) + " | mean | worst | median ms |")
    print("|---|---|" + "---|" * (len(labels) + 3))
    sums = {}
    for name, ds in arms:
        ss = [summary(d, args.system, args.k, args.confidence) for d in ds]
        sums[name] = ss
        r = np.stack([s["recall"] for s in ss])  # [models, C]
        cells = " | ".join("-" if np.isnan(r[:, c]).all() else
                           f"{r[:, c].mean():.2f} ± {r[:, c].std():.2f}" for c in range(len(labels)))
        print(f"| {name} | {len(ds)} | {cells} | {np.nanmean(r):.3f} | "
              f"{np.nanmin(r.mean(0)):.2f} | "
              f"{np.median([s['ms'] for s in ss]):g} |")
    print("\ncalibrated, fixed context (mean recall over classes)")
    print("| arm | " + " | ".join(ref["contexts"]) + " |")
    print("|---|" + "---|" * len(ref["contexts"]))
    for name, ss in sums.items():
        f = np.stack([s["fixed"] for s in ss])  # [models, X]
        print(f"| {name} | " + " | ".join(f"{f[:, x].mean():.3f} ± {f[:, x].std():.3f}"
                                          for x in range(f.shape[1])) + " |")
    base = arms[0][0]
    for name, ss in list(sums.items())[1:]:
        pairs = list(zip(sums[base], ss))
        d_any = [np.nanmean(b["recall"]) - np.nanmean(a["recall"]) for a, b in pairs]
        d_fix = [b["fixed"] - a["fixed"] for a, b in pairs]
        print(f"\n{name} - {base}, per model pair: anytime mean recall "
              + ", ".join(f"{x:+.3f}" for x in d_any)
              + "; fixed contexts " + "; ".join(
                  "[" + ", ".join(f"{v:+.3f}" for v in x) + "]" for x in d_fix))
    return 0


if __name__ == "__main__":
    sys.exit(main())
