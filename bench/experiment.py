"""The experiment harness: train N seeds of a configuration, evaluate on groups never
trained on, and compare configurations with paired, cluster-aware statistics.

Every claim in the README about what helps the model comes from this file.

    # train 3 seeds of an arm (2 runs at a time, 1 torch thread each: on 2 cores that is
    # ~35 % more steps per second than one run on 2 threads)
    python -m bench.experiment train baseline --seeds 0 1 2
    python -m bench.experiment train room --seeds 0 1 2 -- augment.room.p=0.5
    # a second phase: each seed starts from its own seed's run of an earlier arm
    python -m bench.experiment train gfirst --seeds 0 1 2 -- train.init_from=runs/exp/gonly-s{seed}/last.pt
    # leave one group out: the group's rows are moved out of the train split
    python -m bench.experiment train baseline --seeds 0 --holdout-group fluid
    # compare arms on the held-out groups (val = forzee + sonicpi, test = millo + electric_empire)
    python -m bench.experiment report baseline room --split test
    python -m bench.experiment report baseline room --split val

The protocol is fixed so arms compare like for like: 4 epochs x 100 steps x batch 64
(`--steps`), cosine decay to the end, no wall-clock cut, and the LAST checkpoint is
evaluated (best.pt is chosen on val, which would make val a selection set). Runs live in
runs/exp/ARM-sSEED/ and are resumed or skipped when run again.

Statistics. Test hits cluster (velocity layers of one drum flip together), so:
- intervals resample clusters (kit x class), never files;
- an arm's figure is the mean over its seeds, with the seed standard deviation;
- arm vs baseline: the per-hit difference in correctness averaged over seeds (seeds
  paired by index), a cluster-bootstrap 95 % interval of the accuracy difference, and
  the same for the seed ensembles (mean of the seeds' sigmoid outputs); McNemar's exact
  test on the ensembles' discordant hits is printed too, but it assumes independent hits
  and so overstates significance here: the cluster interval is the one to read.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from math import comb
from pathlib import Path

import numpy as np

from drumclassifier.classes import CLASSES
from drumclassifier.evaluate import cluster_bootstrap, single_label_metrics

ROOT = Path(__file__).resolve().parent.parent

EXP_DIR = ROOT / "runs" / "exp"
MANIFEST = ROOT / "data" / "corpus" / "manifest.csv"
CONTEXTS = {"full": None, "20ms": 20.0, "10ms": 10.0}


def group_tag(group: str) -> str:
    """A corpus group as it appears in file names: a single-kit group is named
    "source/kit" (e.g. hydrogen/BJA_Pacific), and a "/" would make a folder."""
    return group.replace("/", "_")


def arm_tag(arm: str) -> str:
    """ARM or ARM@GROUP (leave-one-group-out) as it appears in file names."""
    base, at, group = arm.partition("@")
    return base + (at + group_tag(group) if at else "")


def run_name(arm: str, seed: int, group: str | None) -> str:
    return f"{arm_tag(arm + ('@' + group if group else ''))}-s{seed}"


def seed_overrides(overrides: list[str], seed: int) -> list[str]:
    """Overrides for one seed's run: "{seed}" becomes the seed, so a later phase of a
    recipe starts each seed from that seed's run of the earlier phase."""
    return [o.replace("{seed}", str(seed)) for o in overrides]


def logo_manifest(manifest: Path, group: str) -> Path:
    """A copy of `manifest` with `group`'s rows in split 'heldout' (and absolute paths)."""
    out = EXP_DIR / "manifests" / f"{manifest.parent.name}-{manifest.stem}-no-{group_tag(group)}.csv"
    with manifest.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not any(r["group"] == group for r in rows):
        sys.exit(f"error: {manifest}: no rows of group {group!r}")
    for r in rows:
        r["path"] = str((manifest.parent / r["path"]).resolve())
        if r["group"] == group:
            r["split"] = "heldout"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out


