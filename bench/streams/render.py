"""Kits from the corpus manifest, a sample-accurate mixer, and the listening conditions.

Kit: the manifest's one-shots of one held-out kit (split == test), grouped into instruments
by the file-name stem before "__" (Hydrogen's instrument name: "Closed_HH", "Tom_Low"...),
each with its velocity layers. Every one-shot has its onset at sample 0, so a note mixed
at sample round(t * sr) starts exactly at t.

Velocity: the layer nearest the note's velocity (layers without a velocity count as 127),
times a gain of velocity / 127 (Hydrogen does both).

Conditions (all start from the same clean stereo drum mix, so their truth is identical):
  clean      the mix, peak -1 dBFS
  reverb     + a synthetic room: exponentially decaying stereo noise, RT60 0.8 s, wet -6 dB
  room_mono  mixed down to mono, 1-pole low-pass at 8 kHz, shorter room (RT60 0.4 s, -9 dB)
  mp3        round trip through MP3 at 128 kbit/s CBR (soundfile/libsndfile; no added lag),
             stored decoded, as FLAC like the others
  noise20    + pink noise at 20 dB SNR (stream power over noise power)
  music      + a synthesised bass line (plucked saw, 8th notes) and a chord pad following
             a I-vi-IV-V progression on the stream's tempo, music 3 dB under the drums
Reverb and noise add energy after (never before) each hit's direct sound, so the truth
times stay the times of the direct sound.
"""
from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 44100
CONDITIONS = ("clean", "reverb", "room_mono", "mp3", "noise20", "music")
DRUM_ONLY = ("clean", "reverb", "room_mono")   # the targets' "drum-only streams"


@dataclass
class Instrument:
    name: str
    label: str
    layers: list[tuple[int, Path]] = field(default_factory=list)   # (velocity, path)


@dataclass
class Kit:
    name: str
    instruments: dict[str, Instrument]
    roles: dict[str, str]          # role -> instrument name (missing role: not in this kit)
    _cache: dict = field(default_factory=dict, repr=False)

    def sample(self, role: str, velocity: int) -> np.ndarray | None:
        """[n, 2] float32 one-shot for a note of `role` at `velocity`, or None."""
        inst = self.instruments.get(self.roles.get(role, ""))
        if inst is None:
            return None
        _v, path = min(inst.layers, key=lambda lp: (abs(lp[0] - velocity), lp[0]))
        if path not in self._cache:
            x, sr = sf.read(path, dtype="float32", always_2d=True)
            if sr != SR:
                raise ValueError(f"{path}: {sr} Hz, the generator mixes at {SR} Hz")
            self._cache[path] = x if x.shape[1] == 2 else np.repeat(x[:, :1], 2, axis=1)
        return self._cache[path]


def _pick(names: list[str], *patterns: str) -> str | None:
    for p in patterns:
        hit = [n for n in names if re.search(p, n, re.IGNORECASE)]
        if hit:
            return min(hit)
    return None


def assign_roles(instruments: dict[str, Instrument],
                 rng: np.random.Generator | None = None) -> dict[str, str]:
    """Role -> instrument name, from instrument names; a role with no fit is left out,
    except that hihat/cymbal/tom roles fall back to another piece of their class."""
    by = defaultdict(list)
    for name, inst in instruments.items():
        by[inst.label].append(name)
    roles: dict[str, str] = {}
    rng = rng or np.random.default_rng(0)
    for label, role in (("kick", "kick"), ("snare", "snare")):
        if by[label]:
            pref = _pick(by[label], "rock", "^kick$", "^snare_1$", "^kick_hard")
            roles[role] = pref or sorted(by[label])[int(rng.integers(len(by[label])))]
    hh = by["hihat"]
    if hh:
        closed = _pick(hh, "clos", r"_cl\b", "cl$", "_cl_") or min(hh)
        roles["hh_closed"] = closed
        roles["hh_open"] = _pick(hh, "open", "op") or closed
        roles["hh_pedal"] = _pick(hh, "pedal") or closed
    cy = by["cymbals"]
    if cy:
        crash = _pick(cy, "crash", "cymbal") or min(cy)
        roles["crash"] = crash
        roles["ride"] = _pick(cy, "ride") or crash
    toms = by["toms"]
    if toms:
        hi = _pick(toms, "hi", "high", "1") or _pick(toms, "mid", "2") or min(toms)
        low = _pick(toms, "floor", "low", "3") or max(toms)
        rest = [t for t in sorted(toms) if t not in (hi, low)]
        mid = _pick(rest, "mid", "2") or (rest or [hi])[0]
        roles.update(tom_hi=hi, tom_mid=mid, tom_low=low)
    return roles


