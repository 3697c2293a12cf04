"""Causal onset detection: spectral flux on log-frequency bands, adaptive threshold.

Hop by hop, using no sample after the current frame's end:
  1. frame t covers samples [t*hop, t*hop + frame) of the mono mix (Hann window);
  2. magnitudes are summed into log-spaced bands and compressed, L = log1p(log_mul * g * band),
     where g boosts a quiet take so its recent peak reads as gain_to_dbfs (at most
     gain_max_db; g = 1 for a take at least that loud), because log1p is nearly linear for
     small magnitudes and a take recorded with headroom would lose its soft hits;
  3. flux[t] = mean over bands of max(0, L[t] - L[t - diff_frames]), or with band_quantile q
     the q-quantile of those rises over bands: a drum raises most bands at once, a bass
     or chord note only the few holding its partials;
  4. frame t is an onset if
       flux[t] >= delta + ratio * mean(flux over the previous avg_ms),
       flux[t] is above each of the 3 frames before it (causal peak test),
       the detector is armed (flux fell below rearm_ratio x the last onset's peak since),
       the frame is louder than min_level_db,
       and the onset is at least min_gap_ms after the previous one;
  5. the onset time is refined in the time domain: inside the newest frame, the start of
     the `refine_block` with the largest rise in log energy over the preceding blocks.

Stated latency: an onset is reported at the end of the frame where it is detected,
typically 1-3 hops (3-9 ms) after the attack; `Onset.detect_sample` says exactly when.

`process(x)` on a whole signal and `process_online(block)` block by block give identical
onsets whatever the block sizes, because both run the same per-hop recurrence (madmom's
OnlineProcessor idea).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from .config import OnsetConfig


@dataclass
class Onset:
    sample: int          # refined onset time, in samples since the stream start
    detect_sample: int   # stream position at which it was detected (end of the frame)
    strength: float      # the spectral flux at detection


def band_edges(n_fft: int, sample_rate_hz: int, f_min: float, f_max: float,
               bands_per_octave: int) -> np.ndarray:
    """First FFT bin of each log-spaced band (for np.add.reduceat); the last band runs to
    f_max. Bands narrower than one bin are merged, so each holds at least one bin."""
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate_hz)
    f_max = min(f_max, sample_rate_hz / 2)
    n_oct = math.log2(f_max / f_min)
    edges = f_min * 2 ** (np.arange(int(n_oct * bands_per_octave) + 1) / bands_per_octave)
    bins = np.unique(np.searchsorted(freqs, edges))
    return bins[bins < len(freqs) - 1].astype(np.intp)


class OnsetDetector:
    """Causal spectral-flux onset detector for a stream at `sample_rate_hz`.

    Input: [n] mono or [n, channels] float32 (channels are averaged).
    start_silent: True for a file (silence before its first sample: a hit there is an
    onset), False for a live input opened mid-sound (see `reset`).
    """

    def __init__(self, sample_rate_hz: int, cfg: OnsetConfig | None = None,
                 start_silent: bool = True):
        cfg = cfg or OnsetConfig()
        self.start_silent = start_silent
        self.cfg = cfg
        self.sr = sample_rate_hz
        scale = sample_rate_hz / 44100
        self.frame = max(16, int(round(cfg.frame_size * scale)))
        self.hop = max(1, int(round(cfg.hop_size * scale)))
        self.window = np.hanning(self.frame).astype(np.float32)
        self.window_norm = np.float32(2.0 / self.window.sum())  # a full-scale sine peaks near 1
        self.band_edges = band_edges(self.frame, sample_rate_hz, cfg.f_min_hz, cfg.f_max_hz,
                                     cfg.bands_per_octave)
        # low bands: a frame shorter than a bass note's period sees its level wobble with the
        # phase, so there the reference is the max over the last low_ms, not one frame
        centres = np.fft.rfftfreq(self.frame, 1 / sample_rate_hz)[self.band_edges]
        self.low = centres < cfg.low_hz                          # [bands] bool
        self.low_frames = max(cfg.diff_frames,
                              int(round(cfg.low_ms * sample_rate_hz / 1000 / self.hop)))
        self.avg_frames = max(1, int(round(cfg.avg_ms * sample_rate_hz / 1000 / self.hop)))
        # band_quantile: the k-th smallest per-band rise (np.partition; no interpolation)
        n_bands = len(self.band_edges)
        self.quantile_k = (min(n_bands - 1, int(round(cfg.band_quantile * (n_bands - 1))))
                           if cfg.band_quantile > 0 else None)
        self.min_gap = int(round(cfg.min_gap_ms * sample_rate_hz / 1000))
        self.min_level = 10 ** (cfg.min_level_db / 20)
        self.gain_to = 10 ** (cfg.gain_to_dbfs / 20)
        self.gain_max = 10 ** (cfg.gain_max_db / 20)
        self.release = 10 ** (-cfg.gain_release_db_s * self.hop / sample_rate_hz / 20)  # per hop
        self.reset()

    @property
    def latency_samples(self) -> int:
        """Worst-case look-ahead the detector needs beyond an attack: one frame."""
        return self.frame

    def reset(self, position: int = 0) -> None:
        """Forget all history; the next sample given is stream sample `position`.

        With `start_silent` (a file: nothing precedes its first sample) the stream is taken
        to be preceded by silence: the first frame ends one hop after `position` with
        frame - hop zeros before it, and the reference levels are those of silence, so a
        hit at the very first sample is an onset like any other (a file that starts with a
        crash + kick keeps them). A live input has no such start: whatever was already
        sounding when it opened (hum, a ringing cymbal) is not an attack, so there the
        first frames only serve as references.
        """
        pre = self.frame - self.hop if self.start_silent else 0
        self._buf = np.zeros(pre, np.float32)   # samples not yet consumed by a full frame
        self._buf_start = position - pre        # stream position of _buf[0]
        self._next_frame = position - pre       # stream position where the next frame starts
        self._origin = position                 # no onset is placed before the stream start
        # the last low_frames band levels [bands]; silence is log1p(0) = 0 in every band
        silence = [np.zeros(len(self.band_edges), np.float32)] * self.low_frames
        self._prev_logs = deque(silence if self.start_silent else [], maxlen=self.low_frames)
        self._hist = deque(maxlen=self.avg_frames)
        self._armed = True
        self._peak = 0.0                        # flux peak since the last onset
        self._recent = deque(maxlen=3)          # flux of the last 3 frames (causal peak test)
        self._last_onset = None
        self._level = 0.0                       # recent peak |sample| (falls by `release` a hop)

    def process(self, x: np.ndarray) -> list[Onset]:
        """A whole signal at once (from a fresh state)."""
        self.reset()
        return self.process_online(x)

    def process_online(self, block: np.ndarray) -> list[Onset]:
        """Feed the next block of the stream; returns the onsets completed by it."""
        block = np.asarray(block, np.float32)
        if block.ndim == 2:
            block = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        buf = np.concatenate([self._buf, block]) if len(self._buf) else block.copy()
        onsets: list[Onset] = []
        # frames fully inside buf: start positions _next_frame, + hop, ...
        off0 = self._next_frame - self._buf_start
        n_frames = (0 if len(buf) < off0 + self.frame
                    else (len(buf) - off0 - self.frame) // self.hop + 1)
        for c0 in range(0, n_frames, 2048):  # chunks bound memory on long offline signals
            c1 = min(n_frames, c0 + 2048)
            idx = off0 + np.arange(c0, c1)[:, None] * self.hop + np.arange(self.frame)[None, :]
            frames = buf[idx]                                      # [T, frame]
            spec = np.abs(np.fft.rfft(frames * self.window, axis=1)) * self.window_norm
            # per-row sums (reduceat), not a matmul: BLAS rounding would depend on T, and
            # block-by-block must equal whole-signal bit for bit
            bands = np.add.reduceat(spec, self.band_edges, axis=1)     # [T, bands]
            for i in range(c1 - c0):
                o = self._step(bands[i], buf, off0 + (c0 + i) * self.hop)
                if o is not None:
                    onsets.append(o)
        consumed = off0 + n_frames * self.hop
        self._next_frame += n_frames * self.hop
        keep_from = max(0, consumed - self.frame)   # keep one frame of history for refinement
        keep_from = min(keep_from, self._next_frame - self._buf_start)
        self._buf = buf[keep_from:]
        self._buf_start += keep_from
        return onsets

    def _step(self, bands: np.ndarray, buf: np.ndarray, off: int) -> Onset | None:
        """One hop: frame starting at buf[off], ending at stream position `end`.

        bands: [bands] summed magnitudes of this frame (full scale ~ 1).
        """
        c = self.cfg
        newest = buf[off + self.frame - self.hop:off + self.frame]
        rms = float(np.sqrt(np.dot(newest, newest) / len(newest)))
        # the gain uses the peak before this hop, so a hit is compressed like its references
        gain = min(self.gain_max, max(1.0, self.gain_to / max(self._level, 1e-12)))
        self._level = max(float(np.abs(newest).max(initial=0.0)), self._level * self.release)
        logs = np.log1p((c.log_mul * gain) * bands)
        end = self._buf_start + off + self.frame
        if len(self._prev_logs) >= c.diff_frames:
            ref = self._prev_logs[-c.diff_frames]
            if self.low.any():
                ref = np.where(self.low, np.max(self._prev_logs, axis=0), ref)
            rise = np.maximum(logs - ref, 0)                     # [bands]
            flux = (rise.mean() if self.quantile_k is None
                    else np.partition(rise, self.quantile_k)[self.quantile_k])
            flux = float(np.nan_to_num(flux, nan=0.0, posinf=1e30))
        else:
            flux = 0.0          # a live input's first frames: no reference yet
        self._prev_logs.append(logs)
        mean = sum(self._hist) / len(self._hist) if self._hist else 0.0
        self._hist.append(flux)
        threshold = c.delta + c.ratio * mean
        rising = not self._recent or flux > max(self._recent)
        self._recent.append(flux)
        if not self._armed:
            if flux < c.rearm_ratio * self._peak or flux < threshold:
                self._armed = True
            else:
                self._peak = max(self._peak, flux)
                return None
        if flux < threshold or not rising or rms < self.min_level:
            return None
        sample = max(self._refine(buf, off, end), self._origin)
        if self._last_onset is not None and sample - self._last_onset < self.min_gap:
            return None
        self._armed, self._peak, self._last_onset = False, flux, sample
        return Onset(sample=sample, detect_sample=end, strength=flux)

    def _refine(self, buf: np.ndarray, off: int, end: int) -> int:
        """Onset sample inside the frame [end - frame, end).

        The start of the `refine_block` whose energy rises most above the loudest of the
        8 blocks before it, on the first difference of the signal: the high-pass keeps a
        decaying low tone (a kick's tail) from looking like an attack at each half cycle.
        """
        b = self.cfg.refine_block
        x = np.diff(buf[off:off + self.frame])
        n = len(x) // b
        e = np.log10(np.mean(x[len(x) - n * b:].reshape(n, b) ** 2, axis=1) + 1e-12)
        look = 8
        best, best_k = -np.inf, n - 1
        for k in range(1, n):
            rise = e[k] - e[max(0, k - look):k].max()
            if rise > best:
                best, best_k = rise, k
        return int(end - n * b + best_k * b)
