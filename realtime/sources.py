"""Audio sources: each writes blocks of [blocksize, channels] into a RingBuffer.

DeviceSource: a sounddevice InputStream whose callback only copies into the ring buffer
and records status flags (nothing else runs on the audio thread).
FileSource: a file read block by block as a device would deliver it: paced in real time
(each block written when its last sample's time has come), or as fast as possible
(`fast`: lossless, the reader waits for ring space instead of overflowing), and
optionally played to an output device while it is analysed (`play`: the output stream's
blocking write paces the reading by the sound card's clock).

sounddevice is imported only here, when a device is opened: files never need PortAudio.
"""
from __future__ import annotations

import threading
import time

import numpy as np

from drumclassifier.config import defaults_with
from drumclassifier.errors import DrumClassifierError

from .config import AudioConfig
from .ringbuffer import RingBuffer

PORTAUDIO_HELP = ("the PortAudio library is not installed (it is needed for audio devices): "
                  "Debian/Ubuntu: sudo apt-get install libportaudio2; Fedora: sudo dnf install "
                  "portaudio; macOS: brew install portaudio")


def import_sounddevice():
    try:
        import sounddevice as sd
    except OSError as e:   # "PortAudio library not found"
        raise DrumClassifierError(f"{PORTAUDIO_HELP} ({e})") from None
    except ImportError:
        raise DrumClassifierError("sounddevice is not installed: pip install "
                                  "'drumclassifier[live]'") from None
    return sd


# what to check when PortAudio finds no device (or no device of the kind needed)
SOUND_SYSTEM_HELP = ("connect a sound card (on Linux: check that ALSA lists it, `arecord -l` / "
                     "`aplay -l`, or that a JACK, PulseAudio or PipeWire server is running)")
# what else works, per kind of device, unless the caller knows better (resolve_device's hint)
NO_DEVICE_HINT = {
    "input": ("to capture what the computer plays, pick its monitor/loopback device "
              "(`drumclassifier listen --list-devices`); without a sound card, "
              "`drumclassifier stream FILE` analyses a recording"),
    "output": "or drop --play: the file is analysed without playing it",
}


def no_device_message(kind: str, n_devices: int, hint: str | None = None) -> str:
    """No audio device of `kind` ("input"/"output"): what to check, and what else works."""
    return (f"no audio {kind} device found (PortAudio sees {n_devices} device(s)): "
            f"{SOUND_SYSTEM_HELP}; {hint or NO_DEVICE_HINT[kind]}")


def list_devices() -> str:
    """A table of the devices PortAudio sees, input-capable ones marked; when none can
    record, one message saying so and what to check."""
    sd = import_sounddevice()
    devs = sd.query_devices()
    apis = sd.query_hostapis()
    lines = []
    if len(devs):
        lines.append(" idx  in out  rate   host API    name")
    for i, d in enumerate(devs):
        mark = "*" if d["max_input_channels"] > 0 else " "
        lines.append(f"{mark}{i:3d} {d['max_input_channels']:3d} {d['max_output_channels']:3d} "
                     f"{d['default_samplerate']:6.0f}  {apis[d['hostapi']]['name'][:10]:<10s}  "
                     f"{d['name']}")
    if any(d["max_input_channels"] > 0 for d in devs):
        lines.append("* = can be used with listen --device (index or part of the name)")
    else:
        lines.append(f"no audio input devices found (PortAudio sees {len(devs)} device(s)): "
                     f"{SOUND_SYSTEM_HELP}. Without a sound card, `drumclassifier stream "
                     "FILE` analyses a recording.")
    return "\n".join(lines)