def load_kits(manifest: Path, split: str = "test") -> dict[str, Kit]:
    """Every kit of `split` in the manifest (paths relative to the manifest's folder)."""
    root = Path(manifest).parent
    inst: dict[str, dict[str, Instrument]] = defaultdict(dict)
    with open(manifest, newline="") as f:
        for r in csv.DictReader(f):
            if r["split"] != split:
                continue
            stem = Path(r["path"]).stem
            name = stem.split("__")[0] if "__" in stem else stem
            k = inst[r["kit"]].setdefault(name, Instrument(name, r["label"]))
            k.layers.append((int(r["velocity"]) if r["velocity"] else 127, root / r["path"]))
    return {kit: Kit(kit, ins, assign_roles(ins)) for kit, ins in sorted(inst.items())}


def mix(notes, kit: Kit, tail_s: float = 1.5) -> tuple[np.ndarray, list]:
    """Sample-accurate mix of `notes` ([Note]) with `kit`: ([n, 2] float32, notes kept).

    A note whose role the kit lacks is left out of the audio and of the truth. Truth times
    are rounded to the sample the note was mixed at.
    """
    kept = []
    end = max((n.time_s for n in notes), default=0.0) + tail_s
    out = np.zeros((int(end * SR) + 1, 2), np.float32)
    for n in notes:
        x = kit.sample(n.role, n.velocity)
        if x is None:
            continue
        i = round(n.time_s * SR)
        m = min(len(x), len(out) - i)
        out[i:i + m] += x[:m] * (n.velocity / 127)
        kept.append(type(n)(i / SR, n.role, n.velocity))
    return out, kept


# ---- conditions -------------------------------------------------------------------------
def room_ir(rt60_s: float, rng: np.random.Generator, channels: int = 2,
            predelay_s: float = 0.008) -> np.ndarray:
    """[n, channels] exponentially decaying noise (-60 dB at rt60_s), unit energy per channel;
    no energy before predelay_s, so the direct sound stays the onset."""
    n = int(rt60_s * SR)
    t = np.arange(n) / SR
    env = np.exp(-6.9078 * t / rt60_s)                 # ln(1000): -60 dB at rt60
    ir = rng.standard_normal((n, channels)) * env[:, None]
    ir[: int(predelay_s * SR)] = 0
    return (ir / np.sqrt((ir ** 2).sum(0, keepdims=True))).astype(np.float32)


