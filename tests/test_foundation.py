"""Features, model, checkpoint and classifier: shapes, equalities, refusals."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from drumclassifier import AudioError, CheckpointError, ConfigError, DrumClassifier
from drumclassifier.checkpoint import save_checkpoint
from drumclassifier.config import load_model_config
from drumclassifier.features import LogMel
from drumclassifier.model import CRNN

from .conftest import SR, hihat_like, kick_like


def test_shapes_through_model():
    cfg = load_model_config("configs/model.yaml")
    fe, net = LogMel(cfg).eval(), CRNN(cfg).eval()
    x = torch.zeros(3, 2, cfg.window_samples)
    x[:, :, :5000] = torch.randn(3, 2, 5000) * 0.1
    feats, frames = fe(x, torch.tensor([5000, 5000, 5000]))
    assert feats.shape == (3, 2, cfg.features.n_mels, 20)  # ceil(5000 / 256) frames
    assert net(feats, frames).shape == (3, len(cfg.labels))
    assert net.embed(feats, frames).shape == (3, cfg.net.time_rnn_hidden)


def test_model_yaml_equals_builtin_defaults():
    # configs/model.yaml mirrors ModelConfig's defaults with comments: the two stay equal
    from drumclassifier.classes import CLASSES
    from drumclassifier.config import ModelConfig
    assert load_model_config("configs/model.yaml") == ModelConfig()
    assert ModelConfig().labels == list(CLASSES)


def test_silence_features_are_zero():
    cfg = load_model_config()
    feats, _ = LogMel(cfg)(torch.zeros(1, 2, 4096), torch.tensor([4096]))
    assert feats.abs().max() == 0


def test_padded_window_equals_unpadded(tiny_checkpoint):
    clf = DrumClassifier(tiny_checkpoint, device="cpu")
    hit = kick_like(dur_s=0.3)
    padded = np.zeros(4 * SR, np.float32)
    padded[:len(hit)] = hit
    a = clf.classify(hit, SR).probs
    b = clf.classify(padded, SR).probs
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-6)


def test_batch_equals_one_by_one(tiny_checkpoint):
    clf = DrumClassifier(tiny_checkpoint, device="cpu")
    items = [kick_like(dur_s=0.5), hihat_like(dur_s=0.05), kick_like(dur_s=0.01)]
    batch = clf.classify(items, SR)
    for item, r in zip(items, batch):
        single = clf.classify(item, SR)
        for k in r.probs:
            assert r.probs[k] == pytest.approx(single.probs[k], abs=1e-5)


def test_result_fields(tiny_checkpoint):
    r = DrumClassifier(tiny_checkpoint, device="cpu").classify(kick_like(), SR)
    assert r.label in r.probs and r.confidence == max(r.probs.values())
    assert set(r.probs) == {"kick", "snare", "hihat", "toms", "cymbals"}


def test_stereo_and_multichannel_and_resampling(tiny_checkpoint):
    clf = DrumClassifier(tiny_checkpoint, device="cpu")
    mono = kick_like(sr=22050)
    r1 = clf.classify(mono, 22050)
    r2 = clf.classify(np.stack([mono, mono]), 22050)
    assert r1.probs == pytest.approx(r2.probs, abs=1e-6)  # mono is duplicated to stereo
    six = np.stack([mono] * 6)
    assert clf.classify(six, 22050).label in clf.labels


@pytest.mark.parametrize("bad,reason", [
    (np.zeros(1000, np.float32), "silent"),
    (np.array([], np.float32), "zero length"),
    (np.array([0.1, np.nan, 0.2], np.float32), "NaN"),
    (np.array([0.1, np.inf, 0.2], np.float32), "NaN or infinite"),
])
def test_bad_waveforms_refused(tiny_checkpoint, bad, reason):
    with pytest.raises(AudioError, match=reason):
        DrumClassifier(tiny_checkpoint, device="cpu").classify(bad, SR)


def test_config_typo_is_an_error(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("sample_rate_hz: 44100\nfeatures:\n  n_mel: 64\n")
    with pytest.raises(ConfigError, match="n_mel"):
        load_model_config(p)
    p.write_text("sample_rate_hz: fast\n")
    with pytest.raises(ConfigError, match="sample_rate_hz"):
        load_model_config(p)


def test_checkpoint_config_mismatch_refused(tiny_checkpoint):
    # configs/model.yaml describes the default (bigger) network, not the tiny one
    with pytest.raises(CheckpointError, match="conv_channels"):
        DrumClassifier(tiny_checkpoint, "configs/model.yaml", device="cpu")


def test_weights_for_another_architecture_refused(tmp_path):
    cfg = load_model_config()
    other = load_model_config({"net": {"time_rnn_hidden": 16}})
    path = tmp_path / "wrong.pt"
    save_checkpoint(path, CRNN(other).state_dict(), cfg)  # weights do not fit the stored config
    with pytest.raises(CheckpointError, match="do not fit"):
        DrumClassifier(path, device="cpu")


def test_truncated_checkpoint_refused(tiny_checkpoint, tmp_path):
    data = tiny_checkpoint.read_bytes()
    bad = tmp_path / "trunc.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        DrumClassifier(bad, device="cpu")


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_code_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": "drumclassifier", "x": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        DrumClassifier(path, device="cpu")
    assert "code ran" not in capsys.readouterr().out


def test_missing_weights_file_message(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        DrumClassifier(tmp_path / "nope.pt")


@pytest.mark.parametrize("fmt,subtype,ext", [
    ("WAV", "PCM_16", ".wav"), ("WAV", "PCM_24", ".wav"), ("WAV", "FLOAT", ".wav"),
    ("FLAC", "PCM_16", ".flac"), ("OGG", "VORBIS", ".ogg"), ("MP3", "MPEG_LAYER_III", ".mp3"),
    ("AIFF", "PCM_16", ".aiff"),
])
def test_every_format_reads(tiny_checkpoint, tmp_path, fmt, subtype, ext):
    path = tmp_path / f"hit{ext}"
    sf.write(path, np.stack([kick_like(), kick_like()], 1), SR, format=fmt, subtype=subtype)
    r = DrumClassifier(tiny_checkpoint, device="cpu").classify_from_path(path)
    assert r.path == str(path) and r.label in r.probs


def test_long_file_is_cut_to_window(tiny_checkpoint, tmp_path):
    from drumclassifier.audio import load
    path = tmp_path / "long.wav"
    sf.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, SR * 10).astype(np.float32), SR)
    assert load(path, SR, 4.0).shape == (2, 4 * SR)


def test_model_reads_only_the_first_analysis_seconds(tiny_checkpoint):
    # the model is trained on hits of at most analysis_s (1 s); what follows is not read
    clf = DrumClassifier(tiny_checkpoint, device="cpu")
    n = clf.cfg.analysis_samples
    a = np.zeros(3 * SR, np.float32)
    a[:len(kick_like())] = kick_like()
    b = a.copy()
    b[n:] = hihat_like(dur_s=2.0)[: 3 * SR - n]
    assert clf.classify(a, SR).probs == clf.classify(b, SR).probs


def test_ensemble_averages_member_probabilities(tiny_checkpoint, tmp_path):
    """An ensemble checkpoint of two seeds answers the mean of the two models' probabilities."""
    from drumclassifier.checkpoint import ensemble_checkpoint, read_checkpoint

    cfg = load_model_config(read_checkpoint(tiny_checkpoint)["config"])
    torch.manual_seed(1)
    other = save_checkpoint(tmp_path / "other.pt", CRNN(cfg).state_dict(), cfg)
    ens = ensemble_checkpoint([tiny_checkpoint, other], tmp_path / "ens.pt", thresholds=[0.3] * 5)
    waves = [torch.from_numpy(np.stack([kick_like()] * 2)), torch.from_numpy(np.stack([hihat_like()] * 2))]
    p1 = DrumClassifier(tiny_checkpoint).predict(waves)
    p2 = DrumClassifier(other).predict(waves)
    e = DrumClassifier(ens)
    assert e.cfg.net.members == 2 and e.thresholds.tolist() == pytest.approx([0.3] * 5)
    assert not torch.allclose(p1, p2)
    assert torch.allclose(e.predict(waves), (p1 + p2) / 2, atol=1e-5)
    assert e.embed(waves).shape == (2, 2 * cfg.net.time_rnn_hidden)
    with pytest.raises(CheckpointError, match="exists"):
        ensemble_checkpoint([tiny_checkpoint, other], ens)  # never overwrites
    with pytest.raises(CheckpointError, match="already an ensemble"):
        ensemble_checkpoint([ens, other], tmp_path / "e2.pt")


