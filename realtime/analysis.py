"""The analysis of one stream: ring buffer -> onset detector -> slicer -> slices.

One loop serves every live consumer: the engine's analysis thread (slices -> the worker's
queue) and a calibration take (slices -> the hits of one piece, realtime/calibrate.py).
Both read the ring buffer the source writes, pass each block through the same onset
detector and slicer (Analysis), end pending slices at a gap of lost audio, and stop when
the source has finished and everything it delivered is read, or when a device stalls.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .config import OnsetConfig
from .onset import Onset, OnsetDetector
from .ringbuffer import RingBuffer
from .slicer import Slice, Slicer


def stall_message(stall_s: float) -> str:
    return f"no audio from the input device for {stall_s:g} s (disconnected?)"


class Analysis:
    """One stream's onset detector and slicer: blocks in, slices out.

    contexts_ms: the slicer's rungs (one context, or an anytime ladder); history_s: the
    audio it keeps (must exceed the detection delay plus the longest rung).
    """

    def __init__(self, sample_rate_hz: int, channels: int, onset_cfg: OnsetConfig | None,
                 contexts_ms: float | list[float], history_s: float, start_silent: bool = True):
        self.detector = OnsetDetector(sample_rate_hz, onset_cfg, start_silent)
        self.slicer = Slicer(sample_rate_hz, channels, contexts_ms, history_s)
        self.end = 0            # stream position after the last sample pushed

    def push(self, block: np.ndarray, start: int) -> tuple[list[Onset], list[Slice]]:
        """[n, channels] float32 audio starting at stream position `start` -> the onsets
        detected in it and the slices now complete."""
        onsets = self.detector.process_online(block)
        self.slicer.push(block, start)
        self.slicer.add(onsets)
        self.end = start + len(block)
        return onsets, self.slicer.ready()

    def gap(self, start: int) -> list[Slice]:
        """Audio was lost before `start`: the pending slices end at the gap."""
        out = self.slicer.flush()
        self.detector.reset(start)
        return out

    def flush(self) -> list[Slice]:
        """End of the stream: every pending onset's last slice, with the audio there is."""
        return self.slicer.flush()


def analyse(ring: RingBuffer, source, push: Callable[[np.ndarray, int], None],
            gap: Callable[[int], None], *, stop: Callable[[], bool] = lambda: False,
            until: Callable[[], str | None] = lambda: None, stall_s: float | None = None,
            poll_s: float = 0.0005) -> str:
    """Read what `source` delivers into `ring` and hand it on, until the stream ends.

    push(block, start) gets each block read, gap(start) each gap of lost audio (ring
    buffer overflow). The loop ends:
      "end"    the source has finished (or stop() is true) and the ring buffer is read;
      until()  whatever it returns, checked after every read: a reason to stop now;
      "stall"  with stall_s: no audio for that long (an unplugged device may just stop
               calling back, without an error or a finished callback).
    Between reads that find nothing it sleeps poll_s (the writer takes no lock, so it
    cannot signal). Flushing the slices still pending is the caller's.
    """
    buf = np.zeros((max(8192, source.blocksize), ring.channels), np.float32)
    last_audio = time.monotonic()
    while True:
        n, start, lost = ring.read_into(buf)
        if lost:
            gap(start)
        if n:
            last_audio = time.monotonic()
            push(buf[:n], start)
        why = until()
        if why:
            return why
        if n == 0:
            if (source.finished.is_set() or stop()) and ring.available == 0:
                return "end"
            if stall_s is not None and time.monotonic() - last_audio > stall_s:
                return "stall"
            time.sleep(poll_s)
