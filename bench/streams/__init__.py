"""Drum streams with exact ground truth, for measuring the live path.

Programmed grooves mixed sample-accurately from the corpus's held-out kits (split ==
test), under listening conditions (both in drumclassifier/grooves, which also renders the
training grooves from the training kits); generate.py writes FLAC + truth
CSV (time_s,label,velocity) per stream and an index, streams.csv.

    .venv/bin/python -m bench.streams --out data/streams
"""
from drumclassifier.grooves.patterns import GROOVES, ROLE_CLASS, Note, program
from drumclassifier.grooves.render import (
    CONDITIONS,
    DRUM_ONLY,
    SR,
    Kit,
    apply_condition,
    load_kits,
    mix,
)

from .generate import StreamSpec, generate, plan, render_stream, write_truth

__all__ = ["CONDITIONS", "DRUM_ONLY", "GROOVES", "ROLE_CLASS", "SR", "Kit", "Note", "StreamSpec",
           "apply_condition", "generate", "load_kits", "mix", "plan", "program",
           "render_stream", "write_truth"]
