"""Slicer: audio history + pending onsets -> hits of onset + context_ms of audio.

A hit is the `context_ms` of audio from its onset: a slice of onset + context_ms.
The model's 4 s window is implicitly zero-padded: DrumClassifier.predict computes only
the frames covering the content, and its output equals that of the slice zero-padded to
the full window (tests/test_foundation.py::test_padded_window_equals_unpadded checks it),
so the padding is never materialised.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .onset import Onset


@dataclass
class Hit:
    """One detected hit, ready for the model."""
    index: int                 # 0, 1, 2... in order of detection
    onset: Onset
    audio: np.ndarray          # [n, channels] float32 at the stream rate, from the onset
    peak_db: float             # peak level over the slice (dBFS): the velocity's input
    ready_sample: int          # stream position at which the slice was complete (block end)
    t_onset_wall: float | None = None   # perf_counter time the onset sample was at the input
    t_ready: float = 0.0       # perf_counter time the hit was handed to the worker queue
    partial: bool = False      # cut short by the end of the stream
    meta: dict = field(default_factory=dict)


class Slicer:
    """Keeps the last `history_s` of audio and cuts onset + context slices from it."""

    def __init__(self, sample_rate_hz: int, channels: int, context_ms: float,
                 history_s: float = 1.0):
        self.sr = sample_rate_hz
        self.context = max(1, int(round(context_ms * sample_rate_hz / 1000)))
        self.size = max(int(history_s * sample_rate_hz), 4 * self.context)
        self._hist = np.zeros((self.size, channels), np.float32)
        self._end = 0                    # stream position after the newest sample held
        self._pending: deque[Onset] = deque()
        self.lost = 0                    # onsets whose audio had already left the history

    def reset(self, position: int) -> None:
        """After a gap in the stream: the next sample pushed is at `position`."""
        self._end = position

    def push(self, block: np.ndarray, start: int) -> None:
        """Append [n, channels] audio that starts at stream position `start`."""
        if start != self._end:
            self.reset(start)
        n = len(block)
        if n >= self.size:
            block, n = block[-self.size:], self.size
        i = self._end % self.size
        first = min(n, self.size - i)
        self._hist[i:i + first] = block[len(block) - n:len(block) - n + first]
        if n > first:
            self._hist[:n - first] = block[len(block) - n + first:]
        self._end = start + len(block)

    def add(self, onsets) -> None:
        self._pending.extend(onsets)

    def ready(self) -> list[tuple[Onset, np.ndarray, bool]]:
        """Slices whose context is complete: (onset, audio [context, ch], partial=False)."""
        out = []
        while self._pending and self._pending[0].sample + self.context <= self._end:
            o = self._pending.popleft()
            a = self._cut(o.sample, o.sample + self.context)
            if a is not None:
                out.append((o, a, False))
        return out

    def flush(self) -> list[tuple[Onset, np.ndarray, bool]]:
        """At the end of the stream (or a gap): pending onsets with whatever audio there is."""
        out = []
        while self._pending:
            o = self._pending.popleft()
            a = self._cut(o.sample, min(self._end, o.sample + self.context))
            if a is not None and len(a):
                out.append((o, a, True))
        return out

    def _cut(self, a: int, b: int) -> np.ndarray | None:
        if a < self._end - self.size:
            self.lost += 1
            return None
        idx = np.arange(a, b) % self.size
        return self._hist[idx]
