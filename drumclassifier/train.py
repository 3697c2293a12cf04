"""`drumclassifier train`: train the CRNN on the corpus manifest.

Config: configs/train.yaml (sections `train`, `augment`, optional `model`) merged onto
typed dataclasses, then `key=value` overrides with full dotted paths (`train.epochs=3`,
`augment.mp3.p=0`, `model.net.dropout=0.2`).
A key the schema does not know is an error. The `model` section starts from
`train.model_config` (configs/model.yaml).

Data: the manifest's train split is decoded ONCE into memory, each hit cut to
`train.clip_s` (1 s): training cost scales with content length, and the first second
holds what tells the classes apart (the full 4 s window is used at evaluation).
Batches are built on the fly: a class drawn uniformly, then a hit of that class; with
probability `p_mix` that hit is mixed with 1-2 hits of other classes of the SAME kit
(gains and offsets drawn per hit, multi-hot target). The Augmenter then acts on the
batch (including random truncation to short post-onset contexts), then log-mel + CRNN,
BCE per class.

Run folder runs/NAME/: config.yaml (resolved), log.csv (one line per epoch),
last.pt (every epoch, with optimizer state, for --resume), best.pt (best validation
score = mean of accuracy at full context and at 20 ms, with per-class thresholds
chosen on validation singles + mixtures).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

EPILOG = """examples:
  drumclassifier train                                     (configs/train.yaml, run runs/default)
  drumclassifier train train.name=small train.epochs=5 model.net.conv_channels=[8,16,32]
  drumclassifier train train.name=small --resume           (continue from runs/small/last.pt)
Overrides are omegaconf dotlist keys with full paths; an unknown key is an error."""


@dataclass
class TrainConfig:
    name: str = "default"                 # run folder runs/NAME
    runs_dir: str = "runs"
    manifest: str = "data/corpus/manifest.csv"
    model_config: str = "configs/model.yaml"  # base of the `model` section
    seed: int = 0
    device: str = "auto"                  # auto = CUDA when available
    threads: int = 2                      # torch CPU threads (0 = torch's default)
    decode_jobs: int = 4
    clip_s: float = 1.0                   # seconds kept per training hit
    batch_size: int = 64
    steps_per_epoch: int = 100
    epochs: int = 16
    max_minutes: float = 40.0             # stop cleanly (keeping best.pt) after this; 0 = no limit
    fit_epochs: bool = True               # after each epoch, cut `epochs` so the run (and its
                                          # cosine decay) ends within max_minutes
    lr: float = 3e-3
    final_lr_frac: float = 0.02           # cosine decays to lr * final_lr_frac
    warmup_frac: float = 0.05             # linear warm-up over this fraction of all steps
    weight_decay: float = 0.01
    grad_clip: float = 5.0
    p_mix: float = 0.3                    # share of batch items that are mixtures
    mix_sizes: list[int] = field(default_factory=lambda: [2, 3])
    mix_gain_db: list[float] = field(default_factory=lambda: [-12.0, 0.0])
    mix_offset_ms: list[float] = field(default_factory=lambda: [0.0, 10.0])
    p_bleed: float = 0.0                  # share of batch items that get a quiet bleed hit
    bleed_gain_db: list[float] = field(default_factory=lambda: [-30.0, -12.0])
    bleed_offset_ms: list[float] = field(default_factory=lambda: [-100.0, 100.0])
    # grooves: streams.csv of `drumclassifier grooves` ("" = none). A share p_groove of the
    # batch items are then detected onsets of those streams, cut as the live worker cuts
    # them (groove_contexts_ms after the onset: the anytime ladder and the fixed context),
    # targets = the classes of the notes at the onset, none for an onset with no drum
    grooves: str = ""
    p_groove: float = 0.5
    groove_contexts_ms: list[float] = field(default_factory=lambda: [5.0, 10.0, 20.0, 40.0, 80.0])
    p_groove_negative: float = 0.15       # share of groove items that are onsets with no drum
    # groove items are already cut at a live context: False exempts them from the random
    # truncation (augment.truncate), which otherwise cuts half of them shorter still
    groove_truncate: bool = True
    # true: each step runs its groove onsets (tens of ms) and its one-shots (up to clip_s)
    # through the network as two batches, each padded to its own longest item (in one
    # batch every groove item is padded to a second of zeros; batch norm statistics then
    # come from each part alone)
    split_batches: bool = False
    select_groove_weight: float = 0.5     # score = (1-g) * one-shot score + g * val groove F1
    # start from a checkpoint's weights ("" = random init); from an ensemble, member
    # init_member (-1: member seed % members, so seeds 0, 1, 2 fine-tune members 0, 1, 2)
    init_from: str = ""
    init_member: int = -1
    # the short context of the selection score: the live one (realtime slicer.context_ms)
    val_context_ms: float = field(default_factory=lambda: _live_context_ms())
    val_mixtures: int = 200               # seeded val mixtures (thresholds, mixture F1)
    val_batch_size: int = 64
    select_short_weight: float = 0.5      # score = (1-w) * acc_full + w * acc_short
    progress: bool = True


# train config keys of options measured and removed (docs/experiments.md) -> their "off"
# value (config.drop_removed): label smoothing, mixup, the within-kit contrastive loss
REMOVED_TRAIN_KEYS = {"label_smoothing": 0.0, "mixup_p": 0.0, "mixup_alpha": ...,
                      "metric_weight": 0.0, "metric_kits": ..., "metric_temperature": ...}


def _live_context_ms() -> float:
    from .config import LIVE_CONTEXT_MS
    return LIVE_CONTEXT_MS


def _schema():
    """The whole file's schema; built here so torch (augment) loads only when a command runs."""
    from dataclasses import make_dataclass

    from .augment import AugmentConfig
    from .config import ModelConfig
    return make_dataclass("TrainFile", [
        ("train", TrainConfig, field(default_factory=TrainConfig)),
        ("model", ModelConfig, field(default_factory=ModelConfig)),
        ("augment", AugmentConfig, field(default_factory=AugmentConfig))])


