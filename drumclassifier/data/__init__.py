"""The open drum corpus: fetch, label, render, de-duplicate and split one-shots.

Entry point: `drumclassifier corpus build` (see `build.py`). Modules:
- `labels`: class names, General MIDI drum keys, name-based labelling rules.
- `sources`: the open packages and repositories of docs/model-card.md and the user's own folders, as items.
- `render`: soundfont rendering (tinysoundfont), trimming, resampling, FLAC output.
- `dedupe`: near-exact duplicate removal (aligned normalised cross-correlation).
- `splits`: kit groups and group-wise train/val/test assignment.
- `manifest`: the manifest CSV (atomic write).
"""

from ..classes import CLASSES  # noqa: F401 (the class list, re-exported for the corpus modules)
