"""Groove libraries: drum patterns people wrote, as note lists in beats.

Two open sources (CORPUS.md, "Streams with known note times"):
  mma       the groove library of mma, Musical MIDI Accompaniment (Debian `mma`, about
            2,000 grooves). mma itself plays each groove for a few bars; its MIDI drum
            channel is read back (General MIDI keys -> roles).
  hydrogen  Hydrogen's demo songs (`.h2song` XML in hydrogen-data and hydrogen-drumkits):
            patterns in ticks (48 a beat) played in the song's pattern sequence;
            instrument names -> roles.

A library is a list of Grooves; `build_library` writes it to one JSON file once (the mma
run takes minutes) and `read_library` reads it back. `play(groove, bpm, seconds, rng)`
loops a groove from a random bar to the stream's length with a human's timing and
velocity spread, as patterns.program does for the programmed grooves.
Only the five classes' pieces are kept (side stick, claps, cowbells, congas... are left
out: a kit of the corpus has no sample for them).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .patterns import Note

# General MIDI percussion key -> role (patterns.ROLE_CLASS)
GM_KEY_ROLE = {
    35: "kick", 36: "kick", 38: "snare", 40: "snare",
    42: "hh_closed", 44: "hh_pedal", 46: "hh_open",
    41: "tom_low", 43: "tom_low", 45: "tom_mid", 47: "tom_mid", 48: "tom_hi", 50: "tom_hi",
    49: "crash", 52: "crash", 55: "crash", 57: "crash",
    51: "ride", 59: "ride", 53: "ride_bell",
}

# Hydrogen instrument name -> role: first match wins (names are free text)
NAME_ROLES = (
    (r"stick|clap|cowbell|tamb|shaker|conga|bongo|clave|block|guiro", None),
    (r"kick|bass ?drum|\bbd\b", "kick"),
    (r"snare|\bsd\b", "snare"),                # a snare rimshot is a snare hit
    (r"rim", None),
    (r"(hi.?hat|\bhh\b|hat).*(open|\bop)", "hh_open"),
    (r"(hi.?hat|\bhh\b|hat).*(pedal|foot)", "hh_pedal"),
    (r"hi.?hat|\bhh\b|hat", "hh_closed"),
    (r"floor|low ?tom|tom.*(low|3|4)", "tom_low"),
    (r"(mid|middle) ?tom|tom.*(mid|2)", "tom_mid"),
    (r"tom", "tom_hi"),
    (r"bell", "ride_bell"),
    (r"ride", "ride"),
    (r"crash|splash|china|cymbal", "crash"),
)

TICKS_PER_BEAT_H2 = 48


@dataclass
class Groove:
    name: str
    source: str                              # "mma" or "hydrogen"
    beats: float                             # length of the pattern (it loops)
    notes: list[tuple[float, str, int]]      # (beat from 0, role, MIDI velocity 1-127)
    bpm: float | None = None                 # the tempo it was written at, if known


def role_of_name(name: str) -> str | None:
    for pattern, role in NAME_ROLES:
        if re.search(pattern, name, re.IGNORECASE):
            return role
    return None


# ---------------------------------------------------------------------------------- MIDI

def _varlen(data: bytes, i: int) -> tuple[int, int]:
    v = 0
    while True:
        b = data[i]
        i += 1
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            return v, i


def midi_drum_notes(path: str | Path
                    ) -> tuple[int, list[tuple[int, int, int]], list[tuple[int, str]]]:
    """A Standard MIDI File -> (ticks per beat, [(tick, key, velocity)] of the note-ons on
    channel 10 (index 9), [(tick, text)] of its markers), all tracks, sorted by tick."""
    data = Path(path).read_bytes()
    if data[:4] != b"MThd":
        raise ValueError(f"{path}: not a MIDI file")
    ntracks, division = int.from_bytes(data[10:12], "big"), int.from_bytes(data[12:14], "big")
    if division & 0x8000:
        raise ValueError(f"{path}: SMPTE time division is not supported")
    i, notes, marks = 8 + int.from_bytes(data[4:8], "big"), [], []
    for _ in range(ntracks):
        if data[i:i + 4] != b"MTrk":
            raise ValueError(f"{path}: bad track header")
        end = i + 8 + int.from_bytes(data[i + 4:i + 8], "big")
        i, tick, status = i + 8, 0, 0
        while i < end:
            delta, i = _varlen(data, i)
            tick += delta
            if data[i] & 0x80:
                status = data[i]
                i += 1
            if status == 0xFF:                        # meta: type, length, data
                kind = data[i]
                n, i = _varlen(data, i + 1)
                if kind == 0x06:                      # a marker
                    marks.append((tick, data[i:i + n].decode("latin-1")))
                i += n
            elif status in (0xF0, 0xF7):              # sysex
                n, i = _varlen(data, i)
                i += n
            else:
                kind, ch = status & 0xF0, status & 0x0F
                size = 1 if kind in (0xC0, 0xD0) else 2
                if kind == 0x90 and ch == 9 and data[i + 1] > 0:
                    notes.append((tick, data[i], data[i + 1]))
                i += size
        i = end
    return division, sorted(notes), sorted(marks)


# ----------------------------------------------------------------------------------- mma

def find_mma() -> list[str] | None:
    """The command that runs mma: `mma` on the PATH (apt-get install mma), or None."""
    exe = shutil.which("mma")
    return [exe] if exe else None


def mma_groove_names(lib_dir: str | Path) -> list[str]:
    """Every `DefGroove NAME` in the .mma files under mma's lib folder, sorted, unique."""
    names = set()
    for f in Path(lib_dir).rglob("*.mma"):
        for line in f.read_text(errors="replace").splitlines():
            m = re.match(r"\s*defgroove\s+(\S+)", line, re.IGNORECASE)
            if m:
                names.add(m.group(1))
    return sorted(names, key=str.lower)


