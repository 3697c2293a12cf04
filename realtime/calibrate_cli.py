"""`drumclassifier calibrate`: teach the model one drummer's kit, save a kit profile.

Three ways in: `--device D`, the guided live session (realtime/calibrate.py);
`--from-file` (a recording of the pieces played in order); `--from-folder` (one sub-folder
of one-shots per piece). The live session and `--from-file` hear hits with the same code
(realtime/calibrate.py: the engine's onset detector and slicer); all three check, fit,
report and save the profile with the same code (drumclassifier/calibrate.py).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from drumclassifier.cli_common import add_model_args, default, say

from .config import SlicerConfig

EPILOG = """examples:
  drumclassifier calibrate -d "USB Audio" --out my.kit     (guided: the terminal says what to play)
  drumclassifier calibrate -d 3 --out my.kit --hits-per-piece 8 \\
      --pieces "kick,snare,hihat,hihat--open hat,toms--rack tom 1,toms--floor tom,cymbals--ride bell"
  drumclassifier calibrate --from-file take.wav --hits-per-piece 8 --out my.kit \\
      --pieces "kick,snare,hihat,hihat--open hat,toms--floor tom,cymbals--ride"
  drumclassifier calibrate --from-folder my-kit/ --notes "floor tom=41" --out my.kit
  drumclassifier calibrate --from-folder my-kit/ --show-groove     (what to play for --groove)
  drumclassifier calibrate --pieces "kick,snare,hihat,toms--floor tom,cymbals--ride" \
      --show-groove --groove-midi along.mid     (and a MIDI file of it with a click)
  drumclassifier calibrate --from-folder my-kit/ --groove groove.wav --groove-bpm 100 --out my.kit
  drumclassifier stream song.wav --kit my.kit      (listen --kit my.kit works the same)

A piece is written CLASS or CLASS--piece name (CLASS: kick, snare, hihat, toms, cymbals);
its MIDI note is guessed from the name (General MIDI: "open" 46, "pedal" 44, "floor" 41,
"ride" 51, "bell" 53, ...) or set with --notes "name=note,...". With --device, each
piece is recorded in turn: press Enter, play it --hits-per-piece times softly to hard;
keep, re-take or skip it; after the fit, re-take a piece or add one (+ CLASS--name=note)
before saving. With --from-file, play
each piece --hits-per-piece times, softly to hard, and leave a pause (a second or more)
before the next piece: the hits are split into pieces at the longest pauses.
Every piece of the kit must be taught: a piece left out is heard as another.

