"""Real-time engine: ring buffer, onsets, slicer, worker, sinks, engine on files, CLI.

The model here is the UNTRAINED tiny checkpoint (tests/conftest.py): these tests check
plumbing, event timing, counts, latency bookkeeping and outputs, never label correctness.
Hit times are known because the signals are generated (bench/sounds.py); the
stated tolerance is TOLERANCE_S. No test asserts a timing threshold.
"""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from bench.sounds import burst_signal
from drumclassifier.cli import main
from drumclassifier.errors import ConfigError
from realtime import (
    Engine,
    EventsCsvSink,
    FileSource,
    MidiFileSink,
    MidiPortSink,
    OnsetDetector,
    RealtimeConfig,
    RingBuffer,
    load_realtime_config,
    velocity_from_db,
)
from realtime.classify import Classify
from realtime.worker import HitQueue

from .conftest import SR
from .realtime_helpers import TOLERANCE_S, Collect, kick_over_kick_tail, match, write_bursts

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def clf(tiny_checkpoint):
    from drumclassifier import DrumClassifier
    return DrumClassifier(tiny_checkpoint, None, "cpu")


def hit_times(events) -> list[float]:
    return sorted({e.time_s for e in events})


class FakeMidiOut:
    """Stands in for rtmidi.MidiOut: records messages."""

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()

    def send_message(self, m):
        with self.lock:
            self.messages.append(list(m))


# ---- config ---------------------------------------------------------------------------
def test_yaml_equals_builtin_defaults():
    assert asdict(load_realtime_config(REPO / "configs" / "realtime.yaml")) == \
        asdict(RealtimeConfig())


def test_config_typo_and_bad_values_are_errors(tmp_path):
    p = tmp_path / "rt.yaml"
    p.write_text("slicer:\n  context_msec: 10\n")
    with pytest.raises(ConfigError, match="context_msec"):
        load_realtime_config(p)
    with pytest.raises(ConfigError, match="drop_policy"):
        load_realtime_config({"worker": {"drop_policy": "random"}})
    with pytest.raises(ConfigError, match="sure_of"):
        load_realtime_config({"decision": {"sure_of": "drum"}})
    with pytest.raises(ConfigError, match="torch_threads"):
        load_realtime_config({"worker": {"torch_threads": -1}})


def test_engine_sets_the_model_threads(tiny_checkpoint, tmp_path):
    """worker.torch_threads is applied by the engine (the live process's model call)."""
    import torch

    from drumclassifier import DrumClassifier
    path = tmp_path / "b.wav"
    write_bursts(path)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        Engine(DrumClassifier(tiny_checkpoint, device="cpu"), FileSource(path, blocksize=128, fast=True),
               [], load_realtime_config({"worker": {"torch_threads": 1}}))
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        Engine(DrumClassifier(tiny_checkpoint, device="cpu"), FileSource(path, blocksize=128, fast=True),
               [], load_realtime_config({"worker": {"torch_threads": 0}}))
        assert torch.get_num_threads() == 2  # 0 = leave torch's setting alone
    finally:
        torch.set_num_threads(before)


# ---- ring buffer ----------------------------------------------------------------------
def test_ringbuffer_wraps_keeps_order_and_counts_overflow():
    rb = RingBuffer(100, 1)
    data = np.arange(1000, dtype=np.float32)[:, None]
    out = np.zeros((64, 1), np.float32)
    got = []
    for i in range(0, 300, 30):                 # reader keeps up: wraps several times
        assert rb.write(data[i:i + 30]) == 30
        n, start, gap = rb.read_into(out)
        assert gap == 0 and start == i
        got.append(out[:n, 0].copy())
    assert np.array_equal(np.concatenate(got), data[:300, 0])
    assert rb.overflow_frames == 0
    # reader stalls: 150 frames into 100 of space -> 50 lost, counted, gap reported
    rb.write(data[300:380])
    rb.write(data[380:450])
    assert (rb.overflow_frames, rb.overflow_events) == (50, 1)
    n, start, gap = rb.read_into(np.zeros((200, 1), np.float32))
    assert (n, start, gap) == (100, 300, 0)      # what was kept, up to the gap
    rb.write(data[450:460])
    buf = np.zeros((200, 1), np.float32)
    n, start, gap = rb.read_into(buf)
    assert (n, start, gap) == (10, 450, 50)      # the stream clock jumps over the lost frames
    assert np.array_equal(buf[:10, 0], data[450:460, 0])


def test_ringbuffer_int16_is_scaled_and_stamped():
    rb = RingBuffer(64, 2)
    rb.write(np.array([[16384, -32768]] * 4, np.int16), now=1.5)
    out = np.zeros((8, 2), np.float32)
    assert rb.read_into(out)[0] == 4
    assert np.allclose(out[:4], [[0.5, -1.0]] * 4)
    assert rb.block_end(0) == 4 and rb.arrival_time(3) == 1.5


# ---- onsets ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed,music", [(0, False), (1, False), (2, False), (0, True)])
def test_onsets_offline_equal_online(seed, music):
    x, _ = burst_signal(seconds=3, seed=seed)
    cfg = load_realtime_config(REPO / "configs" / "realtime-music.yaml").onset if music else None
    whole = OnsetDetector(SR, cfg).process(x)
    rng = np.random.default_rng(seed)
    det, online, pos = OnsetDetector(SR, cfg), [], 0
    while pos < len(x):
        k = int(rng.integers(1, 1500))
        online += det.process_online(x[pos:pos + k])
        pos += k
    assert len(whole) > 5
    assert online == whole      # same samples, detection points and strengths, bit for bit


@pytest.mark.parametrize("kind", ["zeros", "noise", "dc", "sine"])
def test_silence_and_steady_signals_give_no_onsets(kind):
    """A live input opened on a steady signal: no onset at all (nothing was struck)."""
    n = 2 * SR
    rng = np.random.default_rng(0)
    x = {"zeros": np.zeros(n),
         "noise": 10 ** (-70 / 20) * rng.standard_normal(n),
         "dc": np.full(n, 0.25),
         "sine": 0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / SR)}[kind].astype(np.float32)
    assert OnsetDetector(SR, start_silent=False).process(x) == []
    # in a file, silence precedes the first sample: a tone that starts there is one onset
    # (the model then says whether it is a drum), and a steady signal gives no other
    file_onsets = OnsetDetector(SR).process(x)
    assert [o.sample for o in file_onsets] == ([] if kind in ("zeros", "noise") else [0])


