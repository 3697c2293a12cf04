"""Mix the mono mic files of one multi-mic hit (a `sources.MicMix`) to stereo."""
from __future__ import annotations

import numpy as np

from .render import load_audio


def mix_mics(mics: tuple[tuple[str, float, float], ...]) -> np.ndarray:
    """(file, gain, pan) mic files -> (n, 2) float32 at 44.1 kHz.

    Each file is read as mono (a stereo file is averaged), scaled by `gain` and placed
    with an equal-power pan (0 = left, 0.5 = centre: both channels at -3 dB, 1 = right).
    The files of one hit were recorded together, so they are summed sample-aligned:
    the delays between close and room mics are the kit's own.
    """
    tracks = []
    for path, gain, pan in mics:
        x = load_audio(path).mean(axis=1)  # [n] mono at SAMPLE_RATE_HZ
        angle = float(pan) * np.pi / 2
        tracks.append((gain * x, np.cos(angle), np.sin(angle)))
    n = max(len(x) for x, _, _ in tracks)
    out = np.zeros((n, 2), np.float32)
    for x, left, right in tracks:
        out[: len(x), 0] += left * x
        out[: len(x), 1] += right * x
    return out

