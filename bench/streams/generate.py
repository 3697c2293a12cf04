"""Write drum streams with exact truth: FLAC + CSV per stream, and streams.csv.

    .venv/bin/python -m bench.streams [--out data/streams] [--kits K ...]
        [--grooves G ...] [--streams-per-kit N] [--seconds 30] [--conditions C ...] [--seed 0]

Layout: OUT/<condition>/<kit>__<groove>__<bpm>bpm.flac and .csv (time_s,label,velocity,
sorted by time; simultaneous notes are separate lines), OUT/streams.csv (one row per
stream: id, condition, kit, groove, bpm, seconds, notes, audio, truth, relative to OUT).
Only held-out kits (split == test) are offered. Deterministic for a given seed: every
stream's randomness comes from crc32(seed, kit, groove), so adding a kit or a condition
does not change the others.
"""
from __future__ import annotations

import argparse
import csv
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from drumclassifier.grooves.patterns import GROOVES, program
from drumclassifier.grooves.render import CONDITIONS, SR, apply_condition, load_kits, mix

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MANIFEST = ROOT / "data" / "corpus" / "manifest.csv"


@dataclass(frozen=True)
class StreamSpec:
    kit: str
    groove: str
    bpm: int
    seconds: float
    seed: int

    @property
    def id(self) -> str:
        return f"{self.kit}__{self.groove}__{self.bpm}bpm"


def _rng(seed: int, *parts) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32("|".join(map(str, parts)).encode())])


def plan(kits: list[str], grooves: list[str], per_kit: int, seconds: float,
         seed: int) -> list[StreamSpec]:
    """`per_kit` grooves per kit, cycling through `grooves` with an offset per kit so that
    different kits cover different grooves; tempo drawn from the groove's range."""
    specs = []
    for i, kit in enumerate(kits):
        for j in range(per_kit):
            g = grooves[(i * per_kit + j) % len(grooves)]
            lo, hi = GROOVES[g][0]
            bpm = int(_rng(seed, kit, g, "bpm").integers(lo, hi + 1))
            specs.append(StreamSpec(kit, g, bpm, seconds, seed))
    return specs


def render_stream(spec: StreamSpec, kit) -> tuple[np.ndarray, list]:
    """The clean stereo mix and its truth notes."""
    notes = program(spec.groove, spec.bpm, spec.seconds, _rng(spec.seed, spec.kit, spec.groove))
    return mix(notes, kit)


def write_truth(path: Path, notes) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time_s", "label", "velocity"])
        for n in sorted(notes, key=lambda n: (n.time_s, n.label)):
            w.writerow([f"{n.time_s:.6f}", n.label, n.velocity])


def generate(out: Path, specs: list[StreamSpec], conditions=CONDITIONS,
             manifest: Path = DEFAULT_MANIFEST, log=print) -> list[dict]:
    """Render every spec under every condition into `out`; returns the index rows."""
    out = Path(out)
    kits = load_kits(manifest)
    rows = []
    for spec in specs:
        if spec.kit not in kits:
            raise SystemExit(f"{spec.kit}: not a held-out (split == test) kit; "
                             f"held-out kits: {', '.join(kits)}")
        clean, notes = render_stream(spec, kits[spec.kit])
        for cond in conditions:
            y = apply_condition(clean, cond, spec.bpm, _rng(spec.seed, spec.kit, spec.groove, cond))
            d = out / cond
            d.mkdir(parents=True, exist_ok=True)
            audio, truth = d / f"{spec.id}.flac", d / f"{spec.id}.csv"
            sf.write(audio, y, SR, subtype="PCM_24")
            write_truth(truth, notes)
            rows.append({"id": f"{cond}/{spec.id}", "condition": cond, "kit": spec.kit,
                         "groove": spec.groove, "bpm": spec.bpm,
                         "seconds": round(len(y) / SR, 3), "notes": len(notes),
                         "audio": str(audio.relative_to(out)), "truth": str(truth.relative_to(out))})
        log(f"{spec.id}: {len(notes)} notes, {len(clean) / SR:.1f} s x {len(conditions)} conditions")
    with open(out / "streams.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["id"])
        w.writeheader()
        w.writerows(rows)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--out", default=str(ROOT / "data" / "streams"))
    ap.add_argument("--manifest", default=str(DEFAULT_MANIFEST))
    ap.add_argument("--kits", nargs="+", help="held-out kits (default: all of split == test)")
    ap.add_argument("--grooves", nargs="+", default=list(GROOVES), choices=list(GROOVES))
    ap.add_argument("--streams-per-kit", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    kits = a.kits or list(load_kits(Path(a.manifest)))
    specs = plan(kits, a.grooves, a.streams_per_kit, a.seconds, a.seed)
    rows = generate(Path(a.out), specs, a.conditions, Path(a.manifest))
    print(f"wrote {len(rows)} streams to {a.out} (index: streams.csv)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
