"""Randomised grooves for training: what programmed grooves play too rarely.

`random_program(bpm, seconds, rng)` draws a drummer and a groove, bar after bar:

- feel: straight 8ths, straight 16ths, or a triplet (12/8, shuffle) grid;
- a timekeeper: closed hihat, ride, ride bell, a washy half-open hihat, or the pedal
  hihat under the ride; its accents and an open hihat on some off-beats (choked by the
  next closed note when mixed);
- kick: the downbeats and random grid steps, sometimes double-kick runs;
- snare: the backbeat (or half time), ghost notes (velocity 18-45), flams;
- crashes on phrase downbeats over a kick, some grabbed (choked after 80-300 ms);
- fills every 2, 4 or 8 bars: tom runs in any order, snare rolls, flams, tom + kick
  triplets, ending on a crash;
- looseness: each note gets its own timing offset (2-12 ms spread per drummer), so the
  hands and feet of one beat land a few ms apart as a drummer's do, and its velocity is
  humanised;
- pauses: sometimes a bar of only the timekeeper, or silence, so tails ring out whole.

Tempo and length come from the caller (training draws 50-240 BPM). All randomness comes
from `rng`. Times are seconds from the stream start (the lead-in is drawn here: 0 to
0.5 s, 0 included, so a stream can start with a hit).
"""
from __future__ import annotations

import numpy as np

from .patterns import FLAM_GAP_S, Note, fill


def _vel(rng, base: float, spread: float = 8.0) -> int:
    return int(np.clip(round(base + rng.normal(0, spread)), 1, 127))


def random_program(bpm: float, seconds: float, rng: np.random.Generator) -> list[Note]:
    """About `seconds` of a randomly drawn groove at `bpm` (4/4 bars)."""
    beat_s = 60.0 / bpm
    feel = rng.choice(["8", "16", "trip"], p=[0.45, 0.35, 0.2])
    div = {"8": 2, "16": 4, "trip": 3}[feel]
    if feel == "16" and bpm > 150:
        div = 2                                    # 16ths above 150 BPM: few drummers
    keeper = rng.choice(["hh_closed", "ride", "ride_bell", "hh_open", "pedal_ride"],
                        p=[0.55, 0.22, 0.06, 0.05, 0.12])
    keep_every = 1 if (div == 2 or rng.random() < 0.5) else 2 if div == 4 else 1
    half_time = rng.random() < 0.15
    p_kick = rng.uniform(0.05, 0.35)
    double_kick = rng.random() < 0.1
    p_ghost = rng.uniform(0.0, 0.3) if rng.random() < 0.6 else 0.0
    p_open = rng.uniform(0.0, 0.25) if keeper == "hh_closed" else 0.0
    p_choke = rng.uniform(0.0, 0.4)
    fill_every = int(rng.choice([2, 4, 8]))
    loose_s = rng.uniform(0.002, 0.012)
    level = rng.uniform(-15, 10)                   # this drummer plays softer or harder
    lead_in = 0.0 if rng.random() < 0.2 else rng.uniform(0.02, 0.5)

    n_bars = max(2, round(seconds / (4 * beat_s)))
    out: list[tuple[float, str, int, float]] = []  # (beat, role, velocity, choke_s)

    for bar in range(n_bars):
        b0 = 4.0 * bar
        steps = [k / div for k in range(4 * div)]
        pause = rng.random() < 0.06
        is_fill = (bar % fill_every == fill_every - 1) and bar < n_bars - 1
        fill_len = float(rng.choice([1.0, 2.0, 4.0], p=[0.5, 0.4, 0.1])) if is_fill else 0.0
        groove_end = 4.0 - fill_len
        # timekeeper
        for k, s in enumerate(steps):
            if s >= groove_end or k % keep_every:
                continue
            accent = s == int(s)
            if keeper == "pedal_ride":
                out.append((b0 + s, "ride", _vel(rng, level + (95 if accent else 75)), 0.0))
                if s in (1.0, 3.0):
                    out.append((b0 + s, "hh_pedal", _vel(rng, level + 70), 0.0))
                continue
            role = str(keeper)
            if role == "hh_closed" and not accent and rng.random() < p_open:
                role = "hh_open"
            out.append((b0 + s, role, _vel(rng, level + (95 if accent else 72)), 0.0))
        if pause and not is_fill:
            if rng.random() < 0.5:                 # a bar of silence: every tail rings out
                out = [x for x in out if not b0 <= x[0] < b0 + 4]
            continue
        # snare backbeat + ghosts
        backbeats = (2.0,) if half_time else (1.0, 3.0)
        for s in steps:
            if s >= groove_end:
                break
            if s in backbeats:
                out.append((b0 + s, "snare", _vel(rng, level + 110), 0.0))
                if rng.random() < 0.05:            # flam on the backbeat
                    out.append((b0 + s - FLAM_GAP_S / beat_s, "snare", _vel(rng, 42), 0.0))
            elif rng.random() < p_ghost:
                out.append((b0 + s, "snare", _vel(rng, 30, 7), 0.0))
        # kick
        for s in steps:
            if s >= groove_end:
                break
            if s == 0 or (s == 2.0 and not half_time) or rng.random() < p_kick:
                if s not in backbeats or rng.random() < 0.3:
                    out.append((b0 + s, "kick", _vel(rng, level + (112 if s == 0 else 98)), 0.0))
        if double_kick and rng.random() < 0.5:     # a run of 16th kicks over beats 3-4
            out += [(b0 + 2.0 + k / 4, "kick", _vel(rng, level + 95), 0.0)
                    for k in range(8) if 2.0 + k / 4 < groove_end]
        # fill
        if is_fill:
            out += [(b0 + b, r, v, 0.0) for b, r, v in _fill(rng, groove_end, fill_len, bpm, level)]
        # crash on the downbeat of a phrase (and after every fill)
        if bar == 0 or bar % fill_every == 0 or rng.random() < 0.05:
            out = [x for x in out if not (x[0] == b0 and x[1] in ("hh_closed", "ride",
                                                                   "hh_open", "ride_bell"))]
            choke = float(rng.uniform(0.08, 0.3)) if rng.random() < p_choke else 0.0
            out.append((b0, "crash", _vel(rng, level + 112), choke))
            if not any(x[0] == b0 and x[1] == "kick" for x in out):
                out.append((b0, "kick", _vel(rng, level + 112), 0.0))

    notes = []
    for b, r, v, choke in out:
        t = lead_in + b * beat_s + (rng.normal(0, loose_s) if b > 0 else 0.0)
        notes.append(Note(max(0.0, t), r, v, choke))
    notes.sort(key=lambda x: (x.time_s, x.role))
    return notes


def _fill(rng, start: float, length: float, bpm: float, level: float
          ) -> list[tuple[float, str, int]]:
    """A fill over [start, start + length) beats of the bar."""
    kind = rng.choice(["toms", "roll", "flams", "tom_run", "triplets"])
    if kind in ("toms", "roll", "flams"):
        return [(b, r, int(np.clip(v + level, 1, 127)))
                for b, r, v in fill(str(kind), start, length, bpm, rng)]
    toms = ["tom_hi", "tom_mid", "tom_low"]
    n: list[tuple[float, str, int]] = []
    div = 3 if kind == "triplets" else (4 if bpm <= 160 else 2)
    for k in range(round(length * div)):
        b = start + k / div
        if kind == "triplets" and k % 3 == 2:
            n.append((b, "kick", _vel(rng, level + 100)))
        else:
            n.append((b, str(rng.choice(toms + ["snare"], p=[0.3, 0.3, 0.3, 0.1])),
                      _vel(rng, level + 100)))
    return n
