"""How well a model hears the onsets of grooves, with the onset detector and the engine
left out: does it fit its own training grooves, and does it do better on the kits it was
trained on than on kits it never heard?

    # every truth onset of bench.streams streams (notes within 10 ms are one onset)
    python -m bench.groove_fit data/streams-v2 --condition clean [-w WEIGHTS] [--ms 20 80]
    # the detected onsets of `drumclassifier grooves` with their training labels
    python -m bench.groove_fit data/grooves/streams.csv --split train --limit 8000
    # one kit's streams, and what is sent at onsets holding each combination of classes
    python -m bench.groove_fit data/streams-v2 --kit ElectricEmpireKit --by-truth

Each onset is read as the live worker reads it: the model's lead-in from before the onset,
then --ms after it. Per class: F at the model's own thresholds, the best F over thresholds
(what a better threshold alone could give), and the AUC (how well the probability ranks the
onsets holding the class above those without it, whatever the threshold: 0.5 is chance).
A kit's training onsets through bench.streams need a manifest copy in which those kits are
the "test" split (bench.streams renders only that split).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from bench.stream_eval import group_onsets, read_truth
from drumclassifier.audio import lead_in
from drumclassifier.evaluate import choose_thresholds, multilabel_prf


def truth_onsets(notes: list[tuple[float, str]], labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """[(time_s, class)] -> onset times (grouped as bench.stream_eval scores them: notes
    within 10 ms of a group's first note are one onset) and multi-hot targets [n, C]."""
    times = group_onsets([t for t, _ in notes])
    y = np.zeros((len(times), len(labels)), np.float32)
    for t, lab in notes:
        y[np.searchsorted(times, t, side="right") - 1, labels.index(lab)] = 1.0
    return times, y


def class_fit(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """0/1 targets [n] and probabilities [n] of one class -> (F at threshold, best F over
    thresholds 0.02-0.98, AUC; nan without both kinds of onset)."""
    yc, pc = y[:, None], p[:, None]                                    # [n, 1]: one class
    f = float(multilabel_prf(yc, pc, [threshold])[2][0])
    best = float(multilabel_prf(yc, pc, choose_thresholds(yc, pc, np.linspace(0.02, 0.98, 49)))[2][0])
    pos, neg = p[y > 0], p[y == 0]
    auc = float("nan")
    if len(pos) and len(neg):       # Mann-Whitney: the share of (pos, neg) pairs ranked right
        s = np.concatenate([pos, neg])
        ranks = np.empty(len(s))
        ranks[np.argsort(s, kind="stable")] = np.arange(1, len(s) + 1)
        _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
        ranks = (np.bincount(inv, weights=ranks) / counts)[inv]      # ties: half a pair each
        auc = (ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))
    return f, best, float(auc)


def sent_by_truth(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray, labels
                  ) -> list[tuple[str, int, np.ndarray]]:
    """Targets [n, C] (0/1), probabilities [n, C], thresholds [C] -> per combination of
    classes in the truth ("-" = none), most onsets first: (name, onsets, [C] share of
    those onsets on which each class is sent). Tells a class confusion (one kit's snare
    sent as a tom) from a missed or an extra class."""
    yb, sent = y.astype(bool), p >= thresholds
    names = np.array(["+".join(lab for lab, b in zip(labels, row) if b) or "-" for row in yb])
    out = [(name, int((names == name).sum()), sent[names == name].mean(0)) for name in set(names)]
    return sorted(out, key=lambda r: (-r[1], r[0]))


def _stream_onsets(folder: Path, condition: str, labels, sr: int, kit: str | None = None):
    """bench.streams folder -> per stream (audio [n, channels], onset samples, targets)."""
    with open(folder / "streams.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["condition"] == condition
                and (kit is None or r["kit"] == kit)]
    if not rows:
        raise SystemExit(f"{folder}: no streams of condition {condition!r}"
                         + (f" and kit {kit!r}" if kit else ""))
    for r in rows:
        x, fs = sf.read(folder / r["audio"], dtype="float32", always_2d=True)
        if fs != sr:
            raise SystemExit(f"{folder / r['audio']}: {fs} Hz, the model reads {sr} Hz")
        times, y = truth_onsets(read_truth(folder / r["truth"]), labels)
        yield x, [round(t * sr) for t in times], y


def _cut(x: np.ndarray, at: int, n: int, lead: int, sr: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The onset at sample `at` of x [samples, channels] as the worker gets it: [2, <= n]
    from it, and the model's lead-in [2, lead] before it."""
    after = torch.from_numpy(np.ascontiguousarray(x[at:at + n].T))
    return (after.expand(2, -1) if after.shape[0] == 1 else after,
            lead_in(x[max(0, at - lead):at], sr, sr, lead))


def probabilities(clf, source: str, ms: float, condition: str = "clean", split: str = "train",
                  limit: int = 0, batch: int = 128, kit: str | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """-> targets [n, C], probabilities [n, C] of every onset of `source` at `ms`."""
    sr, lead = clf.cfg.sample_rate_hz, clf.cfg.lead_in_samples
    n = round(ms * 1e-3 * sr)
    items, ys = [], []
    path = Path(source)
    if path.is_dir():
        for audio, onsets, y in _stream_onsets(path, condition, clf.labels, sr, kit):
            items += [_cut(audio, at, n, lead, sr) for at in onsets]
            ys.append(y)
        y = np.concatenate(ys)
    else:
        from drumclassifier.dataset import GrooveBank
        g = GrooveBank(path, split, clf.labels, sr, progress=False)
        idx = (np.random.default_rng(0).choice(len(g), limit, replace=False)
               if 0 < limit < len(g) else np.arange(len(g)))
        items = [(g.get(int(i), n), g.get(int(i), 0, lead)) for i in idx]
        y = g.targets[idx]
    probs = [clf.predict([w for w, _ in items[k:k + batch]],
                         before=[b for _, b in items[k:k + batch]] if lead else None).numpy()
             for k in range(0, len(items), batch)]
    return y, np.concatenate(probs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("source", help="a bench.streams folder, or a grooves streams.csv")
    ap.add_argument("-w", "--weights", help="checkpoint (default: the shipped weights)")
    ap.add_argument("--ms", type=float, nargs="+", default=[20.0],
                    help="audio after each onset (ms; default 20, the live context)")
    ap.add_argument("--condition", default="clean", help="bench.streams condition")
    ap.add_argument("--split", default="train", help="grooves split (train or val)")
    ap.add_argument("--limit", type=int, default=0, help="grooves: at most N onsets, drawn at random")
    ap.add_argument("--kit", help="streams folder: only this kit's streams")
    ap.add_argument("--by-truth", action="store_true",
                    help="also: per combination of classes in the truth, the share of its onsets "
                    "each class is sent on")
    a = ap.parse_args(argv)
    if a.kit and not Path(a.source).is_dir():
        ap.error("--kit reads a bench.streams folder")
    from drumclassifier.classifier import DrumClassifier
    clf = DrumClassifier(a.weights, device="cpu")
    th = clf.thresholds.numpy()
    for ms in a.ms:
        y, p = probabilities(clf, a.source, ms, a.condition, a.split, a.limit, kit=a.kit)
        print(f"\n{a.source} ({a.condition if Path(a.source).is_dir() else a.split}), "
              f"{len(y)} onsets, {ms:g} ms after each; weights {clf.weights_path}")
        print("| class | onsets | F at the model's threshold | best F over thresholds | AUC |")
        print("|---|---|---|---|---|")
        fs = []
        for c, lab in enumerate(clf.labels):
            f, best, auc = class_fit(y[:, c], p[:, c], float(th[c]))
            fs.append(f)
            print(f"| {lab} | {int(y[:, c].sum())} | {f:.3f} ({th[c]:.2f}) | {best:.3f} | {auc:.3f} |")
        print(f"macro-F at the thresholds: {np.mean(fs):.3f}")
        if a.by_truth:
            print("\n| truth at the onset | onsets | " + " | ".join(f"{lab} sent" for lab in clf.labels)
                  + " |\n|" + "---|" * (len(clf.labels) + 2))
            for name, n, share in sent_by_truth(y, p, th, clf.labels):
                print(f"| {name} | {n} | " + " | ".join(f"{v:.2f}" for v in share) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