def mma_lib_dir() -> Path | None:
    """mma's lib folder: $MMA_HOME/lib or the standard install places."""
    home = os.environ.get("MMA_HOME")
    for d in ([Path(home)] if home else []) + [Path("/usr/share/mma"), Path("/usr/local/share/mma")]:
        if (d / "lib").is_dir():
            return d / "lib"
    return None


def mma_grooves(cmd: list[str], names: list[str], bars: int, workdir: Path
                ) -> dict[str, Groove | None]:
    """Play each groove of `names` for `bars` bars, one after the other in ONE mma run
    (mma's start-up dominates a short run), a MIDI marker before each -> {name: Groove,
    or None when it has no drum-kit notes}. If mma fails (a groove it cannot load), each
    groove is played on its own run; one that fails alone is None."""
    src, mid = workdir / "g.mma", workdir / "g.mid"
    src.write_text("Tempo 120\n" + "".join(
        f"MidiMark groove:{name}\nGroove {name}\n" + "".join(f"{b + 1} C\n" for b in range(bars))
        for name in names) + "MidiMark end\n")
    mid.unlink(missing_ok=True)
    r = subprocess.run(cmd + [str(src), "-f", str(mid)], capture_output=True, text=True,
                       timeout=60 + 5 * len(names))
    if r.returncode != 0 or not mid.is_file():
        if len(names) == 1:
            return {names[0]: None}
        return {k: v for name in names for k, v in mma_grooves(cmd, [name], bars, workdir).items()}
    ppq, raw, marks = midi_drum_notes(mid)
    starts = {text[len("groove:"):]: tick for tick, text in marks if text.startswith("groove:")}
    edges = sorted(t for t, _ in marks)
    out = {}
    for name in names:
        a = starts.get(name)
        if a is None:
            out[name] = None
            continue
        b = next((t for t in edges if t > a), raw[-1][0] + 1 if raw else a)
        notes = [((t - a) / ppq, GM_KEY_ROLE[k], v) for t, k, v in raw
                 if a <= t < b and k in GM_KEY_ROLE]
        out[name] = Groove(name, "mma", (b - a) / ppq, notes) if len(notes) >= 4 else None
    return out


def mma_groove(cmd: list[str], name: str, bars: int, workdir: Path) -> Groove | None:
    """Play groove `name` for `bars` bars with mma -> a Groove (None: mma failed or the
    groove has no drum-kit notes)."""
    return mma_grooves(cmd, [name], bars, workdir)[name]


# ------------------------------------------------------------------------------ Hydrogen

