"""Per-kit calibration on held-out kits: simulated drummers, generic model vs a kit profile.

For each kit of the test split (kits never used in training), its pieces are its classes
(a kit's velocity layers and articulations of one class give several hits of that piece).
A simulated user teaches K hits per piece, drawn at random (every piece is taught: a piece
with at most K hits keeps one back for testing when it has two or more); the profile is
fitted exactly as `drumclassifier calibrate` does (drumclassifier.kit: each calibration
hit augmented with gain, -0.5..+1.5 ms onset jitter, noise and truncation to the live
contexts; one logistic-regression head over the pieces on the model's embedding); the
kit's other hits are then classified at 5, 10, 20, 30 ms and the full window, by the
profile and by the generic model (argmax). Per-class recall is pooled over kits within a
draw; the table gives mean +- standard deviation over draws.

    .venv/bin/python bench/calibration.py --draws 10 --out docs/calibration.png

CPU only, a few minutes. Clean sampled hits: a best case (no bleed, no overlapping hits,
no room); the onset is the file's start, jittered only in the calibration augmentation.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drumclassifier.classifier import DrumClassifier
from drumclassifier.dataset import ClipBank, read_manifest
from drumclassifier.kit import (
    DEFAULT_CONTEXTS_MS,
    augment_hits,
    embed_batched,
    fit_head,
    head_probs,
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", default=str(ROOT / "data/corpus/manifest.csv"))
    ap.add_argument("--split", default="test")
    ap.add_argument("-w", "--weights", default=None, help="default: the shipped model")
    ap.add_argument("--k", type=int, nargs="+", default=[3, 8], help="hits taught per piece")
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--augment", type=int, default=20)
    ap.add_argument("--contexts-ms", type=float, nargs="+", default=[5, 10, 20, 30])
    ap.add_argument("--fit-contexts-ms", type=float, nargs="+", default=None,
                    help="contexts the calibration hits are cut to (default: the profile's)")
    ap.add_argument("--per-context-heads", action="store_true",
                    help="fit one head per test context on hits cut to that context (default: "
                         "one head for all contexts, as `drumclassifier calibrate` does)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--out", default=str(ROOT / "docs/calibration.png"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()

    clf = DrumClassifier(args.weights, device="cpu")
    labels, sr = clf.labels, clf.cfg.sample_rate_hz
    items, _ = read_manifest(args.manifest, [args.split], labels)
    bank = ClipBank(items, sr, clf.cfg.analysis_s, dtype=torch.float32, progress=False)
    hits = [bank.get(i) for i in range(len(bank))]
    y_all = np.array([labels.index(lab) for lab in bank.labels])
    kits = np.array(bank.kits)
    ctx_names = [f"{c:g} ms" for c in args.contexts_ms] + ["full"]
    ctx_samples = [int(round(c * sr / 1000)) for c in args.contexts_ms] + [None]

    # test-side embeddings and generic predictions, per context: [n, D], [n]
    emb_ctx, gen_ctx = [], []
    for cs in ctx_samples:
        w = [h if cs is None else h[:, :cs] for h in hits]
        emb_ctx.append(embed_batched(clf, w))
        gen_ctx.append(np.concatenate([clf.predict(w[s:s + 64]).argmax(1).numpy()
                                       for s in range(0, len(w), 64)]))
    # calibration-side: each hit's augmented variants, embedded once
    rng = np.random.default_rng(args.seed)
    fit_ctx = args.fit_contexts_ms or DEFAULT_CONTEXTS_MS
    if args.per_context_heads:   # [context] -> (variants' embeddings, source hit of each)
        full_ms = clf.cfg.analysis_s * 1000
        aug = []
        for c in list(args.contexts_ms) + [full_ms]:
            var, src = augment_hits(hits, args.augment, sr, [c], rng)
            aug.append((embed_batched(clf, var), np.asarray(src)))
    else:
        var, src = augment_hits(hits, args.augment, sr, fit_ctx, rng)
        aug = [(embed_batched(clf, var), np.asarray(src))] * len(ctx_samples)
    print(f"{len(hits)} held-out hits in {len(set(kits))} kits; embeddings in "
          f"{time.perf_counter() - t_start:.0f} s", file=sys.stderr)

    C, X = len(labels), len(ctx_samples)
    # [K, draw, context, class] correct / total; generic on the same test hits
    shape = (len(args.k), args.draws, X, C)
    cal_ok, gen_ok, tot = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    taught = {k: [] for k in args.k}
    fit_s = []
    for ki, K in enumerate(args.k):
        for d in range(args.draws):
            for kit in sorted(set(kits)):
                idx = np.flatnonzero(kits == kit)
                classes = sorted(set(y_all[idx]))
                cal, test = [], []
                for c in classes:
                    own = rng.permutation(idx[y_all[idx] == c])
                    n_cal = len(own) if len(own) == 1 else min(K, len(own) - 1)
                    cal += own[:n_cal].tolist()
                    test += own[n_cal:].tolist()
                    taught[K].append(n_cal)
                piece_of = {c: i for i, c in enumerate(classes)}
                heads = {}
                for x in range(X):
                    if id(aug[x]) in heads:
                        continue
                    emb_aug, src = aug[x]
                    tr = np.isin(src, cal)
                    t0 = time.perf_counter()
                    heads[id(aug[x])] = fit_head(
                        emb_aug[tr], torch.tensor([piece_of[c] for c in y_all[src[tr]]]),
                        len(classes))
                    fit_s.append(time.perf_counter() - t0)
                test = np.asarray(test)
                yt = y_all[test]
                for x in range(X):
                    head = heads[id(aug[x])]
                    pred = np.asarray(classes)[head_probs(head, emb_ctx[x][test]).argmax(1)]
                    for c in classes:
                        m = yt == c
                        tot[ki, d, x, c] += m.sum()
                        cal_ok[ki, d, x, c] += (pred[m] == c).sum()
                        gen_ok[ki, d, x, c] += (gen_ctx[x][test][m] == c).sum()

    def stat(ok, ki, x, c):
        r = ok[ki, :, x, c] / np.maximum(tot[ki, :, x, c], 1)
        return r.mean(), r.std()

    lines = ["| K | context | system | " + " | ".join(labels) + " | mean |",
             "|---|---|---|" + "---|" * (C + 1)]
    curves = {}
    for ki, K in enumerate(args.k):
        for name, ok in (("generic", gen_ok), (f"calibrated K={K}", cal_ok)):
            for x in range(X):
                cells, means = [], []
                for c in range(C):
                    m, s = stat(ok, ki, x, c)
                    cells.append(f"{m:.2f} ± {s:.2f}")
                    means.append(m)
                    curves.setdefault((name, K, c), []).append(m)
                lines.append(f"| {K} | {ctx_names[x]} | {name} | " + " | ".join(cells)
                             + f" | {np.mean(means):.2f} |")
    print(f"heads: {'one per context' if args.per_context_heads else 'one for all contexts'}"
          f" (fitting contexts: {'each test context' if args.per_context_heads else fit_ctx} "
          f"ms), augment {args.augment}, {args.draws} draws, split {args.split}")
    print("\n".join(lines))
    for K in args.k:
        print(f"K={K}: hits actually taught per piece: mean {np.mean(taught[K]):.1f}, "
              f"min {min(taught[K])} (kits with fewer hits keep one back for testing)")
    print(f"test hits per class per draw (K={args.k[-1]}): "
          + ", ".join(f"{lab} {int(tot[-1, 0, 0, c])}" for c, lab in enumerate(labels)))
    print(f"head fit: median {np.median(fit_s) * 1000:.0f} ms; total run "
          f"{time.perf_counter() - t_start:.0f} s")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, C, figsize=(3.2 * C, 3.2), sharey=True)
    xs = np.arange(X)
    for c, ax in enumerate(axes):
        ax.plot(xs, curves[("generic", args.k[0], c)], "k--o", label="generic model")
        for ki, K in enumerate(args.k):
            m = [stat(cal_ok, ki, x, c)[0] for x in range(X)]
            s = [stat(cal_ok, ki, x, c)[1] for x in range(X)]
            ax.errorbar(xs, m, yerr=s, marker="o", capsize=3, label=f"calibrated, K={K}")
        ax.set_title(labels[c])
        ax.set_xticks(xs, ctx_names, rotation=45)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"recall (mean ± sd, {args.draws} draws)")
    axes[-1].legend(loc="lower right", fontsize=8)
    fig.suptitle("Held-out kits: generic model vs per-kit calibration, by post-onset context")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"figure: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