def resolve_device(spec, kind: str = "input", hint: str | None = None) -> int | None:
    """A device index from an index, a name substring, or None (the default device).

    hint: what else works when there is no device of this kind (default: NO_DEVICE_HINT's).
    """
    sd = import_sounddevice()
    devs = sd.query_devices()
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    usable = [i for i, d in enumerate(devs) if d[key] > 0]
    if not usable:
        raise DrumClassifierError(no_device_message(kind, len(devs), hint))
    if spec is None or spec == "":
        default = sd.default.device[0 if kind == "input" else 1]
        if default is None or default < 0:
            return usable[0]
        return int(default)
    listing = "see `drumclassifier listen --list-devices`"
    if isinstance(spec, int) or str(spec).isdigit():
        i = int(spec)
        if i not in usable:
            raise DrumClassifierError(f"audio device {i} is not an {kind} device; {listing}")
        return i
    matches = [i for i in usable if str(spec).lower() in devs[i]["name"].lower()]
    exact = [i for i in matches if devs[i]["name"] == spec]
    if len(exact) == 1:
        return exact[0]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DrumClassifierError(f"no audio {kind} device matches {spec!r}; {listing}")
    raise DrumClassifierError(f"audio device name {spec!r} is ambiguous: "
                              + ", ".join(f"{i}: {devs[i]['name']}" for i in matches))


def sf_name(path):
    """A path as soundfile opens it: bytes on POSIX, so a name that is not UTF-8 opens."""
    import os
    return str(path) if os.name == "nt" else os.fsencode(path)


class Source:
    sample_rate_hz: int
    channels: int
    blocksize: int
    finished: threading.Event
    error: str | None = None
    starts_silent: bool = False   # True: nothing precedes the first sample (a file), so a
                                  # hit there is an onset; a live input opens mid-sound

    def start(self, ring: RingBuffer) -> None: ...
    def stop(self) -> None: ...

    def status(self) -> dict:
        return {}