def hydrogen_song(path: str | Path) -> Groove | None:
    """A Hydrogen .h2song -> its whole pattern sequence as one Groove (None if it has no
    notes of the five classes)."""
    root = ET.parse(path).getroot()
    roles = {}
    for inst in root.iter("instrument"):
        iid, name = inst.findtext("id"), inst.findtext("name") or ""
        if iid is not None:
            roles[iid.strip()] = role_of_name(name)
    patterns = {}
    for p in root.iter("pattern"):
        size = int(p.findtext("size") or 192)
        notes = []
        for n in p.iter("note"):
            role = roles.get((n.findtext("instrument") or "").strip())
            if role is None:
                continue
            vel = int(np.clip(round(float(n.findtext("velocity") or 0.8) * 127), 1, 127))
            notes.append((int(n.findtext("position") or 0) / TICKS_PER_BEAT_H2, role, vel))
        patterns[p.findtext("name")] = (size / TICKS_PER_BEAT_H2, notes)
    at, out = 0.0, []
    seq = root.find("patternSequence")
    for group in (seq.findall("group") if seq is not None else []):
        used = [patterns[g.text] for g in group.findall("patternID") if g.text in patterns]
        if not used:
            continue
        out += [(at + b, role, v) for _, notes in used for b, role, v in notes]
        at += max(length for length, _ in used)
    if len(out) < 4:
        return None
    bpm = float(root.findtext("bpm") or 120)
    return Groove(Path(path).stem, "hydrogen", at, sorted(out), bpm)


# ------------------------------------------------------------------------- the library

def build_library(out: Path, mma_cmd: list[str] | None, h2songs: list[Path], bars: int = 8,
                  limit: int | None = None, progress: bool = True) -> list[Groove]:
    """Every groove of mma (if mma_cmd) and every song of h2songs -> `out` (JSON), once:
    an existing file is read instead."""
    if out.is_file():
        return read_library(out)
    from tqdm import tqdm
    grooves = [g for g in (hydrogen_song(p) for p in h2songs) if g]
    if mma_cmd:
        lib = mma_lib_dir()
        if lib is None:
            raise FileNotFoundError("mma's lib folder not found (set MMA_HOME)")
        names = mma_groove_names(lib)[:limit]
        batch = 50
        with tempfile.TemporaryDirectory() as tmp, \
                tqdm(total=len(names), desc="mma grooves", unit="groove", disable=not progress,
                     dynamic_ncols=True, file=sys.stderr) as bar:
            for k in range(0, len(names), batch):
                got = mma_grooves(mma_cmd, names[k:k + batch], bars, Path(tmp))
                grooves += [g for g in got.values() if g]
                bar.update(len(got))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps([g.__dict__ for g in grooves]))
    tmp.replace(out)
    return grooves


def read_library(path: Path) -> list[Groove]:
    return [Groove(d["name"], d["source"], d["beats"], [tuple(n) for n in d["notes"]],
                   d.get("bpm")) for d in json.loads(Path(path).read_text())]


def play(groove: Groove, bpm: float, seconds: float, rng: np.random.Generator,
         jitter_s: float = 0.004) -> list[Note]:
    """Loop `groove` at `bpm` from a random bar for `seconds` -> Notes (times from 0.25 s).

    Humanised: every grid position moves by one uniform +-jitter_s (notes struck together
    stay together), each note by another +-1 ms, and velocities by x0.8-1.2."""
    beat_s = 60.0 / bpm
    start = float(rng.integers(max(1, int(groove.beats // 4)))) * 4.0   # a bar's downbeat
    notes, shift = [], {}
    loops = int(np.ceil((seconds / beat_s + start) / groove.beats)) + 1
    for k in range(loops):
        for beat, role, vel in groove.notes:
            b = k * groove.beats + beat - start
            if b < 0:
                continue
            t = 0.25 + b * beat_s
            if t > seconds:
                continue
            key = round(b, 3)
            if key not in shift:
                shift[key] = rng.uniform(-jitter_s, jitter_s)
            t += shift[key] + rng.uniform(-0.001, 0.001)
            v = int(np.clip(round(vel * rng.uniform(0.8, 1.2)), 1, 127))
            notes.append(Note(max(0.0, t), role, v))
    return sorted(notes, key=lambda n: n.time_s)