def load_train_config(path: str | Path | None, overrides: list[str] = ()):
    """configs/train.yaml + overrides -> typed config (sections train, model, augment).

    Raises ConfigError naming the key on an unknown key, a wrong type, a bad range.
    """
    from omegaconf import OmegaConf

    from .augment import REMOVED_AUGMENT_KEYS, load_augment_config
    from .config import (
        REMOVED_MODEL_KEYS,
        config_to_dict,
        load_model_config,
        merge_structured,
        read_yaml,
        validate_model_config,
    )
    from .errors import ConfigError

    layers = [read_yaml(path)] if path is not None else []
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"override {bad[0]!r} is not key=value")
    try:
        layers.append(OmegaConf.from_dotlist(list(overrides)))
    except Exception as e:  # noqa: BLE001 (a malformed override)
        raise ConfigError(f"overrides: {str(e).splitlines()[0]}") from None
    source = str(path or "config")
    removed = {f"{section}.{k}": v for section, table in (
        ("train", REMOVED_TRAIN_KEYS), ("model", REMOVED_MODEL_KEYS),
        ("augment", REMOVED_AUGMENT_KEYS)) for k, v in table.items()}
    # the model section starts from the model config file that train.model_config names
    first = merge_structured(_schema(), *layers, source=source, removed=removed)
    model_base = config_to_dict(load_model_config(first.train.model_config))
    cfg = merge_structured(_schema(), {"model": model_base}, *layers, source=source,
                           removed=removed)
    validate_model_config(cfg.model)
    load_augment_config(cfg.augment)  # range checks
    t = cfg.train
    for k in ("batch_size", "steps_per_epoch", "epochs"):
        if getattr(t, k) < 1:
            raise ConfigError(f"train.{k} must be >= 1, got {getattr(t, k)}")
    for k in ("p_mix", "select_short_weight", "p_bleed", "p_groove", "p_groove_negative",
              "select_groove_weight"):
        if not 0 <= getattr(t, k) <= 1:
            raise ConfigError(f"train.{k} must be in [0, 1], got {getattr(t, k)}")
    for k in ("bleed_gain_db", "bleed_offset_ms"):
        v = getattr(t, k)
        if len(v) != 2 or v[0] > v[1]:
            raise ConfigError(f"train.{k} must be [low, high] with low <= high, got {v}")
    if not t.mix_sizes or min(t.mix_sizes) < 2:
        raise ConfigError(f"train.mix_sizes must list sizes >= 2, got {t.mix_sizes}")
    return cfg


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. train.epochs=3 augment.mp3.p=0")
    p.add_argument("--config", default="configs/train.yaml",
                   help="training config YAML (default: configs/train.yaml)")
    p.add_argument("--resume", action="store_true",
                   help="continue runs/NAME from its last.pt (config from runs/NAME/config.yaml, "
                        "overrides applied on top)")
    p.add_argument("--force", action="store_true",
                   help="start afresh in an existing run folder (overwrites its files)")