class DeviceSource(Source):
    """Live input from a sound device (index, name substring, or None = default).

    duration_s: stop by itself after that much audio (None = until stopped).
    """
    live = True  # the engine watches a live source for stalls (a device unplugged mid-stream)

    def __init__(self, device=None, sample_rate_hz: int | None = None, blocksize: int | None = None,
                 channels: int | None = None, dtype: str | None = None, latency=None,
                 duration_s: float | None = None):
        a = defaults_with(AudioConfig, sample_rate_hz=sample_rate_hz, blocksize=blocksize,
                          channels=channels, dtype=dtype, latency=latency)   # None: its default
        self.device_spec, self.sample_rate_hz, self.blocksize = device, a.sample_rate_hz, a.blocksize
        self.channels, self.dtype, self.latency = a.channels, a.dtype, a.latency
        self.limit = None if duration_s is None else int(round(duration_s * a.sample_rate_hz))
        self.finished = threading.Event()
        self.error = None
        self._stream = None
        self._ring = None
        self._delivered = 0
        # status flags from the callback, counted (the callback only increments ints)
        self.input_overflows = 0
        self.input_underflows = 0
        self.callbacks = 0

    def start(self, ring: RingBuffer) -> None:
        sd = import_sounddevice()
        self._ring = ring
        self._CallbackStop, self._CallbackAbort = sd.CallbackStop, sd.CallbackAbort
        dev = resolve_device(self.device_spec, "input")
        self.device_name = sd.query_devices(dev)["name"]
        latency = self.latency
        try:
            latency = float(latency)
        except (TypeError, ValueError):
            pass
        try:
            self._stream = sd.InputStream(
                device=dev, samplerate=self.sample_rate_hz, blocksize=self.blocksize,
                channels=self.channels, dtype=self.dtype, latency=latency,
                callback=self._callback, finished_callback=self.finished.set)
            self._stream.start()
        except sd.PortAudioError as e:
            self._stream = None
            raise DrumClassifierError(
                f"cannot open audio input {self.device_name!r} at {self.sample_rate_hz} Hz, "
                f"{self.channels} channel(s), blocksize {self.blocksize}: {e}") from None

    def _callback(self, indata, frames, time_info, status) -> None:
        # The audio thread: copy, count, return. No allocation of buffers, no locks, no I/O.
        try:
            self.callbacks += 1
            if status:
                if status.input_overflow:
                    self.input_overflows += 1
                if status.input_underflow:
                    self.input_underflows += 1
            if self.limit is not None:
                left = self.limit - self._delivered
                if left <= frames:
                    self._ring.write(indata[:left])
                    self._delivered += left
                    raise self._CallbackStop()
            self._ring.write(indata)
            self._delivered += frames
        except Exception as e:
            if isinstance(e, self._CallbackStop):
                raise
            self.error = f"{type(e).__name__}: {e}"   # exceptions in a callback are lost
            raise self._CallbackAbort() from None

    def stop(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            finally:
                self._stream = None
                self.finished.set()

    def status(self) -> dict:
        return {"input_overflows": self.input_overflows,
                "input_underflows": self.input_underflows, "callbacks": self.callbacks}


class FileSource(Source):
    """A file delivered block by block, paced, fast (lossless), or played while analysed."""

    starts_silent = True   # a hit at the file's first sample is an onset

    def __init__(self, path, blocksize: int | None = None, fast: bool = False, play: bool = False,
                 output_device=None):
        import soundfile as sf
        blocksize = defaults_with(AudioConfig, blocksize=blocksize).blocksize   # None: its default
        if fast and play:
            raise DrumClassifierError("--fast and --play exclude each other "
                                      "(playback runs in real time)")
        self.path, self.blocksize, self.fast, self.play = path, blocksize, fast, play
        self.output_device = output_device
        from pathlib import Path
        if not Path(path).is_file():
            raise DrumClassifierError(f"{path}: file not found" if not Path(path).exists()
                                      else f"{path}: not a file")
        try:
            info = sf.info(sf_name(path))
        except Exception as e:
            from drumclassifier.audio import read  # one consistent message for bad files
            read(path, 0.01)
            raise DrumClassifierError(f"{path}: cannot decode audio ({e})") from None
        self.sample_rate_hz, self.channels = int(info.samplerate), int(info.channels)
        self.frames = int(info.frames)
        self.finished = threading.Event()
        self.error = None
        self._stop = threading.Event()
        self._thread = None
        self.blocks = 0

    def start(self, ring: RingBuffer) -> None:
        out = None
        if self.play:
            sd = import_sounddevice()
            dev = resolve_device(self.output_device, "output")
            try:
                out = sd.OutputStream(device=dev, samplerate=self.sample_rate_hz,
                                      channels=self.channels, dtype="float32",
                                      blocksize=self.blocksize)
                out.start()
            except sd.PortAudioError as e:
                raise DrumClassifierError(f"cannot open audio output for --play: {e}") from None
        self._thread = threading.Thread(target=self._run, args=(ring, out),
                                        name="drumclassifier-file-source", daemon=True)
        self._thread.start()

    def _run(self, ring: RingBuffer, out) -> None:
        import soundfile as sf
        buf = np.zeros((self.blocksize, self.channels), np.float32)
        try:
            with sf.SoundFile(sf_name(self.path)) as f:
                t0 = time.perf_counter()
                pos = 0
                while not self._stop.is_set():
                    n = f.read(self.blocksize, dtype="float32", always_2d=True, out=buf).shape[0]
                    if n == 0:
                        break
                    block = buf[:n]
                    if out is not None:
                        out.write(block)              # paced by the sound card's clock
                    elif not self.fast:               # a device delivers a block once it is full
                        delay = t0 + (pos + n) / self.sample_rate_hz - time.perf_counter()
                        if delay > 0:
                            time.sleep(delay)
                    else:                             # lossless: wait for the reader
                        while ring.free < n and not self._stop.is_set():
                            time.sleep(0.0005)
                    ring.write(block)
                    pos += n
                    self.blocks += 1
        except Exception as e:
            self.error = f"{self.path}: {type(e).__name__}: {e}"
        finally:
            if out is not None:
                try:
                    out.stop()
                    out.close()
                except Exception:
                    pass
            self.finished.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
