"""What every command of the `drumclassifier` command line shares: the model's options,
defaults read from the config dataclasses, one way to say a line on stderr.

Imported by drumclassifier's and realtime's command modules alike (realtime may depend on
drumclassifier, never the reverse); light: no torch, no numpy.

One flag, one meaning, in every command:
  -w/--weights, -c/--config   the model's checkpoint and config
  --model-device DEV          where the model runs: cpu, cuda, cuda:N (default: CUDA when
                              available, else CPU)
  -d/--device D               an AUDIO device only (listen and calibrate: the input; stream:
                              the output of --play); never the model's
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

MODEL_DEVICE_HELP = ("where the model runs: cpu, cuda, cuda:N (default: CUDA when available, "
                     "else CPU)")


def add_model_args(p: argparse.ArgumentParser) -> None:
    """-w/--weights, -c/--config, --model-device: shared by every command that runs the model
    (args.weights, args.config, args.model_device)."""
    g = p.add_argument_group("model")
    g.add_argument("-w", "--weights", help="checkpoint file (default: the shipped model)")
    g.add_argument("-c", "--config", help="model config YAML; must match the checkpoint "
                   "(default: the checkpoint's own)")
    g.add_argument("--model-device", metavar="DEV", default=None, help=MODEL_DEVICE_HELP)


class _NotTheModelDevice(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} is an audio device option (listen, calibrate, stream "
                     f"--play); the model's device is --model-device {values}")


def refuse_device_flag(p: argparse.ArgumentParser) -> None:
    """For commands without an audio device (classify, evaluate): -d/--device, once the
    model's device, is refused with a line naming --model-device (hidden from --help)."""
    p.add_argument("-d", "--device", action=_NotTheModelDevice, help=argparse.SUPPRESS)


def default(cls, name: str):
    """The default of field `name` of dataclass `cls`: the number a help text quotes."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise ValueError(f"{cls.__name__}.{name} has no default")


def say(text: str) -> None:
    """A line for the user on stderr (progress, notes, warnings), flushed at once."""
    print(text, file=sys.stderr, flush=True)
