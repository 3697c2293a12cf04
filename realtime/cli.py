"""`drumclassifier listen` and `drumclassifier stream`: the live engine from the command line.

Both follow the project's convention: configure_parser(parser) and run(args) -> exit code.
torch, sounddevice and rtmidi are imported only inside run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from drumclassifier.cli_common import add_model_args, default, say

from .config import AudioConfig, DecisionConfig, MidiConfig, SlicerConfig
from .music import MODES as MUSIC_MODES

LISTEN_EPILOG = """examples:
  drumclassifier listen --list-devices
  drumclassifier listen                                   # default input, one line per hit
  drumclassifier listen -d "USB Audio" --virtual-port drums   # a MIDI port other apps connect to
  drumclassifier listen -d 3 --midi-port "FLUID Synth" --midi-file take1.mid --events take1.csv
  drumclassifier listen -d monitor --context-ms 10        # what the computer plays, low latency
  drumclassifier listen -d monitor --rt-config configs/realtime-music.yaml   # a song playing
  drumclassifier listen --session ~/practice/today --record-audio --live-view

Capturing what the computer plays: pick its monitor/loopback device (PulseAudio/PipeWire
"Monitor of ...", JACK system capture, macOS BlackHole). Ctrl-C stops cleanly: files are
flushed, MIDI gets all-notes-off, and the counters (hits, events, overflows, queue drops)
are printed. Each event carries its latency (onset to note) in the CSV."""

STREAM_EPILOG = """examples:
  drumclassifier stream song.wav                          # paced in real time, one line per hit
  drumclassifier stream song.wav --fast --events hits.csv     # as fast as possible
  drumclassifier stream song.wav --play --virtual-port drums  # hear it and get MIDI along
  drumclassifier stream loop.flac --fast --midi-file loop.mid --quiet
  drumclassifier stream take.wav --fast --session take1      # events + report in take1/
  drumclassifier stream song.flac --music off
      # by default a file with music under the drums gets the music onset detector
      # (configs/realtime-music.yaml: it fires less on bass and chords); off: never
  drumclassifier stream take.wav --fast --events hits.csv --late-look-ms 0
      # every note at 20 ms; by default --fast decides the cymbals from a second look
      # 200 ms after each hit (a ride or an 808 cymbal sounds like a hihat at first)