The play-along groove (optional, about 20 s, recommended): after the pieces, play the
8 bars --show-groove prints for your pieces (hihat, ride, crash + kick, open hihat, a
tom fill; loud and soft strokes as the tab marks them) and pass the recording with
--groove; in the guided session (--device) it is
offered after the pieces. Its hits, struck together and over each other's tails as in
every groove, are fitted with the single hits: on held-out kits' grooves (simulated
drummers) class F kick 0.88 -> 0.96, hihat 0.89 -> 0.94, toms 0.55 -> 0.74, cymbals
0.61 -> 0.88, snare 0.94 either way (docs/calibration.md)."""

# the guided session's kit, in playing order (CLASS or CLASS--piece name); --pieces replaces it
DEFAULT_PIECES = ("kick", "snare", "hihat", "hihat--open hat", "hihat--pedal hat",
                  "toms--rack tom", "toms--floor tom", "cymbals--crash", "cymbals--ride")

# where the session's input device is missing: what works without one
NO_INPUT_HINT = ("without a sound card, calibrate from a recording (--from-file) or from "
                 "folders of one-shots (--from-folder)")


def configure_parser(p: argparse.ArgumentParser) -> None:
    from drumclassifier.kit import FitOptions

    from .playalong import ROLES
    p.epilog = EPILOG
    # (one of them required, and --out, unless --show-groove: checked in run)
    src = p.add_argument_group("what to learn from (one of)").add_mutually_exclusive_group()
    src.add_argument("-d", "--device", dest="audio_device", nargs="?", const="", metavar="D",
                     help="a guided live session on this audio INPUT device: index or part "
                          "of its name (`drumclassifier listen --list-devices`); no D: the "
                          "default input")
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
                   help="with --from-file/--device: hits played per piece (default %(default)s)")
    p.add_argument("--take-seconds", type=float, default=30.0, metavar="S",
                   help="with --device: the longest take; it ends earlier when the hits "
                        "are heard or Enter is pressed (default %(default)g)")
    p.add_argument("--notes", action="append", default=[], metavar="PIECE=NOTE,...",
                   help="MIDI note per piece name (repeatable or comma-separated)")
    p.add_argument("-o", "--out", metavar="FILE.kit",
                   help="where the kit profile is written (JSON); required")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--context-ms", type=float, metavar="X",
                   help="the live context the profile is checked at (default: the real-time "
                        f"config's, {default(SlicerConfig, 'context_ms'):g})")
    p.add_argument("--augment", type=int, metavar="N",
                   help=f"augmented copies of each hit for fitting (default "
                        f"{default(FitOptions, 'augment')}: fewer fit faster and are "
                        "recognised slightly less on held-out kits)")
    g = p.add_argument_group("the play-along groove (optional: real overlaps of your kit)")
    g.add_argument("--groove", metavar="RECORDING",
                   help="a recording of the play-along groove played on this kit: its "
                        "hits join the fit (with --device, `g` after the fit records one "
                        "instead)")
    g.add_argument("--groove-bpm", type=float, default=100.0, metavar="BPM",
                   help="the tempo the groove is played at (default %(default)g; the take's "
                        "own tempo is fitted, a few percent off is fine)")
    g.add_argument("--groove-pieces", metavar="ROLE=PIECE,...",
                   help="which piece plays a part of the groove where the names do not say "
                        f"(roles: {', '.join(ROLES)}), e.g. \"kick=bass drum 2,ride=ride 20\"")
    g.add_argument("--show-groove", action="store_true",
                   help="print the play-along groove for the pieces (--from-folder's "
                        "sub-folders, else --pieces) and exit")
    g.add_argument("--groove-midi", metavar="FILE.mid",
                   help="with --show-groove: also write the groove as a MIDI file to play "
                        "along with (a bar of clicks, then the groove with your pieces' notes "
                        "and a click on every beat, General MIDI channel 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rt-config", metavar="FILE", action="append",
                   help="real-time config YAML (audio input, onset detector, context); "
                        "repeat it to merge several, in order")
    add_model_args(p)


def hits_from_recording(path: Path, n_pieces: int, per_piece: int, cfg):
    """A recording of the pieces in order -> ([(piece index, [n, ch] hit, rate, where)],
    warning or None): hits heard as the live session hears them (calibrate.hits_in), split
    into pieces at the pauses."""
    from drumclassifier import audio
    from drumclassifier.calibrate import split_by_pauses
    from drumclassifier.errors import DrumClassifierError

    from .calibrate import hits_in
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


def run(args, prompter=None) -> int:
    """The command; `prompter` (realtime.calibrate.Prompter) replaces the terminal in tests."""
    from drumclassifier.calibrate import (
        check_hits,
        fit_and_report,
        hits_from_folder,
        parse_notes,
        resolve_pieces,
        save_profile,
    )
    from drumclassifier.classifier import DrumClassifier
    from drumclassifier.errors import DrumClassifierError
    from drumclassifier.kit import Piece

    from .config import load_realtime_config

    if args.groove_midi and not args.show_groove:
        raise DrumClassifierError("--groove-midi goes with --show-groove")
    if args.show_groove:
        return show_groove(args)
    if args.audio_device is None and not args.from_file and not args.from_folder:
        raise DrumClassifierError("calibrate needs what to learn from: -d/--device (a guided "
                                  "session), --from-file or --from-folder")
    if not args.out:
        raise DrumClassifierError("calibrate needs --out FILE.kit: where the kit profile is "
                                  "written")
    if args.groove_bpm <= 0:
        raise DrumClassifierError(f"--groove-bpm must be positive, got {args.groove_bpm:g}")
    out = Path(args.out)
    if out.exists() and not args.force:       # refused before any audio is opened
        raise DrumClassifierError(f"{out} exists; use --force to overwrite")
    if args.augment is not None and args.augment < 1:
        raise DrumClassifierError("--augment must be at least 1")
    if args.hits_per_piece < 1:
        raise DrumClassifierError("--hits-per-piece must be at least 1")
    notes = parse_notes(args.notes)
    cfg = load_realtime_config(args.rt_config)
    live_ms = args.context_ms or cfg.slicer.context_ms
    if args.audio_device is not None:
        return run_live(args, cfg, notes, out, live_ms, prompter)
    clf = DrumClassifier(args.weights, args.config, args.model_device)
    labels = clf.labels
    warnings = []
    if args.from_folder:
        if args.pieces:
            raise DrumClassifierError("--pieces is for --from-file and --device; with "
                                      "--from-folder the sub-folder names are the pieces")
        specs, raw = hits_from_folder(Path(args.from_folder), labels, clf.cfg.analysis_s)
        pieces = resolve_pieces([f"{lab}--{n}" for n, lab in specs], labels, notes)
    else:
        if not args.pieces:
            raise DrumClassifierError('--from-file needs --pieces "kick,snare,..." in the '
                                      "order they were played")
        pieces = resolve_pieces(args.pieces.split(","), labels, notes)
        raw, warn = hits_from_recording(Path(args.from_file), len(pieces), args.hits_per_piece,
                                        cfg)
        if warn:
            warnings.append(warn)
    pieces = [Piece(n, lab, note) for n, lab, note in pieces]

    # what was heard: per piece, count and levels over the live context; clipped/quiet hits
    say(f"heard (levels: peak dBFS over the first {live_ms:g} ms):")
    for i, pc in enumerate(pieces):
        mine = [(x, r, src) for g, x, r, src in raw if g == i]
        levels, flags = check_hits([x for x, _, _ in mine], [r for _, r, _ in mine],
                                   live_ms, [src for *_, src in mine],
                                   args.hits_per_piece if args.from_file else None,
                                   from_input=False)
        lv = (f"softest {min(levels):6.1f}  hardest {max(levels):6.1f}" if levels else "")
        say(f"  {pc.name:<16s} {pc.label:<8s} note {pc.note:3d}  {len(mine):3d} hits  {lv}")
        warnings += [f"{pc.name}: {f}" for f in flags[:6]]
    for w in warnings:
        say(f"warning: {w}")
    played = None
    if args.groove:
        from .playalong import parse_roles, played_from, read_take
        played = played_from(clf, read_take(args.groove, cfg.onset), pieces, args.groove_bpm,
                             parse_roles(args.groove_pieces), say)
    prof = fit_and_report(clf, pieces, raw, live_ms, say, args.augment, args.seed,
                          played=played)
    load_s = save_profile(prof, out, args.force, clf, say)
    say(f"time: fitting {prof.fit['seconds']:.1f} s, profile load {load_s * 1000:.0f} ms")
    return 0


def show_groove(args) -> int:
    """--show-groove: the play-along groove's tab for the pieces, on stdout."""
    from drumclassifier.calibrate import parse_notes, resolve_pieces
    from drumclassifier.classes import CLASSES
    from drumclassifier.errors import DrumClassifierError
    from drumclassifier.kit import Piece

    from .playalong import parse_roles, tab
    if args.from_folder:          # the sub-folders' names, as --from-folder reads them
        folder = Path(args.from_folder)
        if not folder.is_dir():
            raise DrumClassifierError(f"{folder}: not a folder")
        names = [d.name for d in sorted(folder.iterdir()) if d.is_dir()]
    else:
        names = (args.pieces or ",".join(DEFAULT_PIECES)).split(",")
    pieces = [Piece(*p) for p in resolve_pieces(names, CLASSES, parse_notes(args.notes))]
    chosen = parse_roles(args.groove_pieces)
    print(tab(pieces, args.groove_bpm, chosen))
    if args.groove_midi:
        from .config import MidiConfig
        from .playalong import guide_notes
        from .sinks import MidiFileSink
        sink = MidiFileSink(args.groove_midi, MidiConfig(), args.force)
        sink.open()                         # refuses an existing file unless --force
        sink.emit(guide_notes(pieces, args.groove_bpm, chosen))
        sink.close()
        print(f"wrote {args.groove_midi}: a bar of clicks, then the groove at "
              f"{args.groove_bpm:g} BPM with a click on every beat")
    return 0


