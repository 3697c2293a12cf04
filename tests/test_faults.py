"""Overload and faults in the live path, through the real Engine (tiny untrained model).

- a 32nd-note roll at 240 BPM and a blast of white-noise bursts, with the worker stuck and
  then slowed: the writer and the analysis never wait for it, the queue stays within its
  bound, drops are counted and every hit is accounted for
  (classified + unclassifiable + failed + dropped == hits queued);
- a model call that raises: its hits are counted as failed, the message said once;
- a MIDI port that fails mid-stream: said once, switched off, console and CSV go on;
- an events file the disk refuses (/dev/full at start, ENOSPC mid-stream), a folder that
  cannot be created: one clear line; the other outputs complete;
- a source that dies mid-stream (the device disappears): reported, outputs flushed;
- the device callback: input overflow/underflow flags counted, an exception in the
  callback recorded (exceptions raised in a callback are otherwise lost).
No test asserts a timing threshold.
"""
from __future__ import annotations

import csv
import errno
import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.sounds import faded, snare_like
from drumclassifier.cli import main
from realtime import Engine, EventsCsvSink, FileSource, MidiPortSink, RealtimeConfig
from realtime.classify import Classify
from realtime.config import load_realtime_config
from realtime.sinks import ConsoleSink

from .conftest import SR
from .realtime_helpers import Collect, write_bursts


@pytest.fixture(scope="module")
def clf(tiny_checkpoint):
    from drumclassifier import DrumClassifier
    return DrumClassifier(tiny_checkpoint, None, "cpu")


def accounted(stats) -> bool:
    return stats.hits == (stats.classified + stats.unclassifiable + stats.failed
                          + stats.queue_dropped)


def roll_and_blast(seconds_roll: float = 2.0, seconds_blast: float = 1.0, seed: int = 0):
    """A 32nd-note snare roll at 240 BPM (16 hits/s, 31.25 ms apart), then white-noise
    bursts 5 ms long every 25 ms: [n, 2] float32 and the hit samples."""
    rng = np.random.default_rng(seed)
    n = int((0.2 + seconds_roll + seconds_blast + 0.3) * SR)
    x = (1e-4 * rng.standard_normal(n)).astype(np.float32)
    truth = []
    step = round(60 / 240 / 8 * SR)
    hit = faded(snare_like(seed, dur_s=0.028), fade_s=0.008)
    t = int(0.2 * SR)
    while t < int((0.2 + seconds_roll) * SR):
        x[t:t + len(hit)] += hit * rng.uniform(0.3, 1.0)
        truth.append(t)
        t += step
    burst = int(0.005 * SR)
    while t < n - int(0.3 * SR):
        x[t:t + burst] += 0.8 * rng.uniform(-1, 1, burst).astype(np.float32)
        truth.append(t)
        t += int(0.025 * SR)
    return np.repeat(x[:, None], 2, axis=1), truth


def test_roll_and_noise_blast_with_a_stuck_then_slow_worker(clf, tmp_path):
    x, truth = roll_and_blast()
    path = tmp_path / "roll.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    release = threading.Event()
    inner = Classify(clf, SR)
    calls = []

    def slow(hits):      # stuck in the first call until released, then 5 ms per call
        calls.append(len(hits))
        if len(calls) == 1:
            release.wait()
        time.sleep(0.005)
        return inner(hits)

    cfg = load_realtime_config(None, {"worker": {"queue_size": 4, "max_batch": 2}})
    sink = Collect()
    # a fast file stands in for a live input here: the drop policy, not the lossless wait
    eng = Engine(clf, FileSource(path, blocksize=128, fast=True), [sink], cfg, classify=slow,
                 wait_for_worker=False)
    eng.start()
    try:
        # the whole file is delivered and analysed while the worker is stuck
        assert eng.wait(timeout=120), "writer/analysis held up by the stuck worker"
        assert not release.is_set() and eng.ring.available == 0
        assert len(eng.queue) <= 4
    finally:
        release.set()
        stats = eng.stop()                 # drains the queue: nothing deadlocks
    assert stats.hits + stats.lost >= 0.8 * len(truth)       # the roll is detected
    assert stats.queue_dropped > 0 and stats.queue_max <= 4
    assert stats.overflow_frames == 0 and not stats.errors
    assert accounted(stats)
    assert len({e.hit_index for e in sink.events}) == stats.classified
    assert sink.closed and max(calls) <= 2