def fft_convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Per-channel linear convolution, truncated to len(x). x [n, c], h [m, c]."""
    n = len(x) + len(h) - 1
    nfft = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, nfft, axis=0) * np.fft.rfft(h, nfft, axis=0), nfft, axis=0)
    return y[: len(x)].astype(np.float32)


def add_reverb(x: np.ndarray, rt60_s: float, wet_db: float, rng) -> np.ndarray:
    wet = fft_convolve(x, room_ir(rt60_s, rng, x.shape[1]))
    # scale the wet signal to wet_db under the dry signal's power
    g = np.sqrt((x ** 2).mean() / max((wet ** 2).mean(), 1e-20)) * 10 ** (wet_db / 20)
    return x + g * wet


def pink_noise(n: int, channels: int, rng) -> np.ndarray:
    spec = rng.standard_normal((n // 2 + 1, channels)) + 1j * rng.standard_normal(
        (n // 2 + 1, channels))
    f = np.fft.rfftfreq(n, 1 / SR)
    spec *= (1 / np.sqrt(np.maximum(f, 20.0)))[:, None]
    y = np.fft.irfft(spec, n, axis=0)
    return (y / y.std()).astype(np.float32)


def mp3_roundtrip(x: np.ndarray, kbps: int = 128) -> np.ndarray:
    """Encode to MP3 (CBR, `kbps`) and decode, in memory. libsndfile maps
    compression_level 0..1 linearly onto 320..32 kbit/s in constant-bitrate mode."""
    level = (320 - kbps) / (320 - 32)
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="MP3", subtype="MPEG_LAYER_III", compression_level=level,
             bitrate_mode="CONSTANT")
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32", always_2d=True)
    y = y[: len(x)]
    if len(y) < len(x):
        y = np.pad(y, ((0, len(x) - len(y)), (0, 0)))
    return y


def music_bed(n: int, bpm: float, rng) -> np.ndarray:
    """[n, 2] a plucked saw bass (roots 55-175 Hz) on 8th notes and a soft chord pad,
    I-vi-IV-V, one chord a bar, in a random key; no drums."""
    key = int(rng.integers(0, 12))
    prog = [(0, [0, 4, 7]), (9, [9, 12, 16]), (5, [5, 9, 12]), (7, [7, 11, 14])]
    beat = round(60 / bpm * SR)
    bar = 4 * beat
    t_all = np.arange(n) / SR
    bass = np.zeros(n, np.float32)
    pad = np.zeros(n, np.float32)
    for b0 in range(0, n, bar):
        root, chord = prog[(b0 // bar) % 4]
        m = min(bar, n - b0)
        t = t_all[:m]
        for c in chord:                                 # pad: 3 slightly detuned sines each
            f = 220 * 2 ** ((key + c - 9) / 12)
            for d in (-0.004, 0.0, 0.004):
                pad[b0:b0 + m] += np.sin(2 * np.pi * f * (1 + d) * t).astype(np.float32)
        pad[b0:b0 + m] *= np.minimum(1, t / 0.25) * np.minimum(1, (m - np.arange(m)) / 2000)
        fb = 55 * 2 ** ((key + root) / 12)                # 55-175 Hz roots
        for k in range(8):                              # bass: 8th notes, octave jumps
            s = b0 + k * beat // 2
            if s >= n:
                break
            L = min(beat // 2, n - s)
            tt = t_all[:L]
            f = fb * (2 if k % 4 == 3 else 1)
            saw = 2 * ((f * tt) % 1) - 1
            env = np.minimum(1, tt / 0.004) * np.exp(-tt * 6) * np.minimum(
                1, (L - np.arange(L)) / 200)
            bass[s:s + L] += (saw * env).astype(np.float32)
    bass = one_pole_lowpass(bass[:, None], 800.0)[:, 0]      # soften the saw
    pad /= max(np.abs(pad).max(), 1e-9)
    bass /= max(np.abs(bass).max(), 1e-9)
    m = 0.8 * bass + 0.35 * pad
    return np.stack([m, m], 1).astype(np.float32)


def one_pole_lowpass(x: np.ndarray, fc_hz: float) -> np.ndarray:
    """Causal one-pole low-pass by FFT convolution with its (truncated) impulse response."""
    a = np.exp(-2 * np.pi * fc_hz / SR)
    h = ((1 - a) * a ** np.arange(int(np.ceil(np.log(1e-6) / np.log(a))) + 1)).astype(
        np.float32)
    return fft_convolve(x, np.repeat(h[:, None], x.shape[1], 1))


def apply_condition(x: np.ndarray, cond: str, bpm: float, rng) -> np.ndarray:
    """The clean stereo mix under `cond`; peak-normalised to -1 dBFS."""
    if cond == "clean":
        y = x
    elif cond == "reverb":
        y = add_reverb(x, 0.8, -6.0, rng)
    elif cond == "room_mono":
        y = one_pole_lowpass(x.mean(1, keepdims=True), 8000.0)
        y = add_reverb(y, 0.4, -9.0, rng)
    elif cond == "mp3":
        y = mp3_roundtrip(x / max(np.abs(x).max(), 1e-9) * 0.891)
    elif cond == "noise20":
        p = (x ** 2).mean()
        y = x + pink_noise(len(x), x.shape[1], rng) * np.sqrt(p / 10 ** (20 / 10))
    elif cond == "music":
        bed = music_bed(len(x), bpm, rng)
        g = np.sqrt((x ** 2).mean() / max((bed ** 2).mean(), 1e-20)) * 10 ** (-3 / 20)
        y = x + g * bed
    else:
        raise ValueError(f"unknown condition {cond!r}; one of {CONDITIONS}")
    return (y / max(np.abs(y).max(), 1e-9) * 0.891).astype(np.float32)
