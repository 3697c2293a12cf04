"""The play-along groove: eight bars the drummer plays after teaching the pieces one by one.

One-shots teach what each piece sounds like alone; a groove is pieces struck together
(kick + hihat, ride + snare, crash + kick) over the tails of the last ones. The kit
profile's fit synthesises such overlaps from the taught hits (kit.groove_variants), but a
hit of the real kit over the real tails is what the live path will hear. So the drummer
also plays a short prescribed groove (`calibrate ... --groove take.wav`): every onset the
live detector finds in it is labelled with the pieces the pattern puts there, and those
onsets join the fit (kit.played_variants).

The pattern (GROOVE, 8 bars of 4/4, eighth notes): bars 1-2 closed hihat, 3-4 ride, 5
crash on the one and hihat, 6 open hihat on the off-beats of 2 and 4, 7 a tom fill from
the highest tom down on beats 3-4, 8 crash on the one; kick on 1 and 3 (the "and" of 3 in
even bars), snare on 2 and 4, ghost notes on the snare in the ride bars. Dynamics are
part of it: the hihat and the ride loud on the beat and soft in between, as most drummers
play eighths, the kick loud on the one and softer after, so the soft strokes a groove is
full of are in the take too (a take played all loud taught Millo ML2's profile its loud
hihat only, and its soft hihat was then sent as the crash). `tab()` prints it with the
kit's own piece names. A kit without a ride plays the crash there, without toms the
snare, and so on (ROLE_FALLBACK).

Labelling a take (label_take): the grid is placed on the take, not assumed: each of the
first onsets is tried as the first beat (a count-in or a stray noise before it is
ignored) at tempos within 8 % of --groove-bpm, then the start and the tempo are fitted to
the onsets near grid positions (least squares), so the drummer's tempo may be a few
percent off and no click has to be in the recording. An onset within MATCH_S of a grid
position gets that position's pieces (the nearest one, if several are); an onset near none is a
detector onset with no new hit (a tail, a double trigger): it is taught as "no piece", as
the live path must reject it. A second onset near an already matched grid position (the
hand and the foot of one beat heard apart) is left out: it is neither.

After labelling, the take's dynamics are checked (dynamics_db): the soft strokes' level
against the loud ones' at grid positions where the same pieces are struck; a take whose
soft strokes are not DYNAMICS_MIN_DB softer gets a warning (the fit still uses it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from drumclassifier.errors import DrumClassifierError

from .config import OnsetConfig

BARS, BEATS_PER_BAR = 8, 4
# an onset this close to a grid position belongs to it (s); also at most a quarter of an
# eighth note at fast tempos (see label_take)
MATCH_S = 0.050
# a take longer than this is not read further (8 bars at 40 BPM are 48 s)
MAX_TAKE_S = 120.0
# fewer grid positions heard than this share: not the play-along groove (wrong tempo,
# another pattern, a take of single hits)
MIN_MATCHED = 0.6

# role -> (class, words that name such a piece, words that name another piece of the class)
ROLES = {
    "kick": ("kick", (), ()),
    "snare": ("snare", (), ("rim", "side", "cross", "stick")),
    "hihat": ("hihat", ("closed", "hat", "hh"), ("open", "pedal", "foot")),
    "ride": ("cymbals", ("ride",), ("bell",)),
    "crash": ("cymbals", ("crash", "splash", "china"), ("bell",)),
    "high tom": ("toms", ("high", "hi", "rack", "1"), ("floor",)),
    "mid tom": ("toms", ("mid", "2"), ("floor",)),
    "floor tom": ("toms", ("floor", "low", "lo", "3"), ()),
    "open hihat": ("hihat", ("open",), ()),
}
# a role the kit has no piece for is played on the first of these it has
ROLE_FALLBACK = {
    "open hihat": ("hihat",), "ride": ("crash", "hihat"), "crash": ("ride",),
    "high tom": ("mid tom", "floor tom", "snare"), "mid tom": ("high tom", "floor tom", "snare"),
    "floor tom": ("mid tom", "high tom", "snare"), "hihat": ("ride",),
}


class GrooveNote(NamedTuple):
    beat: float        # from the first downbeat
    role: str          # a key of ROLES
    velocity: int      # MIDI 1-127: how hard (the tab's X / x / g, the guide's notes)


# the tab's marks: velocity >= LOUD is X, below SOFT g (a ghost note), else x
LOUD, SOFT = 100, 60


def _groove() -> list[GrooveNote]:
    """The 8 bars, sorted by beat."""
    notes = []
    for bar in range(BARS):
        b0 = bar * BEATS_PER_BAR
        keeper = "ride" if bar in (2, 3) else "hihat"
        for e in range(8):                                  # eighth notes
            if bar == 6 and e >= 4:
                continue                                    # the fill's half bar
            role = "open hihat" if bar == 5 and e in (3, 7) else keeper
            # loud on the beat, soft on the "and" (the open hihat is always full)
            vel = 105 if e % 2 == 0 or role == "open hihat" else 70
            notes.append(GrooveNote(b0 + e / 2, role, vel))
        notes += [GrooveNote(b0, "kick", 110),                # loud on the one, softer after
                  GrooveNote(b0 + (2.5 if bar % 2 else 2), "kick", 80),
                  GrooveNote(b0 + 1, "snare", 110)]
        if bar != 6:
            notes.append(GrooveNote(b0 + 3, "snare", 110))
        if bar in (2, 3):                                   # ghost notes under the ride
            notes += [GrooveNote(b0 + 1.5, "snare", 45), GrooveNote(b0 + 3.5, "snare", 45)]
        if bar in (4, 7):
            notes.append(GrooveNote(b0, "crash", 115))
        if bar == 6:                                        # sixteenths, high to floor
            fill = ["high tom", "high tom", "mid tom", "mid tom", "floor tom", "floor tom",
                    "snare", "snare"]
            notes += [GrooveNote(b0 + 2 + k / 4, r, 100) for k, r in enumerate(fill)]
    return sorted(notes)


GROOVE = _groove()


def _names(name: str, words) -> bool:
    low = name.lower()
    return any(w in low.split() or (len(w) > 2 and w in low) for w in words)


def parse_roles(spec: str | None) -> dict[str, str]:
    """--groove-pieces "kick=bass drum 2,ride=ride 20" -> {role: piece name}."""
    out = {}
    for item in (spec or "").split(","):
        if not item.strip():
            continue
        role, sep, piece = item.partition("=")
        role = role.strip().lower()
        if not sep or role not in ROLES or not piece.strip():
            raise DrumClassifierError(
                f"--groove-pieces {item.strip()!r}: write ROLE=PIECE, ROLE one of "
                f"{', '.join(ROLES)}")
        out[role] = piece.strip()
    return out


def assign_roles(pieces, chosen: dict[str, str] | None = None) -> dict[str, int]:
    """The kit's pieces ([objects with .name, .label]) -> role -> index of the piece that
    plays it: the piece `chosen` names for the role (--groove-pieces), else a piece of
    the role's class named for it (an "open hat" plays the open hihat, a "floor tom" the
    floor tom), else the first piece of the class not yet playing a role (toms in taught
    order, high to low), else a fallback (ROLE_FALLBACK: a kit without a ride plays the
    crash there)."""
    out: dict[str, int] = {}
    names = [p.name.lower() for p in pieces]
    for role, piece in (chosen or {}).items():
        if piece.lower() not in names:
            raise DrumClassifierError(f"--groove-pieces: {role} = {piece!r} is not one of the "
                                      f"pieces ({', '.join(p.name for p in pieces)})")
        out[role] = names.index(piece.lower())
    taken: set[int] = set(out.values())

    def take(role: str, ok, avoid=None) -> None:
        label, _, avoid_words = ROLES[role]
        free = [i for i, p in enumerate(pieces) if p.label == label and i not in taken
                and ok(p) and not _names(p.name, avoid_words if avoid is None else avoid)]
        if free:
            out[role] = free[0]
            taken.add(free[0])
    for role, (_, words, _) in ROLES.items():          # named for the role
        if words and role not in out:
            take(role, lambda p, w=words: _names(p.name, w))
    for role in ROLES:                                  # the class's next piece
        if role not in out and role != "open hihat":
            take(role, lambda p: True)
    for role in ("kick", "snare", "hihat", "ride"):     # any piece of the class at all
        if role not in out:
            take(role, lambda p: True, avoid=())
    for role, alts in ROLE_FALLBACK.items():
        alt = next((a for a in alts if a in out), None)
        if role not in out and alt is not None:
            out[role] = out[alt]
    missing = [r for r in ("kick", "snare") if r not in out]
    if missing:
        raise DrumClassifierError(f"the play-along groove needs a {' and a '.join(missing)} "
                                  "among the pieces")
    return out


def tab(pieces, bpm: float, chosen: dict[str, str] | None = None) -> str:
    """What to play, as a drum tab with the kit's piece names (X loud, x soft, g a ghost
    note, o the open hihat)."""
    roles = assign_roles(pieces, chosen)
    lines = [f"play-along groove: {BARS} bars of 4/4 at {bpm:g} BPM (about "
             f"{BARS * BEATS_PER_BAR * 60 / bpm:.0f} s); start on the first beat, a click helps",
             "one character per sixteenth note, bars separated by |",
             "X loud, x soft, g very soft (a ghost note), o open hihat: play the dynamics "
             "too, the soft strokes teach the profile your groove's quiet notes"]
    rows: dict[int, list[str]] = {}
    for beat, role, vel in GROOVE:
        i = roles.get(role)
        if i is None:
            continue
        row = rows.setdefault(i, ["-"] * (BARS * BEATS_PER_BAR * 4))
        row[int(round(beat * 4))] = ("o" if role == "open hihat" else
                                     "X" if vel >= LOUD else "g" if vel < SOFT else "x")
    width = max(len(pieces[i].name) for i in rows)
    for i in sorted(rows, key=lambda i: min(n.beat for n in GROOVE if roles.get(n.role) == i)):
        cells = "".join(rows[i])
        bars = "|".join(cells[k:k + 16] for k in range(0, len(cells), 16))
        lines.append(f"{pieces[i].name:>{width}s} |{bars}|")
    rest = [p.name for i, p in enumerate(pieces) if i not in rows]
    if rest:
        lines.append(f"not in the groove (taught by their single hits only): {', '.join(rest)}")
    return "\n".join(lines)


# General MIDI's metronome notes (channel 10): a click on each beat, the bell on each bar's one
CLICK_NOTE, BELL_NOTE = 33, 34


@dataclass
class GuideNote:
    time_s: float
    note: int
    velocity: int
    label: str


def guide_notes(pieces, bpm: float, chosen: dict[str, str] | None = None) -> list[GuideNote]:
    """The groove to play along with (`calibrate --show-groove --groove-midi FILE`): one bar
    of clicks to count in, then the 8 bars with each piece's own MIDI note and a click on
    every beat; the groove's first beat at 4 beats."""
    roles = assign_roles(pieces, chosen)
    beat_s = 60.0 / bpm
    out = [GuideNote(b * beat_s, BELL_NOTE if b % BEATS_PER_BAR == 0 else CLICK_NOTE, 100,
                     "click") for b in range((BARS + 1) * BEATS_PER_BAR)]
    for beat, role, vel in GROOVE:
        if role in roles:
            p = pieces[roles[role]]
            out.append(GuideNote((BEATS_PER_BAR + beat) * beat_s, int(p.note), vel, p.label))
    return sorted(out, key=lambda n: (n.time_s, n.note))


