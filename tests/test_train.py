"""`drumclassifier train` and `evaluate` end to end on a tiny generated corpus.

Five synthetic "drums" per kit (sine-burst kicks, tone+noise snares, high-passed noise
hats, pitched damped toms, long bright noise cymbals), 4 kits, written as 44.1 kHz
stereo FLACs with a manifest like the corpus builder's.
"""
from __future__ import annotations

import csv
import itertools
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from drumclassifier.classes import CLASSES
from drumclassifier.cli import main

SR = 44100
LABELS = list(CLASSES)


def _hp(x):
    return np.diff(x, 2, prepend=[0, 0])


def synth(label: str, rng: np.random.Generator, kit: int, vel: float) -> np.ndarray:
    """[n, 2] float32 one-shot, onset at sample 0."""
    dur = {"kick": 0.25, "snare": 0.2, "hihat": 0.08, "toms": 0.3, "cymbals": 0.5}[label]
    t = np.arange(int(SR * dur)) / SR
    if label == "kick":
        f = 45 + 8 * kit + 90 * np.exp(-t * 35)
        x = np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t * 12)
    elif label == "snare":
        x = 0.5 * np.sin(2 * np.pi * (180 + 10 * kit) * t) * np.exp(-t * 25)
        x = x + 0.6 * rng.standard_normal(len(t)) * np.exp(-t * 18)
    elif label == "hihat":
        x = _hp(_hp(rng.standard_normal(len(t)))) * np.exp(-t * 60)
    elif label == "toms":
        f = 110 + 15 * kit + 30 * np.exp(-t * 20)
        x = np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t * 7)
    else:
        x = _hp(rng.standard_normal(len(t))) * np.exp(-t * 5)
    x = vel * 0.8 * x / np.abs(x).max()
    return np.stack([x, x * rng.uniform(0.8, 1.0)], 1).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    rows = []
    splits = {0: "train", 1: "train", 2: "val", 3: "test"}
    for kit, split in splits.items():
        for label in LABELS:
            for vel in (0.4, 0.7, 1.0):
                rel = f"audio/kit{kit}/{label}_{int(vel * 100)}.flac"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                sf.write(root / rel, synth(label, rng, kit, vel), SR, subtype="PCM_16")
                rows.append({"path": rel, "label": label, "source": "synth", "kit": f"kit{kit}",
                             "group": f"kit{kit}", "velocity": int(vel * 127),
                             "n_samples": 0, "split": split})
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root


TINY = ["model.net.conv_channels=[4,8,8]", "model.net.freq_rnn_hidden=8",
        "model.net.time_rnn_hidden=16", "model.net.linear_hidden=[16,16]",
        "train.batch_size=12", "train.lr=0.01", "train.clip_s=0.2", "train.val_mixtures=20",
        "train.progress=false", "train.warmup_frac=0", "train.threads=1",
        # the slow per-item augmentations off: their own tests cover them
        "augment.mp3.p=0", "augment.pitch_shift.p=0", "augment.eq.p=0.2"]


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    rc = main(["train", f"train.manifest={corpus / 'manifest.csv'}", f"train.runs_dir={runs}",
               "train.name=tiny", "train.epochs=2", "train.steps_per_epoch=30"] + TINY)
    assert rc == 0
    return runs / "tiny"


def test_training_lowers_loss_and_writes_checkpoints(trained):
    rows = list(csv.DictReader((trained / "log.csv").open()))
    assert len(rows) == 2
    losses = [float(r["loss"]) for r in rows]
    assert losses[-1] < losses[0]
    assert max(float(r["val_acc_full"]) for r in rows) > 0.3  # chance is 0.2
    for name in ("best.pt", "last.pt", "config.yaml", "summary.json"):
        assert (trained / name).is_file()


def test_checkpoint_loads_and_classifies(trained, corpus):
    from drumclassifier import DrumClassifier
    from drumclassifier.checkpoint import read_checkpoint
    clf = DrumClassifier(trained / "best.pt", device="cpu")
    assert clf.cfg.thresholds is not None and len(clf.cfg.thresholds) == 5
    assert all(0 < t < 1 for t in clf.cfg.thresholds)
    r = clf.classify_from_path(corpus / "audio/kit3/kick_100.flac")
    assert r.label in LABELS and set(r.probs) == set(LABELS)
    # last.pt carries what --resume needs; best.pt stays lean
    assert "train_state" in read_checkpoint(trained / "last.pt")["meta"]
    assert "train_state" not in read_checkpoint(trained / "best.pt")["meta"]


