"""`drumclassifier calibrate`: teach the model one drummer's kit, save a kit profile.

Three ways in: `--device D`, the guided live session (drumclassifier/calibrate_live.py);
`--from-file` (a recording of the pieces played in order); `--from-folder` (one sub-folder
of one-shots per piece). The live session and `--from-file` hear hits with the same code
(drumclassifier/takes.py: the live onset detector and slicer); all three fit, report and
save the profile with the same code (fit_and_report, save_profile).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .classify_cli import add_model_args

EPILOG = """examples:
  drumclassifier calibrate -d "USB Audio" --out my.kit     (guided: the terminal says what to play)
  drumclassifier calibrate -d 3 --out my.kit --hits-per-piece 8 \\
      --pieces "kick,snare,hihat,hihat--open hat,toms--rack tom 1,toms--floor tom,cymbals--ride bell"
  drumclassifier calibrate --from-file take.wav --hits-per-piece 8 --out my.kit \\
      --pieces "kick,snare,hihat,hihat--open hat,toms--floor tom,cymbals--ride"
  drumclassifier calibrate --from-folder my-kit/ --notes "floor tom=41" --out my.kit
  drumclassifier stream song.wav --kit my.kit      (listen --kit my.kit works the same)

A piece is written CLASS or CLASS--piece name (CLASS: kick, snare, hihat, toms, cymbals);
its MIDI note is guessed from the name (General MIDI: "open" 46, "pedal" 44, "floor" 41,
"ride" 51, "bell" 53, ...) or set with --notes "name=note,...". With --device, each
piece is recorded in turn: press Enter, play it --hits-per-piece times softly to hard;
keep, re-take or skip it; after the fit, re-take a piece or add one (+ CLASS--name=note)
before saving. With --from-file, play
each piece --hits-per-piece times, softly to hard, and leave a pause (a second or more)
before the next piece: the hits are split into pieces at the longest pauses.
Every piece of the kit must be taught: a piece left out is heard as another."""

# the guided session's kit, in playing order (CLASS or CLASS--piece name); --pieces replaces it
DEFAULT_PIECES = ("kick", "snare", "hihat", "hihat--open hat", "hihat--pedal hat",
                  "toms--rack tom", "toms--floor tom", "cymbals--crash", "cymbals--ride")


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    add_model_args(p)
    # -d/--device is the AUDIO input, as for `listen`; --model-device does add_model_args'
    # -d/--device job. A group made after conflict_handler = "resolve" takes it, and takes
    # -d/--device off the model option.
    p.add_argument("--model-device", dest="device", metavar="DEV",
                   help="where the model runs: cpu, cuda, cuda:N (default: CUDA when available)")
    p.conflict_handler = "resolve"
    src = p.add_argument_group("what to learn from (one of)").add_mutually_exclusive_group(
        required=True)
    src.add_argument("-d", "--device", dest="audio_device", nargs="?", const="", metavar="D",
                     help="a guided live session on this input device: index or part of its "
                          "name (`drumclassifier listen --list-devices`); no D: the default")
    src.add_argument("--from-file", metavar="RECORDING",
                     help="a recording of the pieces played in --pieces order")
    src.add_argument("--from-folder", metavar="DIR",
                     help="one sub-folder per piece (CLASS or CLASS--piece name), "
                          "one hit per audio file")
    p.add_argument("--pieces", metavar="LIST",
                   help='the pieces in the order played, comma-separated (e.g. "kick,snare,'
                        'hihat,toms--floor tom"); with --device the default is '
                        + "\"" + ",".join(DEFAULT_PIECES) + "\"")
    p.add_argument("--hits-per-piece", type=int, default=8, metavar="N",
                   help="with --from-file/--device: hits played per piece (default 8)")
    p.add_argument("--take-seconds", type=float, default=30.0, metavar="S",
                   help="with --device: the longest take; it ends earlier when the hits "
                        "are heard or Enter is pressed (default 30)")
    p.add_argument("--notes", action="append", default=[], metavar="PIECE=NOTE,...",
                   help="MIDI note per piece name (repeatable or comma-separated)")
    p.add_argument("-o", "--out", required=True, metavar="FILE.kit",
                   help="where the kit profile is written (JSON)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--context-ms", type=float, metavar="X",
                   help="the live context the profile is checked at (default: the real-time "
                        "config's, 20)")
    p.add_argument("--augment", type=int, metavar="N",
                   help="augmented copies of each hit for fitting (default 120: fewer fit "
                        "faster and recognised slightly less on held-out kits)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rt-config", metavar="FILE",
                   help="real-time config YAML (audio input, onset detector, context)")


def _midi_note(text: str, what: str) -> int:
    from .errors import DrumClassifierError
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= 127:
        raise DrumClassifierError(f"{what}: write piece name=MIDI note 0-127")
    return n


def _notes(specs: list[str]) -> dict[str, int]:
    """--notes "name=note,..." (repeatable) -> {lower-case piece name: note}."""
    from .errors import DrumClassifierError
    out = {}
    for spec in specs:
        for part in spec.split(","):
            if not part.strip():
                continue
            name, eq, note = part.rpartition("=")
            if not eq or not name.strip():
                raise DrumClassifierError(f"--notes {part!r}: write piece name=MIDI note 0-127")
            out[name.strip().lower()] = _midi_note(note, f"--notes {part!r}")
    return out


def _pieces(specs: list[str], labels, notes: dict[str, int]) -> list[tuple[str, str, int]]:
    """CLASS or CLASS--name specs -> unique (name, label, MIDI note), notes from --notes
    (by name, any case) or guessed from the name."""
    from .errors import DrumClassifierError
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


def _added_piece(spec: str, labels) -> tuple[str, str, int]:
    """A piece typed during the session: CLASS--name[=note] -> (name, label, note)."""
    from .kit import guess_note, parse_piece
    body, eq, note = spec.rpartition("=")
    name, label = parse_piece(body if eq else spec, labels)
    return name, label, (_midi_note(note.strip(), f"{spec.strip()!r}") if eq
                         else guess_note(name, label))


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


def hits_from_recording(path: Path, n_pieces: int, per_piece: int, cfg):
    """A recording of the pieces in order -> ([(piece index, [n, ch] hit, rate, where)],
    warning or None): hits heard as the live session hears them (takes.hits_in), split
    into pieces at the pauses."""
    from . import audio
    from .errors import DrumClassifierError
    from .takes import hits_in
    data, rate = audio.read(path, 3600.0)
    found = hits_in(data, rate, cfg.onset)
    name = audio.display_path(path)
    if len(found) < n_pieces:
        raise DrumClassifierError(
            f"{name}: heard {len(found)} hit(s) for {n_pieces} pieces; record each "
            f"piece {per_piece} times with a pause before the next piece")
    group, warn = split_by_pauses([h.onset_sample for h in found], n_pieces, per_piece)
    return [(g, h.audio, rate, f"{h.onset_sample / rate:.3f} s")
            for h, g in zip(found, group)], warn


def fit_and_report(clf, pieces, raw, args, live_ms: float, say):
    """Hits -> a fitted KitProfile, its cross-validated accuracy per piece said.

    pieces: [Piece]; raw: [(piece index, [n, ch] audio from the onset, rate, where)].
    """
    import numpy as np
    import torch

    from .kit import fit_profile
    hits = [clf.prepare(torch.from_numpy(np.ascontiguousarray(x.T)), r, src)
            for _, x, r, src in raw]
    say(f"fitting the kit profile: {len(pieces)} pieces, {len(hits)} hits...")
    # one thread: the embedding of short clips and the head's L-BFGS are many small ops that
    # OpenMP hand-offs slow down (measured, 40 hits on 2 busy cores: 80 s with 2 threads,
    # 6-11 s with 1, and a tenth of the CPU time)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        prof = fit_profile(clf, hits, [g for g, *_ in raw], pieces, augment=args.augment,
                           live_context_ms=live_ms, seed=args.seed)
    finally:
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


def save_profile(prof, out: Path, force: bool, clf, say) -> float:
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


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args, prompter=None) -> int:
    """The command; `prompter` (calibrate_live.Prompter) replaces the terminal in tests."""
    from realtime.config import load_realtime_config

    from .classifier import DrumClassifier
    from .errors import DrumClassifierError
    from .kit import Piece
    from .takes import check_hits

    out = Path(args.out)
    if out.exists() and not args.force:       # refused before any audio is opened
        raise DrumClassifierError(f"{out} exists; use --force to overwrite")
    if args.augment is not None and args.augment < 1:
        raise DrumClassifierError("--augment must be at least 1")
    if args.hits_per_piece < 1:
        raise DrumClassifierError("--hits-per-piece must be at least 1")
    notes = _notes(args.notes)
    cfg = load_realtime_config(args.rt_config)
    live_ms = args.context_ms or cfg.slicer.context_ms
    if args.audio_device is not None:
        return run_live(args, cfg, notes, out, live_ms, prompter)
    clf = DrumClassifier(args.weights, args.config, args.device)
    labels = clf.labels
    warnings = []
    if args.from_folder:
        if args.pieces:
            raise DrumClassifierError("--pieces is for --from-file and --device; with "
                                      "--from-folder the sub-folder names are the pieces")
        specs, raw = hits_from_folder(Path(args.from_folder), labels, clf.cfg.sample_rate_hz,
                                      clf.cfg.analysis_s)
        pieces = _pieces([f"{lab}--{n}" for n, lab in specs], labels, notes)
    else:
        if not args.pieces:
            raise DrumClassifierError('--from-file needs --pieces "kick,snare,..." in the '
                                      "order they were played")
        pieces = _pieces(args.pieces.split(","), labels, notes)
        raw, warn = hits_from_recording(Path(args.from_file), len(pieces), args.hits_per_piece,
                                        cfg)
        if warn:
            warnings.append(warn)
    pieces = [Piece(n, lab, note) for n, lab, note in pieces]

    # what was heard: per piece, count and levels over the live context; clipped/quiet hits
    _say(f"heard (levels: peak dBFS over the first {live_ms:g} ms):")
    for i, pc in enumerate(pieces):
        mine = [(x, r, src) for g, x, r, src in raw if g == i]
        levels, flags = check_hits([x for x, _, _ in mine], [r for _, r, _ in mine],
                                   live_ms, [src for *_, src in mine],
                                   args.hits_per_piece if args.from_file else None)
        lv = (f"softest {min(levels):6.1f}  hardest {max(levels):6.1f}" if levels else "")
        _say(f"  {pc.name:<16s} {pc.label:<8s} note {pc.note:3d}  {len(mine):3d} hits  {lv}")
        warnings += [f"{pc.name}: {f}" for f in flags[:6]]
    for w in warnings:
        _say(f"warning: {w}")
    prof = fit_and_report(clf, pieces, raw, args, live_ms, _say)
    load_s = save_profile(prof, out, args.force, clf, _say)
    _say(f"time: fitting {prof.fit['seconds']:.1f} s, profile load {load_s * 1000:.0f} ms")
    return 0


def run_live(args, cfg, notes: dict[str, int], out: Path, live_ms: float, prompter=None) -> int:
    """The guided session on an input device (drumclassifier/calibrate_live.py)."""
    from realtime.sources import DeviceSource, import_sounddevice, resolve_device

    from .calibrate_live import GuidedSession, Prompter, record_take
    from .classifier import DrumClassifier
    from .kit import Piece

    if args.take_seconds <= 0:
        from .errors import DrumClassifierError
        raise DrumClassifierError("--take-seconds must be positive")
    sd = import_sounddevice()
    dev = resolve_device(args.audio_device or None, "input")   # a clear error before the model
    a = cfg.audio
    prompter = prompter or Prompter()
    clf = DrumClassifier(args.weights, args.config, args.device)
    pieces = _pieces((args.pieces or ",".join(DEFAULT_PIECES)).split(","), clf.labels, notes)
    prompter.say(f"input: {sd.query_devices(dev)['name']!r} at {a.sample_rate_hz} Hz")

    def open_source(max_s: float):
        return DeviceSource(dev, a.sample_rate_hz, a.blocksize, a.channels, a.dtype, a.latency,
                            duration_s=max_s)

    def take(n_hits: int):
        return record_take(open_source, a.channels, a.sample_rate_hz, cfg.onset, n_hits,
                           args.take_seconds, prompter.enter_pressed, a.stall_s)

    def fit(kept):
        raw = [(i, x, a.sample_rate_hz, f"{k.name} hit {j + 1}")
               for i, k in enumerate(kept) for j, x in enumerate(k.hits)]
        return fit_and_report(clf, [Piece(k.name, k.label, k.note) for k in kept], raw, args,
                              live_ms, prompter.say)

    session = GuidedSession(pieces, args.hits_per_piece, take, fit,
                            lambda spec: _added_piece(spec, clf.labels), prompter,
                            a.sample_rate_hz, live_ms, str(out))
    res = session.run()
    if res is None:
        prompter.say("calibration stopped: nothing saved")
        return 1
    load_s = save_profile(res.profile, out, args.force, clf, prompter.say)
    prompter.say(f"time: session {res.wall_s:.1f} s ({res.playing_s:.1f} s of playing over "
                 f"{res.takes} takes), fitting {res.profile.fit['seconds']:.1f} s, profile "
                 f"load {load_s * 1000:.0f} ms")
    return 0
