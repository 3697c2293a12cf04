"""Audio helpers: load, resample, trim, render soundfont hits, write FLAC atomically.

Every one-shot of the corpus is 44.1 kHz stereo float, at most 4 s, starting at
its onset: leading samples below `lead_threshold_db` (relative to the clip's
peak) are trimmed, and the tail is cut where it stays below `tail_threshold_db`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SAMPLE_RATE_HZ = 44100
MAX_SECONDS = 4.0
MAX_SAMPLES = int(SAMPLE_RATE_HZ * MAX_SECONDS)


def to_stereo(x: np.ndarray) -> np.ndarray:
    """(n,) or (n, c) -> (n, 2) float32: mono duplicated, extra channels dropped."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[1] == 1:
        x = np.repeat(x, 2, axis=1)
    return np.ascontiguousarray(x[:, :2])


def resample(x: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Resample (n, c) audio with torchaudio.functional.resample (band-limited sinc)."""
    if sr_in == sr_out:
        return x
    import torch
    import torchaudio.functional as AF

    y = AF.resample(torch.from_numpy(np.ascontiguousarray(x.T)), sr_in, sr_out)
    return y.T.numpy().astype(np.float32)


def load_audio(path: str | Path) -> np.ndarray:
    """Read any file soundfile reads as (n, 2) float32 at 44.1 kHz."""
    import soundfile as sf

    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return resample(to_stereo(x), sr)


def trim(x: np.ndarray, lead_threshold_db: float = -50.0, tail_threshold_db: float = -80.0,
         max_samples: int = MAX_SAMPLES) -> tuple[np.ndarray, int]:
    """Trim leading silence, the silent tail, and cut to `max_samples`.

    Args:
        x: (n, 2) audio.
        lead_threshold_db: the hit starts at the first sample whose magnitude
            exceeds the clip's peak by this many dB (negative).
        tail_threshold_db: the end is after the last sample above peak + this (dB).

    Returns:
        (trimmed (m, 2) audio, number of leading samples removed). Silent input
        gives an empty array.
    """
    mag = np.abs(x).max(axis=1) if len(x) else np.zeros(0, np.float32)
    peak = float(mag.max()) if len(mag) else 0.0
    if peak <= 1e-7:
        return x[:0], 0
    above = np.nonzero(mag > peak * 10 ** (lead_threshold_db / 20))[0]
    start = int(above[0])
    x = x[start:start + max_samples]
    mag = mag[start:start + max_samples]
    tail = np.nonzero(mag > peak * 10 ** (tail_threshold_db / 20))[0]
    end = int(tail[-1]) + 1
    return x[:end], start


def write_flac(path: Path, x: np.ndarray, subtype: str = "PCM_24") -> None:
    """Write (n, 2) audio as 44.1 kHz FLAC through a temporary file and a rename."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    peak = float(np.abs(x).max()) if len(x) else 0.0
    if peak > 0.999:  # avoid clipping: renders at full velocity can exceed 0 dBFS
        x = x * (0.999 / peak)
    sf.write(str(tmp), x, SAMPLE_RATE_HZ, format="FLAC", subtype=subtype)
    os.replace(tmp, path)


class FontRenderer:
    """Render single drum hits from one soundfont with tinysoundfont, in-process.

    Args:
        font_path: .sf2/.sf3 file.
        hold_s: seconds between note-on and note-off.
        max_seconds: render length cap.
        tail_threshold_db: after note-off, stop once a 100 ms block stays below
            this level (dBFS).
    """

    def __init__(self, font_path: str | Path, hold_s: float = 0.3, max_seconds: float = MAX_SECONDS,
                 tail_threshold_db: float = -80.0):
        import tinysoundfont

        self.synth = tinysoundfont.Synth(samplerate=SAMPLE_RATE_HZ)
        self.sfid = self.synth.sfload(str(font_path))
        self.hold = int(hold_s * SAMPLE_RATE_HZ)
        self.max_samples = int(max_seconds * SAMPLE_RATE_HZ)
        self.tail = 10 ** (tail_threshold_db / 20)

    def preset_name(self, bank: int, preset: int) -> str | None:
        return self.synth.sfpreset_name(self.sfid, bank, preset)

    def drum_presets(self) -> list[tuple[int, str]]:
        """(preset number, name) of every bank-128 (percussion) preset of the font."""
        out = []
        for p in range(128):
            name = self.preset_name(128, p)
            if name is not None:
                out.append((p, name))
        return out

    def render(self, key: int, velocity: int, preset: int, bank: int = 128,
               channel: int = 9, is_drums: bool = True) -> np.ndarray:
        """One hit as (n, 2) float32 at 44.1 kHz, untrimmed, n <= max_samples + block."""
        s = self.synth
        s.sounds_off()
        s.program_select(channel, self.sfid, bank, preset, is_drums)
        block = SAMPLE_RATE_HZ // 10
        s.noteon(channel, key, velocity)
        first = np.frombuffer(s.generate(self.hold), dtype=np.float32).reshape(-1, 2)
        s.noteoff(channel, key)
        blocks = [first.copy()]
        n = len(first)
        while n < self.max_samples:
            b = np.frombuffer(s.generate(block), dtype=np.float32).reshape(-1, 2).copy()
            blocks.append(b)
            n += len(b)
            if np.abs(b).max() < self.tail:
                break
        s.sounds_off()
        return np.concatenate(blocks)[: self.max_samples]
