"""The corpus manifest: one CSV row per one-shot, written atomically."""
from __future__ import annotations

import csv
import os
from pathlib import Path

# The first eight columns are the contract; the others are provenance.
COLUMNS = ["path", "label", "source", "kit", "group", "velocity", "n_samples", "split",
           "lead_trim_samples", "origin"]


def write_manifest(path: Path, rows: list[dict]) -> None:
    """Write rows to `path` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS})
    os.replace(tmp, path)


def read_manifest(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
