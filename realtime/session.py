"""Practice sessions: `drumclassifier listen/stream --session DIR [--record-audio]`.

DIR receives, while playing:
  events.csv    every event (the --events columns: time_s,label,confidence,velocity,...)
  audio.flac    with --record-audio: the input as analysed (24-bit FLAC; samples lost to a
                ring-buffer overflow are written as silence, so audio time = event time)
and at the end (also after Ctrl-C, once the engine has flushed):
  session.json  when, what source, model, duration, engine counters
  report.html, timeline.png, report.json   (realtime/report.py; `drumclassifier report DIR`
                rebuilds them)

A DIR that exists and is not empty is refused unless force: a session never overwrites
another one by accident. With force, the files above are replaced; others are left alone.
"""
from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path

import numpy as np

from drumclassifier.errors import DrumClassifierError

from .report import build_report
from .sinks import AudioSink, EventsCsvSink, open_exclusive


def check_session_dir(path: str | Path, force: bool = False) -> Path:
    """The session directory, refused if it is a file, or exists non-empty without force."""
    d = Path(path)
    if d.exists() and not d.is_dir():
        raise DrumClassifierError(f"{d}: exists and is not a directory")
    if d.is_dir() and any(d.iterdir()) and not force:
        raise DrumClassifierError(f"session directory {d} exists and is not empty; choose a "
                                  "new one or use --force to write into it")
    return d


class AudioRecorder(AudioSink):
    """The analysed audio to a FLAC file. audio() (analysis thread) only copies the block
    into a queue; a writer thread encodes. Overflow gaps become silence."""

    def __init__(self, path: str | Path, sample_rate_hz: int, channels: int,
                 force: bool = False, subtype: str = "PCM_24"):
        self.path, self.sr, self.channels = Path(path), sample_rate_hz, channels
        self.force, self.subtype = force, subtype
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._next = 0                      # the next stream frame expected
        self.frames = self.gap_frames = 0
        self.error = None
        self._thread = None
        self._f = None

    def open(self) -> None:
        import soundfile as sf
        if self.path.exists() and not self.force:
            raise DrumClassifierError(f"{self.path} exists; use --force to overwrite")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = sf.SoundFile(str(self.path), "w" if self.force else "x", self.sr,
                               self.channels, self.subtype, format="FLAC")
        self._thread = threading.Thread(target=self._write, name="session-audio", daemon=True)
        self._thread.start()

    def audio(self, block, start_frame: int) -> None:
        if start_frame > self._next:
            self._q.put(start_frame - self._next)         # frames lost: silence
        self._q.put(np.array(block, np.float32))          # copy: the caller reuses block
        self._next = start_frame + len(block)

    def _write(self) -> None:
        zeros = np.zeros((65536, self.channels), np.float32)
        while True:
            item = self._q.get()
            if item is None:
                return
            if self.error:
                continue                                   # keep draining
            try:
                if isinstance(item, int):
                    self.gap_frames += item
                    while item > 0:
                        n = min(item, len(zeros))
                        self._f.write(zeros[:n])
                        item -= n
                else:
                    self._f.write(item)
                    self.frames += len(item)
            except Exception as e:  # noqa: BLE001 - reported at close(), like a source's error
                self.error = f"{self.path}: {type(e).__name__}: {e}"

    def close(self) -> None:
        if self._f is None:
            return
        self._q.put(None)
        self._thread.join()
        self._f.close()
        self._f = None
        if self.error:
            raise DrumClassifierError(self.error)


class Session:
    """One practice session in a directory: sinks to attach to the engine, then finish()."""

    def __init__(self, directory: str | Path, force: bool = False, record_audio: bool = False,
                 meta: dict | None = None):
        self.dir = check_session_dir(directory, force)
        self.force, self.record_audio = force, record_audio
        self.meta = dict(meta or {})
        self.started = time.strftime("%Y-%m-%d %H:%M:%S")
        self.recorder: AudioRecorder | None = None

    def sinks(self, source) -> list:
        """The events CSV (and the audio recorder): add them to the engine's sinks."""
        self.dir.mkdir(parents=True, exist_ok=True)
        out = [EventsCsvSink(self.dir / "events.csv", self.force)]
        if self.record_audio:
            self.recorder = AudioRecorder(self.dir / "audio.flac", source.sample_rate_hz,
                                          source.channels, self.force)
            out.append(self.recorder)
        return out

    def finish(self, stats=None, **meta):
        """Write session.json and the report; returns the report's Analysis."""
        info = {"started": self.started, "ended": time.strftime("%Y-%m-%d %H:%M:%S"),
                **self.meta, **meta}
        if stats is not None:
            info["duration_s"] = stats.seconds
            info["stats"] = stats.summary()
        info["audio"] = "audio.flac" if self.recorder is not None else None
        if self.recorder is not None:
            info["audio_gap_frames"] = self.recorder.gap_frames
        with open_exclusive(self.dir / "session.json", self.force, "w", encoding="utf-8") as f:
            json.dump(info, f, indent=1)
        return build_report(self.dir, force=self.force)