def test_a_failing_model_call_loses_only_its_hits_counted(clf, tmp_path, capsys):
    path = tmp_path / "b.wav"
    write_bursts(path, seconds=3, seed=1)
    inner = Classify(clf, SR)
    n = [0]

    def flaky(hits):
        n[0] += 1
        if n[0] % 2 == 0:
            raise RuntimeError("CUDA error: out of memory")
        return inner(hits)

    cfg = load_realtime_config(None, {"worker": {"max_batch": 1}})
    sink = Collect()
    stats = Engine(clf, FileSource(path, fast=True), [sink], cfg, classify=flaky).run()
    assert stats.failed > 0 and stats.classified > 0 and accounted(stats)
    assert len(stats.errors) == 1 and "out of memory" in stats.errors[0]
    err = capsys.readouterr().err
    assert err.count("error: classifying a batch") == 1 and "Traceback" not in err


class FlakyMidiOut:
    """rtmidi.MidiOut stand-in whose port disappears after `ok` messages."""

    def __init__(self, ok: int):
        self.ok, self.messages = ok, []

    def send_message(self, m):
        if len(self.messages) >= self.ok:
            raise OSError("MIDI port 'synth' is closed (device unplugged)")
        self.messages.append(list(m))


def test_midi_port_failing_mid_stream_is_said_once_and_the_rest_goes_on(clf, tmp_path,
                                                                        capsys):
    path = tmp_path / "b.wav"
    write_bursts(path, seconds=3, seed=2)
    cfg = RealtimeConfig()
    console = io.StringIO()
    out = FlakyMidiOut(ok=6)
    sinks = [ConsoleSink(console), EventsCsvSink(tmp_path / "ev.csv"),
             MidiPortSink(cfg.midi, out=out)]
    stats = Engine(clf, FileSource(path, fast=True), sinks, cfg).run()
    assert stats.events > 6 and stats.classified == stats.hits
    assert len(console.getvalue().splitlines()) == stats.hits     # console went on
    rows = list(csv.DictReader((tmp_path / "ev.csv").open()))
    assert len(rows) == stats.events                              # CSV complete
    assert len(stats.errors) == 1 and "MIDI port 'synth' is closed" in stats.errors[0]
    assert "MidiPortSink" in stats.errors[0] and "switched off" in stats.errors[0]
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err


class FullAfter:
    """A text file whose disk fills up after `ok` writes (ENOSPC on write and flush)."""

    def __init__(self, f, ok: int):
        self.f, self.ok, self.n = f, ok, 0

    def write(self, s):
        self.n += 1
        if self.n > self.ok:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.f.write(s)

    def flush(self):
        if self.n > self.ok:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.f.flush()

    def close(self):
        self.f.close()


class DiskFillsCsv(EventsCsvSink):
    def open(self):
        super().open()
        self._f = FullAfter(self._f, ok=4)
        self._w = csv.writer(self._f)


def test_events_file_full_mid_stream_is_said_once_and_the_rest_goes_on(clf, tmp_path, capsys):
    path = tmp_path / "b.wav"
    write_bursts(path, seconds=3, seed=3)
    good, full, other = Collect(), DiskFillsCsv(tmp_path / "ev.csv"), Collect()
    stats = Engine(clf, FileSource(path, fast=True), [good, full, other]).run()
    assert len(good.events) == len(other.events) == stats.events > 4
    assert good.closed and other.closed
    assert len(stats.errors) == 1 and "No space left on device" in stats.errors[0]
    assert "DiskFillsCsv" in stats.errors[0]
    rows = list(csv.DictReader((tmp_path / "ev.csv").open()))
    assert 0 < len(rows) <= 4          # what was written before the disk filled is kept
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_events_to_a_full_disk_and_to_an_impossible_folder_on_the_cli(tiny_checkpoint,
                                                                      tmp_path, capsys):
    wav = tmp_path / "b.wav"
    write_bursts(wav, seconds=1, seed=4)
    base = ["stream", str(wav), "--fast", "-q", "-w", str(tiny_checkpoint)]
    assert main([*base, "--events", "/dev/full", "--force"]) == 2
    err = capsys.readouterr().err
    assert "/dev/full: cannot write events (No space left on device)" in err
    assert "Traceback" not in err and err.count("\n") == 1
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for opt in ("--events", "--midi-file"):
        target = blocker / "sub" / "out"
        assert main([*base, opt, str(target)]) == 2
        err = capsys.readouterr().err
        assert f"{target}: cannot create its folder" in err and "Traceback" not in err