@dataclass
class LabelledTake:
    onsets_s: np.ndarray     # [G] the onsets taught (s from the take's start)
    targets: np.ndarray      # [G, P] 1.0 where the pattern puts that piece at the onset
    matched: int             # grid positions with an onset near them
    positions: int           # grid positions in the pattern
    bpm: float               # the tempo the take was played at (fitted)
    start_s: float           # where the first downbeat is in the take
    left_out: int = 0        # onsets near a grid position another onset matched (flams)
    # [positions] index into onsets_s of the onset at each grid position, -1: none heard
    at_position: np.ndarray | None = None


def label_take(onsets_s: np.ndarray, n_pieces: int, roles: dict[str, int], bpm: float,
               name: str = "take") -> LabelledTake:
    """Onset times of a play-along take (s, ascending) -> every onset labelled with the
    pieces the groove puts there (see the module doc). Raises DrumClassifierError when
    fewer than MIN_MATCHED of the grid positions were heard near where the pattern puts
    them."""
    onsets_s = np.asarray(onsets_s, float)
    beats = np.array(sorted({n.beat for n in GROOVE if n.role in roles}))
    if bpm <= 0:
        raise DrumClassifierError(f"--groove-bpm must be positive, got {bpm:g}")
    if len(onsets_s) < len(beats) * MIN_MATCHED:
        raise DrumClassifierError(
            f"{name}: heard {len(onsets_s)} hits where the play-along groove has "
            f"{len(beats)}: play the whole groove (see the tab)")

    def nearest(start: float, spb: float, tol: float) -> np.ndarray:
        """[positions] index of the onset nearest each grid position, -1 beyond tol."""
        pred = start + beats * spb
        j = np.clip(np.searchsorted(onsets_s, pred), 1, len(onsets_s) - 1)
        j = np.where(np.abs(onsets_s[j - 1] - pred) < np.abs(onsets_s[j] - pred), j - 1, j)
        return np.where(np.abs(onsets_s[j] - pred) <= tol, j, -1)

    # coarse: each of the first onsets as the first beat (a count-in may come before it),
    # tempos within +-8 % of bpm; then start and tempo refitted to the matched onsets
    best = None
    for first in onsets_s[:8]:
        for spb in 60.0 / (bpm * np.linspace(0.92, 1.08, 33)):
            n = int((nearest(first, spb, spb / 8) >= 0).sum())
            if best is None or n > best[0]:
                best = (n, float(first), spb)
    _, start, spb = best
    for _ in range(3):
        j = nearest(start, spb, spb / 8)
        if (j >= 0).sum() >= 2:
            spb, start = np.polyfit(beats[j >= 0], onsets_s[j[j >= 0]], 1)
    tol = min(MATCH_S, spb / 8)
    j = nearest(start, spb, tol)
    matched = int((j >= 0).sum())
    if matched < MIN_MATCHED * len(beats):
        raise DrumClassifierError(
            f"{name}: only {matched} of the {len(beats)} beats of the play-along groove "
            f"were heard where the pattern puts them at about {bpm:g} BPM: play it as the "
            "tab shows (calibrate --show-groove), from its first beat, at --groove-bpm")
    targets = np.zeros((len(onsets_s), n_pieces), np.float32)
    for k, b in enumerate(beats):
        if j[k] >= 0:
            for n in GROOVE:
                if n.beat == b and n.role in roles:
                    targets[j[k], roles[n.role]] = 1.0
    # an onset near a grid position that another onset matched (hand and foot of one beat
    # heard apart: a flam) is neither that beat's pieces nor "no piece": left out
    near = np.abs(onsets_s[:, None] - (start + beats * spb)[None, :]).min(1) <= tol
    keep = ~near | np.isin(np.arange(len(onsets_s)), j[j >= 0])
    kept_index = np.cumsum(keep) - 1                 # onset index -> index among the kept
    return LabelledTake(onsets_s[keep], targets[keep], matched, len(beats), 60.0 / spb, start,
                        int((~keep).sum()), np.where(j >= 0, kept_index[j], -1))