def test_temperature_scales_logits(tiny_checkpoint, tmp_path):
    """temperature T gives sigmoid(logit / T); a config file may set it like thresholds."""
    waves = [torch.from_numpy(np.stack([kick_like()] * 2))]
    p1 = DrumClassifier(tiny_checkpoint).predict(waves)
    cfg = tmp_path / "t.yaml"
    import yaml
    cfg.write_text(yaml.safe_dump({"net": {"conv_channels": [4, 8, 8], "freq_rnn_hidden": 8,
                                           "time_rnn_hidden": 8, "linear_hidden": [8, 8]},
                                   "temperature": 2.0}))
    p2 = DrumClassifier(tiny_checkpoint, cfg).predict(waves)
    logit = torch.log(p1) - torch.log1p(-p1)
    assert torch.allclose(p2, torch.sigmoid(logit / 2), atol=1e-5)
    cfg.write_text("temperature: 0\n")
    with pytest.raises(ConfigError, match="temperature"):
        load_model_config(cfg)


# --------------------------------------------------------------------------- removed options

def test_checkpoint_naming_removed_options_off_loads_unchanged(tiny_checkpoint, tmp_path):
    # checkpoints written while the PCEN / band-mean front ends existed store features.norm
    # none and their settings (the shipped one does): read, those keys ignored, same outputs
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt["config"]["features"] |= {"norm": "none", "band_mean_min_frames": 1,
                                   "pcen": {"time_constant_s": 0.4, "learnable": False}}
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    clf_old, clf_new = DrumClassifier(old, device="cpu"), DrumClassifier(tiny_checkpoint, device="cpu")
    assert clf_old.cfg == clf_new.cfg
    for item in (kick_like(), hihat_like()):
        assert clf_old.classify(item, SR).probs == clf_new.classify(item, SR).probs


@pytest.mark.parametrize("norm", ["pcen", "band_mean"])
def test_checkpoint_needing_a_removed_option_is_refused(tiny_checkpoint, tmp_path, norm):
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt["config"]["features"]["norm"] = norm
    path = tmp_path / f"{norm}.pt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=f"features.norm: '{norm}': this option was removed "
                                              r"after it was measured not to help.*9b3c41f"):
        DrumClassifier(path, device="cpu")
    with pytest.raises(ConfigError, match="features.norm: .* removed"):
        load_model_config({"features": {"norm": norm}})
