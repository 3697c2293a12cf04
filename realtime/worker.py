"""The worker: a bounded queue of hits, a thread that batches and classifies them, events.

Drop policy: the analysis thread puts hits with `HitQueue.put`, which never waits. When
the queue is full, `oldest` (default) drops the stalest pending hit (a late drum trigger
is worse than none), `newest` refuses the new one. Either way `dropped` counts it.
When hits arrive faster than the model, the worker takes everything waiting (up to
`max_batch`) into one model call, so a backlog is cleared in few calls.

Faults: a sink that raises (a MIDI port that vanished, a full disk) is reported once,
on stderr at once and in `errors`, and is not called again: the other sinks go on. A
model call that raises loses its batch, counted in `failed`; each distinct message is
reported once. Every queued hit ends up counted once: classified + unclassifiable +
failed (+ the queue's own dropped) = hits queued.

Anytime decisions (slicer.anytime_ms): each rung of a hit is queued as its own Hit
(sharing the hit's Track). `classify` answers None for a hit it is not yet sure of
(and not at its last rung): nothing is sent and the next rung decides again. The first
sure rung (or the last) sends the note and marks the track decided; later rungs are
skipped without a model call. A kit profile with a sigmoid per piece may answer
More([...]): send these pieces now, the others are not sure yet (a kick at 5 ms, the
ride struck with it at 20): the rung counts as waiting and the next one goes on.
Rungs of one hit that land in one batch are judged in order, so the decision does not
depend on how the batches fall (paced = fast).
Counting rungs: classified (hits decided) + waiting (rungs not sure yet) + superseded
(rungs after the decision) + unclassifiable + failed (+ dropped) = rungs queued.
"""
from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

from .config import VelocityConfig
from .slicer import Hit


@dataclass
class Event:
    """One class present at one hit (a hit with kick + hihat gives two events)."""
    time_s: float              # onset time in the stream
    label: str
    confidence: float          # the class's presence probability
    velocity: int              # MIDI velocity 1-127 from the hit's peak level
    latency_ms: float          # hit-to-note in stream time: detection + context + block
                               # (audio that had to arrive) + queueing + inference (measured)
    wall_latency_ms: float     # hit-to-note on the wall clock, from the onset block's arrival
    detect_ms: float           # onset detected this long after the onset (stream time)
    queue_ms: float            # waiting in the queue (wall)
    infer_ms: float            # the model call for this hit's batch (wall)
    batch_size: int
    hit_index: int
    onset_sample: int
    peak_db: float
    partial: bool = False
    context_ms: float = 0.0    # audio after the onset the decision used (ms): the rung
    piece: str = ""            # with a kit profile: the piece's name ("floor tom")
    note: int | None = None    # with a kit profile: the piece's MIDI note (else the class's)


class More(list):
    """A classify result: send these now, and keep classifying the hit's later rungs."""


def velocity_from_db(peak_db: float, cfg: VelocityConfig) -> int:
    """1 + 126 * clip((peak_db - min_db) / (max_db - min_db), 0, 1) ** gamma, rounded."""
    x = (peak_db - cfg.min_db) / (cfg.max_db - cfg.min_db)
    x = min(1.0, max(0.0, x))
    return int(round(1 + 126 * x ** cfg.gamma))


class HitQueue:
    """Bounded FIFO between the analysis thread and the worker; `put` never blocks."""

    def __init__(self, maxsize: int, policy: str = "oldest"):
        self.maxsize, self.policy = maxsize, policy
        self._q: deque[Hit] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.dropped_hits: list[int] = []   # indices, for reports and tests (bounded below)
        self.max_depth = 0                  # the deepest the queue has been (<= maxsize)

    def put(self, hit: Hit, wait: bool = False) -> bool:
        """Queue a hit; False if it (or an older one) had to be dropped. wait: a full
        queue is waited on instead (a file read as fast as possible: nothing is real time,
        so nothing is dropped); never for a live input, whose analysis must keep up."""
        with self._cv:
            while wait and len(self._q) >= self.maxsize and not self._closed:
                self._cv.wait(0.1)
            ok = True
            if len(self._q) >= self.maxsize:
                ok = False
                victim = self._q.popleft() if self.policy == "oldest" else hit
                self.dropped += 1
                if len(self.dropped_hits) < 100000:
                    self.dropped_hits.append(victim.index)
                if self.policy != "oldest":
                    return False
            self._q.append(hit)
            self.max_depth = max(self.max_depth, len(self._q))
            self._cv.notify()
            return ok

    def get_batch(self, max_batch: int, timeout: float = 0.1) -> list[Hit] | None:
        """Everything waiting (up to max_batch); [] on timeout; None once closed and empty."""
        with self._cv:
            if not self._q and not self._closed:
                self._cv.wait(timeout)
            if not self._q:
                return None if self._closed else []
            n = min(max_batch, len(self._q))
            batch = [self._q.popleft() for _ in range(n)]
            self._cv.notify_all()          # room again for a put that waits (wait=True)
            return batch

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def __len__(self) -> int:
        return len(self._q)