# The soft strokes must be this much softer than the loud ones (dB, dynamics_db) for the
# take to count as played with its dynamics. Measured on the simulated drummer's takes of
# the 9 test and validation kits (bench.kit_grooves.play_along: the tab's velocities
# +-15 through each kit's own layers): 3.0-8.5 dB; the same takes played all at 100:
# -0.6..+0.6 dB
DYNAMICS_MIN_DB = 1.5


def dynamics_db(lab: LabelledTake, peaks_db: np.ndarray, roles: dict[str, int]) -> float | None:
    """How much softer the take's soft strokes (the tab's x and g) were than its loud ones
    (X), in dB: grid positions where the same pieces are struck (the hihat alone, ride +
    snare...) are compared, loud against soft, by the median peak level of their onsets
    (peaks_db [G], one per onset of lab); the differences are averaged, each weighted by
    the smaller of its two counts. None when no set of pieces was heard both ways."""
    beats = sorted({n.beat for n in GROOVE if n.role in roles})
    groups: dict[frozenset, tuple[list, list]] = {}
    for k, b in enumerate(beats):
        if lab.at_position is None or lab.at_position[k] < 0:
            continue
        notes = [n for n in GROOVE if n.beat == b and n.role in roles]
        loud = max(n.velocity for n in notes) >= LOUD
        key = frozenset(roles[n.role] for n in notes)
        groups.setdefault(key, ([], []))[0 if loud else 1].append(
            float(peaks_db[lab.at_position[k]]))
    diffs = [(np.median(lo) - np.median(so), min(len(lo), len(so)))
             for lo, so in groups.values() if lo and so]
    if not diffs:
        return None
    return float(np.average([d for d, _ in diffs], weights=[w for _, w in diffs]))


