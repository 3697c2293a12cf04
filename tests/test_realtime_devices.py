"""The real device paths, without a sound card: PortAudio callbacks and MIDI ports.

- ALSA `file` plugin: a temporary HOME with an .asoundrc feeds a raw file through the real
  sounddevice InputStream callback (int16, exact, unpaced). Run in a subprocess so the
  environment (HOME) is set before PortAudio initialises.
- JACK dummy server, started by the `jack_server` fixture (conftest.py) under a private name:
  a paced real-time PortAudio device (its input is silence) and real MIDI ports.
If jackd is not installed these tests FAIL (setup.sh installs jackd2); they never skip.
The model is the UNTRAINED tiny checkpoint: timing, counts and plumbing only.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.drummer import alsa_file_env
from bench.sounds import burst_signal

from .conftest import SR
from .realtime_helpers import TOLERANCE_S, match

REPO = Path(__file__).resolve().parents[1]

DEVICE_SCRIPT = r"""
import json, sys
from drumclassifier import DrumClassifier
from realtime import DeviceSource, Engine, load_realtime_config
weights, device, dtype, duration, ring_s = sys.argv[1:6]
cfg = load_realtime_config(None, {"audio": {"ring_s": float(ring_s)}})
events = []
class Keep:
    def open(self): pass
    def emit(self, evs): events.extend(evs)
    def close(self): pass
src = DeviceSource(device, 44100, 128, 1, dtype, "low", duration_s=float(duration))
eng = Engine(DrumClassifier(weights, None, "cpu"), src, [Keep()], cfg)
st = eng.run()
print(json.dumps({"hits": st.hits, "events": st.events, "seconds": st.seconds,
                  "overflow_frames": st.overflow_frames, "queue_dropped": st.queue_dropped,
                  "errors": list(st.errors), "callbacks": src.callbacks,
                  "device_name": src.device_name, "frames": eng.ring.frames_written,
                  "times": sorted({e.time_s for e in events}),
                  "latency_ms": [e.latency_ms for e in events]}))