def test_resume_continues_the_log(trained):
    rc = main(["train", f"train.runs_dir={trained.parent}", "train.name=tiny", "train.epochs=3",
               "--resume"])
    assert rc == 0
    rows = list(csv.DictReader((trained / "log.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]


def test_existing_run_is_not_overwritten(trained, capsys):
    rc = main(["train", f"train.runs_dir={trained.parent}", "train.name=tiny"])
    assert rc == 2 and "exists" in capsys.readouterr().err


def test_config_typo_is_an_error(capsys):
    assert main(["train", "train.epochz=3"]) == 2
    assert "epochz" in capsys.readouterr().err
    assert main(["train", "augment.gain.pp=0.1"]) == 2


def test_evaluate_writes_metrics_and_plots(trained, corpus, tmp_path):
    out = tmp_path / "eval"
    rc = main(["evaluate", "-w", str(trained / "best.pt"), "--manifest",
               str(corpus / "manifest.csv"), "--split", "test", "--out", str(out), "-q",
               "--mixtures", "30", "--bootstrap", "50", "--contexts", "5,20,1000"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == 15 and m["n_per_class"] == {lab: 3 for lab in LABELS}
    assert list(m["contexts"]) == ["5 ms", "20 ms", "1000 ms", "full"]
    assert np.array(m["full"]["confusion"]).sum() == 15
    assert len(m["mixtures"]["full"]["f1"]) == 5
    for png in ("confusion.png", "context.png"):
        assert (out / png).stat().st_size > 1000
    # a folder with one sub-folder per class works too, and results are not overwritten
    folder = tmp_path / "sorted"
    for lab in LABELS:
        (folder / lab).mkdir(parents=True)
        (folder / lab / "a.flac").write_bytes((corpus / f"audio/kit3/{lab}_100.flac").read_bytes())
    rc = main(["evaluate", "-w", str(trained / "best.pt"), str(folder), "--out", str(out), "-q"])
    assert rc == 2
    rc = main(["evaluate", "-w", str(trained / "best.pt"), str(folder), "--out", str(out), "-q",
               "--force", "--bootstrap", "0"])
    assert rc == 0 and json.loads((out / "metrics.json").read_text())["n"] == 5


def test_mixtures_stay_in_one_kit():
    from drumclassifier.dataset import MixtureSampler
    labels = ["kick", "snare", "hihat", "kick", "snare", "toms"]
    kits = ["a", "a", "a", "b", "b", "b"]
    ms = MixtureSampler(labels, kits, SR)
    rng = np.random.default_rng(0)
    for _ in range(50):
        spec = ms.sample(rng, int(rng.integers(6)))
        assert len({kits[i] for i in spec.indices}) == 1
        assert len({labels[i] for i in spec.indices}) == len(spec.indices) >= 2
        assert spec.offsets[0] == 0 and all(0 <= o <= 441 for o in spec.offsets)
        assert all(-12 <= g <= 0 for g in spec.gains_db)


def test_lr_schedule_warms_up_and_decays():
    from drumclassifier.train import TrainConfig, lr_at
    t = TrainConfig(lr=1.0, warmup_frac=0.1, final_lr_frac=0.0)
    lrs = [lr_at(s, 100, t) for s in range(100)]
    assert lrs[0] < lrs[9] == pytest.approx(1.0)
    assert lrs[-1] < 0.01 and all(a >= b for a, b in itertools.pairwise(lrs[10:]))
    torch.manual_seed(0)


class FakeBank:
    """Hits as constant (DC) stereo blocks: class k has amplitude 0.03 * 2**k, kit 'a' hits
    are positive and kit 'b' hits negative, so a sample's value tells what was added."""

    sample_rate_hz = SR

    def __init__(self):
        self.labels = LABELS + LABELS[:3]
        self.kits = ["a"] * 5 + ["b"] * 3
        self.amp = [0.03 * 2 ** LABELS.index(lab) * (1 if kit == "a" else -1)
                    for lab, kit in zip(self.labels, self.kits)]

    def get(self, i):
        return torch.full((2, 2000 + 300 * i), self.amp[i])


def _sampler(**kw):
    from drumclassifier.train import BatchSampler, TrainConfig
    return BatchSampler(FakeBank(), LABELS, TrainConfig(batch_size=32, clip_s=0.1, **kw))


def test_bleed_is_quiet_from_the_same_kit_and_leaves_the_target():
    sampler = _sampler(p_mix=0.0, p_bleed=1.0, bleed_gain_db=[-30.0, -12.0],
                       bleed_offset_ms=[-20.0, 20.0])
    x, lengths, target, single, _ = sampler.sample(np.random.default_rng(0))
    assert (target.sum(1) == 1).all() and single.all()  # one class each: the bleed adds none
    bank = sampler.bank
    for b in range(x.shape[0]):
        k = int(target[b].argmax())
        peak = x[b].abs().max()
        anchor = next(a for a, lab in zip(bank.amp, bank.labels) if lab == LABELS[k] and
                      abs(a) <= peak <= abs(a) * (1 + 10 ** (-12 / 20)) + 1e-6)
        extra = x[b, 0, :lengths[b]] - torch.where(torch.arange(int(lengths[b])) < 2000, anchor, 0.0)
        assert extra.abs().max() > 0, "every item gets bleed"
    rng = np.random.default_rng(1)
    for _ in range(100):
        i = int(rng.integers(len(bank.labels)))
        wave = bank.get(i)
        out = sampler.add_bleed(rng, wave, [i])
        assert out.shape[-1] >= wave.shape[-1]
        residual = out.clone()
        residual[:, :wave.shape[-1]] -= wave
        level = residual.abs().max() / wave.abs().max()
        assert 10 ** (-30 / 20) - 1e-4 <= level <= 10 ** (-12 / 20) + 1e-4
        nz = residual[residual.abs() > 1e-9]
        assert (torch.sign(nz) == math.copysign(1, bank.amp[i])).all()  # the same kit's hit


def test_bleed_off_leaves_batches_unchanged():
    a = _sampler(p_mix=0.3).sample(np.random.default_rng(5))
    b = _sampler(p_mix=0.3, p_bleed=0.0, bleed_gain_db=[-6.0, -3.0]).sample(np.random.default_rng(5))
    for u, v in zip(a, b):
        assert torch.equal(u, v)
    from drumclassifier.errors import ConfigError
    from drumclassifier.train import load_train_config
    for bad in ("train.p_bleed=1.5", "train.bleed_gain_db=[-6,-30]", "train.bleed_gaindb=[-6,-3]"):
        with pytest.raises(ConfigError):
            load_train_config(None, [bad])


def test_removed_options_read_when_off_refused_when_on(tmp_path):
    # label smoothing, mixup, the contrastive loss, decay / low-pass / bit-crush and the
    # norm front ends were measured and removed: a run's config.yaml from before names them
    import yaml

    from drumclassifier.errors import ConfigError
    from drumclassifier.train import TrainConfig, load_train_config
    old = tmp_path / "config.yaml"
    old.write_text(yaml.safe_dump({
        "train": {"label_smoothing": 0.0, "mixup_p": 0.0, "mixup_alpha": 0.4, "metric_weight": 0.0,
                  "metric_kits": 3, "metric_temperature": 0.1},
        "model": {"features": {"norm": "none", "band_mean_min_frames": 1, "pcen": {"r": 0.5}}},
        "augment": {"decay": {"p": 0.0, "decay_factor": [0.25, 4.0]}, "lowpass": {"p": 0.0},
                    "bitcrush": {"p": 0.0, "bits": [4.0, 12.0]}}}))
    assert load_train_config(old).train == TrainConfig()
    for on in ("train.label_smoothing=0.1", "train.mixup_p=0.3", "train.metric_weight=0.2",
               "augment.decay.p=0.5", "augment.lowpass.p=0.2", "augment.bitcrush.p=0.1",
               "model.features.norm=pcen"):
        with pytest.raises(ConfigError, match=f"{on.split('=')[0]}: .*removed.*9b3c41f"):
            load_train_config(old, [on])


def test_train_yaml_equals_builtin_defaults():
    # configs/train.yaml mirrors TrainConfig's defaults with comments (augment: test_augment)
    from drumclassifier.train import TrainConfig, load_train_config
    assert load_train_config("configs/train.yaml").train == TrainConfig()


def test_training_runs_with_every_generalisation_option_on(corpus, tmp_path):
    from drumclassifier import DrumClassifier
    rc = main(["train", f"train.manifest={corpus / 'manifest.csv'}", f"train.runs_dir={tmp_path}",
               "train.name=opts", "train.epochs=1", "train.steps_per_epoch=4", *TINY,
               "train.p_bleed=0.5", "augment.room.p=0.5"])
    assert rc == 0
    clf = DrumClassifier(tmp_path / "opts" / "best.pt", device="cpu")
    assert clf.classify_from_path(corpus / "audio/kit3/kick_100.flac").label in LABELS


def test_split_batches_run_each_part_at_its_own_length_with_the_same_outputs():
    """train.split_batches: groove onsets and one-shots go through the network as two
    batches. In eval mode (batch norm on running statistics, no augmentation) each item's
    logits equal the single padded batch's, in batch order; in training the loss reaches
    every parameter through both parts."""
    from drumclassifier.augment import Augmenter
    from drumclassifier.config import load_model_config
    from drumclassifier.features import LogMel
    from drumclassifier.model import CRNN
    from drumclassifier.train import step_logits
    torch.manual_seed(0)
    cfg = load_model_config({"net": {"conv_channels": [4, 8, 8], "freq_rnn_hidden": 8,
                                     "time_rnn_hidden": 8, "linear_hidden": [8, 8]}})
    model, features = CRNN(cfg), LogMel(cfg)
    augmenter = Augmenter.from_config({"mp3": {"p": 0.0}}, SR)
    lengths = torch.tensor([900, 20000, 1500, 44100, 700, 30000])
    parts = torch.tensor([True, False, True, False, True, False])      # short = groove
    x = torch.randn(6, 2, 44100) * (torch.arange(44100)[None, None, :] < lengths[:, None, None])
    model.eval(), augmenter.eval()
    with torch.no_grad():
        one = step_logits(model, features, augmenter, x, lengths)
        two = step_logits(model, features, augmenter, x, lengths, parts)
    assert torch.allclose(one, two, atol=1e-5)
    model.train(), augmenter.train()
    y = torch.zeros(6, len(cfg.labels))
    torch.nn.functional.binary_cross_entropy_with_logits(
        step_logits(model, features, augmenter, x, lengths, parts), y).backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.parameters())