def test_a_file_that_starts_with_a_hit_keeps_it():
    """examples/groove.flac opens with crash + kick + hihat at sample 0: an onset at 0."""
    import soundfile as sf
    x, sr = sf.read(EXAMPLES / "groove.flac", dtype="float32")
    first = OnsetDetector(sr).process(x)[0]
    assert first.sample == 0
    # after 1000 samples of silence it is found 1000 samples later
    pad = np.zeros((1000,) + x.shape[1:], np.float32)   # (the example is mono)
    assert OnsetDetector(sr).process(np.concatenate([pad, x]))[0].sample == pytest.approx(
        1000, abs=16)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_onsets_at_known_hit_times(seed):
    x, truth = burst_signal(seconds=4, seed=seed)
    onsets = OnsetDetector(SR).process(x)
    errors = match([o.sample / SR for o in onsets], truth)
    assert max(errors) <= TOLERANCE_S, errors          # every hit found, the flam's two too
    assert len(onsets) <= len(truth) + 2               # few spurious onsets
    for o in onsets:                                    # causal: reported after the onset
        assert o.detect_sample > o.sample and o.strength > 0


def test_a_quieter_take_finds_the_same_hits():
    # a mic set with 30 dB of headroom: the same bursts at -30 dB, every hit still found.
    # Without the detector's gain (gain_max_db 0) log1p(log_mul * magnitude) is nearly
    # linear at this level and the soft hits are lost
    import dataclasses

    from realtime.config import OnsetConfig
    x, truth = burst_signal(seconds=4, seed=1)
    loud = OnsetDetector(SR).process(x)
    quiet = OnsetDetector(SR).process(x * 10 ** (-30 / 20))
    no_gain = dataclasses.replace(OnsetConfig(), gain_max_db=0.0)
    assert len(OnsetDetector(SR, no_gain).process(x * 10 ** (-30 / 20))) < len(truth)
    assert max(match([o.sample / SR for o in quiet], truth)) <= TOLERANCE_S
    assert len(quiet) == len(loud) == len(truth)


# ---- worker pieces --------------------------------------------------------------------
def test_velocity_curve_is_monotone_and_bounded():
    cfg = RealtimeConfig().velocity
    vs = [velocity_from_db(db, cfg) for db in np.linspace(-90, 6, 200)]
    assert vs[0] == 1 and vs[-1] == 127 and vs == sorted(vs)
    soft = RealtimeConfig().velocity
    soft.gamma = 0.5
    assert velocity_from_db(-30, soft) > velocity_from_db(-30, cfg)


def test_queue_drop_policy_is_explicit_and_counted():
    from realtime.slicer import Hit
    hits = [Hit(i, None, np.zeros((1, 1)), 0.0, 0) for i in range(5)]
    q = HitQueue(3, "oldest")
    assert [q.put(h) for h in hits] == [True, True, True, False, False]
    assert q.dropped == 2 and [h.index for h in q.get_batch(10)] == [2, 3, 4]
    q = HitQueue(3, "newest")
    for h in hits:
        q.put(h)
    assert q.dropped == 2 and [h.index for h in q.get_batch(10)] == [0, 1, 2]
    q.close()
    assert q.get_batch(10) is None


def test_one_event_per_class_above_threshold_else_top_class(clf):
    import torch
    x, truth = burst_signal(seconds=1.0, flam=False)
    hits = []
    from realtime.slicer import Hit
    for i, t in enumerate(truth):
        hits.append(Hit(i, None, x[t:t + 1323], -6.0, t + 1323))
    classify = Classify(clf, SR)
    saved = clf.thresholds.clone()
    try:
        clf.thresholds = torch.zeros(5)            # every class present: five events per hit
        _, labels = classify(hits)
        assert all(len(ls) == 5 for ls in labels)
        clf.thresholds = torch.full((5,), 1.01)    # none present: the top class alone
        _, labels = classify(hits)
        assert all(len(ls) == 1 for ls in labels)
        probs = clf.predict([torch.from_numpy(np.ascontiguousarray(h.audio.T)) for h in hits])
        assert [ls[0][0] for ls in labels] == [clf.labels[int(p.argmax())] for p in probs]
        # a model trained on groove onsets with no drum (negatives): none present = no note
        clf.cfg.rejects_non_drums = True
        _, labels = classify(hits)
        assert labels == [[] for _ in hits]
        clf.thresholds = torch.zeros(5)
        _, labels = classify(hits)
        assert all(len(ls) == 5 for ls in labels)
    finally:
        clf.thresholds = saved
        clf.cfg.rejects_non_drums = False


