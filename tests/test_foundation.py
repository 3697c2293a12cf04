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


# --------------------------------------------------------------------------- channel normalisation

def _logmel_batch(lengths, seed=0):
    """Log-mel of decaying noise bursts of the given lengths (samples): feats, frames."""
    torch.manual_seed(seed)
    cfg = load_model_config()
    n = max(lengths)
    t = torch.arange(n) / SR
    x = torch.randn(len(lengths), 2, n) * torch.exp(-t / 0.05)
    lens = torch.tensor(lengths)
    x = x * (torch.arange(n)[None, None, :] < lens[:, None, None])
    return LogMel(cfg)(x, lens)


def _norm(kind, **features):
    from drumclassifier.features import channel_norm
    return channel_norm(load_model_config({"features": {"norm": kind, **features}}))


def test_band_mean_zero_mean_per_band_and_padding_invariant():
    feats, frames = _logmel_batch([20000, 3000, 200])  # 200 samples: one frame
    out = _norm("band_mean")(feats, frames)
    for b in range(3):
        f = int(frames[b])
        torch.testing.assert_close(out[b, :, :, :f].mean(-1), torch.zeros(2, 64), atol=1e-4, rtol=0)
        assert (out[b, :, :, f:] == 0).all()
        alone = _norm("band_mean")(feats[b:b + 1, :, :, :f], frames[b:b + 1])  # no padding at all
        torch.testing.assert_close(out[b:b + 1, :, :, :f], alone, atol=1e-5, rtol=0)
    # one frame (the 5 ms live context): plain mean removal leaves nothing; min_frames keeps part
    assert out[2, :, :, 0].abs().max() < 1e-5
    shrunk = _norm("band_mean", band_mean_min_frames=4)(feats, frames)
    torch.testing.assert_close(shrunk[2, :, :, 0], feats[2, :, :, 0] * 0.75)


def test_band_mean_removes_a_fixed_eq():
    feats, frames = _logmel_batch([20000])
    tilt = torch.linspace(-3.0, 3.0, 64)[None, None, :, None]  # a fixed gain per band (log domain)
    norm = _norm("band_mean")
    torch.testing.assert_close(norm(feats + tilt, frames), norm(feats, frames), atol=1e-4, rtol=0)


def test_pcen_is_causal_and_padding_invariant():
    feats, frames = _logmel_batch([20000, 3000])
    pcen = _norm("pcen")
    out = pcen(feats, frames)
    assert torch.isfinite(out).all() and (out[1, :, :, int(frames[1]):] == 0).all()
    later = feats.clone()
    later[:, :, :, 10:] = torch.rand_like(later[:, :, :, 10:]) * 20  # change every later frame
    torch.testing.assert_close(pcen(later, frames)[..., :10], out[..., :10], atol=0, rtol=0)
    f = int(frames[1])
    alone = pcen(feats[1:2, :, :, :f], frames[1:2])
    torch.testing.assert_close(out[1:2, :, :, :f], alone, atol=1e-5, rtol=1e-5)
    assert _norm("pcen")(torch.zeros(1, 2, 64, 5), torch.tensor([5])).abs().max() == 0  # silence


def test_pcen_normalises_level_per_band():
    # stationary noise at two levels 40 dB apart: once the smoother has caught up, alpha = 1
    # divides the level out (the log-mel differs by 9.2 everywhere)
    torch.manual_seed(0)
    cfg = load_model_config()
    x = torch.randn(1, 2, SR) * 0.3
    lens = torch.tensor([SR])
    pcen = _norm("pcen", pcen={"alpha": 1.0, "time_constant_s": 0.05})
    quiet, loud = (pcen(*LogMel(cfg)(x * g, lens)) for g in (0.01, 1.0))
    late = slice(100, 170)  # frames after 10 time constants
    torch.testing.assert_close(loud[..., 2:, late], quiet[..., 2:, late], atol=0.02, rtol=0.02)


def test_pcen_learnable_parameters_train_and_travel_in_the_state_dict():
    cfg = load_model_config({"features": {"norm": "pcen", "pcen": {"learnable": True}}})
    net = CRNN(cfg)
    assert net.state_dict()["front_norm.log_params"].shape == (4, 64)
    feats, frames = _logmel_batch([5000, 2000])
    net(feats, frames).sum().backward()
    grad = net.front_norm.log_params.grad
    assert grad is not None and grad.abs().sum() > 0 and torch.isfinite(grad).all()
    fixed = CRNN(load_model_config({"features": {"norm": "pcen"}}))
    assert set(fixed.state_dict()) == set(CRNN(load_model_config()).state_dict())


@pytest.mark.parametrize("norm", ["band_mean", "pcen"])
def test_normalised_model_batch_equals_one_by_one(norm, tmp_path):
    cfg = load_model_config({"features": {"norm": norm},
                             "net": {"conv_channels": [4, 8, 8], "freq_rnn_hidden": 8,
                                     "time_rnn_hidden": 8, "linear_hidden": [8, 8]}})
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "n.pt", CRNN(cfg).state_dict(), cfg)
    clf = DrumClassifier(path, device="cpu")
    items = [kick_like(dur_s=0.5), hihat_like(dur_s=0.05), kick_like(dur_s=0.004)]
    for item, r in zip(items, clf.classify(items, SR)):
        single = clf.classify(item, SR)
        padded = np.zeros(2 * SR, np.float32)
        padded[:len(item)] = item
        for k in r.probs:
            assert r.probs[k] == pytest.approx(single.probs[k], abs=1e-5)
            assert clf.classify(padded, SR).probs[k] == pytest.approx(single.probs[k], abs=1e-5)
    with pytest.raises(CheckpointError, match="norm"):  # weights trained with a norm need it
        DrumClassifier(path, "configs/model.yaml", device="cpu")


def test_checkpoint_from_before_the_norm_options_loads_unchanged(tiny_checkpoint, tmp_path):
    # a checkpoint written before features.norm existed has no such keys in its config
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    for key in ("norm", "band_mean_min_frames", "pcen"):
        ckpt["config"]["features"].pop(key, None)
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    clf_old, clf_new = DrumClassifier(old, device="cpu"), DrumClassifier(tiny_checkpoint, device="cpu")
    assert clf_old.cfg.features.norm == "none" and clf_old.model.front_norm is None
    for item in (kick_like(), hihat_like()):
        assert clf_old.classify(item, SR).probs == clf_new.classify(item, SR).probs


def test_pcen_smoother_is_the_first_order_recursion():
    from torchaudio.functional import lfilter

    from drumclassifier.features import PCEN
    s = torch.tensor([[0.02], [0.3]], dtype=torch.float64)  # two bands
    e = torch.rand(3, 2, 50, dtype=torch.float64)  # [B, F, T]
    got = torch.einsum("bfj,ftj->bft", e, PCEN.smoother(s, 50))
    ref = lfilter(e, torch.cat([torch.ones_like(s), s - 1], -1), torch.cat([s, 0 * s], -1),
                  clamp=False, batching=True)
    torch.testing.assert_close(got, ref)
