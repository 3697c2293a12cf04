"""Programmed drum grooves: note lists with exact times, roles and MIDI velocities.

A groove is written per bar on a beat grid (beats from 0 at the bar's downbeat, 4 beats a
bar). `program(groove, bpm, seconds, rng)` lays whole bars end to end: every 4th bar
ends in a fill (tom run, snare roll in 32nd notes, or flams), the bar after a fill and
the first bar open with a crash + kick, and ghost notes (velocity 20-40) sit in the
grooves that have them. A small per-grid-position timing jitter (the same for every
note at that position, so simultaneous notes stay simultaneous) keeps the stream off a
perfect grid; the truth holds the jittered times.

Roles are kit pieces; `ROLE_CLASS` maps them to the five classes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROLE_CLASS = {
    "kick": "kick", "snare": "snare",
    "hh_closed": "hihat", "hh_open": "hihat", "hh_pedal": "hihat",
    "tom_hi": "toms", "tom_mid": "toms", "tom_low": "toms",
    "crash": "cymbals", "ride": "cymbals", "ride_bell": "cymbals",
}

# groove name -> (bpm range, fill length in beats)
GROOVES = {
    "rock": ((90, 140), 2.0),
    "sixteenths": ((76, 110), 2.0),     # 16th-note hihats, ghost snares
    "shuffle": ((90, 130), 2.0),        # swung triplet feel, ghost snares
    "bossa": ((120, 150), 2.0),         # bossa-like foot + clave on the snare, ride
    "ballad": ((60, 76), 1.0),
    "fast": ((170, 200), 1.0),          # polka/skank beat: kick on beats, snare between
}

FLAM_GAP_S = 0.030        # grace note before the main stroke
JITTER_S = 0.003          # +- uniform, per grid position


@dataclass(frozen=True)
class Note:
    time_s: float
    role: str
    velocity: int          # MIDI 1-127
    choke_s: float = 0.0   # > 0: the note is stopped (a grabbed cymbal) this long after it starts

    @property
    def label(self) -> str:
        return ROLE_CLASS[self.role]

    def at(self, time_s: float) -> Note:
        return Note(time_s, self.role, self.velocity, self.choke_s)


def _v(rng, lo, hi) -> int:
    return int(rng.integers(lo, hi + 1))


def groove_bar(name: str, rng: np.random.Generator) -> list[tuple[float, str, int]]:
    """One bar of a groove: (beat 0..4, role, velocity)."""
    n: list[tuple[float, str, int]] = []
    if name == "rock":
        for k in range(8):
            n.append((k / 2, "hh_closed", _v(rng, 85, 100) if k % 2 == 0 else _v(rng, 60, 75)))
        n += [(0, "kick", _v(rng, 105, 120)), (2, "kick", _v(rng, 100, 115)),
              (1, "snare", _v(rng, 105, 122)), (3, "snare", _v(rng, 105, 122))]
        if rng.random() < 0.6:
            n.append((2.5, "kick", _v(rng, 85, 100)))
        if rng.random() < 0.3:
            n = [x for x in n if x[0] != 3.5] + [(3.5, "hh_open", _v(rng, 80, 95))]
    elif name == "sixteenths":
        acc = [100, 55, 75, 55]
        for k in range(16):
            n.append((k / 4, "hh_closed", acc[k % 4] + _v(rng, -5, 5)))
        n += [(0, "kick", _v(rng, 105, 120)), (2.5, "kick", _v(rng, 95, 110)),
              (1, "snare", _v(rng, 108, 122)), (3, "snare", _v(rng, 108, 122))]
        if rng.random() < 0.5:
            n.append((1.75, "kick", _v(rng, 80, 95)))
        for b in (0.75, 2.25, 3.75):            # ghost notes
            if rng.random() < 0.7:
                n.append((b, "snare", _v(rng, 20, 40)))
    elif name == "shuffle":
        for beat in range(4):
            n.append((beat, "hh_closed" if beat % 2 == 0 else "ride", _v(rng, 80, 95)))
            n.append((beat + 2 / 3, "hh_closed" if beat % 2 == 0 else "ride", _v(rng, 55, 70)))
        n += [(0, "kick", _v(rng, 100, 118)), (2, "kick", _v(rng, 95, 112)),
              (1, "snare", _v(rng, 100, 120)), (3, "snare", _v(rng, 100, 120))]
        for b in (1 + 2 / 3, 3 + 2 / 3):        # ghost notes on the shuffle's "let"
            if rng.random() < 0.6:
                n.append((b, "snare", _v(rng, 20, 38)))
        if rng.random() < 0.5:
            n.append((2 + 2 / 3, "kick", _v(rng, 80, 95)))
    elif name == "bossa":
        for k in range(8):
            n.append((k / 2, "ride", _v(rng, 60, 80)))
        n += [(b, "kick", _v(rng, 75, 95)) for b in (0, 1.5, 2, 3.5)]
        n += [(b, "hh_pedal", _v(rng, 55, 70)) for b in (1, 3)]
        clave = (0, 1.5, 3) if rng.random() < 0.5 else (1, 2.5)
        n += [(b, "snare", _v(rng, 45, 65)) for b in clave]
    elif name == "ballad":
        for k in range(8):
            n.append((k / 2, "hh_closed", _v(rng, 55, 70) if k % 2 == 0 else _v(rng, 40, 55)))
        n += [(0, "kick", _v(rng, 90, 105)), (2.5, "kick", _v(rng, 75, 90)),
              (1, "snare", _v(rng, 85, 105)), (3, "snare", _v(rng, 85, 105))]
        if rng.random() < 0.5:
            n = [x for x in n if x[0] != 3.5] + [(3.5, "hh_open", _v(rng, 60, 75))]
    elif name == "fast":
        for beat in range(4):
            n += [(beat, "kick", _v(rng, 105, 120)), (beat + 0.5, "snare", _v(rng, 100, 118)),
                  (beat, "ride", _v(rng, 80, 95)), (beat + 0.5, "ride", _v(rng, 65, 80))]
    else:
        raise ValueError(f"unknown groove {name!r}; one of {sorted(GROOVES)}")
    return n


def fill(kind: str, start_beat: float, length_beats: float, bpm: float,
         rng: np.random.Generator) -> list[tuple[float, str, int]]:
    """A fill over [start_beat, start_beat + length_beats)."""
    beat_s = 60 / bpm
    n: list[tuple[float, str, int]] = []
    if kind == "toms":                          # 16th notes down the toms
        steps = round(length_beats * 4)
        order = ["tom_hi", "tom_mid", "tom_low"]
        for k in range(steps):
            n.append((start_beat + k / 4, order[min(2, k * 3 // steps)], _v(rng, 90, 115)))
    elif kind == "roll":                        # 32nd notes (16ths above 140 BPM), crescendo
        div = 8 if bpm <= 140 else 4
        steps = round(length_beats * div)
        for k in range(steps):
            n.append((start_beat + k / div, "snare", int(45 + 70 * k / max(1, steps - 1))))
    elif kind == "flams":                       # flams on 8ths: grace note FLAM_GAP_S before
        g = FLAM_GAP_S / beat_s
        for k in range(round(length_beats * 2)):
            role = "snare" if k % 2 == 0 else rng.choice(["tom_hi", "tom_mid", "tom_low"])
            b = start_beat + k / 2
            n += [(b - g, role, _v(rng, 35, 50)), (b, role, _v(rng, 105, 120))]
    else:
        raise ValueError(kind)
    return n


def program(groove: str, bpm: float, seconds: float, rng: np.random.Generator,
            fills: tuple[str, ...] = ("toms", "roll", "flams")) -> list[Note]:
    """Notes for about `seconds` of `groove` at `bpm` (whole bars, at least 4)."""
    beat_s = 60 / bpm
    bar_s = 4 * beat_s
    n_bars = max(4, round(seconds / bar_s))
    fill_beats = GROOVES[groove][1]
    out: list[tuple[float, str, int]] = []
    k_fill = int(rng.integers(len(fills)))
    for bar in range(n_bars):
        notes = groove_bar(groove, rng)
        is_fill = bar % 4 == 3 and bar < n_bars - 1
        if is_fill:
            start = 4 - fill_beats
            notes = [x for x in notes if x[0] < start - 1e-9 or x[1] == "kick" and x[0] == start]
            notes += fill(fills[k_fill % len(fills)], start, fill_beats, bpm, rng)
            k_fill += 1
        if bar == 0 or bar % 4 == 0:            # crash + kick on the phrase's downbeat
            notes = [x for x in notes if not (x[0] == 0 and x[1] in ("hh_closed", "ride",
                                                                      "kick"))]
            notes += [(0, "crash", _v(rng, 105, 122)), (0, "kick", _v(rng, 108, 122))]
        out += [(bar * 4 + b, r, v) for b, r, v in notes]
    # one jitter value per grid position (rounded to 1e-6 beat): simultaneous notes stay so
    jit: dict[float, float] = {}
    res = []
    for b, r, v in out:
        key = round(b, 6)
        if key not in jit:
            jit[key] = float(rng.uniform(-JITTER_S, JITTER_S)) if b > 0 else 0.0
        res.append(Note(b * beat_s + jit[key] + 0.25, r, int(np.clip(v, 1, 127))))
    # 0.25 s lead-in of silence, so the first hit has left context like every other
    res.sort(key=lambda x: (x.time_s, x.role))
    return res
