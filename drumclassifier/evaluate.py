"""`drumclassifier evaluate`: how well a checkpoint classifies a labelled set.

Runs the shipped inference path (`DrumClassifier.load` + `DrumClassifier.predict`) on a
manifest split or a folder with one sub-folder per class, and reports:
- per-class precision / recall / F1, accuracy, macro-F1 and the confusion matrix of the
  one-shot answer (argmax) at full context (up to the model's window), printed and as a PNG;
- accuracy and per-class recall vs post-onset context (5 ... 100 ms, 1 s, full): a table
  and a PNG curve;
- seeded held-out mixtures of 2-3 hits of one kit: per-class P/R/F1 of the multi-label
  answer (probability >= the checkpoint's per-class thresholds);
- n and number of clusters per class, and 95 % cluster-bootstrap intervals. A cluster is
  one kit's drums of one class (velocity layers of one drum flip together, so files are
  not independent; resampling clusters gives an honest, if conservative, width).
Everything also goes to DIR/metrics.json.

The first half of this module holds the prediction and metric helpers the trainer's
validation shares: `predict_fn(x [B, 2, N], lengths [B]) -> probs [B, n_labels]` is any
model call (the trainer passes its in-training network).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def predict_bank(predict_fn, bank, context_samples: int | None,
                 batch_size: int = 64, indices: Sequence[int] | None = None,
                 progress: bool = False, desc: str = "") -> np.ndarray:
    """Probabilities [n, n_labels] for hits cut to `context_samples` (None = all they have).

    Items are batched by length so a batch pads little (cost scales with content length).
    """
    from tqdm import tqdm

    from .dataset import pad_batch
    idx = np.arange(len(bank)) if indices is None else np.asarray(indices)
    lens = bank.lengths[idx].numpy()
    if context_samples is not None:
        lens = np.minimum(lens, context_samples)
    order = np.argsort(lens, kind="stable")
    out = None
    for s in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch",
                  disable=not progress, leave=False, dynamic_ncols=True):
        sel = order[s:s + batch_size]
        x, lengths = pad_batch([bank.get(int(idx[k])) for k in sel], context_samples)
        p = predict_fn(x, lengths).float().cpu().numpy()
        if out is None:
            out = np.zeros((len(idx), p.shape[1]), np.float32)
        out[sel] = p
    return out


def predict_mixtures(predict_fn, bank, specs,
                     context_samples: int | None, batch_size: int = 64) -> np.ndarray:
    from .dataset import mix, pad_batch
    out = []
    for s in range(0, len(specs), batch_size):
        waves = [mix([bank.get(i) for i in m.indices], m.gains_db, m.offsets)
                 for m in specs[s:s + batch_size]]
        x, lengths = pad_batch(waves, context_samples)
        out.append(predict_fn(x, lengths).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def confusion(true_idx: np.ndarray, pred_idx: np.ndarray, n: int) -> np.ndarray:
    """[n, n] counts; rows = true class, columns = predicted class."""
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (true_idx, pred_idx), 1)
    return cm


def prf_from_confusion(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 (0 where undefined)."""
    tp = np.diag(cm).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.nan_to_num(tp / cm.sum(0))
        r = np.nan_to_num(tp / cm.sum(1))
        f = np.nan_to_num(2 * p * r / (p + r))
    return p, r, f


def single_label_metrics(true_idx: np.ndarray, probs: np.ndarray) -> dict:
    """Argmax decision (the one-shot answer): accuracy, macro-F1, per-class P/R/F1, confusion."""
    n = probs.shape[1]
    cm = confusion(true_idx, probs.argmax(1), n)
    p, r, f = prf_from_confusion(cm)
    present = cm.sum(1) > 0  # macro over the classes that occur
    return {"accuracy": float(np.trace(cm) / max(1, cm.sum())),
            "macro_f1": float(f[present].mean()) if present.any() else 0.0,
            "precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(),
            "support": cm.sum(1).tolist(), "confusion": cm.tolist()}


