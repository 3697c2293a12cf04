"""Latency benchmark: stream a file through the real engine and report hit-to-note latency.

    python -m bench.latency [FILE] [-w WEIGHTS | --random-weights] [--rt-config FILE]
                            [--context-ms X] [--blocksize N] [--paced] [--repeat-infer N]

FILE defaults to 20 s of generated kick/snare/hihat-like bursts (known hit times).
The file goes through FileSource -> RingBuffer -> OnsetDetector -> Slicer -> Worker, the
same objects `drumclassifier stream` uses; by default as fast as possible (--fast).

Reported, per event:
  latency (stream time)  audio that had to arrive after the onset (detection, context,
                         block granularity: exact in samples) + queueing + inference
                         (measured on the wall clock). This is the hit-to-note latency a
                         live input would see, and it is valid in fast mode.
  wall latency           wall clock from the onset's arrival to the note. With --paced it is
                         the real hit-to-note latency; in fast mode audio arrives faster than
                         real time, so it shows processing time only.
  inference per hit      model time per hit (batch time / batch size), and separately a
                         single-hit model call timed --repeat-infer times.
--random-weights uses the default architecture with untrained weights: realistic timing
before the trained checkpoint exists (labels meaningless). Re-run with the trained weights.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def generated_file(seconds: float, path: Path) -> int:
    import soundfile as sf

    from .sounds import burst_signal
    x, truth = burst_signal(seconds=seconds, seed=0)
    sf.write(path, x, 44100, subtype="PCM_16")
    return len(truth)


def random_checkpoint(path: Path) -> Path:
    import torch

    from drumclassifier.checkpoint import save_checkpoint
    from drumclassifier.config import load_model_config
    from drumclassifier.model import CRNN
    torch.manual_seed(0)
    cfg = load_model_config(None)
    return save_checkpoint(path, CRNN(cfg).state_dict(), cfg,
                           {"note": "UNTRAINED default architecture, for timing only"})


def pct(x, q):
    return float(np.percentile(np.asarray(x, float), q)) if len(x) else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", help="audio file (default: generated bursts)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the generated file")
    ap.add_argument("-w", "--weights", help="checkpoint (default: the shipped weights)")
    ap.add_argument("--random-weights", action="store_true",
                    help="untrained default-architecture weights (timing only)")
    ap.add_argument("--model-device", default=None, help="cpu, cuda (default: auto)")
    ap.add_argument("--rt-config", metavar="FILE",
                    help="real-time config YAML (default: the built-in live settings)")
    ap.add_argument("--context-ms", type=float, default=None)
    ap.add_argument("--blocksize", type=int, default=None)
    ap.add_argument("--paced", action="store_true", help="real-time pacing instead of --fast")
    ap.add_argument("--repeat-infer", type=int, default=200,
                    help="single-hit model calls to time separately (default 200)")
    args = ap.parse_args(argv)

    import torch

    from drumclassifier import DrumClassifier
    from realtime import Engine, FileSource, ListSink, load_realtime_config

    tmp = Path(tempfile.mkdtemp(prefix="dc-bench-"))
    path = Path(args.file) if args.file else tmp / "bursts.wav"
    n_truth = None if args.file else generated_file(args.seconds, path)
    weights = random_checkpoint(tmp / "random.pt") if args.random_weights else args.weights
    clf = DrumClassifier(weights, None, args.model_device)
    over = {"slicer": {}, "audio": {}}
    if args.context_ms:
        over["slicer"]["context_ms"] = args.context_ms
    if args.blocksize:
        over["audio"]["blocksize"] = args.blocksize
    cfg = load_realtime_config(args.rt_config, over)

    keep = ListSink()

    # warm-up: the first model call pays one-off costs
    clf.predict([torch.zeros(2, 1323).uniform_(-0.1, 0.1)])
    src = FileSource(path, cfg.audio.blocksize, fast=not args.paced)
    t0 = time.perf_counter()
    stats = Engine(clf, src, [keep], cfg).run()
    elapsed = time.perf_counter() - t0

    events = keep.events
    per_hit = {}
    for e in events:
        per_hit.setdefault(e.hit_index, e)
    hits = list(per_hit.values())
    lat = [e.latency_ms for e in hits]
    wall = [e.wall_latency_ms for e in hits]
    det = [e.detect_ms for e in hits]
    queue = [e.queue_ms for e in hits]
    inf_hit = [e.infer_ms / e.batch_size for e in hits]
    no_backlog = [e.latency_ms - e.queue_ms for e in hits]
    ctx = int(round(cfg.slicer.context_ms * src.sample_rate_hz / 1000))
    one = torch.from_numpy(np.random.default_rng(0).uniform(-0.5, 0.5, (2, ctx)).astype(np.float32))
    times = []
    for _ in range(args.repeat_infer):
        t = time.perf_counter()
        clf.predict([one])
        times.append((time.perf_counter() - t) * 1000)

    print(f"file: {path}  ({stats.seconds:.1f} s, {'paced' if args.paced else 'fast'}, "
          f"{elapsed:.2f} s wall, {stats.seconds / elapsed:.0f}x real time)")
    print(f"weights: {clf.weights_path.name}"
          + (" (UNTRAINED, timing only)" if args.random_weights else "")
          + f"  device: {clf.device}  torch threads: {torch.get_num_threads()}  "
          f"CPUs: {os.cpu_count()}")
    ladder = (f"anytime {cfg.slicer.anytime_ms} ms at {cfg.decision.min_confidence:g}"
              if cfg.slicer.anytime_ms else f"context {cfg.slicer.context_ms:g} ms")
    print(f"settings: {ladder}, block {cfg.audio.blocksize}, "
          f"onset hop {cfg.onset.hop_size}, frame {cfg.onset.frame_size}")
    print(f"hits: {stats.hits}" + (f" (true hits {n_truth})" if n_truth else "")
          + f", events {stats.events}, queue drops {stats.queue_dropped}, "
          f"overflows {stats.overflow_events}")
    print(f"{'':28s}{'median':>9s}{'p95':>9s}  (ms)")
    for name, xs in [("latency (stream time)", lat), ("  without queueing", no_backlog),
                     ("wall latency", wall),
                     ("  context waited for", [e.context_ms for e in hits]),
                     ("  detection delay", det), ("  queueing", queue),
                     ("  inference per hit", inf_hit), ("single-hit model call", times)]:
        print(f"{name:28s}{pct(xs, 50):9.2f}{pct(xs, 95):9.2f}")
    if not args.paced:
        print("fast mode: hits arrive faster than real time, so queueing (and the wall latency)\n"
              "reflect that backlog; 'without queueing' or --paced give the live figure.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