"""


def run_device_script(env, *args):
    r = subprocess.run([sys.executable, "-c", DEVICE_SCRIPT, *map(str, args)], env=env,
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---- ALSA file plugin: the real callback, fed from a file --------------------------------
def test_alsa_file_plugin_through_the_real_callback(tiny_checkpoint, tmp_path):
    x, truth = burst_signal(seconds=3, seed=12, channels=1)
    pcm = np.clip(np.round(x[:, 0] * 32768), -32768, 32767).astype("<i2")
    raw = tmp_path / "in.raw"
    pcm.tofile(raw)
    env = alsa_file_env(tmp_path, raw)
    # unpaced (hundreds of times real time): a ring buffer that holds the whole take
    res = run_device_script(env, tiny_checkpoint, "injected", "int16", len(pcm) / SR, 10)
    assert res["device_name"] == "injected" and res["callbacks"] > 0
    assert res["frames"] == len(pcm) and res["overflow_frames"] == 0 and not res["errors"]
    assert max(match(res["times"], truth)) <= TOLERANCE_S
    # the same samples through FileSource give exactly the same onsets: one code path
    from drumclassifier import DrumClassifier
    from realtime import Engine, FileSource
    wav = tmp_path / "same.wav"
    sf.write(wav, pcm, SR, subtype="PCM_16")
    events = []

    class Keep:
        def open(self): ...
        def emit(self, evs): events.extend(evs)
        def close(self): ...
    Engine(DrumClassifier(tiny_checkpoint, None, "cpu"), FileSource(wav, 128, fast=True),
           [Keep()]).run()
    assert sorted({e.time_s for e in events}) == res["times"]


# ---- JACK dummy server (the jack_server fixture is in conftest.py) ----------------------
def test_jack_device_callback_runs_paced_and_silence_gives_no_hits(tiny_checkpoint, jack_server):
    res = run_device_script(jack_server, tiny_checkpoint, "system", "float32", 0.5, 2)
    assert "system" in res["device_name"]
    assert res["frames"] == int(0.5 * SR) and res["callbacks"] > 0
    assert res["hits"] == 0 and res["overflow_frames"] == 0 and not res["errors"]


def test_cli_listen_on_the_jack_device(tiny_checkpoint, jack_server, tmp_path):
    out = tmp_path / "ev.csv"
    base = [sys.executable, "-m", "drumclassifier.cli", "listen"]
    r = subprocess.run(base + ["--list-devices"], env=jack_server, capture_output=True,
                       text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0 and "system" in r.stdout
    r = subprocess.run(base + ["-d", "system", "--duration", "0.5", "-w", str(tiny_checkpoint),
                               "--events", str(out), "-q"], env=jack_server, capture_output=True,
                       text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "0.5 s analysed: 0 hits" in r.stderr and "overflows: 0" in r.stderr
    assert out.read_text().startswith("time_s,label,confidence,velocity,latency_ms")


def _midi_in(port_name):
    import rtmidi
    mi = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="drumclassifier-test-in")
    ports = mi.get_ports()
    assert port_name in ports, ports
    mi.open_port(ports.index(port_name))
    return mi


def _drain(mi, settle_s=0.3):
    time.sleep(settle_s)
    msgs = []
    while (m := mi.get_message()) is not None:
        msgs.append(m[0])
    return msgs


def test_real_midi_out_through_jack(jack_server):
    from realtime import MidiPortSink, RealtimeConfig
    from realtime.worker import Event
    cfg = RealtimeConfig().midi
    sink = MidiPortSink(cfg, virtual="dc-test")
    sink.open()
    mi = _midi_in("drumclassifier:dc-test")
    try:
        time.sleep(0.2)   # let JACK finish the connection
        ev = dict(confidence=0.9, latency_ms=0, wall_latency_ms=0, detect_ms=0, queue_ms=0,
                  infer_ms=0, batch_size=1, onset_sample=0, peak_db=-6)
        sink.emit([Event(time_s=0.0, label="kick", velocity=100, hit_index=0, **ev),
                   Event(time_s=0.0, label="hihat", velocity=64, hit_index=0, **ev)])
        msgs = _drain(mi)
        assert [0x99, 36, 100] in msgs and [0x99, 42, 64] in msgs
        assert [0x89, 36, 0] in msgs and [0x89, 42, 0] in msgs    # note-offs after 50 ms
        sink.emit([Event(time_s=0.1, label="snare", velocity=90, hit_index=1, **ev)])
        sink.close()                                              # note-off now, then panic
        msgs = _drain(mi)
        assert msgs == [[0x99, 38, 90], [0x89, 38, 0], [0xB9, 123, 0], [0xB9, 120, 0]]
    finally:
        mi.close_port()
        mi.delete()


def test_engine_sends_one_note_per_event_over_jack(tiny_checkpoint, jack_server, tmp_path):
    from drumclassifier import DrumClassifier
    from realtime import Engine, FileSource, MidiPortSink, RealtimeConfig
    x, truth = burst_signal(seconds=2, seed=13)
    wav = tmp_path / "b.wav"
    sf.write(wav, x, SR)
    cfg = RealtimeConfig()
    sink = MidiPortSink(cfg.midi, virtual="dc-engine")
    events = []

    class Keep:
        def open(self): ...
        def emit(self, evs): events.extend(evs)
        def close(self): ...
    eng = Engine(DrumClassifier(tiny_checkpoint, None, "cpu"), FileSource(wav, 128, fast=True),
                 [Keep(), sink], cfg)
    sink.open()       # opened early so the test connects before audio flows (open is idempotent)
    mi = _midi_in("drumclassifier:dc-engine")
    try:
        time.sleep(0.2)
        eng.run()
        msgs = _drain(mi)
    finally:
        mi.close_port()
        mi.delete()
    ons = [m for m in msgs if m[0] == 0x99]
    assert len(ons) == len(events) > 0
    assert len([m for m in msgs if m[0] == 0x89]) == len(ons)
    assert msgs[-2:] == [[0xB9, 123, 0], [0xB9, 120, 0]]
    notes = cfg.midi.notes
    assert sorted(m[1] for m in ons) == sorted(notes[e.label] for e in events)