# ------------------------------------------------------------------------------- sampling

class BatchSampler:
    """Class-balanced single hits and same-kit mixtures, as [B, 2, N] + multi-hot [B, C].

    With probability ``p_bleed`` an item (single or mixture) also gets bleed: another hit
    of the same kit, as another drum of the kit leaks into this drum's close mic. Its
    peak is ``bleed_gain_db`` (uniform) below the item's peak and its onset is offset by
    ``bleed_offset_ms`` (uniform; negative = the ringing tail of a hit that came before,
    positive = a hit that comes after). Its class is NOT added to the target: the model
    should name the loud hit and ignore quiet leakage. All draws come from ``rng``, and
    none are made at p_bleed = 0, so the batches of a seeded run stay as they were.
    """

    def __init__(self, bank, labels: list[str], t: TrainConfig, grooves=None, lead_in: int = 0):
        from .dataset import MixtureSampler
        self.bank, self.labels, self.t = bank, labels, t
        self.grooves = grooves       # a GrooveBank, or None
        # samples before each onset (ModelConfig.lead_in_samples): a groove onset's real
        # pre-onset audio, silence for one-shots and mixtures
        self.lead_in = lead_in
        if grooves is not None:
            import numpy as np
            # onsets holding each class [C lists], and the onsets with no drum note near
            self.groove_by_class = [np.flatnonzero(grooves.targets[:, k] > 0)
                                    for k in range(len(labels))]
            self.groove_negatives = np.flatnonzero(grooves.targets.sum(1) == 0)
            self.groove_contexts = [round(ms * 1e-3 * bank.sample_rate_hz)
                                    for ms in t.groove_contexts_ms]
        self.max_len = round(t.clip_s * bank.sample_rate_hz)
        self.by_class = [[i for i, lab in enumerate(bank.labels) if lab == c] for c in labels]
        self.classes = [k for k, idx in enumerate(self.by_class) if idx]
        self.mixer = MixtureSampler(bank.labels, bank.kits, bank.sample_rate_hz, t.mix_sizes,
                                    t.mix_gain_db, t.mix_offset_ms)
        self.can_mix = set(self.mixer.multi_kit())
        self.bleed_offsets = tuple(round(ms * 1e-3 * bank.sample_rate_hz) for ms in t.bleed_offset_ms)

    def sample(self, rng):
        """-> x [B, 2, N], lengths [B], target [B, C], single Bool[B], groove Bool[B]
        (the item is a groove onset)."""
        import numpy as np
        import torch

        from .dataset import mix, pad_batch
        waves, target, single = [], np.zeros((self.t.batch_size, len(self.labels)), np.float32), []
        groove = []
        for b in range(self.t.batch_size):
            groove.append(self.grooves is not None and rng.random() < self.t.p_groove)
            if groove[-1]:
                waves.append(self.groove_item(rng, target[b]))
                single.append(False)
                continue
            c = self.classes[int(rng.integers(len(self.classes)))]
            i = self.by_class[c][int(rng.integers(len(self.by_class[c])))]
            if rng.random() < self.t.p_mix and self.bank.kits[i] in self.can_mix:
                spec = self.mixer.sample(rng, i)
                waves.append(mix([self.bank.get(j) for j in spec.indices], spec.gains_db,
                                 spec.offsets))
                for j in spec.indices:
                    target[b, self.labels.index(self.bank.labels[j])] = 1.0
                single.append(len(spec.indices) == 1)
                used = spec.indices
            else:
                waves.append(self.bank.get(i))
                target[b, c] = 1.0
                single.append(True)
                used = [i]
            if self.t.p_bleed > 0 and rng.random() < self.t.p_bleed:
                waves[-1] = self.add_bleed(rng, waves[-1], used)
            if self.lead_in:
                waves[-1] = torch.nn.functional.pad(waves[-1][:, :self.max_len], (self.lead_in, 0))
        x, lengths = pad_batch(waves, self.max_len + self.lead_in)
        return x, lengths, torch.from_numpy(target), torch.tensor(single), torch.tensor(groove)

    def groove_item(self, rng, target_row):
        """A detected groove onset cut at one of the live contexts -> [2, n]; its classes
        are written into target_row (none for a negative). Class-balanced: a class drawn
        uniformly, then an onset holding it (with the others struck with it)."""
        g = self.grooves
        if len(self.groove_negatives) and rng.random() < self.t.p_groove_negative:
            i = int(self.groove_negatives[int(rng.integers(len(self.groove_negatives)))])
        else:
            pools = [p for p in self.groove_by_class if len(p)]
            pool = pools[int(rng.integers(len(pools)))]
            i = int(pool[int(rng.integers(len(pool)))])
        target_row[:] = g.targets[i]
        return g.get(i, self.groove_contexts[int(rng.integers(len(self.groove_contexts)))],
                     self.lead_in)

    def add_bleed(self, rng, wave, used: list[int]):
        """wave [2, n] plus a quiet hit of the same kit not in ``used`` -> [2, n'] (n' >= n).

        The wave comes back unchanged when the kit has no other hit or either is silent.
        """
        import math

        from .dataset import mix
        pool = [j for j in self.mixer.by_kit[self.bank.kits[used[0]]] if j not in used]
        if not pool:
            return wave
        bleed = self.bank.get(pool[int(rng.integers(len(pool)))])
        gain_db = float(rng.uniform(*self.t.bleed_gain_db))
        offset = int(rng.integers(self.bleed_offsets[0], self.bleed_offsets[1] + 1))
        if offset < 0:  # the tail of a hit that started -offset samples before this onset
            bleed, offset = bleed[:, -offset:], 0
        peak, peak_bleed = float(wave.abs().max()), float(bleed.abs().max()) if bleed.numel() else 0.0
        if peak == 0.0 or peak_bleed == 0.0:
            return wave
        return mix([wave, bleed], [0.0, gain_db + 20 * math.log10(peak / peak_bleed)], [0, offset])