def onsets_of(data: np.ndarray, sample_rate_hz: int, onset_cfg: OnsetConfig | None = None
              ) -> np.ndarray:
    """A whole [n, channels] take -> its onset samples, as the live path detects them
    (calibrate.hits_in: one hit per onset)."""
    from .calibrate import hits_in
    return np.array([h.onset_sample for h in hits_in(data, sample_rate_hz, onset_cfg)], int)


@dataclass
class GrooveTake:
    """A play-along take as recorded, before it is labelled (pieces may still change)."""
    data: np.ndarray         # [n, channels] float32 at `rate`
    rate: int
    onsets: np.ndarray       # [G] onset samples, as the live path detects them
    name: str                # for messages


def read_take(path, onset_cfg: OnsetConfig | None = None) -> GrooveTake:
    """`calibrate --groove FILE`: a recording of the play-along groove and its onsets.
    Raises DrumClassifierError when the file cannot be read."""
    from drumclassifier import audio
    data, rate = audio.read(path, MAX_TAKE_S)
    return GrooveTake(data, rate, onsets_of(data, rate, onset_cfg), audio.display_path(path))


def take_from_hits(hits, rate: int, name: str) -> GrooveTake:
    """The hits of a live take (realtime.calibrate.TakeHit: each from its onset to the
    next, at most 1 s) -> the take's audio [n, channels] (silence where no hit rang)
    and its onsets."""
    if not hits:
        return GrooveTake(np.zeros((0, 1), np.float32), rate, np.zeros(0, int), name)
    end = max(h.onset_sample + len(h.audio) for h in hits)
    data = np.zeros((end, hits[0].audio.shape[1]), np.float32)
    for h in hits:
        data[h.onset_sample:h.onset_sample + len(h.audio)] = h.audio
    return GrooveTake(data, rate, np.array([h.onset_sample for h in hits], int), name)