def multilabel_prf(targets: np.ndarray, probs: np.ndarray, thresholds: Sequence[float]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 of `probs >= thresholds` against 0/1 targets [n, C]."""
    pred = probs >= np.asarray(thresholds)[None, :]
    t = targets > 0.5
    tp = (pred & t).sum(0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.nan_to_num(tp / pred.sum(0))
        r = np.nan_to_num(tp / t.sum(0))
        f = np.nan_to_num(2 * p * r / (p + r))
    return p, r, f


def choose_thresholds(targets: np.ndarray, probs: np.ndarray,
                      grid: np.ndarray | None = None) -> list[float]:
    """Per class, the threshold maximising that class's F1 (ties: the one nearest 0.5)."""
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2) if grid is None else grid
    out = []
    for c in range(targets.shape[1]):
        t = targets[:, c] > 0.5
        pred = probs[:, c][:, None] >= grid[None, :]  # [n, G]
        tp = (pred & t[:, None]).sum(0)
        f1 = 2 * tp / np.maximum(1, pred.sum(0) + t.sum())
        best = np.flatnonzero(f1 >= f1.max() - 1e-12)
        out.append(float(grid[best[np.argmin(np.abs(grid[best] - 0.5))]]))
    return out


def cluster_bootstrap(clusters: Sequence[str], stat: Callable[[np.ndarray], float],
                      n_boot: int = 1000, seed: int = 0, level: float = 0.95
                      ) -> tuple[float, float]:
    """Percentile interval of stat(item indices) when whole clusters are resampled.

    Items of one cluster (velocity layers of one drum) are not independent: resampling
    clusters, not files, gives an honest width.
    """
    keys = sorted(set(clusters))
    members = {k: [] for k in keys}
    for i, c in enumerate(clusters):
        members[c].append(i)
    groups = [np.asarray(members[k]) for k in keys]
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        pick = rng.integers(len(groups), size=len(groups))
        vals.append(stat(np.concatenate([groups[k] for k in pick])))
    lo, hi = np.quantile(vals, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


# ------------------------------------------------------------------------------- the command

EPILOG = """examples:
  drumclassifier evaluate -w runs/default/best.pt                 (manifest test split)
  drumclassifier evaluate -w runs/default/best.pt --split val --out eval/val
  drumclassifier evaluate -w my.pt ~/Sorted --out eval/mine       (one sub-folder per class)
Writes DIR/metrics.json, DIR/confusion.png, DIR/context.png."""


def configure_parser(p: argparse.ArgumentParser) -> None:
    from .cli_common import add_model_args, refuse_device_flag
    p.epilog = EPILOG
    p.add_argument("folder", nargs="?", metavar="FOLDER",
                   help="a folder with one sub-folder per class (instead of a manifest)")
    p.add_argument("--manifest", default="data/corpus/manifest.csv",
                   help="corpus manifest (default: %(default)s)")
    p.add_argument("--split", default="test", help="manifest split to evaluate (default: %(default)s)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: eval/SPLIT or "
                   "eval/FOLDERNAME)")
    p.add_argument("--force", action="store_true", help="overwrite results already in DIR")
    add_model_args(p)
    refuse_device_flag(p)
    p.add_argument("--contexts", default="5,10,20,30,50,100,1000",
                   help="post-onset contexts in ms, comma-separated; full context is always "
                        "added (default: %(default)s)")
    p.add_argument("--mixtures", type=int, default=500,
                   help="held-out mixtures of 2-3 hits of one kit (default: %(default)s; 0 = none)")
    p.add_argument("--seed", type=int, default=1234, help="mixture and bootstrap seed")
    p.add_argument("--bootstrap", type=int, default=1000,
                   help="cluster-bootstrap resamples for intervals (default: %(default)s; 0 = none)")
    p.add_argument("-b", "--batch-size", type=int, default=32)
    p.add_argument("-j", "--jobs", type=int, default=4, help="decoding threads")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    w = [max(len(r[k]) for r in cells) for k in range(len(header))]
    lines = ["  ".join(c.rjust(w[k]) if k else c.ljust(w[k]) for k, c in enumerate(r))
             for r in cells]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)