# ------------------------------------------------------------------------------- the run

def init_weights(model, t: TrainConfig) -> str:
    """Load t.init_from into `model` (a CRNN); from an ensemble checkpoint, one member.
    Returns what was loaded, for the log."""
    from .checkpoint import read_checkpoint
    from .errors import ConfigError
    ckpt = read_checkpoint(t.init_from)
    sd = ckpt["state_dict"]
    members = sorted({int(k.split(".")[1]) for k in sd if k.startswith("members.")})
    what = t.init_from
    if members:
        m = t.init_member if t.init_member >= 0 else t.seed % len(members)
        if m not in members:
            raise ConfigError(f"train.init_member={m}: {t.init_from} has members {members}")
        sd = {k[len(f"members.{m}."):]: v for k, v in sd.items() if k.startswith(f"members.{m}.")}
        what = f"{t.init_from} member {m}"
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        raise ConfigError(f"train.init_from={t.init_from}: does not fit this model "
                          f"({str(e).splitlines()[0]})") from None
    return what


def step_logits(model, features, augmenter, x, lengths, parts=None, keep_length=None):
    """Augment a training batch and run it: x [B, 2, N], lengths [B] -> logits [B, C] in
    batch order. parts: Bool[B] (the groove onsets, train.split_batches) or None; with it
    the two parts are augmented and run as separate batches, each cut to its own longest
    item. keep_length: Bool[B], items the random truncation leaves whole."""
    import torch
    if parts is None or bool(parts.all()) or not bool(parts.any()):
        groups = [torch.arange(len(lengths), device=lengths.device)]
    else:
        groups = [parts.nonzero().squeeze(1), (~parts).nonzero().squeeze(1)]
    outs = []
    for idx in groups:
        xp, lp = x[idx], lengths[idx]
        xp = xp[..., :int(lp.max())]          # no-op for one group: the batch is that long
        with torch.no_grad():                 # truncation: views at different contexts
            xp, lp = augmenter(xp, lp, None if keep_length is None else keep_length[idx])
        outs.append(model(*features(xp, lp)))
    if len(groups) == 1:
        return outs[0]
    return torch.cat(outs)[torch.argsort(torch.cat(groups))]