# ------------------------------------------------------------------------------ training

def cmd_train(a) -> int:
    manifest = Path(a.manifest).resolve()
    if a.holdout_group:
        manifest = logo_manifest(manifest, a.holdout_group)
    spec = {"overrides": a.overrides, "manifest": str(manifest), "steps": a.steps}
    EXP_DIR.mkdir(parents=True, exist_ok=True)
    spec_path = EXP_DIR / f"{arm_tag(a.arm + ('@' + a.holdout_group if a.holdout_group else ''))}.json"
    if spec_path.exists():
        old = json.loads(spec_path.read_text())
        if old != spec:
            sys.exit(f"error: arm {a.arm} exists with other settings ({spec_path}): {old}")
    spec_path.write_text(json.dumps(spec, indent=1) + "\n")
    epochs = max(1, a.steps // 100)

    def one(seed: int) -> str:
        name = run_name(a.arm, seed, a.holdout_group)
        run_dir = EXP_DIR / name
        if (run_dir / "summary.json").exists():
            return f"{name}: done already"
        # `-m` from ROOT: the run uses this tree's code (a frozen worktree can serve runs
        # while the main checkout is being edited)
        cmd = [sys.executable, "-m", "drumclassifier.cli", "train",
               f"train.name={name}", f"train.runs_dir={EXP_DIR}", f"train.seed={seed}",
               f"train.epochs={epochs}", "train.steps_per_epoch=100", "train.max_minutes=0",
               f"train.threads={a.threads}", "train.progress=false", f"train.manifest={manifest}",
               *seed_overrides(a.overrides, seed)]
        if (run_dir / "last.pt").exists():
            cmd.insert(4, "--resume")
        t0 = time.time()
        with (EXP_DIR / f"{name}.log").open("a") as log:
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        return f"{name}: exit {rc} after {(time.time() - t0) / 60:.1f} min"

    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        for msg in pool.map(one, a.seeds):
            print(msg, flush=True)
    return 0


# ---------------------------------------------------------------------------- evaluation

def eval_items(manifest: Path, splits: list[str], labels):
    from drumclassifier.dataset import read_manifest
    items, _ = read_manifest(manifest, splits, labels)
    return items


def predictions(run_dir: Path, manifest: Path, splits: list[str]) -> dict:
    """{'true', 'clusters', 'groups', context: probs [n, C]} for run_dir/last.pt, cached."""
    import torch

    from drumclassifier.classifier import DrumClassifier
    from drumclassifier.dataset import ClipBank
    from drumclassifier.evaluate import predict_bank

    key = hashlib.sha1(f"{manifest.resolve()}|{','.join(splits)}|{sorted(CONTEXTS)}".encode()
                       ).hexdigest()[:10]
    cache = run_dir / f"preds-{key}.npz"
    weights = run_dir / "last.pt"
    if cache.exists() and cache.stat().st_mtime >= weights.stat().st_mtime:
        z = np.load(cache, allow_pickle=False)
        return {k: z[k] for k in z.files}
    torch.set_num_threads(2)
    clf = DrumClassifier(weights, device="cpu")
    bank = ClipBank(eval_items(manifest, splits, clf.labels), clf.cfg.sample_rate_hz,
                    clf.cfg.analysis_s, dtype=torch.float32, progress=False)
    out = {"true": np.array([clf.labels.index(lab) for lab in bank.labels]),
           "clusters": np.array([f"{k}/{lab}" for k, lab in zip(bank.kits, bank.labels)]),
           "groups": np.array([it.group for it in bank.items])}
    for name, ms in CONTEXTS.items():
        n = None if ms is None else round(ms * 1e-3 * clf.cfg.sample_rate_hz)
        out[name] = predict_bank(clf.predict, bank, n)
    np.savez(cache, **out)
    return out


def arm_runs(arm: str) -> list[Path]:
    arm = arm_tag(arm)
    runs = sorted(p for p in EXP_DIR.glob(f"{arm}-s*") if (p / "last.pt").exists()
                  and p.name[len(arm) + 2:].isdigit())
    if not runs:
        sys.exit(f"error: no finished runs of arm {arm!r} in {EXP_DIR}")
    return runs


def arm_manifest_and_splits(arm: str, default: Path, splits: list[str]):
    if "@" in arm:  # a leave-one-group-out arm is evaluated on its own held-out group
        spec = json.loads((EXP_DIR / f"{arm_tag(arm)}.json").read_text())
        return Path(spec["manifest"]), ["heldout"]
    return default, splits


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p from discordant counts b (only A right), c (only B right)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


def cmd_report(a) -> int:
    labels = list(CLASSES)
    manifest = Path(a.manifest).resolve()
    splits = a.split.split(",")
    arms = [a.baseline] + [x for x in a.arms if x != a.baseline]
    data = {}
    for arm in arms:
        m, s = arm_manifest_and_splits(arm, manifest, splits)
        runs = arm_runs(arm)
        if a.seeds:
            runs = runs[:a.seeds]
        preds = [predictions(r, m, s) for r in runs]
        for p in preds[1:]:
            assert (p["true"] == preds[0]["true"]).all()
        data[arm] = preds
    base = data[a.baseline]
    true, clusters = base[0]["true"], base[0]["clusters"]
    manifest, splits = arm_manifest_and_splits(a.baseline, manifest, splits)  # LOGO: its own
    print(f"# {', '.join(splits)} of {manifest.relative_to(ROOT) if manifest.is_relative_to(ROOT) else manifest}: "
          f"{len(true)} hits, {len(set(clusters))} clusters (kit x class), "
          f"groups {sorted(str(g) for g in set(base[0]['groups']))}")
    report = {"splits": splits, "n": int(len(true)), "arms": {}}
    for ctx in a.contexts.split(","):
        print(f"\n## context {ctx}")
        hdr = ["arm", "seeds", "acc mean", "sd", "ensemble acc", "95% CI", "macro-F1 ens"] + \
            [f"R {lab}" for lab in labels] + ["d acc vs base [95% CI]", "d ens [95% CI]", "McNemar p"]
        rows, class_rows = [], []
        for arm, preds in data.items():
            if not (preds[0]["true"] == true).all():
                sys.exit(f"error: arm {arm} was evaluated on other hits than {a.baseline}")
            correct = np.stack([p[ctx].argmax(1) == true for p in preds]).astype(float)  # [S, n]
            accs = correct.mean(1)
            ens = np.mean([p[ctx] for p in preds], axis=0)
            ens_ok = ens.argmax(1) == true
            em = single_label_metrics(true, ens)
            ci = cluster_bootstrap(list(clusters), lambda i: float(ens_ok[i].mean()), a.boot)
            seed_recall = np.array([single_label_metrics(true, p[ctx])["recall"] for p in preds])
            row = [arm, len(preds), f"{accs.mean():.3f}", f"{accs.std(ddof=1) if len(accs) > 1 else 0:.3f}",
                   f"{ens_ok.mean():.3f}", f"[{ci[0]:.3f}, {ci[1]:.3f}]", f"{em['macro_f1']:.3f}"]
            row += [f"{r:.2f}±{s:.2f}" for r, s in zip(seed_recall.mean(0), seed_recall.std(0))]
            entry = {"seed_acc": accs.tolist(), "ens_acc": float(ens_ok.mean()), "ens_acc_ci95": ci,
                     "ens_macro_f1": em["macro_f1"], "seed_recall_mean": seed_recall.mean(0).tolist(),
                     "ens_recall": em["recall"]}
            if arm == a.baseline:
                row += ["-", "-", "-"]
            else:
                bc = np.stack([p[ctx].argmax(1) == true for p in base]).astype(float)
                k = min(len(bc), len(correct))  # seeds paired by index
                d = correct[:k].mean(0) - bc[:k].mean(0)  # [n] per-hit difference
                dci = cluster_bootstrap(list(clusters), lambda i: float(d[i].mean()), a.boot)
                bens_ok = np.mean([p[ctx] for p in base], axis=0).argmax(1) == true
                de = ens_ok.astype(float) - bens_ok
                deci = cluster_bootstrap(list(clusters), lambda i: float(de[i].mean()), a.boot)
                p = mcnemar_p(int((ens_ok & ~bens_ok).sum()), int((~ens_ok & bens_ok).sum()))
                row += [f"{d.mean():+.3f} [{dci[0]:+.3f}, {dci[1]:+.3f}]",
                        f"{de.mean():+.3f} [{deci[0]:+.3f}, {deci[1]:+.3f}]", f"{p:.3f}"]
                entry.update({"d_acc": float(d.mean()), "d_acc_ci95": dci, "d_ens": float(de.mean()),
                              "d_ens_ci95": deci, "mcnemar_p": p})
                # per class: the same paired difference over the class's hits (= recall difference)
                entry["d_recall"] = {}
                for c, lab in enumerate(labels):
                    on = np.flatnonzero(true == c)
                    if len(on):
                        ci_c = cluster_bootstrap(list(clusters[on]), lambda i, on=on: float(d[on][i].mean()),
                                                 a.boot)
                        entry["d_recall"][lab] = (float(d[on].mean()), ci_c)
                class_rows.append([arm] + [f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]"
                                           for m, (lo, hi) in entry["d_recall"].values()])
            report["arms"].setdefault(arm, {})[ctx] = entry
            rows.append(row)
        print("| " + " | ".join(hdr) + " |\n|" + "---|" * len(hdr))
        for r in rows:
            print("| " + " | ".join(str(x) for x in r) + " |")
        if class_rows:
            hdr = ["arm"] + [f"d recall {lab} [95% CI]" for lab in labels]
            print(f"\nPer class, paired with {a.baseline} (seed-mean difference over the class's hits):\n")
            print("| " + " | ".join(hdr) + " |\n|" + "---|" * len(hdr))
            for r in class_rows:
                print("| " + " | ".join(r) + " |")
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def fit_temperature(clf, bank) -> float:
    """The T minimising the binary cross-entropy of sigmoid(logit / T) against the one-hot
    labels of `bank`'s hits, at full context and at 20 ms (the live default) together."""
    import torch

    from drumclassifier.evaluate import predict_bank
    true = np.array([clf.labels.index(lab) for lab in bank.labels])
    onehot = torch.from_numpy(np.eye(len(clf.labels), dtype=np.float32)[true])
    clf.cfg.temperature = None
    ps = [predict_bank(clf.predict, bank, n) for n in (None, round(0.02 * clf.cfg.sample_rate_hz))]
    p = torch.from_numpy(np.concatenate(ps)).clamp(1e-6, 1 - 1e-6)
    z, y = torch.log(p) - torch.log1p(-p), torch.cat([onehot, onehot])
    grid = np.exp(np.linspace(np.log(0.25), np.log(4.0), 81))
    nll = [float(torch.nn.functional.binary_cross_entropy_with_logits(z / t, y)) for t in grid]
    return float(grid[int(np.argmin(nll))])