def test_late_look_sends_the_late_classes_from_the_later_rung_only(clf):
    """slicer.late_look_ms: the first rung sends every class but the late ones and keeps
    the hit going; the late rung sends only the late ones; a hit whose stream ended before
    its first rung was complete sends all at once."""
    import torch

    from realtime.slicer import Hit
    from realtime.worker import More
    x, _ = burst_signal(seconds=1.0, flam=False)
    n20, n200 = SR * 20 // 1000, SR * 200 // 1000
    first = Hit(0, None, x[:n20], -6.0, n20, final=False)
    late = Hit(0, None, x[:n200], -6.0, n200, final=True)
    cut = Hit(1, None, x[:n20 // 2], -6.0, n20 // 2, final=True, partial=True)
    classify = Classify(clf, SR, late_classes=["cymbals"], first_ms=20)
    saved = clf.thresholds.clone()
    try:
        clf.thresholds = torch.zeros(5)                       # every class present
        _, (a, b, c) = classify([first, late, cut])
        assert isinstance(a, More) and {lab for lab, _ in a} == {"kick", "snare", "hihat", "toms"}
        assert not isinstance(b, More) and [lab for lab, _ in b] == ["cymbals"]
        assert len(c) == 5 and not isinstance(c, More)
    finally:
        clf.thresholds = saved
    with pytest.raises(ConfigError, match="cowbell"):
        Classify(clf, SR, late_classes=["cowbell"])


def test_band_rise_tells_a_new_kick_from_a_ringing_one():
    from realtime.slicer import RISE_BANDS_HZ, band_rises_db

    def kick_rise(hit, before):
        return band_rises_db(hit, before, SR, {"kick": RISE_BANDS_HZ["kick"]})["kick"]
    # a hihat struck 100 ms into a kick: the kick's band falls (the model hears kick there),
    # the hihat's rises
    hit, before = kick_over_kick_tail("hihat")
    rise = band_rises_db(hit, before, SR, RISE_BANDS_HZ)
    assert rise["kick"] < 0 and rise["hihat"] > 10
    # a second kick over the first one's tail, and a first kick over silence: it rises
    hit, before = kick_over_kick_tail("kick")
    assert kick_rise(hit, before) > 3
    assert kick_rise(hit, np.zeros((0, 2), np.float32)) > 30
    assert kick_rise(hit, None) > 30
    # `before` shorter than the window (a file's first 5 ms): silence in front of it
    assert kick_rise(hit, before[-SR // 200:]) > 3
    # no evidence, nothing held back: a slice too short, a band above the Nyquist frequency
    assert kick_rise(hit[:8], before) == float("inf")
    assert band_rises_db(hit, before, 8000, {"hihat": RISE_BANDS_HZ["hihat"]})["hihat"] == float("inf")


def test_a_kick_ringing_from_before_is_not_sent_again(clf):
    """decision.rise_classes: with every class present (thresholds 0), the hihat struck
    over a kick's tail is sent without the kick (and without the snare, whose band did not
    rise either), the second kick with it; [] turns the check off."""
    import torch

    from realtime.slicer import Hit
    audio, before = kick_over_kick_tail("hihat")
    over_tail = Hit(0, None, audio, -6.0, SR // 50, before=before)
    audio, before = kick_over_kick_tail("kick")
    new_kick = Hit(1, None, audio, -6.0, SR // 50, before=before)
    saved = clf.thresholds.clone()
    try:
        clf.thresholds = torch.zeros(5)
        _, (a, b) = Classify(clf, SR)([over_tail, new_kick])
        assert "kick" not in {lab for lab, _ in a} and {"hihat", "toms"} <= {lab for lab, _ in a}
        assert "kick" in {lab for lab, _ in b}
        _, (a, _) = Classify(clf, SR, rise_classes=[])([over_tail, new_kick])
        assert {lab for lab, _ in a} == set(clf.labels)
    finally:
        clf.thresholds = saved
    with pytest.raises(ConfigError, match="toms"):
        Classify(clf, SR, rise_classes=["toms"])      # no band of its own
    with pytest.raises(ConfigError, match="rise_classes: toms"):
        load_realtime_config(None, {"decision": {"rise_classes": ["toms"]}})


def test_late_look_config_is_checked():
    cfg = load_realtime_config(None, {"slicer": {"late_look_ms": 200}})
    assert cfg.slicer.contexts_ms == [20.0, 200.0] and cfg.decision.late_classes == ["cymbals"]
    with pytest.raises(ConfigError, match="anytime_ms"):
        load_realtime_config(None, {"slicer": {"late_look_ms": 200, "anytime_ms": [5, 10]}})
    with pytest.raises(ConfigError, match="longer than context_ms"):
        load_realtime_config(None, {"slicer": {"late_look_ms": 10}})
    with pytest.raises(ConfigError, match="needs decision.late_classes"):
        load_realtime_config(None, {"slicer": {"late_look_ms": 200}, "decision": {"late_classes": []}})
    offline = load_realtime_config(REPO / "configs" / "realtime-offline.yaml")
    assert offline.slicer.late_look_ms == 200.0
    both = load_realtime_config([REPO / "configs" / "realtime-music.yaml",
                                 REPO / "configs" / "realtime-offline.yaml"])   # merged, in order
    assert both.slicer.late_look_ms == 200.0 and both.onset.band_quantile == 0.75


def test_late_look_on_a_file_changes_only_the_late_classes():
    """The shipped model on examples/groove.flac: with the offline config the cymbals come
    from the 200 ms look, every other event is the one the default sends at 20 ms."""
    from drumclassifier import DrumClassifier
    shipped = DrumClassifier(device="cpu")
    base, late = Collect(), Collect()
    run_file(shipped, EXAMPLES / "groove.flac", [base])
    eng, _ = run_file(shipped, EXAMPLES / "groove.flac", [late],
                      load_realtime_config(REPO / "configs" / "realtime-offline.yaml"))
    key = lambda es: sorted((round(e.time_s, 4), e.label) for e in es)      # noqa: E731
    assert key(e for e in late.events if e.label != "cymbals") == \
        key(e for e in base.events if e.label != "cymbals")
    cymbals = [e for e in late.events if e.label == "cymbals"]
    assert cymbals and all(e.context_ms >= 199 for e in cymbals)
    assert all(e.context_ms < 21 for e in late.events if e.label != "cymbals")
    assert eng.worker.classified == eng.slicer.hits               # every hit decided once


def test_stream_fast_gives_cymbals_a_late_look_by_default(tmp_path, capsys):
    """A file read --fast with the shipped model: cymbals from the 200 ms look, the rest at
    20 ms, said on stderr; --late-look-ms 0 sends everything at 20 ms; an anytime ladder
    (which cannot have one) gets none and no error."""
    def contexts(*extra):
        out = tmp_path / f"hits{len(list(tmp_path.iterdir()))}.csv"
        assert main(["stream", str(EXAMPLES / "groove.flac"), "--fast", "--events", str(out),
                     "--model-device", "cpu", *extra]) == 0
        rows = list(csv.DictReader(out.open()))
        assert rows
        return {(r["label"], round(float(r["context_ms"]))) for r in rows}
    capsys.readouterr()
    late = contexts("-q")
    assert ("cymbals", 200) in late and all(c == 20 for lab, c in late if lab != "cymbals")
    assert all(c == 200 for lab, c in late if lab == "cymbals")
    contexts()
    assert "cymbals: decided 200 ms after each hit" in capsys.readouterr().err
    assert {c for _, c in contexts("-q", "--late-look-ms", "0")} == {20}
    assert 200 not in {c for _, c in contexts("-q", "--anytime-ms", "10", "20")}


def test_stream_merges_several_rt_configs_in_order(tmp_path):
    """`stream --rt-config A --rt-config B`: the music detector and the late look at once."""
    out = tmp_path / "hits.csv"
    assert main(["stream", str(EXAMPLES / "groove.flac"), "--fast", "-q", "--events", str(out),
                 "--rt-config", str(REPO / "configs" / "realtime-music.yaml"),
                 "--rt-config", str(REPO / "configs" / "realtime-offline.yaml"),
                 "--model-device", "cpu"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert rows and {r["label"] for r in rows if float(r["context_ms"]) > 199} == {"cymbals"}


# ---- the engine on files --------------------------------------------------------------
def run_file(clf, path, sinks, cfg=None, fast=True, **kw):
    eng = Engine(clf, FileSource(path, blocksize=128, fast=fast), sinks, cfg, **kw)
    stats = eng.run()
    return eng, stats


def test_engine_on_a_file_sends_the_hit_at_its_first_sample(clf):
    sink = Collect()
    run_file(clf, EXAMPLES / "groove.flac", [sink])
    assert hit_times(sink.events)[0] == 0.0


def test_engine_hands_each_hit_the_audio_before_its_onset(clf, tmp_path):
    """The model's lead-in on the live path: the worker's hit carries the stream's audio
    just before its onset (a recording classify function stands in for the model here;
    test_grooves checks that a lead-in model reads it)."""
    import soundfile as sf

    from realtime.classify import Classify
    path = tmp_path / "bursts.wav"
    write_bursts(path, seconds=3, seed=5)
    x, _ = sf.read(path, dtype="float32", always_2d=True)
    seen, real = [], Classify(clf, SR)

    def recording(hits):
        seen.extend(hits)
        return real(hits)
    run_file(clf, path, [Collect()], classify=recording)
    assert len(seen) > 3
    for h in seen:
        a = h.onset.sample
        assert len(h.before) == min(a, round(0.05 * SR))
        assert np.allclose(h.before, x[a - len(h.before):a], atol=1e-6)


def test_engine_on_file_finds_hits_at_the_right_times(clf, tmp_path):
    path = tmp_path / "bursts.wav"
    truth = write_bursts(path, seconds=4, seed=3)
    sink = Collect()
    eng, stats = run_file(clf, path, [sink])
    times = hit_times(sink.events)
    assert max(match(times, truth)) <= TOLERANCE_S
    assert stats.hits == len(times) and stats.classified == stats.hits
    assert stats.overflow_frames == 0 and stats.queue_dropped == 0 and not stats.errors
    assert sink.opened and sink.closed
    assert {e.label for e in sink.events} <= set(clf.labels)
    ctx_ms = RealtimeConfig().slicer.context_ms
    for e in sink.events:
        assert 1 <= e.velocity <= 127
        # the stream-time latency holds the context the model waited for, plus processing
        assert e.latency_ms >= ctx_ms and e.latency_ms >= e.detect_ms
        assert e.queue_ms >= 0 and e.infer_ms > 0 and e.wall_latency_ms > 0


def test_paced_and_fast_give_the_same_events(clf, tmp_path):
    path = tmp_path / "short.wav"
    write_bursts(path, seconds=1.2, seed=4)
    fast, paced = Collect(), Collect()
    run_file(clf, path, [fast], fast=True)
    run_file(clf, path, [paced], fast=False)
    key = [(e.time_s, e.label, round(e.confidence, 5), e.velocity) for e in fast.events]
    assert key and key == [(e.time_s, e.label, round(e.confidence, 5), e.velocity)
                           for e in paced.events]


def test_context_ms_sets_the_slice_and_the_latency(clf, tmp_path):
    path = tmp_path / "b.wav"
    write_bursts(path, seconds=1.5, seed=5)
    lat = {}
    for ctx in (10.0, 40.0):
        sink = Collect()
        cfg = load_realtime_config(None, {"slicer": {"context_ms": ctx}})
        run_file(clf, path, [sink], cfg)
        lat[ctx] = min(e.latency_ms - (e.queue_ms + e.infer_ms) for e in sink.events)
        assert lat[ctx] >= ctx
    assert lat[40.0] > lat[10.0]


def test_csv_and_midi_file_outputs(clf, tmp_path):
    import mido
    path = tmp_path / "bursts.wav"
    write_bursts(path, seconds=2.5, seed=6)
    cfg = RealtimeConfig()
    sink = Collect()
    run_file(clf, path, [sink, EventsCsvSink(tmp_path / "ev.csv"),
                         MidiFileSink(tmp_path / "ev.mid", cfg.midi)], cfg)
    rows = list(csv.DictReader((tmp_path / "ev.csv").open()))
    assert list(rows[0]) == ["time_s", "label", "confidence", "velocity", "latency_ms",
                             "wall_latency_ms", "context_ms"]
    assert [(float(r["time_s"]), r["label"], int(r["velocity"])) for r in rows] == \
        [(round(e.time_s, 6), e.label, e.velocity) for e in sink.events]
    mid = mido.MidiFile(tmp_path / "ev.mid")
    t, notes = 0.0, []
    for m in mid:                       # iterating a MidiFile yields delta times in seconds
        t += m.time
        if m.type == "note_on" and m.velocity > 0:
            notes.append((t, m.channel, m.note, m.velocity))
    offs = [m for m in mid if m.type == "note_off"]
    expect = sorted((e.time_s, 9, cfg.midi.notes[e.label], e.velocity) for e in sink.events)
    assert len(notes) == len(expect) == len(offs)
    for (tn, ch, note, vel), (te, ch2, note2, vel2) in zip(sorted(notes), expect):
        assert (ch, note, vel) == (ch2, note2, vel2) and abs(tn - te) < 0.002  # 1 tick = 1 ms


def test_a_file_read_fast_waits_for_a_slow_worker_and_loses_no_hit(clf, tmp_path):
    """`stream --fast` is lossless: with a queue of 2 and a model call that lags, the
    analysis waits for the worker instead of dropping hits."""
    path = tmp_path / "many.wav"
    write_bursts(path, seconds=4, seed=7)
    inner = Classify(clf, SR)

    def slow(hits):
        time.sleep(0.01)
        return inner(hits)
    cfg = load_realtime_config(None, {"worker": {"queue_size": 2, "max_batch": 1}})
    sink = Collect()
    stats = Engine(clf, FileSource(path, blocksize=128, fast=True), [sink], cfg,
                   classify=slow).run()
    assert stats.hits > 10 and stats.queue_dropped == 0
    assert stats.classified == stats.hits and stats.queue_max <= 2
    assert len(hit_times(sink.events)) == stats.hits


def test_slow_worker_never_blocks_the_writer_and_drops_are_counted(clf, tmp_path):
    path = tmp_path / "many.wav"
    write_bursts(path, seconds=6, seed=7)
    release, entered = threading.Event(), threading.Event()
    inner = Classify(clf, SR)

    def stuck(hits):            # the worker is stuck in its first model call until released
        entered.set()
        release.wait()
        return inner(hits)

    cfg = load_realtime_config(None, {"worker": {"queue_size": 3, "max_batch": 2}})
    sink = Collect()
    # a fast file stands in for a live input here: the drop policy, not the lossless wait
    eng = Engine(clf, FileSource(path, blocksize=128, fast=True), [sink], cfg, classify=stuck,
                 wait_for_worker=False)
    eng.start()
    try:
        # the source delivers the whole file and the analysis reads all of it while the
        # worker is blocked: neither the writer nor the analysis waits for the model
        assert eng.wait(timeout=60), "the writer/analysis was held up by the blocked worker"
        assert entered.is_set() and not release.is_set()
        assert eng.source.finished.is_set() and eng.ring.available == 0
        assert eng.queue.dropped > 0
    finally:
        release.set()
        stats = eng.stop()
    assert stats.overflow_frames == 0
    assert stats.hits == stats.classified + stats.queue_dropped
    assert stats.queue_dropped == eng.queue.dropped > 0
    assert len(hit_times(sink.events)) == stats.classified


def test_stop_mid_stream_flushes_outputs_and_sends_all_notes_off(clf, tmp_path):
    path = tmp_path / "long.wav"
    write_bursts(path, seconds=20, seed=8)
    cfg = RealtimeConfig()
    fake = FakeMidiOut()
    sink = Collect()
    csv_sink = EventsCsvSink(tmp_path / "ev.csv")
    mid_sink = MidiFileSink(tmp_path / "ev.mid", cfg.midi)
    eng = Engine(clf, FileSource(path, blocksize=128, fast=False),
                 [sink, csv_sink, mid_sink, MidiPortSink(cfg.midi, out=fake)], cfg)
    eng.start()
    deadline = time.monotonic() + 30
    while len(sink.events) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = eng.stop()                                   # mid-stream
    assert 3 <= stats.events and stats.seconds < 15
    rows = list(csv.DictReader((tmp_path / "ev.csv").open()))
    assert len(rows) == stats.events == len(sink.events)
    import mido
    ons = [m for m in mido.MidiFile(tmp_path / "ev.mid") if m.type == "note_on"]
    assert len(ons) == stats.events
    msgs = fake.messages
    note_ons = [m for m in msgs if m[0] == 0x99]
    note_offs = [m for m in msgs if m[0] == 0x89]
    assert len(note_ons) == stats.events and len(note_offs) == len(note_ons)
    assert msgs[-2:] == [[0xB9, 123, 0], [0xB9, 120, 0]]    # all notes off, all sound off


def test_ctrl_c_on_the_cli_flushes_and_prints_counters(tiny_checkpoint, tmp_path):
    path = tmp_path / "long.wav"
    write_bursts(path, seconds=30, seed=9)
    out = tmp_path / "ev.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "drumclassifier.cli", "stream", str(path), "-w",
         str(tiny_checkpoint), "--events", str(out), "--midi-file", str(tmp_path / "ev.mid")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        # a shell's background job inherits SIGINT ignored, and Python then never raises
        # KeyboardInterrupt: give the child the default handling a terminal would
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = [proc.stdout.readline() for _ in range(3)]      # three hits printed: mid-stream
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    printed = [ln for ln in lines + rest.splitlines() if ln.strip()]
    assert "hits" in err and "queue drops" in err and "Ctrl-C" in err
    rows = list(csv.DictReader(out.open()))
    assert len({r["time_s"] for r in rows}) == len(printed) >= 3
    import mido
    assert len([m for m in mido.MidiFile(tmp_path / "ev.mid") if m.type == "note_on"]) == len(rows)


# ---- CLI ------------------------------------------------------------------------------
def test_cli_stream_fast_prints_one_line_per_hit(tiny_checkpoint, tmp_path, capsys):
    path = tmp_path / "b.wav"
    truth = write_bursts(path, seconds=2, seed=10)
    assert main(["stream", str(path), "--fast", "-w", str(tiny_checkpoint)]) == 0
    cap = capsys.readouterr()
    lines = [ln for ln in cap.out.splitlines() if ln.strip()]
    assert len(lines) >= len(truth) and " s " in lines[0] and "vel" in lines[0]
    assert "hits" in cap.err and "overflows" in cap.err


def test_cli_never_overwrites_outputs(tiny_checkpoint, tmp_path, capsys):
    path = tmp_path / "b.wav"
    write_bursts(path, seconds=1, seed=11)
    for opt in ("--events", "--midi-file"):
        out = tmp_path / f"out{opt}"
        out.write_text("precious")
        assert main(["stream", str(path), "--fast", "-q", "-w", str(tiny_checkpoint),
                     opt, str(out)]) == 2
        assert out.read_text() == "precious" and "--force" in capsys.readouterr().err
        assert main(["stream", str(path), "--fast", "-q", "-w", str(tiny_checkpoint),
                     opt, str(out), "--force"]) == 0
        assert out.read_text() != "precious" if opt == "--events" else out.stat().st_size > 8


def test_cli_bad_file_is_one_clear_line(tiny_checkpoint, tmp_path, capsys):
    assert main(["stream", str(tmp_path / "missing.wav"), "-w", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "missing.wav: file not found" in err and "Traceback" not in err


def _no_sound_system_env(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), JACK_NO_START_SERVER="1",
               JACK_DEFAULT_SERVER="drumclassifier-test-no-such-server")
    return env


def test_listen_warns_that_a_late_look_is_not_for_triggering(tiny_checkpoint, tmp_path):
    r = subprocess.run([sys.executable, "-m", "drumclassifier.cli", "listen", "-w",
                        str(tiny_checkpoint), "--duration", "1", "--rt-config",
                        "configs/realtime-offline.yaml"], env=_no_sound_system_env(tmp_path),
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "warning: slicer.late_look_ms: notes of cymbals go out 200 ms after" in r.stderr
    assert "not for triggering" in r.stderr and "Traceback" not in r.stderr


def test_no_sound_card_and_no_midi_give_clear_messages(tiny_checkpoint, tmp_path):
    """Without JACK and without ALSA hardware (this container): messages, not tracebacks."""
    env = _no_sound_system_env(tmp_path)
    base = [sys.executable, "-m", "drumclassifier.cli"]
    r = subprocess.run(base + ["listen", "-w", str(tiny_checkpoint), "--duration", "1"],
                       env=env, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and "no audio input device found" in r.stderr
    assert "Traceback" not in r.stderr
    assert "listening" not in r.stderr           # the input is checked before anything is said
    assert "ALSA" in r.stderr and "stream FILE" in r.stderr
    r = subprocess.run(base + ["listen", "--list-devices"], env=env, capture_output=True,
                       text=True, cwd=REPO, timeout=120)
    # said once, useful, and not pointing to the command that is running
    assert r.returncode == 0 and r.stdout.count("no audio input devices found") == 1
    assert "ALSA" in r.stdout and "stream FILE" in r.stdout and "--list-devices" not in r.stdout
    wav = tmp_path / "b.wav"
    write_bursts(wav, seconds=0.5)
    r = subprocess.run(base + ["stream", str(wav), "--fast", "-w", str(tiny_checkpoint),
                               "--virtual-port", "x"], env=env, capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 2 and "no MIDI system is available" in r.stderr
    assert "jackd" in r.stderr and "Traceback" not in r.stderr
    # --play without an output device: drop --play (not the command already running)
    r = subprocess.run(base + ["stream", str(wav), "--play", "-w", str(tiny_checkpoint)],
                       env=env, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and "no audio output device found" in r.stderr
    assert "drop --play" in r.stderr and "stream FILE" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # a guided calibration without an input device: the ways in that need none
    r = subprocess.run(base + ["calibrate", "-d", "--out", str(tmp_path / "x.kit"), "-w",
                               str(tiny_checkpoint)], env=env, capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 2 and "no audio input device found" in r.stderr
    assert "--from-file" in r.stderr and "--from-folder" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.kit").exists()


def test_music_config_stops_a_sustained_bass_note_from_firing():
    # a 49 Hz sawtooth held for 2 s: its period (20 ms) is longer than the 512-sample frame
    # (11.6 ms), so the default detector's band levels wobble and fire about every 20 ms
    t = np.arange(2 * SR) / SR
    saw = (0.5 * (2 * ((49 * t) % 1) - 1) * np.minimum(1, t / 0.005)).astype(np.float32)
    music = load_realtime_config(REPO / "configs" / "realtime-music.yaml").onset
    assert len(OnsetDetector(SR).process(saw)) > 20
    assert len(OnsetDetector(SR, music).process(saw)) <= 2   # the note's own start, at most



def test_music_config_ignores_a_held_notes_beating_partials():
    # three bass notes with harmonics, 1 s each: their partials beat and wobble inside each
    # note. The default's mean-over-bands flux fires on the wobble; the music config's (the
    # rise a quarter of the bands reach, every band against its max over 25 ms) fires only
    # where each note starts (a new note is an onset the model must reject, but the wobble
    # is not even an onset)
    t = np.arange(3 * SR) / SR

    def note(f0, t0, t1):
        env = ((t >= t0) & (t < t1)) * np.minimum(1, np.clip(t - t0, 0, None) / 0.01)
        return env * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))

    x = (0.3 * (note(110, 0.2, 1.2) + note(147, 1.2, 2.2) + note(98, 2.2, 3.0))).astype(np.float32)
    music = load_realtime_config(REPO / "configs" / "realtime-music.yaml").onset
    assert len(OnsetDetector(SR).process(x)) > 5
    starts = [o.sample / SR for o in OnsetDetector(SR, music).process(x)]
    assert len(starts) == 3 and np.allclose(starts, [0.2, 1.2, 2.2], atol=0.01)


def toms_in_noise(seconds: int, rng) -> tuple[np.ndarray, list[int]]:
    """Tonal toms every 0.3 s from 0.2 s, 20 dB of noise under them -> (x, onset samples)."""
    from bench.sounds import burst
    x = np.zeros(seconds * SR, np.float32)
    truth = [int(s * SR) for s in np.arange(0.2, seconds - 0.4, 0.3)]
    for s in truth:
        b = burst("tom", rng, 0.5)
        x[s:s + len(b)] += b
    x += (0.05 * rng.standard_normal(len(x))).astype(np.float32)     # -20 dB under the toms
    return x, truth


def fast_roll(seconds: float, rng) -> tuple[np.ndarray, list[int]]:
    """32nd notes at 240 BPM (16 strokes a second, 31 ms apart, soft to loud) from 0.2 s
    for `seconds` -> (x, onset samples)."""
    from bench.sounds import faded, snare_like
    step = round(60 / 240 / 8 * SR)
    hit = faded(snare_like(0, dur_s=0.028), fade_s=0.008)
    x = (1e-4 * rng.standard_normal(int((seconds + 0.4) * SR))).astype(np.float32)
    truth = list(range(int(0.2 * SR), int((seconds + 0.2) * SR), step))
    for s in truth:
        x[s:s + len(hit)] += hit * rng.uniform(0.3, 1.0)
    return x, truth


def test_default_detector_hears_tonal_toms_in_noise():
    # toms are a pitched tone with a soft attack: in 20 dB of noise they raise few bands
    # above it, so the music config's quarter-of-the-bands flux misses a third of these
    # (8 of 12 found); the default's mean over the bands hears every one
    x, truth = toms_in_noise(4, np.random.default_rng(0))
    found = [o.sample / SR for o in OnsetDetector(SR).process(x)]
    assert max(match(found, truth)) <= TOLERANCE_S


def test_default_detector_hears_every_stroke_of_a_fast_roll():
    # a reference held 25 ms in every band (the music config) swallows strokes of a fast
    # roll; the default does not
    x, truth = fast_roll(2, np.random.default_rng(0))
    found = [o.sample for o in OnsetDetector(SR).process(x)]
    assert len(found) == len(truth)
    assert max(abs(f - s) for f, s in zip(found, truth)) < 0.005 * SR


def groove_over_a_bass_line(path):
    """examples/groove.flac with a sawtooth bass line under it (four held notes of 41-55 Hz,
    whose periods are longer than the detector's frame: the default fires on their wobble)
    written to `path`; -> path."""
    import soundfile as sf
    x, sr = sf.read(EXAMPLES / "groove.flac", dtype="float32")
    t = np.arange(len(x)) / sr
    bass = sum(((t >= t0) & (t < t0 + 1.45)) * (2 * ((f0 * t) % 1) - 1)
               for t0, f0 in zip(np.arange(0, 5.8, 1.45), [49, 55, 41, 49]))
    sf.write(path, (x + 0.2 * bass).astype(np.float32), sr)
    return path


def test_music_settings_are_the_music_configs():
    from drumclassifier.config import read_yaml
    from realtime.music import MUSIC_DECISION, MUSIC_ONSET
    music = read_yaml(REPO / "configs" / "realtime-music.yaml")
    assert dict(music["onset"]) == MUSIC_ONSET
    assert {k: list(v) for k, v in music["decision"].items()} == MUSIC_DECISION


def test_a_file_with_music_under_the_drums_gets_the_music_detector(tmp_path):
    from realtime.music import choose, scan
    cfg = load_realtime_config()
    mixed = groove_over_a_bass_line(tmp_path / "mix.flac")
    found = scan(mixed, cfg.onset)
    assert found.music and found.default_onsets > 2 * found.music_onsets
    auto, _ = choose(mixed, cfg, "auto")
    assert auto.onset.band_quantile == 0.75 and auto.onset.delta == 0.075
    assert auto.slicer == cfg.slicer                  # the detector and the rise check change
    assert auto.decision.rise_classes == cfg.decision.rise_classes + ["cymbals"]
    assert choose(mixed, cfg, "off") == (cfg, None)
    # drums alone keep the default; "on" needs no scan; a music config is not scanned again
    drums, found = choose(EXAMPLES / "groove.flac", cfg, "auto")
    assert drums == cfg and not found.music and found.ratio == pytest.approx(1.0, abs=0.1)
    on, found = choose(EXAMPLES / "groove.flac", cfg, "on")
    assert on.onset.band_quantile == 0.75 and found is None
    music_cfg = load_realtime_config(REPO / "configs" / "realtime-music.yaml")
    assert choose(mixed, music_cfg, "auto") == (music_cfg, None)


def test_fast_rolls_and_toms_in_noise_are_not_taken_for_music(tmp_path):
    """The two things the music detector loses (so it is not the default) must not make a
    drummer's take look like music: a 32nd-note roll and tonal toms in 20 dB noise."""
    import soundfile as sf

    from realtime.music import scan
    rng = np.random.default_rng(0)
    roll, _ = fast_roll(8, rng)
    toms, _ = toms_in_noise(10, rng)
    for name, x in (("roll", roll), ("toms", toms)):
        sf.write(tmp_path / f"{name}.wav", x, SR)
        found = scan(tmp_path / f"{name}.wav", load_realtime_config().onset)
        assert not found.music and found.ratio > 1.1, (name, found)   # it does fire less


def test_a_file_that_breaks_off_is_scanned_as_far_as_it_reads(tmp_path, tiny_checkpoint):
    """A FLAC cut in half: the scan judges what it can read, and `stream` keeps the hits
    before the break, says the error and exits 1, with or without the scan."""
    import soundfile as sf
    x, sr = sf.read(EXAMPLES / "groove.flac", dtype="float32")
    sf.write(tmp_path / "long.flac", np.tile(x, 4), sr)
    data = (tmp_path / "long.flac").read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[:len(data) // 2])
    from realtime.music import scan
    found = scan(cut, load_realtime_config().onset)
    assert 0 < found.seconds < 4 * 5.8 and found.default_onsets > 10
    for mode in ("auto", "off"):
        out = tmp_path / f"{mode}.csv"
        assert main(["stream", str(cut), "--fast", "-q", "--music", mode, "--events", str(out),
                     "-w", str(tiny_checkpoint), "--model-device", "cpu"]) == 1
        assert len(list(csv.DictReader(out.open()))) > 10


def test_stream_picks_the_music_detector_and_says_so(tmp_path, tiny_checkpoint, capsys):
    mixed = groove_over_a_bass_line(tmp_path / "mix.flac")

    def hits(*extra):
        out = tmp_path / f"hits{len(list(tmp_path.iterdir()))}.csv"
        assert main(["stream", str(mixed), "--fast", "--events", str(out), "-w",
                     str(tiny_checkpoint), "--model-device", "cpu", *extra]) == 0
        return len({r["time_s"] for r in csv.DictReader(out.open())})
    capsys.readouterr()
    auto = hits()
    assert "music under the drums" in capsys.readouterr().err
    off = hits("--music", "off")
    assert "music under the drums" not in capsys.readouterr().err
    assert auto < off / 2            # the bass line's onsets are not sent as hits
    hits("-q")
    assert "music under the drums" not in capsys.readouterr().err
    # a session says which detector it got
    import json
    assert main(["stream", str(mixed), "--fast", "-q", "--session", str(tmp_path / "s"),
                 "-w", str(tiny_checkpoint), "--model-device", "cpu"]) == 0
    assert json.loads((tmp_path / "s" / "session.json").read_text())["onset_detector"] == "music"


# ---- anytime decisions ----------------------------------------------------------------
LADDER = [5.0, 10.0, 20.0, 40.0, 80.0]


def rung_ms(ms: float) -> float:
    """The context (ms) a rung of `ms` holds at the stream rate (whole samples)."""
    return round(ms * SR / 1000) / SR * 1000


def anytime_cfg(**over):
    return load_realtime_config(None, {"slicer": {"anytime_ms": LADDER}, **over})


@pytest.fixture()
def thresholds(clf):
    """Set the tiny model's class thresholds for one test (restored after)."""
    saved = clf.thresholds.clone()

    def put(value: float):
        import torch
        clf.thresholds = torch.full((len(clf.labels),), value)
    yield put
    clf.thresholds = saved


def test_slicer_cuts_each_rung_once_and_stops_after_the_decision():
    from realtime.onset import Onset
    from realtime.slicer import Slicer
    sl = Slicer(SR, 1, [1.0, 2.0, 4.0])                    # 44, 88, 176 samples
    x = np.arange(1000, dtype=np.float32)[:, None]
    sl.push(x[:100], 0)
    sl.add([Onset(sample=10, detect_sample=12, strength=1.0)])
    got = sl.ready()                                        # 54 and 98 are in: two rungs
    assert [len(s.audio) for s in got] == [44, 88] and [s.final for s in got] == [False, False]
    assert np.array_equal(got[1].audio[:, 0], x[10:98, 0]) and got[0].track is got[1].track
    sl.push(x[100:300], 100)
    last = sl.ready()
    assert [(len(s.audio), s.final) for s in last] == [(176, True)] and sl.hits == 1
    # a second onset decided at its first rung: no further rung is cut, nothing at flush
    sl.add([Onset(sample=250, detect_sample=252, strength=1.0)])
    first = sl.ready()
    assert [len(s.audio) for s in first] == [44] and first[0].track.index == 1
    first[0].track.decided = True
    sl.push(x[300:600], 300)
    assert sl.ready() == [] and sl.flush() == []


def test_each_slice_carries_the_audio_before_its_onset_for_the_lead_in():
    from realtime.onset import Onset
    from realtime.slicer import Slicer
    sl = Slicer(SR, 1, [1.0], before_ms=5.0)                # 44-sample slices, 220 before
    x = np.arange(1000, dtype=np.float32)[:, None]
    sl.push(x[:600], 0)
    sl.add([Onset(sample=100, detect_sample=102, strength=1.0),
            Onset(sample=400, detect_sample=402, strength=1.0)])
    first, second = sl.ready()
    assert np.array_equal(first.before[:, 0], x[:100, 0])   # all there is since the start
    assert np.array_equal(second.before[:, 0], x[180:400, 0])


def test_slicer_flush_gives_the_undecided_a_final_partial_slice():
    from realtime.onset import Onset
    from realtime.slicer import Slicer
    sl = Slicer(SR, 1, [1.0, 4.0])
    sl.push(np.ones((100, 1), np.float32), 0)
    sl.add([Onset(sample=20, detect_sample=22, strength=1.0)])
    assert [len(s.audio) for s in sl.ready()] == [44]
    out = sl.flush()                                        # the stream ends at 100
    assert [(len(s.audio), s.partial, s.final) for s in out] == [(80, True, True)]


def test_anytime_sends_at_the_first_confident_rung_and_records_it(clf, tmp_path, thresholds):
    path = tmp_path / "b.wav"
    write_bursts(path, seconds=2.0, seed=9)
    thresholds(0.0)                 # every class surely present: sure at the first rung
    sink = Collect()
    eng, stats = run_file(clf, path, [sink], anytime_cfg())
    assert stats.hits > 3 and stats.classified == stats.hits and not stats.errors
    assert len(hit_times(sink.events)) == stats.hits       # one decision per hit
    for e in sink.events:
        assert e.context_ms == pytest.approx(rung_ms(5.0))
        assert e.latency_ms >= e.context_ms                 # it waited for that much audio
    assert eng.worker.waiting == 0


def test_anytime_never_confident_goes_out_at_the_last_rung(clf, tmp_path, thresholds):
    path = tmp_path / "b.wav"
    truth = write_bursts(path, seconds=2.0, seed=9)
    thresholds(1.0)                 # nothing ever present: never sure
    sink = Collect()
    eng, stats = run_file(clf, path, [sink], anytime_cfg())
    assert stats.classified == stats.hits == len(hit_times(sink.events))
    assert max(match(hit_times(sink.events), truth)) <= TOLERANCE_S
    assert {round(e.context_ms, 6) for e in sink.events} == {round(rung_ms(80.0), 6)}
    assert min(e.latency_ms for e in sink.events) >= rung_ms(80.0) - 1e-9
    # every hit was judged, unsure, at the four shorter rungs first
    assert eng.worker.waiting == 4 * stats.hits and eng.worker.superseded == 0


def test_anytime_decision_at_a_middle_rung_is_the_same_paced_or_fast(clf, tmp_path):
    path = tmp_path / "b.wav"
    write_bursts(path, seconds=1.2, seed=4)
    inner = Classify(clf, SR, min_confidence=0.0)         # always sure...

    def sure_from_20ms(hits):   # a rule that is sure from 20 ms of audio on
        keep, out = inner(hits)
        return keep, [o if h.final or len(h.audio) >= rung_ms(20.0) * SR / 1000 else None
                      for h, o in zip(keep, out)]

    runs = []
    for fast in (True, False):
        sink = Collect()
        run_file(clf, path, [sink], anytime_cfg(), fast=fast, classify=sure_from_20ms)
        runs.append([(e.time_s, e.label, round(e.context_ms, 6)) for e in sink.events])
        assert len(hit_times(sink.events)) == len({e.hit_index for e in sink.events})
    assert runs[0] and sorted(runs[0]) == sorted(runs[1])
    assert {c for _, _, c in runs[0]} == {round(rung_ms(20.0), 6)}


def test_anytime_off_is_one_fixed_context(clf, tmp_path):
    path = tmp_path / "b.wav"
    write_bursts(path, seconds=1.5, seed=5)
    sink = Collect()
    cfg = load_realtime_config(None, {"slicer": {"context_ms": 30.0}})
    assert cfg.slicer.anytime_ms == [] and cfg.slicer.contexts_ms == [30.0]
    eng, stats = run_file(clf, path, [sink], cfg)
    assert stats.classified == stats.hits == len(hit_times(sink.events))
    assert {round(e.context_ms, 6) for e in sink.events} == {round(rung_ms(30.0), 6)}
    assert eng.worker.waiting == eng.worker.superseded == 0
    with pytest.raises(ConfigError, match="ascending"):
        load_realtime_config(None, {"slicer": {"anytime_ms": [10.0, 5.0]}})


def test_events_csv_carries_the_context(clf, tmp_path):
    path = tmp_path / "b.wav"
    write_bursts(path, seconds=1.5, seed=5)
    sink = Collect()
    run_file(clf, path, [sink, EventsCsvSink(tmp_path / "ev.csv")], anytime_cfg())
    rows = list(csv.DictReader((tmp_path / "ev.csv").open()))
    assert len(rows) == len(sink.events) > 0
    assert [float(r["context_ms"]) for r in rows] == \
        pytest.approx([e.context_ms for e in sink.events], abs=0.006)


def test_velocity_comes_from_the_hit_not_the_tail_under_it():
    """A hit over a loud ringing tail: its level is the hit's own, not hit + tail."""
    from realtime.slicer import hit_peak_db
    rng = np.random.default_rng(0)
    n = 882                                                   # 20 ms at 44.1 kHz
    hit = (0.1 * rng.standard_normal((n, 2)) * np.exp(-np.arange(n) / 300)[:, None]
           ).astype(np.float32)
    own = 20 * np.log10(np.abs(hit).max())
    assert hit_peak_db(hit, np.zeros((n, 2), np.float32)) == pytest.approx(own, abs=1e-4)
    assert hit_peak_db(hit, None) == pytest.approx(own, abs=1e-4)
    tail = 0.3 * np.sin(2 * np.pi * 180 * np.arange(-n, n) / SR)[:, None].repeat(2, 1)
    tail = tail.astype(np.float32)                            # a kick's ring, 10 dB over the hit
    mixed = hit + tail[n:]
    assert 20 * np.log10(np.abs(mixed).max()) > own + 5       # the plain peak: hit + tail
    assert abs(hit_peak_db(mixed, tail[:n]) - own) < 3.0