def lr_at(step: int, total: int, t: TrainConfig) -> float:
    """Linear warm-up, then cosine from lr down to lr * final_lr_frac."""
    warm = max(1, int(t.warmup_frac * total))
    if step < warm:
        return t.lr * (step + 1) / warm
    prog = min(1.0, (step - warm) / max(1, total - warm))
    return t.lr * (t.final_lr_frac + (1 - t.final_lr_frac) * 0.5 * (1 + math.cos(math.pi * prog)))


def seed_all(seed: int) -> None:
    import random

    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Validator:
    """Validation singles (full context and short context) and seeded mixtures."""

    def __init__(self, bank, labels, t: TrainConfig, lead_in: int = 0):
        import numpy as np

        from .dataset import GrooveBank, MixtureSampler, mixture_target
        self.bank, self.labels, self.t = bank, labels, t
        self.lead_in = lead_in   # groove onsets are read with their pre-onset audio
        # the validation kits' grooves: onsets at the live context (val_context_ms)
        self.grooves = (GrooveBank(t.grooves, "val", labels, bank.sample_rate_hz,
                                   progress=t.progress) if t.grooves else None)
        self.true = np.array([labels.index(lab) for lab in bank.labels])
        self.short = round(t.val_context_ms * 1e-3 * bank.sample_rate_hz)
        mixer = MixtureSampler(bank.labels, bank.kits, bank.sample_rate_hz, t.mix_sizes,
                               t.mix_gain_db, t.mix_offset_ms)
        self.mixes = mixer.fixed_set(t.val_mixtures, seed=t.seed + 7919)
        self.mix_targets = (np.stack([mixture_target(m, bank.labels, labels) for m in self.mixes])
                            if self.mixes else np.zeros((0, len(labels)), np.float32))

    def __call__(self, predict_fn) -> dict:
        """predict_fn(x, lengths, led=False): probabilities; items from the onset on
        (led=False: the model's lead-in is silence) or with their lead-in (led=True)."""
        import numpy as np

        from .dataset import pad_batch
        from .evaluate import (
            choose_thresholds,
            multilabel_prf,
            predict_bank,
            predict_mixtures,
            single_label_metrics,
        )
        bs = self.t.val_batch_size
        p_full = predict_bank(predict_fn, self.bank, None, bs)
        p_short = predict_bank(predict_fn, self.bank, self.short, bs)
        full, short = single_label_metrics(self.true, p_full), single_label_metrics(self.true, p_short)
        onehot = np.eye(len(self.labels), dtype=np.float32)[self.true]
        targets, probs = onehot, p_full
        if self.mixes:
            p_mix = predict_mixtures(predict_fn, self.bank, self.mixes, None, bs)
            targets, probs = np.concatenate([onehot, self.mix_targets]), np.concatenate([p_full, p_mix])
        if self.grooves is not None:
            g = self.grooves
            waves = [g.get(i, self.short, self.lead_in) for i in range(len(g))]
            p_groove = np.concatenate([np.asarray(predict_fn(*pad_batch(waves[k:k + bs]), led=True))
                                       for k in range(0, len(waves), bs)])
            targets = np.concatenate([targets, g.targets])
            probs = np.concatenate([probs, p_groove])
        thresholds = choose_thresholds(targets, probs)
        out = {"acc_full": full["accuracy"], "acc_short": short["accuracy"],
               "macro_f1": full["macro_f1"], "recall_full": full["recall"],
               "recall_short": short["recall"], "thresholds": thresholds}
        if self.mixes:
            _, _, f = multilabel_prf(self.mix_targets, p_mix, thresholds)
            out["mix_f1"] = f.tolist()
            out["mix_macro_f1"] = float(f.mean())
        w = self.t.select_short_weight
        out["score"] = (1 - w) * out["acc_full"] + w * out["acc_short"]
        if self.grooves is not None:
            _, _, f = multilabel_prf(self.grooves.targets, p_groove, thresholds)
            out["groove_f1"] = f.tolist()
            out["groove_macro_f1"] = float(f.mean())
            gw = self.t.select_groove_weight
            out["score"] = (1 - gw) * out["score"] + gw * out["groove_macro_f1"]
        return out


