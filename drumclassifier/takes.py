"""Hits of one piece from a stretch of audio: what calibration hears in a take.

One code path for `calibrate --from-file` (a whole recording, fed block by block) and the
guided live session (`calibrate --device`, blocks from the device's ring buffer): the live
OnsetDetector finds the onsets and the live Slicer cuts each hit's audio, then
`check_hits` says what was heard (levels, clipped or too-quiet hits, too few hits).

A calibration hit is longer than a live slice: up to `max_hit_s` (the model's 1 s analysis
window, which fit_profile also fits) from its onset, cut short at the next onset so it never
holds the start of another hit.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from realtime.config import OnsetConfig
from realtime.onset import Onset, OnsetDetector
from realtime.slicer import Slicer

CLIP_DB = -0.1        # a hit peaking at or above this (dBFS) is reported as clipped
QUIET_DB = -40.0      # a hit peaking below this over the live context is reported as too quiet
MIN_HITS = 3          # fewer hits per piece: the profile is unreliable (warned)
MIN_SPAN_DB = 6.0     # softest to hardest narrower than this: the velocity range is not learnt


@dataclass
class TakeHit:
    onset_sample: int     # stream position of the onset (samples since the take started)
    audio: np.ndarray     # [n, channels] float32 at the stream rate, from the onset


class HitCollector:
    """Blocks of one stream -> calibration hits, as the live engine finds them.

    push(block, start) as audio arrives, gap(start) after lost audio, flush() at the end;
    `hits` holds the finished hits in order, `onsets` every onset detected.
    """

    def __init__(self, sample_rate_hz: int, channels: int, onset_cfg: OnsetConfig | None = None,
                 max_hit_s: float = 1.0):
        self.sr = sample_rate_hz
        self.detector = OnsetDetector(sample_rate_hz, onset_cfg)
        # the Slicer's context is the whole hit; 2 s more history than that covers the delay
        # between an onset and the moment its slice is complete
        self.slicer = Slicer(sample_rate_hz, channels, max_hit_s * 1000, max_hit_s + 2.0)
        # a later onset is known at most one frame + one hop after its attack: a finished
        # slice waits that long for it before it is final
        self._settle = self.detector.latency_samples + self.detector.hop
        self.onsets: list[Onset] = []
        self.hits: list[TakeHit] = []
        self._waiting: deque = deque()     # Slices cut, the next onset still unknown
        self.end = 0                       # stream position after the last sample pushed

    def push(self, block: np.ndarray, start: int) -> None:
        """[n, channels] float32 audio starting at stream position `start`."""
        onsets = self.detector.process_online(block)
        self.onsets += onsets
        self.slicer.push(block, start)
        self.slicer.add(onsets)
        self._waiting.extend(self.slicer.ready())
        self.end = start + len(block)
        self._finish(final=False)

    def gap(self, start: int) -> None:
        """Audio was lost before `start`: the hits pending end at the gap."""
        self._waiting.extend(self.slicer.flush())
        self._finish(final=True)
        self.detector.reset(start)

    def flush(self) -> None:
        """End of the take: pending hits keep the audio there is."""
        self._waiting.extend(self.slicer.flush())
        self._finish(final=True)

    def _finish(self, final: bool) -> None:
        while self._waiting:
            onset, audio = self._waiting[0].track.onset, self._waiting[0].audio
            later = [o.sample for o in self.onsets if o.sample > onset.sample]
            if not later and not final and self.end < onset.sample + len(audio) + self._settle:
                break
            self._waiting.popleft()
            if later:
                audio = audio[:max(1, later[0] - onset.sample)]
            self.hits.append(TakeHit(onset.sample, np.array(audio, np.float32)))


def hits_in(data: np.ndarray, sample_rate_hz: int, onset_cfg: OnsetConfig | None = None,
            max_hit_s: float = 1.0, block: int = 4096) -> list[TakeHit]:
    """A whole [n, channels] recording -> its hits, fed block by block as a device would."""
    c = HitCollector(sample_rate_hz, data.shape[1], onset_cfg, max_hit_s)
    for s in range(0, len(data), block):
        c.push(np.ascontiguousarray(data[s:s + block], np.float32), s)
    c.flush()
    return c.hits


def level_db(audio: np.ndarray, samples: int | None = None) -> float:
    """Peak level (dBFS) of [n, channels] audio, over its first `samples` (all if None)."""
    a = audio[:samples] if samples is not None else audio
    peak = float(np.abs(a).max()) if a.size else 0.0
    return 20 * math.log10(max(peak, 1e-10))


def check_hits(hits: Sequence[np.ndarray], sample_rate_hz: int | Sequence[int], live_ms: float,
               where: Sequence[str], expected: int | None = None
               ) -> tuple[list[float], list[str]]:
    """What was heard of one piece: each hit's level and the warnings to show.

    Args:
        hits: the piece's hits, [n, channels] each from its onset, at sample_rate_hz (one
            rate, or one per hit: one-shot files differ).
        live_ms: the level is the peak over this much audio after the onset, as the live
            slicer measures a hit's velocity.
        where: a name per hit for the warnings ("hit 3", "12.345 s").
        expected: the hits asked for; a different count is warned.
    Returns (levels in dBFS, warnings).
    """
    rates = [sample_rate_hz] * len(hits) if isinstance(sample_rate_hz, int) else sample_rate_hz
    levels, flags = [], []
    for x, rate, src in zip(hits, rates, where):
        lev = level_db(x, max(1, int(round(live_ms * rate / 1000))))
        levels.append(lev)
        if level_db(x) >= CLIP_DB:
            flags.append(f"clipped hit at {src}: lower the input gain and re-take")
        elif lev < QUIET_DB:
            flags.append(f"too quiet hit ({lev:.1f} dB) at {src}: raise the input gain or "
                         "move the mic closer")
    if expected is not None and len(hits) != expected:
        flags.append(f"{len(hits)} hits heard, {expected} expected")
    if len(hits) < MIN_HITS:
        flags.append(f"fewer than {MIN_HITS} hits: teach it more for a reliable profile")
    elif max(levels) - min(levels) < MIN_SPAN_DB:
        flags.append(f"levels span only {max(levels) - min(levels):.1f} dB: play softly to "
                     "hard so the velocity range is learnt")
    return levels, flags
