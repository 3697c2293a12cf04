"""`drumclassifier` command line: one sub-command per job.

Each sub-command lives in its own module exposing `configure_parser(parser)` and
`run(args) -> exit code`, named below by its module path: a command's module is imported
only when that command is asked for (`drumclassifier --help` imports none of them), and
torch only when a command runs. The live commands (listen, stream, calibrate, report)
live in realtime/: this table names them, drumclassifier never imports realtime.

Flags mean one thing everywhere (drumclassifier/cli_common.py): --model-device is where
the model runs, -d/--device an audio device (listen, calibrate: input; stream: output).
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS = {
    "corpus": ("drumclassifier.data.build", "build the open drum corpus (+ your own library)"),
    "classify": ("drumclassifier.classify_cli", "label drum one-shots: files or whole folders"),
    "listen": ("realtime.cli", "live: hits from a microphone/input device to console, MIDI, files"),
    "stream": ("realtime.cli", "a file through the live engine (paced, --fast or --play)"),
    "grooves": ("realtime.grooves",
                "render training grooves from the corpus kits, labelled at the live onsets"),
    "train": ("drumclassifier.train", "train the classifier on the corpus manifest"),
    "calibrate": ("realtime.calibrate_cli",
                  "learn your own kit (a guided live session, a recording or folders of "
                  "hits): a kit profile"),
    "evaluate": ("drumclassifier.evaluate", "score a checkpoint: per-class metrics, context curves"),
    "report": ("realtime.report", "a practice session report (HTML + PNG) from a session folder"),
}

EPILOG = """examples:
  drumclassifier classify kick.wav snare.flac
  drumclassifier classify -r ~/Samples --format csv -o labels.csv
  drumclassifier classify -r ~/Samples --sort-into ~/Sorted    (copies, never moves)
  drumclassifier listen --list-devices
  drumclassifier listen -d "USB" --virtual-port Drums           (mic -> MIDI notes)
  drumclassifier stream song.flac --play --events hits.csv      (classify a playing stream)
  drumclassifier listen -d 2 --session ~/practice/today --live-view
run `drumclassifier COMMAND --help` for each command's options."""


def get_parser(commands=None) -> argparse.ArgumentParser:
    """The parser; `commands`: the sub-commands whose options are configured (their
    modules imported), default all of them. The others are listed, with their help line."""
    parser = argparse.ArgumentParser(
        prog="drumclassifier", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Classify drum hits as kick, snare, hihat, toms or cymbals, "
                    "from files or live audio.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if commands is None or name in commands:
            importlib.import_module(module).configure_parser(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # only the command asked for is configured: the first word that is not an option
    asked = next((a for a in argv if not a.startswith("-")), None)
    args = get_parser([asked]).parse_args(argv)
    from .errors import DrumClassifierError
    try:
        return importlib.import_module(args._module).run(args)
    except DrumClassifierError as e:
        print(f"drumclassifier {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"drumclassifier {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