class Worker(threading.Thread):
    """Takes batches from the queue, classifies them, hands events to the sinks."""

    def __init__(self, queue: HitQueue, classify, sinks, velocity: VelocityConfig,
                 sample_rate_hz: int, max_batch: int = 32, report=None):
        super().__init__(name="drumclassifier-worker", daemon=True)
        # report(message): where a fault is said the moment it happens (default: stderr)
        self.report = report or (lambda msg: print(f"error: {msg}", file=sys.stderr,
                                                   flush=True))
        self.queue, self.classify, self.sinks = queue, classify, sinks
        self.velocity, self.sr, self.max_batch = velocity, sample_rate_hz, max_batch
        self.classified = 0                 # hits decided (each once, at one rung)
        self.waiting = 0                    # anytime: rungs not sure yet (more context came)
        self.superseded = 0                 # anytime: rungs after their hit's decision
        self.unclassifiable = 0
        self.events = 0
        self.errors: list[str] = []
        self.sink_errors = 0
        self.failed = 0                     # hits lost to a model call that raised
        self.failed_sinks: dict[int, str] = {}   # id(sink) -> its one error message
        self.batches = 0
        # per model call, the last 10000 (bounded: a session may run for hours)
        self.infer_ms: deque[float] = deque(maxlen=10000)
        self.batch_sizes: deque[int] = deque(maxlen=10000)

    def run(self) -> None:
        while True:
            batch = self.queue.get_batch(self.max_batch)
            if batch is None:
                return
            if batch:
                try:
                    self.process(batch)
                except Exception as e:  # noqa: BLE001 (a failing batch must not kill the engine)
                    self.failed += len(batch)
                    self._error(f"classifying a batch of {len(batch)} hit(s) failed, "
                                f"they are lost: {type(e).__name__}: {e}")

    def _error(self, msg: str) -> None:
        """Say each distinct fault once: a persistent one must not flood the console."""
        if msg not in self.errors and len(self.errors) < 20:
            self.errors.append(msg)
            self.report(msg)

    def process(self, hits: list[Hit]) -> list[Event]:
        # rungs of hits decided in an earlier batch need no model call
        todo = [h for h in hits if h.track is None or not h.track.decided]
        self.superseded += len(hits) - len(todo)
        if not todo:
            return []
        t0 = time.perf_counter()
        kept, labels = self.classify(todo)
        if len(kept) != len(labels) or len(kept) > len(todo):
            raise RuntimeError(f"classify returned {len(labels)} results for {len(kept)} "
                               f"kept of {len(todo)} hits")
        t1 = time.perf_counter()
        infer_ms = (t1 - t0) * 1000
        self.batches += 1
        self.infer_ms.append(infer_ms)
        self.batch_sizes.append(len(kept))
        kept_ids = {id(h) for h in kept}
        left_out = [h for h in todo if id(h) not in kept_ids]   # e.g. digital silence
        self.unclassifiable += sum(h.final for h in left_out)
        self.waiting += sum(not h.final for h in left_out)      # a later rung may do
        events = []
        t_emit = time.perf_counter()
        for h, present in zip(kept, labels):
            if h.track is not None and h.track.decided:   # an earlier rung of this batch
                self.superseded += 1
                continue
            if present is None:                           # not sure yet: the next rung
                self.waiting += 1
                continue
            if isinstance(present, More):                 # some now, more may follow
                self.waiting += 1
            else:
                if h.track is not None:
                    h.track.decided = True
                self.classified += 1
            o = h.onset
            # stream time from the onset to the end of the block that completed this
            # rung's audio: the context actually waited for, detection and the block
            stream_ms = (h.ready_sample - o.sample) / self.sr * 1000
            wall = ((t_emit - h.t_onset_wall) * 1000 if h.t_onset_wall is not None
                    else float("nan"))
            vel = velocity_from_db(h.peak_db, self.velocity)
            for item in present:   # (label, p) or, from a kit profile, (label, p, extras)
                label, p = item[0], item[1]
                extra = item[2] if len(item) > 2 else {}
                events.append(Event(
                    time_s=o.sample / self.sr, label=label, confidence=p,
                    velocity=extra.get("velocity", vel),
                    latency_ms=stream_ms + (t_emit - h.t_ready) * 1000, wall_latency_ms=wall,
                    detect_ms=(o.detect_sample - o.sample) / self.sr * 1000,
                    queue_ms=(t0 - h.t_ready) * 1000, infer_ms=infer_ms, batch_size=len(kept),
                    hit_index=h.index, onset_sample=o.sample, peak_db=h.peak_db,
                    partial=h.partial, context_ms=len(h.audio) / self.sr * 1000,
                    piece=extra.get("piece", ""), note=extra.get("note")))
        self.events += len(events)
        for s in self.sinks:
            if id(s) in self.failed_sinks:
                continue
            try:
                s.emit(events)
            except Exception as e:  # noqa: BLE001 (this output is gone; the others go on)
                self.sink_errors += 1
                msg = (f"{type(s).__name__} failed and is switched off, other outputs go on: "
                       f"{type(e).__name__}: {e}")
                self.failed_sinks[id(s)] = msg
                self._error(msg)
        return events
