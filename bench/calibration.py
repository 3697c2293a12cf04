"""Per-kit calibration on held-out kits: simulated drummers, generic model vs a kit profile.

For each kit of the test split (kits never used in training) with two classes or more, a
simulated user teaches each piece of the kit, as `drumclassifier calibrate` asks. With
--pieces drum (the default) a piece is one drum or cymbal of the kit: a Hydrogen instrument
(file names "Instrument__layer"), a sound font's key, else the sample itself; its velocity
layers are its hits, and it maps to its class. With --pieces class all the kit's hits of a
class are one piece (a drummer teaching one kick, one tom, one cymbal for everything:
the pessimistic case). The user teaches K hits per piece, drawn at random (every piece is
taught: a piece with at most K hits keeps one back for testing when it has two or more, and
a one-hit piece is taught and never tested); the profile is
fitted exactly as `drumclassifier calibrate` does (drumclassifier.kit: each calibration
hit augmented with gain, -0.5..+1.5 ms onset jitter, noise and truncation to the live
contexts; a logistic-regression head over the pieces on the model's embedding and
the hit's log-mel band profile); the
kit's other hits are then classified at 5, 10, 20, 30 ms and the full window, by the
profile (the top piece's class) and by the generic model (argmax). Per-class recall is
pooled over kits within a draw; the table gives mean +- standard deviation over draws.

Anytime decisions (drumclassifier/anytime.py, as the live worker decides with
`slicer.anytime_ms`): each test hit is classified at every rung of the ladder
(--anytime-ms) and decided at its first rung whose confidence reaches --min-confidence
(generic: the least sure class, threshold-centred; calibrated: the top piece's
probability), else at the last rung. Reported per confidence: per-class recall (mean +-
sd over draws) and the median and 90th percentile of the decision context (ms: the audio
after the onset waited for; the live latency adds detection, the audio block and
inference on top). Several pieces per onset: kick + hihat pairs of one kit's test hits,
mixed, through the calibrated head at the anytime decision: how often both pieces are
sent (pick_pieces with --extra-min), and how often a single test hit gets a false
second piece.

    .venv/bin/python -m bench.calibration --draws 5 --threads 1 --out docs/calibration.png

--variants NAME ... compares ways of fitting and deciding (VARIANTS below) on the same
draws, in the anytime table; select on --split val, report --split test.

CPU only, a few minutes. Clean sampled hits: a best case (no bleed, no overlapping hits,
no room); the onset is the file's start, jittered only in the calibration augmentation.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from drumclassifier.anytime import (
    class_confidence,
    class_sure,
    first_confident,
    pick_pieces,
    piece_confidence,
)
from drumclassifier.classifier import DrumClassifier
from drumclassifier.dataset import ClipBank, read_manifest
from drumclassifier.kit import FitOptions, augment_hits, embed_batched, fit_head_cv
from realtime.config import SlicerConfig

ROOT = Path(__file__).resolve().parents[1]

# Variants of how a profile is fitted and decided, measured on the same draws. "shipped"
# is what `drumclassifier calibrate` fits (kit.FitOptions()); the others change one or
# two things. rung_min: an extra per-rung floor on the confidence (ladder order), so the
# decision can be stricter early than late.
VARIANTS: dict[str, dict] = {
    "v1": dict(normalise=False, spectrum=False),   # the version-1 profile: raw embeddings
    "v2": dict(spectrum=False),               # the version-2 profile: no band profile
    "shipped": {},
    "ladder-ctx": dict(contexts_ms=(5, 10, 20, 40, 80, 1000)),
    "temp": dict(temperature=True),
    "aug20": dict(augment=20),                # the default before (shipped is 120)
    "l2-0.1": dict(l2=0.1),
    "l2-1": dict(l2=1.0),
    "l2-0.001": dict(l2=1e-3),
    "jitter-wide": dict(jitter_ms=(-1.5, 3.0)),
    "eq6": dict(eq_db=6.0),
    "eq6-aug60": dict(eq_db=6.0, augment=60),
    "strict-early": dict(rung_min=(0.95, 0.9, 0, 0, 0)),
    # decide the class when its pieces' summed probability is sure enough, and send the
    # top piece of that class (rather than waiting until one piece is sure)
    "class-decide": dict(decide="class"),
}


def read_origins(manifest: str) -> dict[str, str]:
    """The manifest's `origin` column by resolved path (as read_manifest builds it)."""
    import csv
    with open(manifest, newline="", encoding="utf-8") as f:
        return {str(Path(manifest).parent / r["path"]): r.get("origin") or ""
                for r in csv.DictReader(f)}


