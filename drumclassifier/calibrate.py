"""Calibration without the live path: the kit's pieces, what was heard, the fit, the file.

`drumclassifier calibrate` (realtime/calibrate_cli.py) hears hits three ways: a guided
live session and a recording, both through the live onset detector and slicer
(realtime/calibrate.py), or folders of one-shots (hits_from_folder, here). Whatever the
way, the hits meet the code here:

  - pieces: CLASS or CLASS--piece name, MIDI notes from --notes or guessed from the name
    (resolve_pieces, parse_notes, parse_added_piece);
  - what was heard: per hit its level over the live context, warnings for clipped,
    too-quiet or too few hits (check_hits);
  - a recording's hits split into pieces at the drummer's pauses (split_by_pauses);
  - the fit, with progress and its cross-validated accuracy per piece (fit_and_report),
    and the saved profile checked by loading it back as `listen --kit` does (save_profile).
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .errors import DrumClassifierError

CLIP_DB = -0.1        # a hit peaking at or above this (dBFS) is reported as clipped
QUIET_DB = -40.0      # a hit peaking below this over the live context is reported as too quiet
MIN_HITS = 3          # fewer hits per piece: the profile is unreliable (warned)
MIN_SPAN_DB = 6.0     # softest to hardest narrower than this: the velocity range is not learnt


# ---- pieces and notes ----------------------------------------------------------------------
def midi_note(text: str, what: str) -> int:
    """A MIDI note 0-127 from text; `what` names it in the error."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= 127:
        raise DrumClassifierError(f"{what}: write piece name=MIDI note 0-127")
    return n


def parse_notes(specs: list[str]) -> dict[str, int]:
    """--notes "name=note,..." (repeatable) -> {lower-case piece name: note}."""
    out = {}
    for spec in specs:
        for part in spec.split(","):
            if not part.strip():
                continue
            name, eq, note = part.rpartition("=")
            if not eq or not name.strip():
                raise DrumClassifierError(f"--notes {part!r}: write piece name=MIDI note 0-127")
            out[name.strip().lower()] = midi_note(note, f"--notes {part!r}")
    return out


def resolve_pieces(specs: list[str], labels, notes: dict[str, int]) -> list[tuple[str, str, int]]:
    """CLASS or CLASS--name specs -> unique (name, label, MIDI note), notes from --notes
    (by name, any case) or guessed from the name."""
    from .kit import guess_note, parse_piece
    out = [parse_piece(s, labels) for s in specs if s.strip()]
    names = [n.lower() for n, _ in out]
    if len(set(names)) != len(names):
        raise DrumClassifierError("--pieces: each piece name must be unique "
                                  "(name repeats as CLASS--name, e.g. toms--floor tom)")
    unknown = set(notes) - set(names)
    if unknown:
        raise DrumClassifierError(f"--notes names unknown piece(s): {', '.join(sorted(unknown))}")
    return [(n, lab, notes.get(n.lower(), guess_note(n, lab))) for n, lab in out]


def parse_added_piece(spec: str, labels) -> tuple[str, str, int]:
    """A piece typed during the session: CLASS--name[=note] -> (name, label, note)."""
    from .kit import guess_note, parse_piece
    body, eq, note = spec.rpartition("=")
    name, label = parse_piece(body if eq else spec, labels)
    return name, label, (midi_note(note.strip(), f"{spec.strip()!r}") if eq
                         else guess_note(name, label))


# ---- what was heard ------------------------------------------------------------------------
def level_db(audio: np.ndarray, samples: int | None = None) -> float:
    """Peak level (dBFS) of [n, channels] audio, over its first `samples` (all if None)."""
    a = audio[:samples] if samples is not None else audio
    peak = float(np.abs(a).max()) if a.size else 0.0
    return 20 * math.log10(max(peak, 1e-10))


def check_hits(hits: Sequence[np.ndarray], sample_rate_hz: int | Sequence[int], live_ms: float,
               where: Sequence[str], expected: int | None = None, from_input: bool = True
               ) -> tuple[list[float], list[str]]:
    """What was heard of one piece: each hit's level and the warnings to show.

    Args:
        hits: the piece's hits, [n, channels] each from its onset, at sample_rate_hz (one
            rate, or one per hit: one-shot files differ).
        live_ms: the level is the peak over this much audio after the onset, as the live
            slicer measures a hit's velocity.
        where: a name per hit for the warnings ("hit 3", "12.345 s").
        expected: the hits asked for; a different count is warned.
        from_input: the hits come from the input device now (advice: the input gain, a
            re-take); else from files, whose level is what it is.
    Returns (levels in dBFS, warnings).
    """
    rates = [sample_rate_hz] * len(hits) if isinstance(sample_rate_hz, int) else sample_rate_hz
    levels, flags = [], []
    for x, rate, src in zip(hits, rates, where):
        lev = level_db(x, max(1, int(round(live_ms * rate / 1000))))
        levels.append(lev)
        if level_db(x) >= CLIP_DB:
            flags.append(f"clipped hit at {src}: lower the input gain and re-take" if from_input
                         else f"clipped hit at {src}: the file's audio reaches full scale "
                              "there (the profile learns the distortion)")
        elif lev < QUIET_DB:
            flags.append(f"too quiet hit ({lev:.1f} dB) at {src}: " + (
                "raise the input gain or move the mic closer" if from_input
                else f"under {QUIET_DB:g} dBFS in the file"))
    if expected is not None and len(hits) != expected:
        flags.append(f"{len(hits)} hits heard, {expected} expected")
    if len(hits) < MIN_HITS:
        flags.append(f"fewer than {MIN_HITS} hits: teach it more for a reliable profile")
    elif max(levels) - min(levels) < MIN_SPAN_DB:
        flags.append(f"levels span only {max(levels) - min(levels):.1f} dB: play softly to "
                     "hard so the velocity range is learnt")
    return levels, flags


