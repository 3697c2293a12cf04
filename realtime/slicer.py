"""Slicer: audio history + pending onsets -> hits of onset + context_ms of audio.

A hit is the `context_ms` of audio from its onset: a slice of onset + context_ms.
The model's 4 s window is implicitly zero-padded: DrumClassifier.predict computes only
the frames covering the content, and its output equals that of the slice zero-padded to
the full window (tests/test_foundation.py::test_padded_window_equals_unpadded checks it),
so the padding is never materialised.

Anytime decisions: with a ladder of contexts (slicer.anytime_ms, e.g. 5, 10, 20, 40,
80 ms) one onset is cut once per rung, each time its audio reaches the rung, and every
rung goes to the worker as its own Hit; all rungs of one onset share a Track (same
hit index). The worker sends the note at the first confident rung and sets
`track.decided`; the slicer then cuts no further rungs of it (and the worker skips any
already queued). The analysis thread never waits for the worker: a decision it has not
seen yet costs at most one skipped slice. Without a ladder there is one rung,
context_ms, and each hit is final at once: the single fixed-context behaviour.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .onset import Onset


@dataclass
class Track:
    """One onset on its way up the ladder; shared by the Hits of all its rungs."""
    index: int                 # the hit index, 0, 1, 2... in order of detection
    onset: Onset
    rung: int = 0              # the next rung to cut
    decided: bool = False      # set by the worker once the hit's note is out (or judged)
    sent: set = field(default_factory=set)   # kit pieces already sent (sigmoid profiles
                                             # send each piece at its own rung)


@dataclass
class Slice:
    """One rung of one onset: audio [n, channels] from the onset (n = the rung's context,
    or less when `partial`: cut short by the end of the stream or a gap)."""
    track: Track
    audio: np.ndarray
    partial: bool
    final: bool                # no more context will come for this onset
    before: np.ndarray | None = None   # [m, channels]: the audio just before the onset
                                       # (what was already ringing): the model's lead-in
                                       # and hit_peak_db's tail estimate


def hit_peak_db(audio: np.ndarray, before: np.ndarray | None) -> float:
    """The hit's own peak level (dBFS), not that of the tails ringing under it.

    audio [n, ch] from the onset, before [m, ch] just before it (its last n samples are
    read). What rang before the onset rings on under the hit at about its level before it
    (a tail decays), so the hit's own peak is estimated as sqrt(peak_after^2 -
    peak_before^2), floored at -20 dB under peak_after. Over silence it is the slice's peak.
    """
    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    if before is not None and len(before) and len(audio):
        tail = float(np.abs(before[-len(audio):]).max())
        peak = max(np.sqrt(max(peak ** 2 - tail ** 2, 0.0)), 0.1 * peak)
    return 20 * float(np.log10(max(peak, 1e-10)))


# The band each class's own hit raises (Hz), measured by band_rises_db for the classes of
# decision.rise_classes (realtime/config.py). Toms have none: their band holds the kick's
# and the bass line's, and on the validation grooves checking it lost more toms than false
# toms (docs/benchmarks.md, "Did it rise").
RISE_BANDS_HZ = {"kick": (30.0, 150.0), "snare": (150.0, 1000.0),
                 "hihat": (6000.0, 16000.0), "cymbals": (3000.0, 16000.0)}
RISE_WINDOW_MS = 20.0           # the live context: the window compared on each side


def band_rises_db(audio: np.ndarray, before: np.ndarray | None, sample_rate_hz: int,
                  bands_hz: dict[str, tuple[float, float]],
                  window_ms: float = RISE_WINDOW_MS) -> dict[str, float]:
    """How much each band rose at the onset (dB): its energy in the first window_ms of
    `audio` [n, channels] (from the onset; fewer if the slice is shorter) against the same
    length of `before` [m, channels] just before the onset (silence where `before` is
    shorter: a file's first hit). A drum struck at the onset raises its band; a drum
    still ringing from before does not, whatever was struck over it, nor does a bass or
    chord note outside the band. Both windows Hann, zero-padded to about 10 Hz
    resolution. A band the slice is too short for, or above the Nyquist frequency,
    gives inf (no evidence: nothing is held back)."""
    n = min(len(audio), int(round(window_ms * sample_rate_hz / 1000)))
    if n < 16:
        return {c: float("inf") for c in bands_hz}
    now = audio[:n].mean(axis=1)                # [n] mono
    pre = np.zeros(n, np.float32)
    if before is not None and len(before):
        tail = before[-n:].mean(axis=1)
        pre[n - len(tail):] = tail
    n_fft = 1 << max(int(np.ceil(np.log2(sample_rate_hz / 10))), int(np.ceil(np.log2(n))))
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate_hz)
    w = np.hanning(n)
    p_now = np.abs(np.fft.rfft(now * w, n_fft)) ** 2    # [n_fft // 2 + 1] power
    p_pre = np.abs(np.fft.rfft(pre * w, n_fft)) ** 2
    out = {}
    for c, (lo, hi) in bands_hz.items():
        band = (freqs >= lo) & (freqs < hi)
        out[c] = (10 * float(np.log10((p_now[band].sum() + 1e-12) / (p_pre[band].sum() + 1e-12)))
                  if band.any() else float("inf"))
    return out


@dataclass
class Hit:
    """One detected hit (one rung of it with anytime decisions), ready for the model."""
    index: int                 # 0, 1, 2... in order of detection (shared by its rungs)
    onset: Onset
    audio: np.ndarray          # [n, channels] float32 at the stream rate, from the onset
    peak_db: float             # the hit's own peak level (dBFS, hit_peak_db): the velocity's input
    ready_sample: int          # stream position at which the slice was complete (block end)
    t_onset_wall: float | None = None   # perf_counter time the onset sample was at the input
    t_ready: float = 0.0       # perf_counter time the hit was handed to the worker queue
    partial: bool = False      # cut short by the end of the stream
    final: bool = True         # the last rung: decide now, confident or not
    track: Track | None = None  # anytime: the onset's shared state (None: a lone hit)
    before: np.ndarray | None = None   # [m, channels] the audio just before the onset


class Slicer:
    """Keeps the last `history_s` of audio and cuts onset + context slices from it.

    contexts_ms: the rungs (ascending), e.g. [20.0] (one fixed context) or the anytime
    ladder [5, 10, 20, 40, 80].
    """

    def __init__(self, sample_rate_hz: int, channels: int, contexts_ms: float | list[float],
                 history_s: float = 1.0, before_ms: float = 50.0):
        self.sr = sample_rate_hz
        ladder = [contexts_ms] if isinstance(contexts_ms, (int, float)) else list(contexts_ms)
        # rung lengths in samples, ascending: [R]
        self.rungs = [max(1, int(round(c * sample_rate_hz / 1000))) for c in ladder]
        self.context = self.rungs[-1]    # the longest slice cut
        # pre-onset audio given with each slice: at least the slice's length (hit_peak_db)
        # and before_ms (a model's lead-in: ModelConfig.lead_in_frames, 23 ms at 44.1 kHz)
        self.before = int(round(before_ms * sample_rate_hz / 1000))
        self.size = max(int(history_s * sample_rate_hz), 4 * self.context)
        self._hist = np.zeros((self.size, channels), np.float32)
        self._end = 0                    # stream position after the newest sample held
        self._origin = 0                 # stream position of the first sample since a gap
        self._pending: deque[Onset] = deque()   # onsets not cut yet
        self._tracks: list[Track] = []   # onsets cut at least once, not at their last rung
        self.hits = 0                    # onsets cut at least once (= hit indices given)
        self.lost = 0                    # onsets whose audio had already left the history

    def reset(self, position: int) -> None:
        """After a gap in the stream: the next sample pushed is at `position`."""
        self._end = self._origin = position

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

    def ready(self) -> list[Slice]:
        """Every rung whose audio is complete, oldest onset first (partial=False)."""
        while self._pending and self._pending[0].sample + self.rungs[0] <= self._end:
            self._start(self._pending.popleft())
        out = []
        for t in self._tracks:
            while not t.decided and t.rung < len(self.rungs) and \
                    t.onset.sample + self.rungs[t.rung] <= self._end:
                out += self._cut(t, self.rungs[t.rung], partial=False)
        self._drop_done()
        return out

    def flush(self) -> list[Slice]:
        """At the end of the stream (or a gap): every undecided onset's final slice with
        whatever audio there is (up to the longest rung)."""
        out = self.ready()
        while self._pending:    # not even their first rung yet
            self._start(self._pending.popleft())
        for t in self._tracks:
            if not t.decided:
                n = min(self._end - t.onset.sample, self.context)
                if n > 0:
                    out += self._cut(t, n, partial=True, final=True)
        self._tracks = []
        return out

    def _start(self, o: Onset) -> None:
        """A track (and a hit index) for an onset whose audio is still held, else lost."""
        if o.sample < self._end - self.size:
            self.lost += 1
            return
        self._tracks.append(Track(self.hits, o))
        self.hits += 1

    def _cut(self, t: Track, n: int, partial: bool, final: bool = False) -> list[Slice]:
        """The first n samples from t's onset; advances t to its next rung."""
        a = t.onset.sample
        t.rung += 1
        final = final or t.rung >= len(self.rungs)
        if a < self._end - self.size:   # only if a block outgrew the history: counted
            self.lost += 1
            t.rung = len(self.rungs)
            return []
        idx = np.arange(a, a + n) % self.size
        m = max(0, min(max(n, self.before), a - max(self._end - self.size, self._origin)))  # held, in the stream
        before = self._hist[np.arange(a - m, a) % self.size]
        return [Slice(t, self._hist[idx], partial, final, before)]

    def _drop_done(self) -> None:
        self._tracks = [t for t in self._tracks if not t.decided and t.rung < len(self.rungs)]
