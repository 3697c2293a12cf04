"""Time per batch of each training augmentation stage, at p = 1 (every item augmented).

The batch is what the trainer feeds (train.batch_size x 2 x train.clip_s at 44.1 kHz):
decaying noise bursts with random lengths. Each stage runs alone on a fresh copy, on the
CPU with the trainer's thread count, best of --repeat runs after a warm-up (the budget
of the augmentation step is small next to the ~1.5 s training step on 2 cores). Wall
time and process CPU time (summed over threads) are both printed: on a machine busy
with training runs the wall time mostly measures waiting. A stage at probability p
costs about p times its figure here.

    .venv/bin/python -m bench.augment_cost [--batch 64] [--seconds 1.0] [--threads 2] [STAGE ...]
"""
from __future__ import annotations

import argparse
import time

import torch

from drumclassifier.augment import AugmentConfig, Augmenter, zero_beyond_length

SR = 44100


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stages", nargs="*", help="stage names (augment.* keys); default: all")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n = round(args.seconds * SR)
    t = torch.arange(n) / SR
    x = torch.randn(args.batch, 2, n) * torch.exp(-t / 0.2)
    lengths = torch.randint(n // 20, n + 1, (args.batch,))
    x = zero_beyond_length(x, lengths)
    names = args.stages or list(AugmentConfig.__dataclass_fields__)
    print(f"batch {args.batch} x 2 x {n} samples ({args.seconds:g} s at {SR} Hz), "
          f"{args.threads} threads, p = 1, best of {args.repeat}")
    for name in names:
        off = {k: {"p": 0.0} for k in AugmentConfig.__dataclass_fields__}
        off[name] = {"p": 1.0}
        aug = Augmenter.from_config(off, SR).train()
        with torch.no_grad():
            aug(x, lengths)  # warm-up (FFT plans, resampler kernels)
            best, best_cpu = float("inf"), float("inf")
            for _ in range(args.repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                aug(x, lengths)
                best = min(best, time.perf_counter() - t0)
                best_cpu = min(best_cpu, time.process_time() - c0)
        print(f"  {name:14s} {best * 1000:7.1f} ms per batch (wall), {best_cpu * 1000:7.1f} ms CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