def plot_confusion(cm: np.ndarray, labels: Sequence[str], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = cm.sum(1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}\n{frac[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if frac[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_contexts(names: list[str], acc: list[float], ci: list, recall: dict, path: Path,
                  title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    xs = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for lab, r in recall.items():
        ax.plot(xs, r, marker=".", lw=1, alpha=0.7, label=f"{lab} recall")
    ax.plot(xs, acc, marker="o", lw=2.5, color="black", label="accuracy")
    if ci and all(c is not None for c in ci):
        ax.fill_between(xs, [c[0] for c in ci], [c[1] for c in ci], color="black", alpha=0.12,
                        label="accuracy 95% cluster CI")
    ax.set_xticks(xs, names)
    ax.set_xlabel("post-onset context")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args) -> int:
    import torch

    from .classifier import DrumClassifier
    from .dataset import ClipBank, MixtureSampler, items_from_folder, mixture_target, read_manifest
    from .errors import ConfigError

    contexts = sorted({float(c) for c in args.contexts.split(",") if c.strip()})
    if any(c <= 0 for c in contexts):
        raise ConfigError(f"--contexts must be positive milliseconds, got {args.contexts}")
    clf = DrumClassifier(args.weights, args.config, args.model_device)
    labels, sr = clf.labels, clf.cfg.sample_rate_hz
    if args.folder:
        items, source = items_from_folder(args.folder, labels), f"folder {args.folder}"
        default_out = Path("eval") / Path(args.folder).resolve().name
    else:
        items, skipped = read_manifest(args.manifest, [args.split], labels)
        source = f"{args.manifest} split {args.split}"
        default_out = Path("eval") / args.split
        if skipped:
            print(f"note: {skipped} rows with labels outside {labels} skipped", file=sys.stderr)
    if not items:
        raise ConfigError(f"no labelled items in {source}")
    out = Path(args.out) if args.out else default_out
    if (out / "metrics.json").exists() and not args.force:
        raise ConfigError(f"{out / 'metrics.json'} exists; use --force or another --out")
    out.mkdir(parents=True, exist_ok=True)

    # float32, whole window: exactly what DrumClassifier.load gives the model
    bank = ClipBank(items, sr, clf.cfg.analysis_s, dtype=torch.float32, jobs=args.jobs,
                    progress=not args.quiet, desc="decoding")
    for item, e in bank.failed:
        print(f"warning: skipped {e}", file=sys.stderr)
    true = np.array([labels.index(lab) for lab in bank.labels])
    clusters = [f"{k}/{lab}" for k, lab in zip(bank.kits, bank.labels)]
    n_per = {lab: int((true == c).sum()) for c, lab in enumerate(labels)}
    ncl_per = {lab: len({cl for cl, tr in zip(clusters, true) if tr == c})
               for c, lab in enumerate(labels)}
    print(f"{len(bank)} hits from {source}, {len(set(bank.kits))} kits, {len(set(clusters))} "
          f"clusters (kit x class); weights {clf.weights_path}", file=sys.stderr)

    def ci(stat):
        if args.bootstrap <= 0 or len(set(clusters)) < 2:
            return None
        return cluster_bootstrap(clusters, stat, args.bootstrap, args.seed)

    # ---- singles at every context
    ctx_names = [f"{c:g} ms" for c in contexts] + ["full"]
    ctx_samples = [round(c * 1e-3 * sr) for c in contexts] + [None]
    results, probs_by_ctx = {}, {}
    for name, n in zip(ctx_names, ctx_samples):
        probs = predict_bank(clf.predict, bank, n, args.batch_size, progress=not args.quiet,
                             desc=f"context {name}")
        probs_by_ctx[name] = probs
        m = single_label_metrics(true, probs)
        pred = probs.argmax(1)
        m["accuracy_ci95"] = ci(lambda idx, pred=pred: float((pred[idx] == true[idx]).mean()))
        results[name] = m
    full = results["full"]
    pred_full = probs_by_ctx["full"].argmax(1)
    full["macro_f1_ci95"] = ci(lambda idx: single_label_metrics(
        true[idx], probs_by_ctx["full"][idx])["macro_f1"])
    recall_ci = {}
    for c, lab in enumerate(labels):
        sel = np.flatnonzero(true == c)
        sub = [clusters[i] for i in sel]
        recall_ci[lab] = (cluster_bootstrap(sub, lambda idx, sel=sel, c=c: float(
            (pred_full[sel][idx] == c).mean()), args.bootstrap, args.seed)
            if args.bootstrap > 0 and len(set(sub)) >= 2 else None)

    def fmt_ci(c):
        return f"[{c[0]:.3f}, {c[1]:.3f}]" if c else "-"

    print(f"\n== full context (up to {clf.cfg.analysis_s:g} s): one-shot answer (argmax) ==")
    rows = [[lab, f"{full['precision'][c]:.3f}", f"{full['recall'][c]:.3f}",
             fmt_ci(recall_ci[lab]), f"{full['f1'][c]:.3f}", n_per[lab], ncl_per[lab]]
            for c, lab in enumerate(labels)]
    print(_table(rows, ["class", "precision", "recall", "recall 95% CI", "F1", "n", "clusters"]))
    print(f"accuracy {full['accuracy']:.3f} {fmt_ci(full['accuracy_ci95'])}   macro-F1 "
          f"{full['macro_f1']:.3f} {fmt_ci(full['macro_f1_ci95'])}   (n={len(bank)})")
    cm = np.array(full["confusion"])
    print("\nconfusion (rows true, columns predicted):")
    print(_table([[lab] + cm[c].tolist() for c, lab in enumerate(labels)], ["true"] + labels))

    print("\n== accuracy and per-class recall vs post-onset context ==")
    rows = [[name, f"{results[name]['accuracy']:.3f}", fmt_ci(results[name]["accuracy_ci95"])]
            + [f"{results[name]['recall'][c]:.3f}" for c in range(len(labels))]
            for name in ctx_names]
    print(_table(rows, ["context", "accuracy", "95% CI"] + labels))

    # ---- held-out mixtures
    thresholds = [round(float(x), 4) for x in clf.thresholds.tolist()]
    mixtures = {}
    mixer = MixtureSampler(bank.labels, bank.kits, sr)
    specs = mixer.fixed_set(args.mixtures, args.seed) if args.mixtures > 0 else []
    if specs:
        targets = np.stack([mixture_target(m, bank.labels, labels) for m in specs])
        print(f"\n== {len(specs)} held-out mixtures of 2-3 hits of one kit "
              f"(seed {args.seed}; thresholds {[round(x, 2) for x in thresholds]}) ==")
        rows = []
        for name, n in [("full", None), ("20 ms", round(0.02 * sr))]:
            probs = predict_mixtures(clf.predict, bank, specs, n, args.batch_size)
            p, r, f = multilabel_prf(targets, probs, thresholds)
            exact = float(((probs >= np.array(thresholds)) == (targets > 0.5)).all(1).mean())
            mixtures[name] = {"precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(),
                              "macro_f1": float(f.mean()), "exact_match": exact,
                              "n_positive": targets.sum(0).astype(int).tolist()}
            rows += [[name, lab, f"{p[c]:.3f}", f"{r[c]:.3f}", f"{f[c]:.3f}",
                      int(targets[:, c].sum())] for c, lab in enumerate(labels)]
            rows.append([name, "macro", "", "", f"{f.mean():.3f}", f"exact set {exact:.3f}"])
        print(_table(rows, ["context", "class", "precision", "recall", "F1", "n"]))
    else:
        print("\n(no mixtures: no kit has two classes, or --mixtures 0)")

    # ---- files
    title = f"{Path(clf.weights_path).name} on {source} (n={len(bank)})"
    plot_confusion(cm, labels, out / "confusion.png", title)
    plot_contexts(ctx_names, [results[n]["accuracy"] for n in ctx_names],
                  [results[n]["accuracy_ci95"] for n in ctx_names],
                  {lab: [results[n]["recall"][c] for n in ctx_names]
                   for c, lab in enumerate(labels)}, out / "context.png", title)
    metrics = {"weights": str(clf.weights_path), "source": source, "labels": labels,
               "n": len(bank), "n_per_class": n_per, "clusters_per_class": ncl_per,
               "n_kits": len(set(bank.kits)), "cluster": "kit/class",
               "failed": [str(i.path) for i, _ in bank.failed], "thresholds": thresholds,
               "full": {**full, "recall_ci95": recall_ci},
               "contexts": {n: {"accuracy": results[n]["accuracy"],
                                "accuracy_ci95": results[n]["accuracy_ci95"],
                                "macro_f1": results[n]["macro_f1"],
                                "recall": dict(zip(labels, results[n]["recall"]))}
                            for n in ctx_names},
               "mixtures": {"n": len(specs), "seed": args.seed, **mixtures}}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(f"\nwrote {out / 'metrics.json'}, {out / 'confusion.png'}, {out / 'context.png'}",
          file=sys.stderr)
    return 0