def split_by_pauses(onsets: list[int], n_groups: int, per_group: int):
    """Onset positions (sorted) -> group index per onset, and a warning or None.

    Exactly n_groups * per_group onsets: split by count. Otherwise: at the n_groups - 1
    longest pauses between onsets (the drummer pauses between pieces)."""
    n = len(onsets)
    if n == n_groups * per_group:
        return [i // per_group for i in range(n)], None
    gaps = np.diff(onsets)
    cut = sorted(np.argsort(gaps)[::-1][:n_groups - 1].tolist())
    group, g = [], 0
    for i in range(n):
        group.append(g)
        if g < len(cut) and i == cut[g]:
            g += 1
    warn = (f"heard {n} hits where {n_groups} x {per_group} = {n_groups * per_group} were "
            f"expected; split into pieces at the {n_groups - 1} longest pauses: check the "
            "counts below")
    return group, warn


# ---- one-shot folders ----------------------------------------------------------------------
def trim_lead(x, rel_db: float = -40.0, keep: int = 22):
    """Drop leading near-silence of an [n, ch] one-shot: from `keep` samples before the
    first sample within rel_db of its peak."""
    a = np.abs(x).max(axis=1)
    if not len(a) or a.max() <= 0:
        return x
    first = int(np.argmax(a >= a.max() * 10 ** (rel_db / 20)))
    return x[max(0, first - keep):]


def hits_from_folder(folder: Path, labels, analysis_s: float):
    """-> (pieces as (name, label), hits [(piece index, [n, ch] array, rate, source)])."""
    from . import audio
    from .kit import parse_piece
    if not folder.is_dir():
        raise DrumClassifierError(f"{folder}: not a folder")
    pieces, hits = [], []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        name, label = parse_piece(sub.name, labels)
        if any(n == name for n, _ in pieces):
            raise DrumClassifierError(f"{sub}: piece name {name!r} used twice")
        files = audio.find_audio_files([sub], recursive=True)
        if not files:
            print(f"note: {sub.name}: no audio files, skipped", file=sys.stderr)
            continue
        pieces.append((name, label))
        for f in files:
            data, rate = audio.read(f, analysis_s)
            hits.append((len(pieces) - 1, trim_lead(data), rate, audio.display_path(f)))
    if len(pieces) < 2:
        raise DrumClassifierError(f"{folder}: needs at least two sub-folders of hits, named "
                                  "CLASS or CLASS--piece name")
    return pieces, hits


# ---- fit and save --------------------------------------------------------------------------
def fit_and_report(clf, pieces, raw, live_ms: float, say: Callable[[str], None],
                   augment: int | None = None, seed: int = 0, progress: bool = True,
                   played=None, cache=None):
    """Hits -> a fitted KitProfile, its cross-validated accuracy per piece said.

    pieces: [Piece]; raw: [(piece index, [n, ch] audio from the onset, rate, where)].
    progress: a progress bar on stderr while fitting (it takes seconds to a minute).
    played: a labelled play-along take (kit.PlayedTake) fitted with the hits, or None.
    cache: a kit.FitCache kept between the fits of one session (fit_profile).
    """
    import torch
    from tqdm import tqdm

    from .kit import fit_profile
    hits = [clf.prepare(torch.from_numpy(np.ascontiguousarray(x.T)), r, src)
            for _, x, r, src in raw]
    say(f"fitting the kit profile: {len(pieces)} pieces, {len(hits)} hits"
        + (f" and {len(played.onsets)} onsets of the play-along groove" if played else "")
        + "...")
    # one thread: the embedding of short clips and the head's L-BFGS are many small ops that
    # OpenMP hand-offs slow down (measured, 40 hits on 2 busy cores: 80 s with 2 threads,
    # 6-11 s with 1, and a tenth of the CPU time); the embedding runs one such call per
    # core at once (kit.embed_batched)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    bar = tqdm(desc="fitting", unit="step", file=sys.stderr, disable=not progress,
               dynamic_ncols=True, leave=False)

    def step(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)
    try:
        prof = fit_profile(clf, hits, [g for g, *_ in raw], pieces, augment=augment,
                           live_context_ms=live_ms, seed=seed, progress=step, played=played,
                           cache=cache)
    finally:
        bar.close()
        torch.set_num_threads(threads)
    f = prof.fit
    if f["cv_folds"]:
        say(f"cross-validated accuracy at {live_ms:g} ms ({f['cv_folds']}-fold over hits): "
            f"{f['cv_accuracy']:.2f}  (fitted in {f['seconds']:.1f} s)")
        for i, pc in enumerate(prof.pieces):
            mark = "  <- often confused: re-take it, or play it more varied" \
                if pc.cv_accuracy < 0.8 else ""
            say(f"  {i + 1:2d} {pc.name:<16s} {pc.cv_accuracy:.2f}{mark}")
    else:
        say(f"no cross-validation: a piece has a single hit (fitted in {f['seconds']:.1f} s)")
    return prof


def save_profile(prof, out: Path, force: bool, clf, say: Callable[[str], None]) -> float:
    """Save; load it back as `listen --kit` does (weights checksum included) and return
    that load time (s)."""
    import time

    from .kit import KitProfile, file_sha256
    prof.save(out, overwrite=force)
    t0 = time.perf_counter()
    KitProfile.load(out, file_sha256(clf.weights_path), clf.labels)
    load_s = time.perf_counter() - t0
    say(f"kit profile: {out} ({len(prof.pieces)} pieces, "
        f"{sum(p.n_hits for p in prof.pieces)} hits)")
    return load_s