def drum_of(path: Path, origin: str) -> str:
    """The drum or cymbal of its kit a corpus hit was played on: a sound font's key
    (origin "font.sf2#bank:preset:key:velocity"), a Hydrogen instrument (the corpus names
    its files "Instrument__layer"), else the sample itself (one-shot collections)."""
    if ".sf2#" in origin:
        return "key " + origin.rsplit("#", 1)[1].split(":")[2]
    return path.stem.split("__")[0] if "__" in path.stem else path.stem


def nan_recall(ok: np.ndarray, n: np.ndarray) -> np.ndarray:
    """ok / n, NaN where there was nothing to recall (a class a kit lacks, or all its hits
    were taught): left out of the means (np.nanmean), not counted as a miss."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, ok / n, np.nan)


@contextmanager
def nan_means_quiet():
    """np.nanmean / nanstd of all-NaN slices (a class no kit of the set has) are expected
    here: no warning for them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "Degrees of freedom", RuntimeWarning)
        yield


def main(argv=None) -> int:
    with nan_means_quiet():
        return _main(argv)


def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", default=str(ROOT / "data/corpus/manifest.csv"))
    ap.add_argument("--split", default="test")
    ap.add_argument("-w", "--weights", default=None, help="default: the shipped model")
    ap.add_argument("--k", type=int, nargs="+", default=[3, 8], help="hits taught per piece")
    ap.add_argument("--pieces", choices=["drum", "class"], default="drum",
                    help="what the simulated drummer teaches as one piece: each drum or "
                         "cymbal of the kit (as calibrate does), or one piece per class")
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--contexts-ms", type=float, nargs="+", default=[5, 10, 20, 30])
    ap.add_argument("--variants", nargs="+", default=["shipped"], choices=list(VARIANTS),
                    help="fitting/decision variants to compare on the same draws (the first "
                         "one fills the fixed-context table, the pairs and the figure)")
    ap.add_argument("--anytime-ms", type=float, nargs="+", default=[5, 10, 20, 40, 80],
                    help="the anytime ladder (ms after the onset)")
    ap.add_argument("--min-confidence", type=float, nargs="+",
                    default=[0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
                    help="anytime: decide at the first rung at least this confident")
    ap.add_argument("--extra-min", type=float, nargs="+", default=[0.25, 0.35],
                    help="several pieces per onset: the runner-up's probability floor")
    ap.add_argument("--pieces-at-confidence", type=float, default=0.8,
                    help="several pieces per onset: measured at this anytime confidence")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--out", default=str(ROOT / "docs/calibration.png"))
    ap.add_argument("--errors", type=int, default=12,
                    help="list this many of the most frequent wrong anytime decisions")
    ap.add_argument("--json", help="also write the per-draw counts here (for "
                                   "bench/calibration_compare.py: one model against another)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    rng_pairs = np.random.default_rng(args.seed + 1)

    clf = DrumClassifier(args.weights, device="cpu")
    labels, sr = clf.labels, clf.cfg.sample_rate_hz
    items, _ = read_manifest(args.manifest, [args.split], labels)
    bank = ClipBank(items, sr, clf.cfg.analysis_s, dtype=torch.float32, progress=False)
    hits = [bank.get(i) for i in range(len(bank))]
    y_all = np.array([labels.index(lab) for lab in bank.labels])
    kits = np.array(bank.kits)
    # the piece each hit belongs to, within its kit: [n] strings
    origin = read_origins(args.manifest)
    piece_all = np.array([lab if args.pieces == "class" else drum_of(it.path, origin.get(
        str(it.path), "")) for it, lab in zip(bank.items, bank.labels)])
    ctx_names = [f"{c:g} ms" for c in args.contexts_ms] + ["full"]
    ctx_samples = [int(round(c * sr / 1000)) for c in args.contexts_ms] + [None]

    def embed(w):               # embedding + band profile [n, D + n_mels]; see cols()
        return embed_batched(clf, w, spectrum=True)
    n_spec = clf.cfg.features.n_mels

    def cols(x: torch.Tensor, o: FitOptions) -> torch.Tensor:
        """A variant's view of embed() output: without the band profile, the embedding."""
        return x if o.spectrum else x[..., :x.shape[-1] - n_spec]

    def probs_batched(w):       # generic presence probabilities [n, C]
        return torch.cat([clf.predict(w[s:s + 64]) for s in range(0, len(w), 64)])

    # test-side embeddings and generic predictions, per context: [n, D], [n]
    emb_ctx, gen_ctx = [], []
    for cs in ctx_samples:
        w = [h if cs is None else h[:, :cs] for h in hits]
        emb_ctx.append(embed(w))
        gen_ctx.append(probs_batched(w).argmax(1).numpy())
    # the anytime ladder: embeddings [R, n, D] and generic probabilities [R, n, C]
    ladder = np.asarray(args.anytime_ms, float)
    lad_samples = [int(round(c * sr / 1000)) for c in ladder]
    lad_emb = torch.stack([embed([h[:, :cs] for h in hits]) for cs in lad_samples])
    lad_gen = torch.stack([probs_batched([h[:, :cs] for h in hits]) for cs in lad_samples])
    gen_conf = torch.stack([class_confidence(p, clf.thresholds) for p in lad_gen])  # [R, n]
    # several pieces per onset: kick + hihat of one kit mixed (onsets aligned, levels as
    # recorded), at most 16 pairs per kit; embeddings [R, pairs, D]
    pairs = []                                           # (kit, kick hit, hihat hit)
    for kit in sorted(set(kits)):
        kk = np.flatnonzero((kits == kit) & (y_all == labels.index("kick")))
        hh = np.flatnonzero((kits == kit) & (y_all == labels.index("hihat")))
        combos = [(kit, i, j) for i in kk for j in hh]
        pick = rng_pairs.permutation(len(combos))[:16] if combos else []
        pairs += [combos[q] for q in pick]

    def mix(i, j):
        n = max(hits[i].shape[-1], hits[j].shape[-1])
        x = torch.zeros(2, n)
        x[:, :hits[i].shape[-1]] += hits[i]
        x[:, :hits[j].shape[-1]] += hits[j]
        return x.clamp(-1, 1)
    mixed = [mix(i, j) for _, i, j in pairs]
    pair_emb = (torch.stack([embed([m[:, :cs] for m in mixed])
                             for cs in lad_samples]) if pairs else None)
    full_ms = clf.cfg.analysis_s * 1000
    emb_at: dict[float, torch.Tensor] = {}    # context (ms) -> [n, D], every hit cut to it

    def hits_emb(c_ms: float) -> torch.Tensor:
        if c_ms not in emb_at:
            cs = int(round(min(c_ms, full_ms) * sr / 1000))
            emb_at[c_ms] = embed([h[:, :cs] for h in hits])
        return emb_at[c_ms]
    aug_at: dict[tuple, tuple] = {}           # augmentation -> (emb [V, D], src [V])

    def aug_emb(o: FitOptions) -> tuple:
        key = (o.contexts_ms, o.augment, o.jitter_ms, o.eq_db)
        if key not in aug_at:
            var, src, _ = augment_hits(hits, o.augment, sr, o.contexts_ms,
                                       np.random.default_rng(args.seed), o.jitter_ms, o.eq_db)
            aug_at[key] = (embed(var), np.asarray(src))
        return aug_at[key]
    variants = []                    # (name, FitOptions, rung floors [R], decide by)
    for name in args.variants:
        spec = dict(VARIANTS[name])
        rung_min = torch.tensor(spec.pop("rung_min", (0.0,) * len(ladder)))[:, None]
        decide = spec.pop("decide", "piece")
        if "contexts_ms" in spec:
            spec["contexts_ms"] = tuple(float(c) for c in spec["contexts_ms"])
        variants.append((name, FitOptions(**spec), rung_min, decide))
    # the draws, shared by every variant: (K index, draw, kit) -> (calibration, test hits)
    # a drummer's kit has several pieces: a "kit" of one class (some corpus kits are
    # fragments of a sound font) is no calibration problem, and is not simulated
    sim_kits = [k for k in sorted(set(kits)) if len(set(y_all[kits == k])) >= 2]
    rng = np.random.default_rng(args.seed)
    taught = {k: [] for k in args.k}
    plan = {}
    for ki, K in enumerate(args.k):
        for d in range(args.draws):
            for kit in sim_kits:
                idx = np.flatnonzero(kits == kit)
                cal, test = [], []
                # in class order (then by name): --pieces class draws as before drums existed
                for piece in sorted(set(piece_all[idx]),
                                    key=lambda pc: (y_all[idx][piece_all[idx] == pc][0], pc)):
                    own = rng.permutation(idx[piece_all[idx] == piece])
                    n_cal = len(own) if len(own) == 1 else min(K, len(own) - 1)
                    cal += own[:n_cal].tolist()
                    test += own[n_cal:].tolist()
                    taught[K].append(n_cal)
                if test:  # (every piece of the kit has a single hit: nothing to test)
                    plan[ki, d, kit] = np.asarray(cal, int), np.asarray(test, int)
    if not plan:
        sys.exit(f"error: {args.manifest} ({args.split}): no kit of two classes or more has a "
                 f"piece with two hits or more (--pieces {args.pieces}): nothing to test")
    n_pieces = sum(len(set(piece_all[kits == k])) for k in sim_kits)
    print(f"{len(hits)} held-out hits in {len(set(kits))} kits, {len(sim_kits)} of them with "
          f"two classes or more (simulated, {n_pieces} pieces: --pieces {args.pieces}); "
          f"embeddings in {time.perf_counter() - t_start:.0f} s", file=sys.stderr)

    C, X, V = len(labels), len(ctx_samples), len(variants)
    # [K, draw, context, class] correct / total; generic on the same test hits
    shape = (len(args.k), args.draws, X, C)
    cal_ok, gen_ok, tot = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    # anytime: [system (0 generic, 1.. the variants), K, min_confidence, draw, class]
    M, E = len(args.min_confidence), len(args.extra_min)
    any_ok = np.zeros((1 + V, len(args.k), M, args.draws, C))
    any_tot = np.zeros_like(any_ok)
    # calibrated systems: decisions that name the right piece (its note), and all decisions
    piece_ok, piece_n = np.zeros((1 + V, len(args.k), M)), np.zeros((1 + V, len(args.k), M))
    dec_ms: dict[tuple, list] = {}       # (system, K index, confidence index) -> ms per hit
    # several pieces per onset, per K and extra_min: pairs with both sent, singles with two
    pair_both, single_two = np.zeros((len(args.k), E)), np.zeros((len(args.k), E))
    pair_n, single_n = np.zeros(len(args.k)), np.zeros(len(args.k))
    pair_ms: dict[int, list] = {ki: [] for ki in range(len(args.k))}
    fit_s = []
    # wrong anytime decisions of the first variant, largest K, highest confidence:
    # (test hit, class it was heard as) -> how many draws
    wrong: dict[tuple[int, int], int] = {}

    def score(si, ki, d, sent, conf, test, classes, true_piece=None):
        """Anytime decisions of one kit's test hits: sent [R, n] the output (class or
        piece) each rung would send, conf [R, n] how sure it is; classes [P or C]: the
        class of each output; true_piece [n]: calibrated systems, the piece played."""
        yt, on = y_all[test], torch.arange(len(test))
        for mi, mc in enumerate(args.min_confidence):
            rung = first_confident(conf, mc)                                 # [n]
            out = sent[rung, on].numpy()
            pred = np.asarray(classes)[out]
            dec_ms.setdefault((si, ki, mi), []).extend(ladder[rung.numpy()])
            if true_piece is not None:
                piece_ok[si, ki, mi] += (out == true_piece).sum()
                piece_n[si, ki, mi] += len(test)
            for c in set(yt.tolist()):
                m = yt == c
                any_tot[si, ki, mi, d, c] += m.sum()
                any_ok[si, ki, mi, d, c] += (pred[m] == c).sum()
            if si == 1 and ki == len(args.k) - 1 and mi == M - 1:
                for h in np.flatnonzero(pred != yt):
                    key = (int(test[h]), int(pred[h]))
                    wrong[key] = wrong.get(key, 0) + 1

    for (ki, d, kit), (cal, test) in plan.items():
        pieces = sorted(set(piece_all[cal]))
        piece_of = {pc: i for i, pc in enumerate(pieces)}
        y_cal = np.array([piece_of[pc] for pc in piece_all[cal]])
        classes = np.array([y_all[cal][y_cal == i][0] for i in range(len(pieces))])  # [P]
        true_piece = np.array([piece_of[pc] for pc in piece_all[test]])
        tt = torch.from_numpy(test)
        score(0, ki, d, lad_gen[:, tt].argmax(-1), gen_conf[:, tt], test, list(range(C)))
        for vi, (name, opts, rung_min, decide) in enumerate(variants):
            emb_v, src_v = aug_emb(opts)
            m = np.isin(src_v, cal)
            local = {h: i for i, h in enumerate(cal.tolist())}
            t0 = time.perf_counter()
            cv_at = {c: cols(hits_emb(c)[cal], opts)
                     for c in sorted(set(opts.contexts_ms) | {SlicerConfig().context_ms})}
            head, _, _ = fit_head_cv(
                cols(emb_v[m], opts), np.array([local[s] for s in src_v[m]]), y_cal,
                len(classes), cv_at, opts, 5 if opts.temperature else 0,  # CV: only for T
                np.random.default_rng([args.seed, ki, d]), n_spec if opts.spectrum else 0)
            fit_s.append(time.perf_counter() - t0)
            cal_p = torch.stack([head.probs(e[tt]) for e in cols(lad_emb, opts)])  # [R, n, P]
            if decide == "class":
                conf, sent = class_sure(cal_p, classes, C)                   # [R, n] each
            else:
                conf, sent = piece_confidence(cal_p), cal_p.argmax(-1)
            score(1 + vi, ki, d, sent, torch.where(conf >= rung_min, conf, 0.0), test,
                  classes, true_piece)
            if vi:
                continue
            # several pieces per onset: false second pieces on single hits, both pieces
            # on kick + hihat mixes of this kit's test hits (the first variant only)
            no_floor = [0.0] * len(classes)
            rung = first_confident(conf, args.pieces_at_confidence)
            single_n[ki] += len(test)
            for ei, e in enumerate(args.extra_min):
                single_two[ki, ei] += sum(len(pick_pieces(cal_p[r, q], no_floor, e, 2)) > 1
                                          for q, r in enumerate(rung.tolist()))
            in_test = set(test.tolist())
            mine = [q for q, (kt, i, j) in enumerate(pairs)
                    if kt == kit and i in in_test and j in in_test]
            if mine:
                pp = torch.stack([head.probs(e[mine]) for e in cols(pair_emb, opts)])  # [R, m, P]
                rung = first_confident(piece_confidence(pp), args.pieces_at_confidence)
                # the pieces each mix should send: its kick's and its hihat's
                wants = [(piece_of[piece_all[pairs[q][1]]], piece_of[piece_all[pairs[q][2]]])
                         for q in mine]
                pair_n[ki] += len(mine)
                pair_ms[ki] += ladder[rung.numpy()].tolist()
                for ei, e in enumerate(args.extra_min):
                    pair_both[ki, ei] += sum(
                        set(want_q) <= set(pick_pieces(pp[r, n], no_floor, e, 2))
                        for n, (r, want_q) in enumerate(zip(rung.tolist(), wants)))
            yt = y_all[test]
            for x in range(X):
                pred = classes[head.probs(cols(emb_ctx[x][test], opts)).argmax(1).numpy()]
                for c in set(classes.tolist()):
                    m = yt == c
                    tot[ki, d, x, c] += m.sum()
                    cal_ok[ki, d, x, c] += (pred[m] == c).sum()
                    gen_ok[ki, d, x, c] += (gen_ctx[x][test][m] == c).sum()

    def mean_sd(r) -> tuple[float, float]:   # r [draws] recall, NaN = not measured
        return (np.nan, np.nan) if np.isnan(r).all() else (np.nanmean(r), np.nanstd(r))

    def cell(m: float, s: float) -> str:      # "mean ± sd", "-" when never measured
        return "-" if np.isnan(m) else f"{m:.2f} ± {s:.2f}"

    def stat(ok, ki, x, c):
        return mean_sd(nan_recall(ok[ki, :, x, c], tot[ki, :, x, c]))

    lines = ["| K | context | system | " + " | ".join(labels) + " | mean |",
             "|---|---|---|" + "---|" * (C + 1)]
    curves = {}
    for ki, K in enumerate(args.k):
        for name, ok in (("generic", gen_ok), (f"calibrated K={K}", cal_ok)):
            for x in range(X):
                cells, means = [], []
                for c in range(C):
                    m, s = stat(ok, ki, x, c)
                    cells.append(cell(m, s))
                    means.append(m)
                    curves.setdefault((name, K, c), []).append(m)
                lines.append(f"| {K} | {ctx_names[x]} | {name} | " + " | ".join(cells)
                             + f" | {np.nanmean(means):.2f} |")
    first = variants[0]
    print(f"fixed contexts, pieces-per-onset and figure: variant {first[0]!r} ({first[1]}); "
          f"{args.draws} draws, split {args.split}")
    print("\n".join(lines))
    for K in args.k:
        print(f"K={K}: hits actually taught per piece: mean {np.mean(taught[K]):.1f}, "
              f"min {min(taught[K])} (kits with fewer hits keep one back for testing)")
    print(f"test hits per class per draw (K={args.k[-1]}): "
          + ", ".join(f"{lab} {int(tot[-1, 0, 0, c])}" for c, lab in enumerate(labels)))
    print(f"\nanytime decisions, ladder {' '.join(f'{c:g}' for c in ladder)} ms (decision "
          "context = audio after the onset waited for)")
    print("| K | system | min confidence | " + " | ".join(labels)
          + " | mean | median ms | p90 ms | right piece |")
    print("|---|---|---|" + "---|" * (C + 4))
    for ki, K in enumerate(args.k):
        for si, name in enumerate(["generic"] + [f"{v[0]} K={K}" for v in variants]):
            for mi, mc in enumerate(args.min_confidence):
                r = nan_recall(any_ok[si, ki, mi], any_tot[si, ki, mi])   # [draw, class]
                ms = np.asarray(dec_ms[(si, ki, mi)])
                cells = " | ".join(cell(*mean_sd(r[:, c])) for c in range(C))
                print(f"| {K} | {name} | {mc:g} | {cells} | {np.nanmean(np.nanmean(r, 0)):.2f} | "
                      f"{np.median(ms):g} | {np.percentile(ms, 90):g} | "
                      + (f"{piece_ok[si, ki, mi] / piece_n[si, ki, mi]:.2f} |"
                         if piece_n[si, ki, mi] else "- |"))
    print(f"\nseveral pieces per onset (calibrated, anytime at confidence "
          f"{args.pieces_at_confidence:g}, at most 2 pieces):")
    for ki, K in enumerate(args.k):
        for ei, e in enumerate(args.extra_min):
            print(f"K={K}, runner-up floor {e:g}: kick+hihat mixes with both pieces sent "
                  f"{pair_both[ki, ei] / max(pair_n[ki], 1):.2f} (of {int(pair_n[ki])}, median "
                  f"decision {np.median(pair_ms[ki]) if pair_ms[ki] else float('nan'):g} ms); "
                  f"single hits with a false second piece "
                  f"{single_two[ki, ei] / max(single_n[ki], 1):.3f} (of {int(single_n[ki])})")
    if wrong:
        print(f"\nwrong anytime decisions ({variants[0][0]}, K={args.k[-1]}, min confidence "
              f"{args.min_confidence[-1]:g}), most frequent first: draws wrong, hit, heard as")
        for (h, c), n in sorted(wrong.items(), key=lambda kv: -kv[1])[:args.errors]:
            print(f"  {n:3d}  {bank.items[h].kit}/{bank.items[h].path.name} ({labels[y_all[h]]}, "
                  f"piece {str(piece_all[h])!r}) -> {labels[c]}")
    print(f"head fit: median {np.median(fit_s) * 1000:.0f} ms; total run "
          f"{time.perf_counter() - t_start:.0f} s")
    if args.json:
        import json
        systems = ["generic"] + [v[0] for v in variants]
        out = {"weights": str(args.weights or "shipped"), "manifest": args.manifest,
               "split": args.split, "seed": args.seed, "draws": args.draws, "k": args.k,
               "labels": labels, "kits": sim_kits, "systems": systems,
               "contexts": ctx_names, "min_confidence": args.min_confidence,
               # [system, K, min_confidence, draw, class]
               "anytime_ok": any_ok.tolist(), "anytime_tot": any_tot.tolist(),
               # [system, K, min_confidence]: decisions sending the right piece, all
               "anytime_piece_ok": piece_ok.tolist(), "anytime_piece_n": piece_n.tolist(),
               "anytime_median_ms": [[[float(np.median(dec_ms[(si, ki, mi)]))
                                       for mi in range(M)] for ki in range(len(args.k))]
                                     for si in range(len(systems))],
               # [K, draw, context, class], the first variant and the generic model
               "fixed_ok": cal_ok.tolist(), "fixed_generic_ok": gen_ok.tolist(),
               "fixed_tot": tot.tolist()}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out))
        print(f"counts: {args.json}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, C, figsize=(3.2 * C, 6.6), sharey=True)
    xs = np.arange(X)
    for c, ax in enumerate(axes[0]):
        ax.plot(xs, curves[("generic", args.k[0], c)], "k--o", label="generic model")
        for ki, K in enumerate(args.k):
            m = [stat(cal_ok, ki, x, c)[0] for x in range(X)]
            s = [stat(cal_ok, ki, x, c)[1] for x in range(X)]
            ax.errorbar(xs, m, yerr=s, marker="o", capsize=3, label=f"calibrated, K={K}")
        ax.set_title(labels[c])
        ax.set_xticks(xs, ctx_names, rotation=45)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(f"recall, fixed context\n(mean ± sd, {args.draws} draws)")
    axes[0, -1].legend(loc="lower right", fontsize=8)
    # anytime: one point per min confidence, at its median decision context
    systems = [(0, len(args.k) - 1, "generic model", "k--o")] + [
        (1, ki, f"calibrated, K={K}", "-o") for ki, K in enumerate(args.k)]
    for c, ax in enumerate(axes[1]):
        for si, ki, name, style in systems:
            med = [np.median(dec_ms[(si, ki, mi)]) for mi in range(M)]
            r = nan_recall(any_ok[si, ki, :, :, c], any_tot[si, ki, :, :, c])  # [M, draw]
            if np.isnan(r).all():
                continue
            ax.errorbar(med, np.nanmean(r, 1), yerr=np.nanstd(r, 1), fmt=style, capsize=3,
                        label=name)
        ax.axhline(0.95, color="grey", lw=0.8, ls=":")
        ax.axvline(15, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("median decision context (ms)")
        ax.grid(alpha=0.3)
    axes[1, 0].set_ylabel("recall, anytime\n(one point per min confidence)")
    fig.suptitle(f"Held-out kits ({args.split}, taught per {args.pieces}): generic model vs "
                 "per-kit calibration; top: by post-onset "
                 f"context; bottom: anytime ladder {' '.join(f'{c:g}' for c in ladder)} ms")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"figure: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