def played_from(clf, take: GrooveTake, pieces, bpm: float, chosen: dict[str, str] | None = None,
                say=print):
    """A play-along take -> the labelled take for kit.fit_profile (its audio and onsets at
    the model rate), what was heard said in one line. Raises DrumClassifierError when the
    take is not the groove."""
    import torch

    from drumclassifier import audio
    from drumclassifier.config import LIVE_CONTEXT_MS
    from drumclassifier.kit import PlayedTake, peak_db
    roles = assign_roles(pieces, chosen)
    lab = label_take(np.asarray(take.onsets) / take.rate, len(pieces), roles, bpm, take.name)
    empty = int((lab.targets.sum(1) == 0).sum())
    say(f"{take.name}: {lab.matched} of the play-along groove's {lab.positions} beats heard, "
        f"played at {lab.bpm:.1f} BPM; {len(lab.onsets_s)} onsets taught, {empty} of them "
        "with no new hit (tails, double triggers: taught as nothing)"
        + (f"; {lab.left_out} left out (two onsets on one beat)" if lab.left_out else ""))
    # each onset's peak over the live context, as the slicer measures a hit's level
    live = max(1, int(LIVE_CONTEXT_MS * take.rate / 1000))
    data = torch.from_numpy(np.ascontiguousarray(take.data.T))        # [channels, n]
    peaks = np.array([peak_db(data[:, o:], live)
                      for o in np.round(lab.onsets_s * take.rate).astype(int)])
    soft = dynamics_db(lab, peaks, roles)
    if soft is not None and soft < DYNAMICS_MIN_DB:
        say(f"warning: {take.name}: the soft strokes (x, g) were only {soft:.1f} dB under the "
            "loud ones (X): play the dynamics the tab marks, the profile learns your "
            "groove's quiet notes from them")
    elif soft is not None:
        say(f"dynamics: the soft strokes {soft:.1f} dB under the loud ones")
    sr = clf.cfg.sample_rate_hz
    x = audio.prepare(data, take.rate, sr,
                      int(np.ceil(len(take.data) * sr / take.rate)) + 1, take.name)
    at = np.round(lab.onsets_s * sr).astype(int)
    keep = at < x.shape[-1]              # prepare cut trailing digital silence
    return PlayedTake(x, at[keep], torch.from_numpy(lab.targets[keep]))
