"""Inference cost of the default architecture, one hit at a time.

Prints: parameters and weight-file size; per-hit inference time on one CPU thread, batch 1,
for several content lengths (the model computes only frames covering the content, so a
30 ms live hit costs far less than a 4 s one-shot). Files per minute for a whole library:
bench/batch_speed.py.

    .venv/bin/python -m bench.inference [--weights W]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch


def per_hit_ms(clf, n_samples: int, repeats: int) -> tuple[float, float]:
    """Median and p90 wall time (ms) of clf.predict on one [2, n] hit, after warm-up."""
    x = [torch.randn(2, n_samples) * 0.1]
    for _ in range(3):
        clf.predict(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        clf.predict(x)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--runtime", choices=["torch", "onnx"], default=None,
                   help="CPU runtime for equal-length batches (default: onnx when installed)")
    args = p.parse_args()

    from drumclassifier import DrumClassifier, default_weights_path
    from drumclassifier.model import build_model

    weights = Path(args.weights or default_weights_path())
    torch.set_num_threads(1)
    clf = DrumClassifier(weights, device="cpu", runtime=args.runtime)
    # counted on the network the checkpoint describes (the loaded one has its norms folded)
    n_params = sum(p.numel() for p in build_model(clf.cfg).parameters())
    print(f"weights: {weights} ({weights.stat().st_size / 1e6:.2f} MB), parameters: {n_params:,}")
    print(f"torch {torch.__version__}, runtime {clf.runtime}, CPU threads for inference: "
          f"{torch.get_num_threads()}")
    print("\nper-hit inference (one thread, batch 1, log-mel + CRNN):")
    print("| content after onset | median ms | p90 ms |\n|---|---|---|")
    sr = clf.cfg.sample_rate_hz
    # the model reads at most analysis_s of each item (1 s for the shipped model), so longer
    # files cost what analysis_s costs
    for label, n in [("10 ms", sr // 100), ("30 ms", int(0.03 * sr)), ("100 ms", sr // 10),
                     ("1 s", sr), ("4 s", 4 * sr)]:
        if n > clf.cfg.analysis_samples:
            print(f"| {label} | (the model reads the first {clf.cfg.analysis_s:g} s) | |")
            continue
        med, p90 = per_hit_ms(clf, n, args.repeats)
        print(f"| {label} | {med:.2f} | {p90:.2f} |")

    return 0


if __name__ == "__main__":
    sys.exit(main())
