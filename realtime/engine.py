"""Engine: source -> ring buffer -> onset detector -> slicer -> worker -> sinks.

Threads:
  audio    the device callback or the file reader: writes the ring buffer, nothing else;
  analysis reads the ring buffer, detects onsets, cuts slices, queues hits (never waits
           on the worker: a full queue drops by the counted policy); its loop is
           realtime/analysis.py's, which calibration takes share;
  worker   batches hits through the model and feeds the sinks.
The analysis thread polls the ring buffer every `poll_ms` (the writer takes no lock, so
it cannot signal); that adds at most poll_ms, 0.5 ms by default, to the latency.

stop() (also on Ctrl-C) ends the source, lets the analysis thread read what was
delivered and flush pending onsets, lets the worker classify what is queued, then
closes every sink: files are complete and MIDI gets its note-offs and all-notes-off.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from .analysis import Analysis, analyse, stall_message
from .config import RealtimeConfig
from .ringbuffer import RingBuffer
from .sinks import AudioSink
from .slicer import Hit, hit_peak_db
from .worker import HitQueue, Worker


@dataclass
class Stats:
    seconds: float = 0.0            # stream time analysed
    hits: int = 0                   # onsets detected (and sliced)
    classified: int = 0
    events: int = 0
    overflow_frames: int = 0        # ring buffer overflow (analysis fell behind the audio)
    overflow_events: int = 0
    input_overflows: int = 0        # the device's own status flags
    queue_dropped: int = 0          # hits dropped by the worker queue policy
    queue_max: int = 0              # deepest the worker queue has been (<= queue_size)
    failed: int = 0                 # hits lost to a model call that raised
    lost: int = 0                   # onsets whose audio left the slicer history
    unclassifiable: int = 0
    errors: tuple = ()

    def summary(self) -> str:
        s = (f"{self.seconds:.1f} s analysed: {self.hits} hits, {self.classified} classified, "
             f"{self.events} events; overflows: {self.overflow_events} "
             f"({self.overflow_frames} frames lost), device overflow flags: "
             f"{self.input_overflows}; queue drops: {self.queue_dropped}")
        if self.lost or self.unclassifiable or self.failed:
            s += (f"; lost slices: {self.lost}; unclassifiable: {self.unclassifiable}; "
                  f"failed: {self.failed}")
        if self.errors:
            s += "; errors: " + " | ".join(self.errors[:5])
        return s


class Engine:
    """Wire a source to sinks through the classifier.

    clf: a DrumClassifier, or anything `classify` accepts; classify: override the
    hits -> (hits, [[(label, p)...]]) function (tests use a deliberately slow one).
    wait_for_worker: a full hit queue holds the analysis up instead of dropping hits
    (None: only for a file read as fast as possible, where nothing is real time; a live
    input never waits: worker.drop_policy applies).
    """

    def __init__(self, clf, source, sinks, cfg: RealtimeConfig | None = None, classify=None,
                 poll_ms: float = 0.5, wait_for_worker: bool | None = None):
        self.cfg = cfg or RealtimeConfig()
        if self.cfg.worker.torch_threads > 0:
            # process-wide: the engine owns the live process; on few cores a second model
            # thread only competes with the audio and analysis threads (configs/realtime.yaml)
            import torch
            torch.set_num_threads(self.cfg.worker.torch_threads)
        self.source, self.sinks = source, list(sinks)
        self._audio_sinks = [s for s in self.sinks if isinstance(s, AudioSink)]  # e.g. a recorder
        sr, ch = source.sample_rate_hz, source.channels
        self.sr = sr
        self.ring = RingBuffer(max(int(self.cfg.audio.ring_s * sr), 4 * source.blocksize), ch)
        self.analysis = Analysis(sr, ch, self.cfg.onset, self.cfg.slicer.contexts_ms,
                                 self.cfg.slicer.history_s,
                                 getattr(source, "starts_silent", False))
        self.detector, self.slicer = self.analysis.detector, self.analysis.slicer
        self.queue = HitQueue(self.cfg.worker.queue_size, self.cfg.worker.drop_policy)
        self._lossless = (bool(getattr(source, "fast", False)) if wait_for_worker is None
                          else wait_for_worker)
        warm_up = getattr(clf, "warm_up", None)
        if warm_up is not None:     # the first hit must not pay the model's one-off costs
            warm_up(self.cfg.slicer.contexts_ms)
        if classify is None:
            from .classify import Classify  # torch: loaded when an engine is built
            classify = Classify(clf, sr, self.cfg.decision.min_confidence,
                                self.cfg.late_look_classes, self.cfg.slicer.context_ms,
                                self.cfg.decision.rise_classes,
                                self.cfg.decision.min_rise_db)
        self.worker = Worker(self.queue, classify, self.sinks, self.cfg.velocity, sr,
                             self.cfg.worker.max_batch)
        self.poll_s = poll_ms / 1000
        self._stop = threading.Event()
        self._analysis_thread = threading.Thread(target=self._analyse,
                                                 name="drumclassifier-analysis", daemon=True)
        self._pos = 0
        self.analysis_done = threading.Event()
        self.analysis_error = None
        self._stopped = False
        self._opened: list = []

    # ---- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        try:
            for s in self.sinks:
                s.open()
                self._opened.append(s)
            self.worker.start()
            self._analysis_thread.start()
            self.source.start(self.ring)
        except BaseException:
            self.stop()
            raise

    def wait(self, timeout: float | None = None) -> bool:
        """Until the source has finished and everything it delivered is analysed."""
        return self.analysis_done.wait(timeout)

    def run(self) -> Stats:
        """start(), wait for the end of the source (or Ctrl-C), stop(); returns the counters."""
        self.start()
        try:
            while not self.analysis_done.wait(0.1):
                pass
        finally:          # KeyboardInterrupt included: flush everything, then re-raise
            self.stop()
        return self.stats()

    def stop(self) -> Stats:
        """Idempotent clean stop: source, analysis (flushes pending), worker (drains), sinks."""
        if self._stopped:
            return self.stats()
        self._stopped = True
        try:
            self.source.stop()
        finally:
            self._stop.set()
            if self._analysis_thread.is_alive():
                self._analysis_thread.join()
            self.queue.close()
            if self.worker.is_alive():
                self.worker.join()
            for s in reversed(self._opened):
                try:
                    s.close()
                except Exception as e:
                    if id(s) not in self.worker.failed_sinks:   # else already reported
                        self.worker._error(f"closing {type(s).__name__}: "
                                           f"{type(e).__name__}: {e}")
        return self.stats()

    # ---- analysis thread ----------------------------------------------------------------
    def _analyse(self) -> None:
        # a live source that delivers nothing for stall_s is reported and ends the run
        stall_s = self.cfg.audio.stall_s if getattr(self.source, "live", False) else None
        try:
            why = analyse(self.ring, self.source, self._push,
                          lambda start: self._queue(self.analysis.gap(start)),
                          stop=self._stop.is_set, stall_s=stall_s, poll_s=self.poll_s)
            if why == "stall":
                self.analysis_error = f"{stall_message(stall_s)}; stopping"
                print(f"drumclassifier: {self.analysis_error}", file=sys.stderr, flush=True)
            self._queue(self.analysis.flush())
        except Exception as e:
            self.analysis_error = f"analysis: {type(e).__name__}: {e}"
            import traceback
            traceback.print_exc()
        finally:
            self.analysis_done.set()

    def _push(self, block: np.ndarray, start: int) -> None:
        for s in self._audio_sinks:
            s.audio(block, start)
        self._queue(self.analysis.push(block, start)[1])
        self._pos = start + len(block)

    def _queue(self, slices) -> None:
        now = time.perf_counter()
        for sl in slices:
            onset, audio = sl.track.onset, sl.audio
            # the rung's audio was complete at the end of the block holding its last sample
            # (or at detection, if the detector fired later): the latency counts from there
            ready = max(onset.detect_sample, onset.sample + len(audio))
            ready_sample = self.ring.block_end(ready - 1)
            t_block = self.ring.arrival_time(onset.sample)
            t_onset = (None if t_block is None else
                       t_block - (self.ring.block_end(onset.sample) - onset.sample) / self.sr)
            hit = Hit(index=sl.track.index, onset=onset, audio=audio,
                      peak_db=hit_peak_db(audio, sl.before), ready_sample=ready_sample,
                      t_onset_wall=t_onset, t_ready=now, partial=sl.partial, final=sl.final,
                      track=sl.track, before=sl.before)
            self.queue.put(hit, wait=self._lossless)

    # ---- counters -----------------------------------------------------------------------
    def stats(self) -> Stats:
        errs = list(self.worker.errors)
        for e in (self.analysis_error, getattr(self.source, "error", None)):
            if e:
                errs.append(e)
        st = self.source.status()
        return Stats(seconds=self._pos / self.sr, hits=self.slicer.hits,
                     classified=self.worker.classified, events=self.worker.events,
                     overflow_frames=self.ring.overflow_frames,
                     overflow_events=self.ring.overflow_events,
                     input_overflows=st.get("input_overflows", 0),
                     queue_dropped=self.queue.dropped, queue_max=self.queue.max_depth,
                     failed=self.worker.failed, lost=self.slicer.lost,
                     unclassifiable=self.worker.unclassifiable, errors=tuple(errs))


def print_stats(stats: Stats, file=None) -> None:
    print(stats.summary(), file=file or sys.stderr, flush=True)