def run_live(args, cfg, notes: dict[str, int], out: Path, live_ms: float, prompter=None) -> int:
    """The guided session on an input device (realtime/calibrate.py)."""
    from drumclassifier.calibrate import (
        fit_and_report,
        parse_added_piece,
        resolve_pieces,
        save_profile,
    )
    from drumclassifier.classifier import DrumClassifier
    from drumclassifier.errors import DrumClassifierError
    from drumclassifier.kit import FitCache, Piece

    from .calibrate import GuidedSession, Prompter, record_take
    from .playalong import BARS, BEATS_PER_BAR, parse_roles, played_from, read_take, tab, take_from_hits
    from .sources import DeviceSource, import_sounddevice, resolve_device

    if args.take_seconds <= 0:
        raise DrumClassifierError("--take-seconds must be positive")
    sd = import_sounddevice()
    # a clear error before the model loads
    dev = resolve_device(args.audio_device or None, "input", NO_INPUT_HINT)
    a = cfg.audio
    prompter = prompter or Prompter()
    clf = DrumClassifier(args.weights, args.config, args.model_device)
    pieces = resolve_pieces((args.pieces or ",".join(DEFAULT_PIECES)).split(","), clf.labels,
                            notes)
    prompter.say(f"input: {sd.query_devices(dev)['name']!r} at {a.sample_rate_hz} Hz")

    def open_source(max_s: float):
        return DeviceSource(dev, a.sample_rate_hz, a.blocksize, a.channels, a.dtype, a.latency,
                            duration_s=max_s)

    def take(n_hits: int):
        return record_take(open_source, a.channels, a.sample_rate_hz, cfg.onset, n_hits,
                           args.take_seconds, prompter.enter_pressed, a.stall_s)

    chosen = parse_roles(args.groove_pieces)
    # the play-along take, labelled again at each fit (the pieces may have changed)
    groove_take = [read_take(args.groove, cfg.onset)] if args.groove else []

    # the refit after the play-along take reuses the hits' part of the fit before it
    cache = FitCache()

    def fit(kept):
        raw = [(i, x, a.sample_rate_hz, f"{k.name} hit {j + 1}")
               for i, k in enumerate(kept) for j, x in enumerate(k.hits)]
        pcs = [Piece(k.name, k.label, k.note) for k in kept]
        played = None
        if groove_take:
            try:
                played = played_from(clf, groove_take[-1], pcs, args.groove_bpm, chosen,
                                     prompter.say)
            except DrumClassifierError as e:
                prompter.say(f"{e}\nfitting without the play-along groove")
        return fit_and_report(clf, pcs, raw, live_ms, prompter.say, args.augment, args.seed,
                              played=played, cache=cache)

    def groove(kept):
        """The play-along groove, recorded: the tab, Enter, then the whole groove."""
        prompter.say(tab(kept, args.groove_bpm, chosen))
        if prompter.ask("Enter = start, s = not now: ").lower() == "s":
            return None
        prompter.say("listening: play the groove from its first beat (Enter ends the take)")
        t = record_take(open_source, a.channels, a.sample_rate_hz, cfg.onset, 10 ** 6,
                        BARS * BEATS_PER_BAR * 60 / args.groove_bpm * 1.1 + 4.0,
                        prompter.enter_pressed, a.stall_s)
        groove_take.append(take_from_hits(t.hits, a.sample_rate_hz, "the groove's take"))
        return t

    session = GuidedSession(pieces, args.hits_per_piece, take, fit,
                            lambda spec: parse_added_piece(spec, clf.labels), prompter,
                            a.sample_rate_hz, live_ms, str(out), groove)
    res = session.run()
    if res is None:
        prompter.say("calibration stopped: nothing saved")
        return 1
    load_s = save_profile(res.profile, out, args.force, clf, prompter.say)
    prompter.say(f"time: session {res.wall_s:.1f} s ({res.playing_s:.1f} s of playing over "
                 f"{res.takes} takes), fitting {res.profile.fit['seconds']:.1f} s, profile "
                 f"load {load_s * 1000:.0f} ms")
    return 0
