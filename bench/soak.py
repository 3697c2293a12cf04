"""Soak benchmark: minutes of generated drum stream through the real engine, as fast as
possible; memory, queue and buffers watched, every hit accounted for.

    python -m bench.soak [--minutes 60] [-w WEIGHTS | --random-weights] [--threads 1]
                         [--every 10] [--context-ms X]

The stream is generated block by block (never held whole: an hour of stereo float is
1.3 GB): a 120 BPM groove, kick on 1 and 3, snare on 2 and 4, hihat eighths (8 onsets per
bar, 4 per second), every 4th bar ending in a 16th-note snare fill, gains drawn per hit,
-70 dBFS noise floor. A GeneratedSource writes it into the engine's ring buffer the way
FileSource --fast does (lossless: it waits for ring space), so the same RingBuffer,
OnsetDetector, Slicer, Worker and sinks run as in `drumclassifier stream --fast`.

Printed: a line every --every seconds of wall time (stream time, RSS, queue depth, ring
fill, pending slices, hits), then start/end RSS, RSS growth after the warm-up, queue max,
hits generated/detected/emitted/dropped and whether emitted + dropped == detected.
In fast mode the worker is the bottleneck, so queue drops are expected and counted.
--random-weights: the default architecture untrained (timing and memory are real, labels
are not); the default is the shipped weights when installed, else random weights.
Not a CI test.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SR = 44100


def rss_mb() -> float:
    """Resident set size now (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class GeneratedSource:
    """An endless-looking drum stream of `seconds`, synthesised bar by bar, lossless."""

    def __init__(self, seconds: float, blocksize: int | None = None, seed: int = 0):
        from drumclassifier.config import defaults_with
        from realtime.config import AudioConfig

        from .sounds import faded, hihat_like, kick_like, snare_like
        blocksize = defaults_with(AudioConfig, blocksize=blocksize).blocksize   # None: the live one
        self.sample_rate_hz, self.channels, self.blocksize = SR, 2, blocksize
        self.total = int(seconds * SR)
        self.finished = threading.Event()
        self.error = None
        self._stop = threading.Event()
        self._thread = None
        self.onsets = 0                       # generated hit times (kick+hat together = 1)
        self.rng = np.random.default_rng(seed)
        self.sounds = {"kick": faded(kick_like(dur_s=0.4)), "snare": faded(snare_like(0, 0.25)),
                       "hihat": faded(hihat_like(dur_s=0.1, seed=1))}
        self.bar = int(2.0 * SR)              # 4/4 at 120 BPM
        self.tail = max(len(s) for s in self.sounds.values())

    def _bar(self, k: int) -> tuple[np.ndarray, int]:
        """Bar k as [bar + tail] mono (the tail rings into the next bar) and its onsets."""
        x = np.zeros(self.bar + self.tail, np.float32)
        eighth = self.bar // 8
        hits = {}
        for i in range(8):
            hits.setdefault(i * eighth, []).append("hihat")
        for i in (0, 4):
            hits[i * eighth].append("kick")
        for i in (2, 6):
            hits[i * eighth].append("snare")
        if k % 4 == 3:                        # a 16th-note snare fill on beat 4
            for j in range(4):
                hits.setdefault(6 * eighth + j * eighth // 2, []).append("snare")
        for t, names in hits.items():
            for name in set(names):
                x[t:t + len(self.sounds[name])] += self.sounds[name] * self.rng.uniform(0.2, 1)
        return x, len(hits)

    def start(self, ring) -> None:
        self._thread = threading.Thread(target=self._run, args=(ring,), daemon=True,
                                        name="soak-source")
        self._thread.start()

    def _run(self, ring) -> None:
        try:
            carry = np.zeros(0, np.float32)
            pos, k = 0, 0
            while pos < self.total and not self._stop.is_set():
                bar, n_on = self._bar(k)
                bar[:len(carry)] += carry
                carry = bar[self.bar:].copy()
                bar = bar[:self.bar]
                bar += (10 ** (-70 / 20) * self.rng.standard_normal(len(bar))).astype(np.float32)
                stereo = np.repeat(bar[:, None], 2, axis=1)
                n_bar = min(len(bar), self.total - pos)
                self.onsets += n_on
                for b0 in range(0, n_bar, self.blocksize):
                    block = stereo[b0:min(b0 + self.blocksize, n_bar)]
                    while ring.free < len(block) and not self._stop.is_set():
                        time.sleep(0.0005)
                    if self._stop.is_set():
                        break
                    ring.write(block)
                pos += n_bar
                k += 1
        except Exception as e:  # noqa: BLE001 (reported in the summary like a device error)
            self.error = f"generator: {type(e).__name__}: {e}"
        finally:
            self.finished.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def status(self) -> dict:
        return {}


class CountingSink:
    """Counts events and distinct hits; keeps nothing."""

    def __init__(self):
        self.events = self.hits = 0
        self._last = -1

    def open(self):
        pass

    def emit(self, events):
        self.events += len(events)
        for e in events:
            if e.hit_index != self._last:
                self.hits += 1
                self._last = e.hit_index

    def close(self):
        pass


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=60.0, help="stream length (default 60)")
    p.add_argument("-w", "--weights", help="checkpoint (default: shipped, else random)")
    p.add_argument("--random-weights", action="store_true")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--every", type=float, default=10.0, help="report every S wall seconds")
    p.add_argument("--context-ms", type=float, default=None)
    args = p.parse_args(argv)

    import torch
    torch.set_num_threads(args.threads)
    from bench.latency import random_checkpoint
    from drumclassifier import DrumClassifier
    from drumclassifier.classifier import default_weights_path
    from realtime import Engine
    from realtime.config import load_realtime_config

    weights = args.weights
    tmp = tempfile.TemporaryDirectory()
    if weights is None and (args.random_weights or not default_weights_path().is_file()):
        weights = random_checkpoint(Path(tmp.name) / "random.pt")
        print("weights: default architecture, UNTRAINED (timing/memory only)")
    clf = DrumClassifier(weights, None, "cpu")
    overrides = {"slicer": {"context_ms": args.context_ms}} if args.context_ms else None
    cfg = load_realtime_config(None, overrides)
    source = GeneratedSource(args.minutes * 60)
    sink = CountingSink()
    eng = Engine(clf, source, [sink], cfg)
    rss0 = rss_mb()
    t0 = time.perf_counter()
    samples = []   # (wall s, stream s, rss MB)
    ring_max = pending_max = 0
    print(f"soak: {args.minutes:g} min of generated stream, fast mode, torch threads "
          f"{args.threads}; start RSS {rss0:.1f} MB")
    print(f"{'wall s':>7} {'stream s':>9} {'RSS MB':>7} {'queue':>5} {'ring':>6} "
          f"{'pending':>7} {'hits':>7} {'emitted':>7} {'dropped':>7}")
    eng.start()
    next_report = t0
    try:
        while not eng.analysis_done.wait(0.2):
            ring_max = max(ring_max, eng.ring.available)
            pending_max = max(pending_max, len(eng.slicer._pending))
            now = time.perf_counter()
            if now >= next_report:
                st = eng.stats()
                samples.append((now - t0, st.seconds, rss_mb()))
                print(f"{now - t0:7.1f} {st.seconds:9.1f} {samples[-1][2]:7.1f} "
                      f"{len(eng.queue):5d} {eng.ring.available:6d} "
                      f"{len(eng.slicer._pending):7d} {st.hits:7d} {sink.hits:7d} "
                      f"{st.queue_dropped:7d}", flush=True)
                next_report = now + args.every
    finally:
        st = eng.stop()
    wall = time.perf_counter() - t0
    rss1 = rss_mb()
    # growth after warm-up: from the first sample past 10% of the run to the end
    warm = next((s for s in samples if s[0] >= 0.1 * wall), samples[0] if samples else None)
    detected = st.hits + st.lost
    dropped = st.queue_dropped + st.unclassifiable + st.failed + st.lost
    print(f"\nstream {st.seconds / 60:.2f} min in {wall:.1f} s wall "
          f"({st.seconds / max(wall, 1e-9):.1f}x real time)")
    print(f"RSS: start {rss0:.1f} MB, end {rss1:.1f} MB"
          + (f", after warm-up {warm[2]:.1f} MB -> {rss1:.1f} MB "
             f"({rss1 - warm[2]:+.1f} MB)" if warm else ""))
    print(f"queue max {st.queue_max} of {cfg.worker.queue_size}; ring max fill {ring_max} of "
          f"{eng.ring.capacity} frames; pending slices max {pending_max}; "
          f"ring overflows {st.overflow_events}")
    print(f"hits: generated {source.onsets}, detected {detected}, emitted {sink.hits} "
          f"({sink.events} events), dropped {dropped} (queue {st.queue_dropped}, "
          f"unclassifiable {st.unclassifiable}, failed {st.failed}, lost {st.lost})")
    ok = sink.hits + dropped == detected and sink.hits == st.classified
    print(f"emitted + dropped == detected: {'yes' if ok else 'NO'}"
          + (f"; errors: {' | '.join(st.errors)}" if st.errors else ""))
    tmp.cleanup()
    return 0 if ok and not st.errors else 1


if __name__ == "__main__":
    sys.exit(main())