The file goes through exactly the live path: read block by block as a sound card would
deliver it, into the same ring buffer, onset detector and worker (which detector: a look
over the whole file first decides, see --music). Without --fast it is
paced in real time; --play also plays it on the output device."""


def add_engine_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("outputs (any combination; the console prints unless --quiet)")
    m = g.add_mutually_exclusive_group()
    m.add_argument("--midi-port", metavar="NAME",
                   help="send notes to an existing MIDI output port (name or part of it)")
    m.add_argument("--virtual-port", metavar="NAME",
                   help="create a MIDI output port NAME that synths/DAWs connect to")
    g.add_argument("--midi-api", choices=["auto", "alsa", "jack"], default=None,
                   help="MIDI system for the ports (default: the real-time config's, "
                        f"{default(MidiConfig, 'api')}; auto = try each)")
    g.add_argument("--midi-file", metavar="OUT.mid", help="write the session as a MIDI file")
    g.add_argument("--events", metavar="OUT.csv",
                   help="write time_s,label,confidence,velocity,latency_ms,wall_latency_ms,"
                        "context_ms (+ piece,note with --kit)")
    g.add_argument("--session", metavar="DIR",
                   help="record a practice session into DIR (events.csv, session.json) and "
                        "write its report there at the end (report.html, timeline.png); DIR "
                        "must be new or empty unless --force")
    g.add_argument("--record-audio", action="store_true",
                   help="with --session: also record the audio as DIR/audio.flac")
    g.add_argument("--force", action="store_true",
                   help="allow overwriting --midi-file/--events, writing into a non-empty "
                        "--session DIR")
    g.add_argument("-q", "--quiet", action="store_true", help="no line per hit on the console")
    g.add_argument("--live-view", action="store_true",
                   help="a live terminal view (per-instrument counters, last hits) instead "
                        "of one line per hit; plain lines when not a terminal")
    e = p.add_argument_group("engine")
    e.add_argument("--kit", metavar="FILE.kit",
                   help="a kit profile from `drumclassifier calibrate`: classify into your "
                        "kit's pieces, with their MIDI notes, gates and velocity ranges "
                        "(default: the generic model)")
    e.add_argument("--blocksize", type=int, metavar="N",
                   help="frames per audio block (default: the real-time config's, "
                        f"{default(AudioConfig, 'blocksize')})")
    e.add_argument("--context-ms", type=float, metavar="X",
                   help="audio after each onset given to the model (default: "
                        f"{default(SlicerConfig, 'context_ms'):g})")
    e.add_argument("--anytime-ms", type=float, nargs="+", metavar="X",
                   help="anytime decisions: classify each hit at these contexts (ms, "
                        "ascending, e.g. 5 10 20 40 80) and send it at the first sure one "
                        "(decision.min_confidence), at the latest at the last; replaces "
                        "--context-ms (default: off)")
    e.add_argument("--min-confidence", type=float, metavar="P",
                   help="with --anytime-ms: how sure a decision must be to go out before "
                        f"the last context (default: {default(DecisionConfig, 'min_confidence'):g})")
    e.add_argument("--sure-of", choices=["piece", "class"],
                   help="with --kit and --anytime-ms: is the confidence about the piece (its "
                        "note; default) or only its class (decides sooner, may send the "
                        "wrong piece of the right class: ride for crash)")
    e.add_argument("--rt-config", metavar="FILE", action="append",
                   help="real-time config YAML (default: built in, = configs/realtime.yaml); "
                        "repeat it to merge several, later files winning (e.g. the music "
                        "and the offline configs)")
    add_model_args(p)


def configure_listen(p: argparse.ArgumentParser) -> None:
    p.epilog = LISTEN_EPILOG
    a = p.add_argument_group("audio input")
    a.add_argument("-d", "--device", dest="audio_device", metavar="D",
                   help="audio INPUT device: index or part of its name (default: the system "
                        "default; the model's device is --model-device)")
    a.add_argument("-l", "--list-devices", action="store_true",
                   help="list audio devices and exit")
    a.add_argument("--sample-rate", type=int, metavar="R",
                   help=f"device rate in Hz (default {default(AudioConfig, 'sample_rate_hz')})")
    a.add_argument("--channels", type=int, metavar="C",
                   help=f"input channels (default {default(AudioConfig, 'channels')})")
    a.add_argument("--duration", type=float, metavar="S",
                   help="stop after S seconds of audio (default: until Ctrl-C)")
    add_engine_args(p)


# `stream --fast` reads a file for its notes, where none has to be early: each hit is looked
# at again 200 ms after its onset for the cymbals, whose wash tells a ride or an 808 cymbal
# from a hihat (held-out grooves, drum-only: cymbals F 0.450 -> 0.563, every other class
# the same; docs/benchmarks.md, "Longer waits"). = configs/realtime-offline.yaml.
FAST_LATE_LOOK_MS = 200.0


def configure_stream(p: argparse.ArgumentParser) -> None:
    p.epilog = STREAM_EPILOG
    p.add_argument("file", metavar="FILE", help="audio file (WAV, FLAC, OGG, MP3...)")
    t = p.add_mutually_exclusive_group()
    t.add_argument("--fast", action="store_true",
                   help="as fast as possible instead of real time (lossless)")
    t.add_argument("--play", action="store_true", help="play the file while analysing it")
    p.add_argument("-d", "--device", "--output-device", dest="audio_device", metavar="D",
                   help="with --play: the audio OUTPUT device, index or part of its name "
                        "(default: the system default; the model's device is --model-device)")
    add_engine_args(p)
    p.add_argument("--music", choices=MUSIC_MODES, default="auto",
                   help="the settings for music under the drums (configs/realtime-"
                        "music.yaml: its onset detector, and cymbals only where their band "
                        "rose). auto (default): the file is scanned first, and where "
                        "the default detector fires at least twice as often as the music "
                        "one, there is music; on: always; off: never (a drummer's take of "
                        "fast rolls or tom fills in noise is safest with off)")
    p.add_argument("--late-look-ms", type=float, metavar="X",
                   help="look at each hit again X ms after its onset for the cymbals "
                        "(decision.late_classes), whose notes then go out that late; 0 = off "
                        f"(default: {FAST_LATE_LOOK_MS:g} with --fast, unless --anytime-ms, "
                        "the real-time config or a kit profile without cymbal pieces, "
                        "from before version 4 or fitted with the play-along groove rules it "
                        "out; else the config's: off)")


def _config(args):
    from .config import load_realtime_config
    o: dict = {"audio": {}, "slicer": {}, "decision": {}, "midi": {}}
    if getattr(args, "sample_rate", None):
        o["audio"]["sample_rate_hz"] = args.sample_rate
    if getattr(args, "channels", None):
        o["audio"]["channels"] = args.channels
    if args.blocksize:
        o["audio"]["blocksize"] = args.blocksize
    if args.context_ms:
        o["slicer"]["context_ms"] = args.context_ms
    if getattr(args, "anytime_ms", None):
        o["slicer"]["anytime_ms"] = args.anytime_ms
    if getattr(args, "min_confidence", None) is not None:
        o["decision"]["min_confidence"] = args.min_confidence
    if getattr(args, "sure_of", None):
        o["decision"]["sure_of"] = args.sure_of
    if args.midi_api:
        o["midi"]["api"] = args.midi_api
    if getattr(args, "late_look_ms", None) is not None:
        o["slicer"]["late_look_ms"] = args.late_look_ms
    return load_realtime_config(args.rt_config, o)


def _with_late_look(cfg, ms: float):
    """cfg with slicer.late_look_ms = ms, checked as a config file would be (ConfigError:
    an anytime ladder, a context as long)."""
    from dataclasses import replace

    from .config import validate
    out = replace(cfg, slicer=replace(cfg.slicer, late_look_ms=ms))
    validate(out, f"--late-look-ms {ms:g}")
    return out


def _fast_late_look(args, cfg) -> bool:
    """Whether stream gives a file read --fast the late look of FAST_LATE_LOOK_MS: when
    neither --late-look-ms nor the config sets one, the config takes it, and a kit profile,
    if any, can use it (a sigmoid per piece and a piece of decision.late_classes) and was
    fitted without a play-along take (with one, the late look lost cymbals: 0.80 -> 0.75 on
    the held-out kits' grooves, 0.93 -> 0.63 on the validation kits', docs/calibration.md)."""
    from drumclassifier.errors import ConfigError
    if not args.fast or args.late_look_ms is not None or cfg.slicer.late_look_ms:
        return False
    try:
        _with_late_look(cfg, FAST_LATE_LOOK_MS)
    except ConfigError:
        return False
    if getattr(args, "kit", None):
        from drumclassifier.kit import KitError, KitProfile
        try:    # a profile that does not load is said by kit_classify, with the weights
            prof = KitProfile.load(args.kit)
        except KitError:
            return False
        return (prof.head.multi_label and not prof.fit.get("played")
                and any(p.label in cfg.decision.late_classes for p in prof.pieces))
    return True


def _sinks(args, cfg):
    from drumclassifier.errors import DrumClassifierError

    from .sinks import ConsoleSink, EventsCsvSink, MidiFileSink, MidiPortSink
    for path in (args.events, args.midi_file):   # refuse before any audio is opened
        if path and Path(path).exists() and not args.force:
            raise DrumClassifierError(f"{path} exists; use --force to overwrite")
    if args.quiet:
        sinks = []
    elif args.live_view:
        from .liveview import LiveView
        sinks = [LiveView()]
    else:
        sinks = [ConsoleSink()]
    if args.events:
        sinks.append(EventsCsvSink(args.events, args.force,
                                   kit_columns=bool(getattr(args, "kit", None))))
    if args.midi_file:
        sinks.append(MidiFileSink(args.midi_file, cfg.midi, args.force))
    if args.midi_port or args.virtual_port:
        sinks.append(MidiPortSink(cfg.midi, port=args.midi_port, virtual=args.virtual_port))
    return sinks


def _run(args, source, cfg) -> int:
    from drumclassifier.classifier import DrumClassifier
    from drumclassifier.errors import DrumClassifierError

    from .engine import Engine, print_stats
    session = None
    if args.record_audio and not args.session:
        raise DrumClassifierError("--record-audio needs --session DIR")
    if args.session:   # refused before the model loads and any audio is opened
        from .session import Session
        session = Session(args.session, args.force, args.record_audio,
                          meta={"source": getattr(source, "path", None)
                                or getattr(source, "device_spec", None) or "default input",
                                "weights": str(args.weights or "shipped"),
                                "context_ms": cfg.slicer.context_ms,
                                "onset_detector": ("music" if cfg.onset.band_quantile > 0
                                                   else "default"),
                                "anytime_ms": list(cfg.slicer.anytime_ms),
                                "command": " ".join(["drumclassifier"] + sys.argv[1:])})
    sinks = _sinks(args, cfg)
    clf = DrumClassifier(args.weights, args.config, args.model_device)
    classify = None
    if getattr(args, "kit", None):     # the profile's head instead of the generic output
        from .classify import kit_classify
        classify = kit_classify(clf, args.kit, cfg, source.sample_rate_hz, args.quiet)
    if session is not None:
        sinks += session.sinks(source)
    engine = Engine(clf, source, sinks, cfg, classify=classify)
    for s in sinks:
        if getattr(s, "virtual", None) and not args.quiet:
            print(f"MIDI: virtual output port {s.port_name!r}", file=sys.stderr, flush=True)
    interrupted = False
    try:
        engine.run()
    except KeyboardInterrupt:
        interrupted = True
    stats = engine.stats()
    print_stats(stats)
    if interrupted:
        print("stopped (Ctrl-C); outputs flushed", file=sys.stderr)
    if session is not None:
        rep = session.finish(stats)
        print(f"session: {rep.n_hits} hits in {rep.duration_s:.1f} s; report: "
              f"{session.dir / 'report.html'}", file=sys.stderr, flush=True)
    return 1 if stats.errors else 0


def run_listen(args) -> int:
    from .sources import DeviceSource, list_devices, resolve_device
    if args.list_devices:
        print(list_devices())
        return 0
    cfg = _config(args)
    if cfg.slicer.late_look_ms:
        print(f"warning: slicer.late_look_ms: notes of {', '.join(cfg.late_look_classes)} "
              f"go out {cfg.slicer.late_look_ms:g} ms after each hit (a setting for files "
              "and recordings, not for triggering)", file=sys.stderr, flush=True)
    resolve_device(args.audio_device, "input")    # no input device: said before anything else
    a = cfg.audio
    source = DeviceSource(args.audio_device, a.sample_rate_hz, a.blocksize, a.channels, a.dtype,
                          a.latency, duration_s=args.duration)
    if not args.quiet:
        say("listening (Ctrl-C to stop)...")
    return _run(args, source, cfg)


def run_stream(args) -> int:
    from drumclassifier.errors import DrumClassifierError

    from .music import choose as choose_music
    from .music import describe as describe_music
    from .music import needs_scan
    from .sources import FileSource, resolve_device
    if args.audio_device is not None and not args.play:
        raise DrumClassifierError(f"-d/--device {args.audio_device!r} is the audio output for "
                                  "--play; the model's device is --model-device")
    cfg = _config(args)
    if _fast_late_look(args, cfg):
        cfg = _with_late_look(cfg, FAST_LATE_LOOK_MS)
    if cfg.slicer.late_look_ms and not args.quiet:
        say(f"{', '.join(cfg.late_look_classes)}: decided {cfg.slicer.late_look_ms:g} ms after "
            f"each hit, the rest at {cfg.slicer.context_ms:g} ms (--late-look-ms 0: all at "
            f"{cfg.slicer.context_ms:g})")
    source = FileSource(args.file, cfg.audio.blocksize, fast=args.fast, play=args.play,
                        output_device=args.audio_device)
    if needs_scan(cfg, args.music) and source.frames > 60 * source.sample_rate_hz and not args.quiet:
        say(f"looking for music under the drums ({source.frames / source.sample_rate_hz:.0f} s "
            "of audio; --music off skips this)...")
    cfg, found = choose_music(args.file, cfg, args.music)   # after FileSource: the file is good
    if found is not None and found.music and not args.quiet:
        say(describe_music(found))
    if args.play:
        resolve_device(args.audio_device, "output")   # no output device: said before the model loads
    return _run(args, source, cfg)


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Both commands live here; the registry names this module for each, and the
    sub-parser's prog ("drumclassifier listen" / "... stream") says which one it is."""
    (configure_stream if p.prog.split()[-1] == "stream" else configure_listen)(p)


def run(args) -> int:
    return (run_stream if args.command == "stream" else run_listen)(args)
