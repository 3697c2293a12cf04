"""Shared helpers for the real-time tests: burst signals with known hit times."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from realtime.sinks import ListSink

from .conftest import SR, hihat_like, kick_like

TOLERANCE_S = 0.010   # stated tolerance: an onset within 10 ms of the true hit time
# (measured: median error < 0.3 ms; quiet low kicks under tails are placed up to ~8 ms early)


def alsa_file_env(tmp_path: Path, raw: Path) -> dict:
    """An environment whose ALSA device "injected" plays the raw file `raw` (S16_LE mono,
    44.1 kHz) into the real PortAudio callback, unpaced: a temporary HOME with an .asoundrc
    (ALSA `file` plugin; exact with dtype int16, see ENV.md). The device reads `raw` from
    its start each time a stream opens. Use it in a subprocess: PortAudio reads the
    configuration once, when it initialises."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / ".asoundrc").write_text(
        'pcm.nullpcm { type null }\n'
        f'pcm.filein {{ type file; slave.pcm "nullpcm"; file "/dev/null"; infile "{raw}"; '
        'format "raw" }\n'
        'pcm.injected { type plug; slave { pcm "filein"; format S16_LE; rate 44100; '
        'channels 1 } }\n')
    return dict(os.environ, HOME=str(home), JACK_NO_START_SERVER="1",
                JACK_DEFAULT_SERVER="drumclassifier-test-none")


def faded(x: np.ndarray, fade_s: float = 0.02) -> np.ndarray:
    """A burst with a short fade-out, so its end is not itself a click (an onset)."""
    x = x.copy()
    n = min(len(x), int(fade_s * SR))
    x[-n:] *= np.linspace(1, 0, n, dtype=np.float32)
    return x


def snare_like(seed: int = 0, dur_s: float = 0.25) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * dur_s)) / SR
    x = 0.3 * np.sin(2 * np.pi * 190 * t) + 0.3 * rng.standard_normal(len(t))
    return (x * np.exp(-t * 20)).astype(np.float32)


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


def write_bursts(path, **kw) -> list[int]:
    x, truth = burst_signal(**kw)
    sf.write(str(path), x, SR, subtype="PCM_16")
    return truth


def match(found_s: list[float], truth: list[int]) -> list[float]:
    """For each true hit, the distance (s) to the nearest found onset."""
    return [min(abs(f - tr / SR) for f in found_s) for tr in truth]


Collect = ListSink  # a sink that keeps events (and whether it was opened and closed)
