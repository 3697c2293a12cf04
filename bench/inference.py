"""Inference cost of the default architecture and throughput of `drumclassifier classify`.

Prints: parameters and weight-file size; per-hit inference time on one CPU thread, batch 1,
for several content lengths (the model computes only frames covering the content, so a
30 ms live hit costs far less than a 4 s one-shot); files per second for `classify` on a
folder of generated files.

    .venv/bin/python -m bench.inference [--weights W] [--files 1000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
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
    p.add_argument("--files", type=int, default=1000, help="generated files for the throughput run")
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()

    from drumclassifier import DrumClassifier, default_weights_path
    from drumclassifier.cli import main as cli_main

    weights = Path(args.weights or default_weights_path())
    torch.set_num_threads(1)
    clf = DrumClassifier(weights, device="cpu")
    n_params = sum(p.numel() for p in clf.model.parameters())
    print(f"weights: {weights} ({weights.stat().st_size / 1e6:.2f} MB), parameters: {n_params:,}")
    print(f"torch {torch.__version__}, CPU threads for inference: {torch.get_num_threads()}")
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

    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.files):  # 0.5 s decaying noise/sine one-shots, 16-bit stereo WAV
            t = np.arange(sr // 2) / sr
            x = (rng.standard_normal(len(t)) * 0.3 + np.sin(2 * np.pi * rng.uniform(50, 300) * t))
            x = (x * np.exp(-t * rng.uniform(5, 40)) * 0.5).astype(np.float32)
            sf.write(f"{tmp}/hit{i:05d}.wav", np.stack([x, x], 1), sr, subtype="PCM_16")
        out = Path(tmp) / "out.csv"
        t0 = time.perf_counter()
        rc = cli_main(["classify", tmp, "-w", str(weights), "--format", "csv", "-o", str(out),
                       "-q", "--model-device", "cpu"])
        dt = time.perf_counter() - t0
    print(f"\nclassify on {args.files} files of 0.5 s (16-bit stereo WAV), {os.cpu_count()} cores: "
          f"{dt:.1f} s, {args.files / dt:.0f} files/s (exit {rc})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
