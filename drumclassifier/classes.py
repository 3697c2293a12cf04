"""The drum classes and their General MIDI notes: the one place they are written.

CLASSES is the label order a new model gets (ModelConfig.labels). A trained checkpoint
carries its own order in its stored config (validated when it loads), so code holding a
loaded model reads `clf.labels`, not this. GM_NOTES is the note each class sends by
default: the live engine's `midi.notes` and a kit profile's pieces (kit.guess_note).
"""
from __future__ import annotations

CLASSES: tuple[str, ...] = ("kick", "snare", "hihat", "toms", "cymbals")

# General MIDI percussion keys: Bass Drum 1, Acoustic Snare, Closed Hi-Hat, Low Tom,
# Crash Cymbal 1
GM_NOTES: dict[str, int] = dict(zip(CLASSES, (36, 38, 42, 45, 49)))
