"""Kits from the corpus manifest, a sample-accurate mixer, and the listening conditions.

Kit: the manifest's one-shots of one kit, grouped into instruments by file name
(`instrument_name`: Hydrogen's instrument name before "__", "Closed_HH", "Tom_Low"...; a
SoundFont render's key and class, "042_hihat"; a numbered layer's stem, "HihatClosed"),
each with its velocity layers. The benchmark plays the held-out kits (split == test),
training the train kits. Every one-shot has its onset at sample 0, so a note mixed
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
from collections.abc import Sequence
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


def instrument_name(path: str | Path) -> str:
    """The instrument a one-shot file is a layer of, from its file name."""
    stem = Path(path).stem
    if "__" in stem:                                    # Hydrogen: Name__sample
        return stem.split("__")[0]
    m = re.match(r"^(\d{3}_[a-z]+)_v\d+$", stem)       # SoundFont render: key_class_vVEL
    if m:
        return m.group(1)
    m = re.match(r"^(.*[A-Za-z])_\d+$", stem)           # numbered layers: Name_007
    return m.group(1) if m else stem


# General MIDI percussion keys (SoundFont renders name instruments "042_hihat"...)
GM_ROLE_PATTERNS = {
    "kick": ("^036_", "^035_"), "snare": ("^038_", "^040_"),
    "hh_closed": ("^042_",), "hh_pedal": ("^044_",), "hh_open": ("^046_",),
    "crash": ("^049_", "^057_", "^055_", "^052_"), "ride": ("^051_", "^059_"),
    "ride_bell": ("^053_",),
    "tom_hi": ("^050_", "^048_"), "tom_mid": ("^047_", "^045_"), "tom_low": ("^043_", "^041_"),
}


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
    g = GM_ROLE_PATTERNS
    for label, role in (("kick", "kick"), ("snare", "snare")):
        if by[label]:
            pref = _pick(by[label], *g[role], "rock", "^kick$", "^snare_1$", "^kick_hard")
            roles[role] = pref or sorted(by[label])[int(rng.integers(len(by[label])))]
    hh = by["hihat"]
    if hh:
        closed = _pick(hh, *g["hh_closed"], "clos", r"_cl\b", "cl$", "_cl_") or min(hh)
        roles["hh_closed"] = closed
        roles["hh_open"] = _pick(hh, *g["hh_open"], "open", "op") or closed
        roles["hh_pedal"] = _pick(hh, *g["hh_pedal"], "pedal", "foot") or closed
    cy = by["cymbals"]
    if cy:
        crash = _pick(cy, *g["crash"], "crash", "cymbal") or min(cy)
        roles["crash"] = crash
        roles["ride"] = _pick(cy, *g["ride"], "ride(?!.*bell)") or crash
        roles["ride_bell"] = _pick(cy, *g["ride_bell"], "bell") or roles["ride"]
    toms = by["toms"]
    if toms:
        hi = (_pick(toms, *g["tom_hi"], "hi", "high", "1") or _pick(toms, "mid", "2")
              or min(toms))
        low = _pick(toms, *g["tom_low"], "floor", "low", "3") or max(toms)
        rest = [t for t in sorted(toms) if t not in (hi, low)]
        mid = _pick(rest, *g["tom_mid"], "mid", "2") or (rest or [hi])[0]
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
            name = instrument_name(r["path"])
            k = inst[r["kit"]].setdefault(name, Instrument(name, r["label"]))
            k.layers.append((int(r["velocity"]) if r["velocity"] else 127, root / r["path"]))
    return {kit: Kit(kit, ins, assign_roles(ins)) for kit, ins in sorted(inst.items())}


def mix(notes, kit: Kit, tail_s: float = 1.5) -> tuple[np.ndarray, list]:
    """Sample-accurate mix of `notes` ([Note]) with `kit`: ([n, 2] float32, notes kept).

    A note whose role the kit lacks is left out of the audio and of the truth. Truth times
    are rounded to the sample the note was mixed at. Chokes, as on a real kit: an open
    hihat stops (10 ms fade) when the next closed or pedal hihat note comes, and a note
    with `choke_s` > 0 (a crash grabbed by the hand) stops that long after it starts
    (20 ms fade).
    """
    kept = []
    end = max((n.time_s for n in notes), default=0.0) + tail_s
    out = np.zeros((int(end * SR) + 1, 2), np.float32)
    closes = sorted(n.time_s for n in notes if n.role in ("hh_closed", "hh_pedal"))
    for n in notes:
        x = kit.sample(n.role, n.velocity)
        if x is None:
            continue
        i = round(n.time_s * SR)
        m = min(len(x), len(out) - i)
        stop_s = n.choke_s if getattr(n, "choke_s", 0.0) > 0 else None
        fade_s = 0.020
        if n.role == "hh_open":
            later = [t for t in closes if t > n.time_s + 1e-4]
            if later:
                stop_s, fade_s = later[0] - n.time_s, 0.010
        y = x[:m] * (n.velocity / 127)
        if stop_s is not None and stop_s * SR < m:
            k, f = int(stop_s * SR), int(fade_s * SR)
            env = np.ones(m, np.float32)
            env[k:k + f] = np.linspace(1, 0, len(env[k:k + f]), dtype=np.float32)
            env[k + f:] = 0
            y = y * env[:, None]
        out[i:i + m] += y
        kept.append(n.at(i / SR))
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


# ---- randomised conditions for training grooves -------------------------------------------
def compress(x: np.ndarray, threshold_db: float, ratio: float, release_s: float = 0.08
             ) -> np.ndarray:
    """Feed-forward peak compressor: the gain follows a smoothed |x| envelope (instant
    attack, one-pole release); no make-up gain (the caller normalises)."""
    env = np.abs(x).max(axis=1)
    a = np.exp(-1.0 / (release_s * SR))
    sm = np.empty_like(env)
    # a one-pole peak follower is a recursion: run it on a 64x decimated envelope, then hold
    blk = 64
    n = len(env) // blk * blk
    coarse = np.concatenate([env[:n].reshape(-1, blk).max(1), env[n:].max(keepdims=True)]
                            if n < len(env) else [env[:n].reshape(-1, blk).max(1)])
    ab = a ** blk
    level, out = 0.0, np.empty_like(coarse)
    for i, v in enumerate(coarse):
        level = v if v > level else ab * level + (1 - ab) * v
        out[i] = level
    sm[:] = np.repeat(out, blk)[:len(env)]
    over_db = np.maximum(20 * np.log10(np.maximum(sm, 1e-9)) - threshold_db, 0)
    gain = 10 ** (-over_db * (1 - 1 / ratio) / 20)
    return (x * gain[:, None]).astype(np.float32)


def random_eq(x: np.ndarray, rng) -> np.ndarray:
    """A random tilt: the signal plus or minus its low-passed part (+-9 dB shelves)."""
    low = one_pole_lowpass(x, float(np.exp(rng.uniform(np.log(150), np.log(3000)))))
    g_low, g_high = 10 ** (rng.uniform(-9, 9, size=2) / 20)
    return (g_low * low + g_high * (x - low)).astype(np.float32)


def music_plan(seconds: float, bpm: float, rng) -> list[tuple[str, float, float, int]]:
    """The notes of a training music bed: [(part, start s, duration s, MIDI key)].

    Built unlike the benchmark's `music_bed` (a saw bass and a I-vi-IV-V pad) so that the
    benchmark's music stays unheard: a bass on a random rhythm, random diatonic chords,
    a lead line; each part present or not."""
    key = int(rng.integers(0, 12))
    scale = [0, 2, 4, 5, 7, 9, 11]
    beat = 60 / bpm
    notes = []
    parts = rng.random(3) < (0.9, 0.7, 0.5)
    if parts[0]:                                       # bass, E1-E3
        step, t0 = float(rng.choice([0.5, 1.0, 0.25])), 0.0
        while t0 < seconds:
            if rng.random() < 0.8:
                deg = int(rng.choice([0, 0, 4, 3, 5]))
                notes.append(("bass", t0, step * beat,
                              28 + key + scale[deg] + 12 * int(rng.choice([0, 0, 1]))))
            t0 += step * beat
    if parts[1]:                                       # chords from G3
        t0 = 0.0
        while t0 < seconds:
            root = int(rng.integers(0, 7))
            dur = 4 * beat * float(rng.choice([0.5, 1, 2]))
            for k in (0, 2, 4):
                notes.append(("chords", t0, dur,
                              55 + key + scale[(root + k) % 7] + 12 * ((root + k) // 7)))
            t0 += dur
    if parts[2]:                                       # lead from G4
        t0 = 0.0
        while t0 < seconds:
            step = float(rng.choice([0.25, 0.5, 1.0])) * beat
            if rng.random() < 0.7:
                notes.append(("lead", t0, step, 67 + key + scale[int(rng.integers(0, 7))]))
            t0 += step
    return notes


def _render_tones(plan, n: int, rng) -> np.ndarray:
    """The plan as synthesised tones (square, triangle, FM, sine) -> [n] float32."""
    t_all = np.arange(n) / SR
    y = np.zeros(n, np.float32)
    kinds = {"bass": str(rng.choice(["square", "tri", "fm"])),
             "chords": str(rng.choice(["sine", "tri"])), "lead": None}
    level = {"bass": 0.8, "chords": 0.25, "lead": 0.3}
    decay = {"bass": (2, 8), "chords": (0.3, 3), "lead": (3, 12)}

    def tone(f, dur, kind, dec):
        L = min(int(dur * SR), n)
        t = t_all[:L]
        if kind == "square":
            w = np.sign(np.sin(2 * np.pi * f * t))
        elif kind == "tri":
            w = 2 * np.abs(2 * ((f * t) % 1) - 1) - 1
        elif kind == "fm":
            w = np.sin(2 * np.pi * f * t + 2.0 * np.exp(-t * 8) * np.sin(2 * np.pi * 2 * f * t))
        else:
            w = np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t)
        att = np.minimum(1, t / float(rng.uniform(0.002, 0.03)))
        return (w * att * np.exp(-t * dec) * np.minimum(1, (L - np.arange(L)) / 300)
                ).astype(np.float32)

    for part, t0, dur, key in plan:
        kind = kinds[part] or str(rng.choice(["fm", "square", "sine"]))
        w = tone(440 * 2 ** ((key - 69) / 12), dur, kind, rng.uniform(*decay[part]))
        s = int(t0 * SR)
        m = min(len(w), n - s)
        if m > 0:
            y[s:s + m] += level[part] * w[:m]
    return y


# General MIDI melodic programs per part (0-based): basses; pianos, organs, guitars,
# strings, pads; pianos, chromatic percussion, guitars, brass, reeds, pipes, synth leads
FONT_PROGRAMS = {"bass": list(range(32, 40)),
                 "chords": list(range(0, 8)) + list(range(16, 32)) + list(range(48, 56))
                 + list(range(88, 96)),
                 "lead": list(range(0, 16)) + list(range(24, 32)) + list(range(56, 88))}
_SYNTHS: dict = {}


def melodic_fonts(paths: Sequence[Path]) -> list[Path]:
    """The SoundFonts among `paths` that have General MIDI melodic programs (a piano at
    bank 0 program 0 and a bass at 33); drum-only fonts are left out."""
    import tinysoundfont
    synth, keep = tinysoundfont.Synth(samplerate=SR), []
    for p in paths:
        if any(Path(p).name == k.name for k in keep):      # one package's copy in two places
            continue
        try:
            sfid = synth.sfload(str(p))
        except Exception:  # noqa: BLE001 (an unreadable font is skipped, not fatal)
            continue
        if synth.sfpreset_name(sfid, 0, 0) and synth.sfpreset_name(sfid, 0, 33):
            keep.append(Path(p))
        synth.sfunload(sfid)
    return keep


def _render_font(plan, n: int, font: Path, rng) -> np.ndarray:
    """The plan played by a SoundFont's melodic programs (one random program per part,
    tinysoundfont) -> [n, 2] float32."""
    import tinysoundfont
    if font not in _SYNTHS:
        synth = tinysoundfont.Synth(samplerate=SR, gain=-6)
        _SYNTHS[font] = (synth, synth.sfload(str(font)))
    synth, sfid = _SYNTHS[font]
    synth.notes_off()
    synth.sounds_off()
    chans = {"bass": 0, "chords": 1, "lead": 2}
    for part, ch in chans.items():
        progs = FONT_PROGRAMS[part]
        synth.program_select(ch, sfid, 0, int(progs[int(rng.integers(len(progs)))]))
    events = []                                    # (sample, is note-on, channel, key, vel)
    for part, t0, dur, key in plan:
        on = int(t0 * SR)
        events.append((on, 1, chans[part], key, int(rng.integers(60, 120))))
        events.append((on + max(1, int(dur * 0.95 * SR)), 0, chans[part], key, 0))
    events.sort(key=lambda e: (e[0], e[1]))
    out, pos = np.zeros((n, 2), np.float32), 0
    for at, is_on, ch, key, vel in events + [(n, 0, -1, 0, 0)]:
        at = min(at, n)
        if at > pos:
            out[pos:at] = np.frombuffer(synth.generate(at - pos), np.float32).reshape(-1, 2)
            pos = at
        if ch < 0 or pos >= n:
            break
        if is_on:
            synth.noteon(ch, key, vel)
        else:
            synth.noteoff(ch, key)
    return out


def music_bed_train(n: int, bpm: float, rng, fonts: Sequence[Path] = ()) -> np.ndarray:
    """[n, 2] music for training grooves: music_plan played by the melodic programs of
    one of `fonts` (the training SoundFonts; 3 beds in 4 when fonts are given) or by
    synthesised tones, peak-normalised, panned off-centre."""
    plan = music_plan(n / SR, bpm, rng)
    if fonts and rng.random() < 0.75:
        y = _render_font(plan, n, fonts[int(rng.integers(len(fonts)))], rng)
    else:
        y = _render_tones(plan, n, rng)[:, None]
    y = y / max(float(np.abs(y).max()), 1e-9)
    pan = rng.uniform(0.7, 1.0)
    return np.concatenate([y[:, :1] * pan, y[:, -1:] * (2 - pan)], 1).astype(np.float32)


def train_condition(x: np.ndarray, bpm: float, rng, fonts: Sequence[Path] = ()
                    ) -> tuple[np.ndarray, str]:
    """A random listening chain for a training groove: -> ([n, 2] float32, its name).

    Drawn per stream, each step independently: a mono room mic (1-pole low-pass 4-12 kHz)
    or a stereo room (RT60 0.15-1.5 s, wet -18 to -3 dB), EQ tilt, compression (ratio
    2-8, threshold 6-24 dB under the peak), music (music_bed_train: the training SoundFonts'
    melodic programs or synthesised tones, -12 to +3 dB against the drums), noise
    (white or pink, 10-40 dB SNR), MP3 (64-192 kbit/s). About 1 in 6 streams stays dry.
    Reverb and noise only add energy after each direct sound, so truth times hold.
    """
    steps = []
    y = x
    if rng.random() < 0.25:
        y = one_pole_lowpass(y.mean(1, keepdims=True), float(rng.uniform(4000, 12000)))
        y = add_reverb(y, float(rng.uniform(0.15, 0.8)), float(rng.uniform(-15, -5)), rng)
        y = np.repeat(y, 2, axis=1)
        steps.append("room_mono")
    elif rng.random() < 0.5:
        y = add_reverb(y, float(np.exp(rng.uniform(np.log(0.15), np.log(1.5)))),
                       float(rng.uniform(-18, -3)), rng)
        steps.append("room")
    if rng.random() < 0.4:
        y = random_eq(y, rng)
        steps.append("eq")
    if rng.random() < 0.3:
        peak_db = 20 * np.log10(max(float(np.abs(y).max()), 1e-9))
        y = compress(y, peak_db - float(rng.uniform(6, 24)), float(rng.uniform(2, 8)))
        steps.append("comp")
    if rng.random() < 0.45:
        bed = music_bed_train(len(y), bpm, rng, fonts)
        g = np.sqrt((y ** 2).mean() / max((bed ** 2).mean(), 1e-20)) * 10 ** (
            rng.uniform(-12, 3) / 20)
        y = y + g * bed
        steps.append("music")
    if rng.random() < 0.3:
        p = (y ** 2).mean()
        nz = (pink_noise(len(y), 2, rng) if rng.random() < 0.5
              else rng.standard_normal((len(y), 2)).astype(np.float32))
        y = y + nz * np.sqrt(p / 10 ** (rng.uniform(10, 40) / 10))
        steps.append("noise")
    y = (y / max(np.abs(y).max(), 1e-9) * 10 ** (rng.uniform(-12, -1) / 20)).astype(np.float32)
    if rng.random() < 0.2:
        y = mp3_roundtrip(y, int(rng.choice([64, 96, 128, 192])))
        steps.append("mp3")
    return y.astype(np.float32), "+".join(steps) or "dry"