def cmd_ship(a) -> int:
    """An arm's seeds -> one ensemble checkpoint with thresholds chosen on val."""
    import tempfile

    import torch

    from drumclassifier.checkpoint import ensemble_checkpoint
    from drumclassifier.classifier import DrumClassifier
    from drumclassifier.dataset import ClipBank, read_manifest
    from drumclassifier.train import Validator, load_train_config

    runs = arm_runs(a.arm)[:a.members or None]
    out = Path(a.out)
    if out.exists() and not a.force:
        sys.exit(f"error: {out} exists; use --force to replace it")
    torch.set_num_threads(2)
    cfg = load_train_config(runs[0] / "config.yaml", [])
    weights = [r / "last.pt" for r in runs]
    with tempfile.TemporaryDirectory() as tmp:
        clf = DrumClassifier(ensemble_checkpoint(weights, Path(tmp) / "e.pt"), device="cpu")
        items, _ = read_manifest(cfg.train.manifest, ["val"], clf.labels)
        bank = ClipBank(items, clf.cfg.sample_rate_hz, cfg.train.clip_s, dtype=torch.float32,
                        progress=False)
        temperature = fit_temperature(clf, bank)
        clf.cfg.temperature = temperature  # predict() reads it: thresholds on calibrated probs
        lead = clf.cfg.lead_in_samples

        def predict_fn(x, lengths, led=False):
            """Validator's predictor: with led, x [B, 2, N] starts with each item's lead-in."""
            if led and lead:
                return clf.predict(x[:, :, lead:], lengths - lead, before=x[:, :, :lead])
            return clf.predict(x, lengths)
        v = Validator(bank, clf.labels, cfg.train, lead)(predict_fn)
    spec_path = EXP_DIR / f"{arm_tag(a.arm)}.json"
    spec = json.loads(spec_path.read_text()) if spec_path.exists() else {}
    meta = {"arm": a.arm, "arm_spec": spec, "members": [str(r.relative_to(ROOT)) for r in runs],
            "protocol": "bench/experiment.py: fixed schedule, last checkpoint of each seed",
            "val": v, "thresholds_from": "per-class F1 maximised on val singles + mixtures",
            "n_params": sum(p.numel() for p in clf.model.parameters())}
    if out.exists():
        out.unlink()
    ensemble_checkpoint(weights, out, meta, thresholds=v["thresholds"], temperature=temperature)
    print(f"wrote {out}: {len(runs)} members of {a.arm}; temperature {temperature:.2f}; "
          f"val acc full {v['acc_full']:.3f}, "
          f"{cfg.train.val_context_ms:g} ms {v['acc_short']:.3f}; thresholds {v['thresholds']}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train N seeds of an arm")
    t.add_argument("arm", help="arm name (runs/exp/ARM-sSEED)")
    t.add_argument("overrides", nargs="*",
                   help="train config overrides, e.g. augment.room.p=0.5; {seed} is replaced by "
                   "the run's seed (train.init_from=runs/exp/A-s{seed}/last.pt)")
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    t.add_argument("--jobs", type=int, default=2, help="runs at a time")
    t.add_argument("--threads", type=int, default=1, help="torch threads per run")
    t.add_argument("--steps", type=int, default=400, help="training steps (multiple of 100)")
    t.add_argument("--manifest", default=str(MANIFEST))
    t.add_argument("--holdout-group", help="leave this corpus group out of training")
    r = sub.add_parser("report", help="compare arms on held-out hits")
    r.add_argument("baseline")
    r.add_argument("arms", nargs="*")
    r.add_argument("--split", default="test", help="manifest split(s), comma-separated")
    r.add_argument("--manifest", default=str(MANIFEST), help="the hits to evaluate on")
    r.add_argument("--contexts", default="full,20ms", help=f"of {','.join(CONTEXTS)}")
    r.add_argument("--seeds", type=int, default=0, help="use the first N seeds (0 = all)")
    r.add_argument("--boot", type=int, default=2000, help="bootstrap resamples")
    r.add_argument("--json", help="also write the figures here")
    s = sub.add_parser("ship", help="combine an arm's seeds into one checkpoint")
    s.add_argument("arm")
    s.add_argument("--out", required=True, help="the checkpoint to write")
    s.add_argument("--members", type=int, default=0, help="use the first N seeds (0 = all)")
    s.add_argument("--force", action="store_true", help="replace --out if it exists")
    a = p.parse_args(argv)
    return {"train": cmd_train, "report": cmd_report, "ship": cmd_ship}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