def run(args) -> int:
    import numpy as np
    import torch
    from omegaconf import OmegaConf
    from tqdm import tqdm

    from .augment import Augmenter
    from .checkpoint import read_checkpoint, save_checkpoint
    from .classifier import select_device
    from .dataset import ClipBank, read_manifest
    from .errors import ConfigError
    from .features import LogMel
    from .model import CRNN

    cfg = load_train_config(args.config, args.overrides)
    run_dir = Path(cfg.train.runs_dir) / cfg.train.name
    resume_state = None
    if args.resume:
        if not (run_dir / "last.pt").is_file():
            raise ConfigError(f"{run_dir / 'last.pt'}: nothing to resume")
        # the run's own resolved config, with this command's overrides on top
        cfg = load_train_config(run_dir / "config.yaml", args.overrides)
        resume_state = read_checkpoint(run_dir / "last.pt")
    elif any((run_dir / f).exists() for f in ("last.pt", "best.pt", "log.csv")) and not args.force:
        # (other files, such as a nohup log written there, do not make it a run)
        raise ConfigError(f"{run_dir} exists; use --resume to continue it, --force to start "
                          "afresh, or train.name=OTHER")
    t, mcfg = cfg.train, cfg.model
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.structured(cfg), run_dir / "config.yaml")

    if t.threads > 0:
        torch.set_num_threads(t.threads)
    device = select_device(t.device)
    seed_all(t.seed)
    labels = list(mcfg.labels)
    say = (lambda s: tqdm.write(s, file=sys.stderr))

    # ---- data, decoded once
    train_items, skipped = read_manifest(t.manifest, ["train"], labels)
    val_items, _ = read_manifest(t.manifest, ["val"], labels)
    if not train_items or not val_items:
        raise ConfigError(f"{t.manifest}: needs rows in both the train and val splits "
                          f"(found {len(train_items)} train, {len(val_items)} val)")
    t0 = time.time()
    train_bank = ClipBank(train_items, mcfg.sample_rate_hz, t.clip_s, jobs=t.decode_jobs,
                          progress=t.progress, desc="decoding train")
    val_bank = ClipBank(val_items, mcfg.sample_rate_hz, t.clip_s, jobs=t.decode_jobs,
                        progress=t.progress, desc="decoding val")
    for bank in (train_bank, val_bank):
        for item, e in bank.failed:
            say(f"warning: skipped {e}")
    counts = {c: train_bank.labels.count(c) for c in labels}
    say(f"train {len(train_bank)} hits {counts}, {len(set(train_bank.kits))} kits; "
        f"val {len(val_bank)} hits, {len(set(val_bank.kits))} kits; {skipped} rows of other "
        f"labels skipped; {(train_bank.nbytes + val_bank.nbytes) / 2**20:.0f} MB in memory, "
        f"decoded in {time.time() - t0:.0f} s")
    missing = [c for c in labels if counts[c] == 0]
    if missing:
        raise ConfigError(f"no training hits for class(es) {missing}")

    grooves = None
    if t.grooves:
        from .dataset import GrooveBank
        grooves = GrooveBank(t.grooves, "train", labels, mcfg.sample_rate_hz, progress=t.progress)
        per_class = dict(zip(labels, grooves.targets.sum(0).astype(int).tolist()))
        say(f"grooves: {len(grooves)} detected onsets {per_class}, "
            f"{int((grooves.targets.sum(1) == 0).sum())} with no drum; "
            f"{grooves.nbytes / 2**20:.0f} MB")
    mcfg.rejects_non_drums = grooves is not None    # stored with the checkpoint's config
    lead = mcfg.lead_in_samples
    if lead:
        say(f"lead-in: {mcfg.lead_in_frames} frames ({lead} samples) of pre-onset audio per item")
    sampler = BatchSampler(train_bank, labels, t, grooves, lead)
    validator = Validator(val_bank, labels, t, lead)

    # ---- model
    features = LogMel(mcfg).to(device)
    model = CRNN(mcfg).to(device)
    augmenter = Augmenter.from_config(cfg.augment, mcfg.sample_rate_hz, lead).to(device)
    if t.init_from and resume_state is None:
        say(f"starting from {init_weights(model, t)}")
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    n_params = sum(p.numel() for p in model.parameters())
    start_epoch, best_score, best_epoch, n_epochs = 0, -1.0, -1, t.epochs
    if resume_state is not None:
        model.load_state_dict(resume_state["state_dict"])
        st = resume_state["meta"]["train_state"]
        opt.load_state_dict(st["optimizer"])
        start_epoch, best_score, best_epoch = st["epoch"] + 1, st["best_score"], st["best_epoch"]
        # a schedule cut by fit_epochs stays cut, unless this command asks for other epochs
        if t.epochs == st.get("epochs_planned"):
            n_epochs = st.get("epochs", t.epochs)
        say(f"resuming {run_dir} at epoch {start_epoch + 1} (best score {best_score:.4f} "
            f"at epoch {best_epoch + 1})")
    say(f"model {n_params:,} parameters on {device}; {t.epochs} epochs x {t.steps_per_epoch} "
        f"steps x batch {t.batch_size}; run folder {run_dir}")

    def predict_fn(x, lengths, led=False):
        with torch.inference_mode():
            if lead and not led:     # one-shots: silence before the onset
                x, lengths = torch.nn.functional.pad(x, (lead, 0)), lengths + lead
            x, lengths = x.to(device), lengths.to(device)
            return torch.sigmoid(model(*features(x, lengths))).float().cpu()

    log_path = run_dir / "log.csv"
    fields = ["epoch", "steps", "minutes", "epoch_s", "steps_per_s", "lr", "loss", "train_acc",
              "val_acc_full", f"val_acc_{t.val_context_ms:g}ms", "val_macro_f1",
              "val_mix_macro_f1", "score", "best"]
    if resume_state is None or not log_path.exists():
        with log_path.open("w", newline="") as f:
            csv.writer(f).writerow(fields)

    total_steps = n_epochs * t.steps_per_epoch
    t_start, elapsed_before = time.time(), (resume_state or {}).get("meta", {}).get(
        "train_state", {}).get("minutes", 0.0) * 60
    stop = False
    bce = torch.nn.BCEWithLogitsLoss()
    meta_common = {"labels": labels, "train_config": OmegaConf.to_container(
        OmegaConf.structured(cfg), resolve=True), "n_params": n_params,
        "selection": f"score = {1 - t.select_short_weight:g} * val accuracy at full context "
                     f"+ {t.select_short_weight:g} * val accuracy at {t.val_context_ms:g} ms",
        "thresholds_from": "per-class F1 maximised on val singles + mixtures (full context)"}
    epoch = start_epoch
    while epoch < n_epochs:
        seed_all(t.seed * 100003 + epoch)  # an epoch replays identically after --resume
        rng = np.random.default_rng([t.seed, epoch])
        model.train(), augmenter.train(), features.train()
        losses, correct, n_single = [], 0, 0
        t_ep = time.time()
        bar = tqdm(range(t.steps_per_epoch), desc=f"epoch {epoch + 1}/{n_epochs}", unit="step",
                   disable=not t.progress, dynamic_ncols=True, file=sys.stderr)
        steps_done = 0
        for step in bar:
            g = epoch * t.steps_per_epoch + step
            for pg in opt.param_groups:
                pg["lr"] = lr_at(g, total_steps, t)
            x, lengths, y, single, groove = sampler.sample(rng)  # train accuracy counts singles
            x, lengths, y = x.to(device), lengths.to(device), y.to(device)
            keep_length = None if t.groove_truncate else groove.to(device)
            logits = step_logits(model, features, augmenter, x, lengths,
                                 groove.to(device) if t.split_batches else None, keep_length)
            loss = bce(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if t.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            opt.step()
            losses.append(loss.item())
            s = single.to(device)
            correct += int((logits.argmax(1) == y.argmax(1))[s].sum())
            n_single += int(s.sum())
            steps_done += 1
            if step % 10 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}",
                                acc=f"{correct / max(1, n_single):.3f}")
            minutes = (elapsed_before + time.time() - t_start) / 60
            if t.max_minutes > 0 and minutes >= t.max_minutes:
                say(f"max_minutes={t.max_minutes:g} reached at epoch {epoch + 1} step "
                    f"{step + 1}: validating, saving and stopping")
                stop = True
                break
        bar.close()
        epoch_s = time.time() - t_ep

        model.eval(), features.eval()
        v = validator(predict_fn)
        minutes = (elapsed_before + time.time() - t_start) / 60
        is_best = v["score"] > best_score
        mcfg.thresholds = v["thresholds"]  # chosen on val: stored in the checkpoint's config
        if is_best:
            best_score, best_epoch = v["score"], epoch
            save_checkpoint(run_dir / "best.pt", model.state_dict(), mcfg,
                            {**meta_common, "epoch": epoch + 1, "val": v})
        cut_msg = ""
        if t.fit_epochs and t.max_minutes > 0 and not stop and epoch + 1 < n_epochs:
            per_epoch = (time.time() - t_start) / 60 / (epoch + 1 - start_epoch)  # incl. val
            fit = epoch + 1 + int((t.max_minutes - minutes) / per_epoch)
            if fit < n_epochs:
                cut_msg = (f"at {per_epoch:.1f} min per epoch only {fit} of {n_epochs} epochs fit "
                           f"in max_minutes={t.max_minutes:g}: the schedule now ends at epoch {fit}")
                n_epochs, total_steps = fit, fit * t.steps_per_epoch
        train_state = {"optimizer": opt.state_dict(), "epoch": epoch, "best_score": best_score,
                       "best_epoch": best_epoch, "minutes": minutes, "epochs": n_epochs,
                       "epochs_planned": t.epochs}
        save_checkpoint(run_dir / "last.pt", model.state_dict(), mcfg,
                        {**meta_common, "epoch": epoch + 1, "val": v, "train_state": train_state})
        row = [epoch + 1, (epoch + 1) * t.steps_per_epoch if not stop else g + 1,
               f"{minutes:.2f}", f"{epoch_s:.1f}", f"{steps_done / max(epoch_s, 1e-9):.3f}",
               f"{opt.param_groups[0]['lr']:.2e}", f"{np.mean(losses):.4f}",
               f"{correct / max(1, n_single):.4f}", f"{v['acc_full']:.4f}",
               f"{v['acc_short']:.4f}", f"{v['macro_f1']:.4f}",
               f"{v.get('mix_macro_f1', float('nan')):.4f}", f"{v['score']:.4f}", int(is_best)]
        with log_path.open("a", newline="") as f:
            csv.writer(f).writerow(row)
        say(f"epoch {epoch + 1}: loss {np.mean(losses):.4f} train acc "
            f"{correct / max(1, n_single):.3f} | val acc full {v['acc_full']:.3f} "
            f"{t.val_context_ms:g}ms {v['acc_short']:.3f} macro-F1 {v['macro_f1']:.3f} "
            f"mix-F1 {v.get('mix_macro_f1', float('nan')):.3f} | score {v['score']:.4f}"
            f"{' (best)' if is_best else ''} | {steps_done / max(epoch_s, 1e-9):.2f} steps/s, "
            f"{minutes:.1f} min")
        if cut_msg:
            say(cut_msg)
        if stop:
            break
        epoch += 1
    summary = {"run": str(run_dir), "best_epoch": best_epoch + 1, "best_score": best_score,
               "best": str(run_dir / "best.pt"), "minutes": round(
                   (elapsed_before + time.time() - t_start) / 60, 2), "stopped_early": stop}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    say(f"done: best epoch {best_epoch + 1} (score {best_score:.4f}) -> {run_dir / 'best.pt'}")
    return 0
