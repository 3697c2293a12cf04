"""Property-based tests (hypothesis) of the audio loader, the feature front end + model and
the onset detector, on generated waveforms of any length, channel count, rate and level.

Properties:
- classify: any finite waveform (0..20000 samples, 1..8 channels, any float32 level from
  subnormal to 3e38, rate 8 kHz..192 kHz) either gives a Result whose probabilities are
  finite and in [0, 1], or raises the project's own DrumClassifierError; nothing else.
- load: the same through a file (float WAV), via audio.load.
- onsets: sorted, unique, inside the signal, detected no earlier than they happen; block
  by block equals whole signal for any block sizes; silence and constant signals
  (any level, any length) give no onsets.
Examples are few (max_examples 30-40) to keep the CPU for the other jobs on this machine.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from drumclassifier import DrumClassifier
from drumclassifier.audio import load
from drumclassifier.errors import DrumClassifierError
from realtime.onset import OnsetDetector

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
F32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
LEVELS = st.sampled_from([0.0, 1e-40, 1e-7, 1e-3, 0.5, 1.0, 1e3, 1e20, 3e38])
RATES = st.sampled_from([8000, 22050, 44100, 48000, 96000, 192000])


@st.composite
def waveforms(draw, max_len: int = 20000, max_ch: int = 8):
    """[channels, n] float32, all finite: exact hypothesis arrays when short, else one of
    noise / constant / impulse / sine / clipped square at a drawn level, plus spikes."""
    ch = draw(st.integers(1, max_ch))
    n = draw(st.integers(0, max_len))
    if n <= 48:
        return draw(hnp.arrays(np.float32, (ch, n), elements=F32))
    level = draw(LEVELS)
    kind = draw(st.sampled_from(["noise", "constant", "impulse", "sine", "square"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t = np.arange(n)
    if kind == "noise":
        x = rng.uniform(-1, 1, (ch, n))
    elif kind == "constant":
        x = np.ones((ch, n))
    elif kind == "impulse":
        x = np.zeros((ch, n))
        x[:, draw(st.integers(0, n - 1))] = 1
    elif kind == "sine":
        x = np.tile(np.sin(2 * np.pi * draw(st.floats(1, 20000)) * t / 44100), (ch, 1))
    else:
        x = np.tile(np.sign(np.sin(2 * np.pi * 100 * t / 44100)), (ch, 1))
    x = (x * level).astype(np.float32)
    for v in draw(st.lists(F32, max_size=3)):      # a few arbitrary finite spikes
        x[rng.integers(ch), rng.integers(n)] = v
    return x


@pytest.fixture(scope="module")
def clf(tiny_checkpoint):
    return DrumClassifier(tiny_checkpoint, device="cpu")


def check_result(r, labels) -> None:
    assert set(r.probs) == set(labels) and r.label in labels
    p = np.array(list(r.probs.values()))
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all(), r.probs
    assert r.confidence == max(r.probs.values())


@SETTINGS
@given(x=waveforms(), rate=RATES)
def test_classify_any_finite_waveform_or_own_error(clf, x, rate):
    try:
        r = clf.classify(x, rate)
    except DrumClassifierError:
        return
    check_result(r, clf.labels)


@settings(SETTINGS, max_examples=30)
@given(x=waveforms(max_len=8000, max_ch=6), rate=RATES)
def test_load_any_float_wav_or_own_error(clf, x, rate):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.wav"
        sf.write(path, x.T, rate, subtype="FLOAT")
        try:
            w = load(path, clf.cfg.sample_rate_hz, clf.cfg.window_s)
        except DrumClassifierError as e:
            assert str(path) in str(e)
            return
    assert w.shape[0] == 2 and 0 < w.shape[1] <= clf.cfg.analysis_samples
    check_result(clf.results(clf.predict([w]))[0], clf.labels)


# ---- onset detector ---------------------------------------------------------------------
def check_onsets(onsets, n: int) -> None:
    s = [o.sample for o in onsets]
    assert s == sorted(s) and len(set(s)) == len(s)
    assert all(0 <= o.sample < n for o in onsets), (s, n)
    assert all(o.sample < o.detect_sample <= n for o in onsets)
    assert all(np.isfinite(o.strength) for o in onsets)


@SETTINGS
@given(x=waveforms(max_len=20000, max_ch=2), rate=st.sampled_from([22050, 44100, 48000]),
       blocks=st.lists(st.integers(1, 3000), min_size=1, max_size=8))
def test_onsets_sorted_unique_inside_and_blockwise_equal(x, rate, blocks):
    mono = x.T
    det = OnsetDetector(rate)
    whole = det.process(mono)
    check_onsets(whole, len(mono))
    det.reset()
    online, pos, i = [], 0, 0
    while pos < len(mono):
        b = blocks[i % len(blocks)]
        online += det.process_online(mono[pos:pos + b])
        pos, i = pos + b, i + 1
    assert [(o.sample, o.detect_sample) for o in online] == \
        [(o.sample, o.detect_sample) for o in whole]


@SETTINGS
@given(n=st.integers(0, 20000), value=st.one_of(st.just(0.0), F32),
       ch=st.integers(1, 4), rate=st.sampled_from([8000, 44100, 96000]))
def test_silence_and_constant_signals_give_no_onsets(n, value, ch, rate):
    x = np.full((n, ch), value, np.float32)
    # a live input opened on a steady signal (a file's first sample is preceded by
    # silence, so there a nonzero constant starts with one onset: test_realtime)
    assert OnsetDetector(rate, start_silent=False).process(x) == []