class DyingRing:
    """Wraps the engine's ring buffer; the device 'disappears' after `ok` blocks."""

    def __init__(self, ring, ok: int):
        self.ring, self.ok, self.n = ring, ok, 0

    def __getattr__(self, name):
        return getattr(self.ring, name)

    def write(self, block, now=None):
        self.n += 1
        if self.n > self.ok:
            raise OSError("PortAudio: device unavailable (unplugged)")
        return self.ring.write(block, now)


class DyingSource(FileSource):
    def start(self, ring):
        super().start(DyingRing(ring, ok=int(1.5 * SR / self.blocksize)))


def test_source_dying_mid_stream_is_reported_and_outputs_flushed(clf, tmp_path):
    path = tmp_path / "b.wav"
    write_bursts(path, seconds=4, seed=5)
    sink = Collect()
    csv_sink = EventsCsvSink(tmp_path / "ev.csv")
    eng = Engine(clf, DyingSource(path, blocksize=128, fast=True), [sink, csv_sink])
    stats = eng.run()
    assert 1.0 < stats.seconds < 2.0                 # stopped where the device went away
    assert any("device unavailable" in e for e in stats.errors)
    assert sink.closed and stats.events == len(sink.events) > 0
    rows = list(csv.DictReader((tmp_path / "ev.csv").open()))
    assert len(rows) == stats.events
    assert accounted(stats)


def test_device_callback_counts_overflow_flags_and_records_its_own_failure():
    import sounddevice as sd  # installed by setup.sh: a missing install must fail, not skip

    from realtime.ringbuffer import RingBuffer
    from realtime.sources import DeviceSource
    src = DeviceSource(blocksize=64, channels=1)
    src._ring = RingBuffer(1024, 1)
    src._CallbackStop, src._CallbackAbort = sd.CallbackStop, sd.CallbackAbort
    block = np.zeros((64, 1), np.float32)
    over, under = sd.CallbackFlags(), sd.CallbackFlags()
    over.input_overflow = True
    under.input_underflow = True
    for status in (sd.CallbackFlags(), over, over, under):
        src._callback(block, 64, None, status)
    assert src.status() == {"input_overflows": 2, "input_underflows": 1, "callbacks": 4}
    src._ring = None                                  # the next write raises inside
    with pytest.raises(sd.CallbackAbort):
        src._callback(block, 64, None, sd.CallbackFlags())
    assert src.error and "AttributeError" in src.error


class VanishingDevice:
    """A live source that delivers 0.5 s of audio, then stops calling back without an
    error or a finished signal (what some unplugged USB interfaces do). A fake standing
    in for a real unplug, which cannot be done on a machine with no sound card."""
    live, sample_rate_hz, channels, blocksize, error = True, SR, 2, 128, None

    def __init__(self, audio):
        self.audio, self.finished = audio, threading.Event()

    def start(self, ring):
        for i in range(0, int(0.5 * SR), self.blocksize):
            ring.write(self.audio[i:i + self.blocksize])

    def stop(self):
        self.finished.set()

    def status(self):
        return {}


def test_device_that_stops_calling_back_is_reported_and_the_run_ends(clf, tmp_path, capsys):
    audio, _ = roll_and_blast(seconds_roll=1.0, seconds_blast=0.0)
    cfg = load_realtime_config(overrides={"audio": {"stall_s": 0.3}})
    sink = Collect()
    eng = Engine(clf, VanishingDevice(audio), [sink], cfg)
    done = []
    runner = threading.Thread(target=lambda: done.append(eng.run()), daemon=True)
    runner.start()
    runner.join(30)                  # generous: without the watchdog run() never returns
    assert done, "Engine.run() still waiting on a device that stopped calling back"
    stats = done[0]
    assert stats.seconds < 1.0
    assert any("no audio from the input device" in e for e in stats.errors)
    assert "disconnected?" in capsys.readouterr().err
    assert sink.closed and accounted(stats)
