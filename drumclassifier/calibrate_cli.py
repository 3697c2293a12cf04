"""`drumclassifier calibrate`: teach the model one drummer's kit, save a kit profile.

Offline for now: `--from-file` (a recording of the pieces played in order, the hits found
by the live onset detector) or `--from-file`'s sibling `--from-folder` (one sub-folder of
one-shots per piece). The live guided session (`--device`) is not built yet.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .classify_cli import add_model_args

EPILOG = """examples:
  drumclassifier calibrate --from-file take.wav --hits-per-piece 8 --out my.kit \\
      --pieces "kick,snare,hihat,hihat--open hat,toms--floor tom,cymbals--ride"
  drumclassifier calibrate --from-folder my-kit/ --notes "floor tom=41" --out my.kit
  drumclassifier stream song.wav --kit my.kit      (listen --kit my.kit works the same)

A piece is written CLASS or CLASS--piece name (CLASS: kick, snare, hihat, toms, cymbals);
its MIDI note is guessed from the name (General MIDI: "open" 46, "pedal" 44, "floor" 41,
"ride" 51, "bell" 53, ...) or set with --notes "name=note,...". With --from-file, play
each piece --hits-per-piece times, softly to hard, and leave a pause (a second or more)
before the next piece: the hits are split into pieces at the longest pauses.
Every piece of the kit must be taught: a piece left out is heard as another."""

CLIP_DB = -0.1       # a hit peaking at or above this is reported as clipped
QUIET_DB = -40.0     # a hit peaking below this is reported as too quiet


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-file", metavar="RECORDING",
                     help="a recording of the pieces played in --pieces order")
    src.add_argument("--from-folder", metavar="DIR",
                     help="one sub-folder per piece (CLASS or CLASS--piece name), "
                          "one hit per audio file")
    p.add_argument("--pieces", metavar="LIST",
                   help='with --from-file: the pieces in the order played, comma-separated '
                        '(e.g. "kick,snare,hihat,toms--floor tom")')
    p.add_argument("--hits-per-piece", type=int, default=8, metavar="N",
                   help="with --from-file: hits played per piece (default 8)")
    p.add_argument("--notes", action="append", default=[], metavar="PIECE=NOTE,...",
                   help="MIDI note per piece name (repeatable or comma-separated)")
    p.add_argument("-o", "--out", required=True, metavar="FILE.kit",
                   help="where the kit profile is written (JSON)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--context-ms", type=float, metavar="X",
                   help="the live context the profile is checked at (default: the real-time "
                        "config's, 20)")
    p.add_argument("--augment", type=int, default=20, metavar="N",
                   help="augmented copies of each hit for fitting (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rt-config", metavar="FILE",
                   help="real-time config YAML (onset detector settings, context)")
    add_model_args(p)


def _notes(specs: list[str]) -> dict[str, int]:
    from .errors import DrumClassifierError
    out = {}
    for spec in specs:
        for part in spec.split(","):
            if not part.strip():
                continue
            name, eq, note = part.rpartition("=")
            try:
                n = int(note)
            except ValueError:
                n = -1
            if not eq or not name.strip() or not 0 <= n <= 127:
                raise DrumClassifierError(f"--notes {part!r}: write piece name=MIDI note 0-127")
            out[name.strip().lower()] = n
    return out


def _trim_lead(x, rel_db: float = -40.0, keep: int = 22):
    """Drop leading near-silence of an [n, ch] one-shot: from `keep` samples before the
    first sample within rel_db of its peak."""
    import numpy as np
    a = np.abs(x).max(axis=1)
    if not len(a) or a.max() <= 0:
        return x
    first = int(np.argmax(a >= a.max() * 10 ** (rel_db / 20)))
    return x[max(0, first - keep):]


def hits_from_folder(folder: Path, labels, model_rate: int, analysis_s: float):
    """-> (pieces as (name, label), hits [(piece index, [n, ch] array, rate, source)])."""
    from . import audio
    from .errors import DrumClassifierError
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
            hits.append((len(pieces) - 1, _trim_lead(data), rate, audio.display_path(f)))
    if len(pieces) < 2:
        raise DrumClassifierError(f"{folder}: needs at least two sub-folders of hits, named "
                                  "CLASS or CLASS--piece name")
    return pieces, hits


def split_by_pauses(onsets: list[int], n_groups: int, per_group: int):
    """Onset positions (sorted) -> group index per onset, and a warning or None.

    Exactly n_groups * per_group onsets: split by count. Otherwise: at the n_groups - 1
    longest pauses between onsets (the drummer pauses between pieces)."""
    import numpy as np
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


def hits_from_recording(path: Path, piece_specs: list[tuple[str, str]], per_piece: int, cfg,
                        max_hit_s: float = 1.0):
    from realtime.onset import OnsetDetector

    from . import audio
    from .errors import DrumClassifierError
    data, rate = audio.read(path, 3600.0)
    mono = data.mean(axis=1)
    onsets = [o.sample for o in OnsetDetector(rate, cfg.onset).process(mono)]
    name = audio.display_path(path)
    if len(onsets) < len(piece_specs):
        raise DrumClassifierError(
            f"{name}: heard {len(onsets)} hit(s) for {len(piece_specs)} pieces; record each "
            f"piece {per_piece} times with a pause before the next piece")
    group, warn = split_by_pauses(onsets, len(piece_specs), per_piece)
    hits = []
    for i, (o, g) in enumerate(zip(onsets, group)):
        end = min(o + int(max_hit_s * rate), onsets[i + 1] if i + 1 < len(onsets) else len(data))
        hits.append((g, data[o:end], rate, f"{o / rate:.3f} s"))
    return hits, warn


def run(args) -> int:
    import numpy as np
    import torch

    from realtime.config import load_realtime_config

    from .classifier import DrumClassifier
    from .errors import DrumClassifierError
    from .kit import Piece, fit_profile, guess_note, parse_piece, peak_db

    out = Path(args.out)
    if out.exists() and not args.force:
        raise DrumClassifierError(f"{out} exists; use --force to overwrite")
    if args.augment < 1:
        raise DrumClassifierError("--augment must be at least 1")
    notes = _notes(args.notes)
    cfg = load_realtime_config(args.rt_config)
    live_ms = args.context_ms or cfg.slicer.context_ms
    clf = DrumClassifier(args.weights, args.config, args.device)
    labels = clf.labels
    warnings = []
    if args.from_folder:
        if args.pieces:
            raise DrumClassifierError("--pieces is for --from-file; with --from-folder the "
                                      "sub-folder names are the pieces")
        specs, raw = hits_from_folder(Path(args.from_folder), labels, clf.cfg.sample_rate_hz,
                                      clf.cfg.analysis_s)
    else:
        if not args.pieces:
            raise DrumClassifierError('--from-file needs --pieces "kick,snare,..." in the '
                                      "order they were played")
        if args.hits_per_piece < 1:
            raise DrumClassifierError("--hits-per-piece must be at least 1")
        specs = [parse_piece(s, labels) for s in args.pieces.split(",") if s.strip()]
        if len({n for n, _ in specs}) != len(specs):
            raise DrumClassifierError("--pieces: each piece name must be unique "
                                      "(name repeats as CLASS--name, e.g. toms--floor tom)")
        raw, warn = hits_from_recording(Path(args.from_file), specs, args.hits_per_piece, cfg)
        if warn:
            warnings.append(warn)
    unknown = set(notes) - {n for n, _ in specs}
    if unknown:
        raise DrumClassifierError(f"--notes names unknown piece(s): {', '.join(sorted(unknown))}")
    pieces = [Piece(n, lab, notes.get(n, guess_note(n, lab))) for n, lab in specs]

    # what was heard: per piece, count and levels over the live context; clipped/quiet hits
    hits, which = [], []
    print(f"heard (levels: peak dBFS over the first {live_ms:g} ms):", file=sys.stderr)
    for i, pc in enumerate(pieces):
        mine = [(x, r, src) for g, x, r, src in raw if g == i]
        levels, flags = [], []
        for x, r, src in mine:
            w = clf.prepare(torch.from_numpy(np.ascontiguousarray(x.T)), r, src)
            hits.append(w)
            which.append(i)
            raw_peak = float(np.abs(x).max()) if len(x) else 0.0
            lev = peak_db(w, int(round(live_ms * clf.cfg.sample_rate_hz / 1000)))
            levels.append(lev)
            if 20 * np.log10(max(raw_peak, 1e-10)) >= CLIP_DB:
                flags.append(f"clipped hit at {src}")
            elif lev < QUIET_DB:
                flags.append(f"too quiet hit ({lev:.1f} dB) at {src}")
        lv = (f"softest {min(levels):6.1f}  hardest {max(levels):6.1f}" if levels else "")
        print(f"  {pc.name:<16s} {pc.label:<8s} note {pc.note:3d}  {len(mine):3d} hits  {lv}",
              file=sys.stderr)
        if args.from_file and len(mine) != args.hits_per_piece:
            flags.append(f"{len(mine)} hits heard, {args.hits_per_piece} expected")
        if len(mine) < 3:
            flags.append("fewer than 3 hits: teach it more for a reliable profile")
        for f in flags[:6]:
            warnings.append(f"{pc.name}: {f}")
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    prof = fit_profile(clf, hits, which, pieces, augment=args.augment, live_context_ms=live_ms,
                       seed=args.seed)
    f = prof.fit
    if f["cv_folds"]:
        print(f"cross-validated accuracy at {live_ms:g} ms ({f['cv_folds']}-fold over hits): "
              f"{f['cv_accuracy']:.2f}", file=sys.stderr)
        for pc in prof.pieces:
            mark = "  <- often confused: re-take it, or play it more varied" \
                if pc.cv_accuracy < 0.8 else ""
            print(f"  {pc.name:<16s} {pc.cv_accuracy:.2f}{mark}", file=sys.stderr)
    else:
        print("no cross-validation: a piece has a single hit", file=sys.stderr)
    prof.save(out, overwrite=args.force)
    print(f"kit profile: {out} ({len(pieces)} pieces, {len(hits)} hits, fitted in "
          f"{f['seconds']:.1f} s)", file=sys.stderr)
    return 0
