"""Generated drum-like sounds with known onsets, for the tests and the benchmarks.

Nothing here comes from a corpus: the sounds are synthesised (a pitch-swept sine for a
kick, filtered noise for a hihat...), so a test or a benchmark knows exactly where each
hit starts and needs no data files. All are float32 at SR.
"""
from __future__ import annotations

import numpy as np

SR = 44100


def kick_like(sr: int = SR, dur_s: float = 0.5, seed: int = 0) -> np.ndarray:
    """A pitch-swept low sine burst with exponential decay and a beater click: [n] float32.

    The click (3 ms of noise, 14 dB under the body) is what a real kick has over a bass
    note: without it a soft kick raises only the bands of its sine.
    """
    t = np.arange(int(sr * dur_s)) / sr
    f = 50 + 100 * np.exp(-t * 30)
    phase = 2 * np.pi * np.cumsum(f) / sr
    click = np.random.default_rng(seed).standard_normal(len(t)) * np.exp(-t / 0.003)
    return (0.8 * np.sin(phase) * np.exp(-t * 8) + 0.16 * click).astype(np.float32)


def hihat_like(sr: int = SR, dur_s: float = 0.2, seed: int = 0) -> np.ndarray:
    """High-passed (first-difference, twice) noise burst with a fast decay: [n] float32."""
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(int(sr * dur_s) + 2)
    hp = np.diff(n, 2)
    t = np.arange(len(hp)) / sr
    x = hp * np.exp(-t * 40)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def snare_like(seed: int = 0, dur_s: float = 0.25) -> np.ndarray:
    """A 190 Hz tone plus noise, decaying: [n] float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * dur_s)) / SR
    x = 0.3 * np.sin(2 * np.pi * 190 * t) + 0.3 * rng.standard_normal(len(t))
    return (x * np.exp(-t * 20)).astype(np.float32)


def faded(x: np.ndarray, fade_s: float = 0.02) -> np.ndarray:
    """A burst with a short fade-out, so its end is not itself a click (an onset)."""
    x = x.copy()
    n = min(len(x), int(fade_s * SR))
    x[-n:] *= np.linspace(1, 0, n, dtype=np.float32)
    return x


def burst(kind: str, rng: np.random.Generator, gain: float) -> np.ndarray:
    """A generated drum hit of one kit, 0.3 s, faded out (an abrupt end would be an onset
    itself), peaking at `gain`. kind: kick, snare, hihat, tom or cymbal."""
    n = int(0.3 * SR)
    t = np.arange(n) / SR
    if kind == "kick":      # pitch-swept low sine
        x = np.sin(2 * np.pi * np.cumsum(50 + 100 * np.exp(-t * 30)) / SR) * np.exp(-t * 8)
    elif kind == "snare":   # tone + noise
        x = (0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 20)
             + 0.6 * rng.standard_normal(n) * np.exp(-t * 15))
    elif kind == "hihat":   # high-passed noise, fast decay
        x = np.diff(rng.standard_normal(n + 2), 2) * np.exp(-t * 40)
    elif kind == "cymbal":  # bright noise, slow decay
        x = np.diff(rng.standard_normal(n + 1)) * np.exp(-t * 5)
    else:                   # tom: mid sine with a small sweep
        x = np.sin(2 * np.pi * (110 + 30 * np.exp(-t * 20)) * t) * np.exp(-t * 6)
    x = x * np.minimum(1, (n - np.arange(n)) / (0.1 * SR))
    return (gain * x / np.abs(x).max()).astype(np.float32)


def burst_signal(seconds: float = 3.0, seed: int = 0, flam: bool = True,
                 channels: int = 2) -> tuple[np.ndarray, list[int]]:
    """Kick/snare/hihat-like bursts at known samples, levels 0 to -20 dB, a little noise.

    Returns (x [n, channels] float32, true onset samples). Hits are 150-250 ms apart;
    with flam=True one pair is 25 ms apart (above the 20 ms minimum gap).
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x = np.zeros(n, np.float32)
    truth = []
    t = 0.15
    makers = [lambda i: kick_like(), lambda i: hihat_like(seed=i), lambda i: snare_like(seed=i)]
    i = 0
    while t < seconds - 0.3:
        s = faded(makers[i % 3](i)) * [1.0, 0.5, 0.2, 0.1][i % 4]
        n0 = int(t * SR)
        m = min(len(s), n - n0)
        x[n0:n0 + m] += s[:m]
        truth.append(n0)
        if flam and i == 3:
            t += 0.025
        else:
            t += float(rng.uniform(0.15, 0.25))
        i += 1
    x += (10 ** (-70 / 20) * rng.standard_normal(n)).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1), truth
