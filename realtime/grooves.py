"""`drumclassifier grooves`: render training grooves and label them as the live path sees them.

For each stream:
  1. a groove (drumclassifier/grooves: the programmed grooves at 0.75-1.3x their tempo, a
     groove of a library people wrote: mma's ~2,000 grooves and Hydrogen's demo songs,
     grooves/library.py, or a randomised one at 50-240 BPM) played on a kit of the split (a kit lacking a piece
     borrows it from another kit of the same split; never from another split), one-shots
     at their velocity layer, tails overlapping, open hihats choked by the pedal;
  2. a random listening chain (grooves.render.train_condition: rooms, a mono room mic, EQ,
     compression, music, noise, MP3);
  3. the live onset detector (realtime/onset.py, the configured defaults) run on it; each
     detected onset gets the classes of the truth notes nearest to it within +-25 ms (the
     benchmark's tolerance): its multi-hot target. An onset with no note near it (a bass
     note, a ringing tail) has no class: a negative, so the model learns to reject it.

Writes OUT/SPLIT/NNNNN.flac (24-bit), NNNNN.truth.csv (time_s,label,velocity) and
NNNNN.onsets.csv (sample,labels with labels like "kick+hihat" or empty), then OUT/streams.csv
(one row per stream: split, audio, kit, groove, bpm, condition, notes, onsets, negatives).
Resumable: a stream whose onsets file exists is kept as it is. Deterministic: stream i of
a split draws everything from (seed, split, i).
"""
from __future__ import annotations

import argparse
import csv
import sys
import zlib
from pathlib import Path

EPILOG = """examples:
  drumclassifier grooves --out data/grooves                        (train 300 + val 40 streams)
  drumclassifier grooves --out data/grooves --streams 600 --seconds 20   (more; resumes)
  drumclassifier grooves --out data/grooves-lib --mma --h2songs data/corpus/pkgs \\
      --music-fonts data/corpus/pkgs
      (also mma's groove library and Hydrogen's demo songs, apt-get install mma; music
      from the corpus's SoundFonts)
Then: drumclassifier train train.grooves=data/grooves/streams.csv"""

TOL_S = 0.025     # a note belongs to the nearest onset within this (the benchmark's +-25 ms)


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--out", default="data/grooves", help="output folder (default data/grooves)")
    p.add_argument("--manifest", default="data/corpus/manifest.csv",
                   help="corpus manifest whose kits play (default data/corpus/manifest.csv)")
    p.add_argument("--streams", type=int, default=300, help="train streams (default 300)")
    p.add_argument("--val-streams", type=int, default=40,
                   help="streams from the validation kits (default 40): thresholds, selection")
    p.add_argument("--seconds", type=float, default=20.0, help="length of a stream (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mma", action="store_true",
                   help="also play the grooves of mma's library (needs `mma`: apt-get install "
                        "mma); read once into OUT/library.json")
    p.add_argument("--music-fonts", metavar="DIR",
                   help="SoundFonts (.sf2) under DIR play the music under some grooves (their "
                        "melodic programs: bass, chords, lead), e.g. data/corpus/pkgs; "
                        "default: synthesised tones only")
    p.add_argument("--h2songs", metavar="DIR",
                   help="also play the Hydrogen songs (.h2song) found under DIR, e.g. the "
                        "corpus's unpacked packages data/corpus/pkgs")
    p.add_argument("--relabel", action="store_true",
                   help="render nothing: run the onset detector of today's defaults again on "
                        "the streams OUT/streams.csv lists and rewrite their onsets files "
                        "(after a detector change, so training sees the live path's onsets)")


def _rng(seed: int, *parts):
    import numpy as np
    return np.random.default_rng([seed, zlib.crc32("|".join(map(str, parts)).encode())])


def complete_kit(kit, donors: list, rng):
    """`kit` with each role it lacks borrowed from a random donor kit that has it."""
    from drumclassifier.grooves.render import Kit
    instruments, roles = dict(kit.instruments), dict(kit.roles)
    needed = ("kick", "snare", "hh_closed", "hh_open", "hh_pedal", "crash", "ride",
              "ride_bell", "tom_hi", "tom_mid", "tom_low")
    for role in needed:
        if role in roles:
            continue
        have = [d for d in donors if role in d.roles]
        if not have:
            continue
        d = have[int(rng.integers(len(have)))]
        name = f"{d.name}/{d.roles[role]}"
        instruments[name] = d.instruments[d.roles[role]]
        roles[role] = name
        # the donor's other pieces of that family come along (open and pedal hihat with
        # the closed one), so a hihat is one hihat
        for other in needed:
            if other not in roles and other in d.roles and other.split("_")[0] == role.split("_")[0]:
                oname = f"{d.name}/{d.roles[other]}"
                instruments[oname] = d.instruments[d.roles[other]]
                roles[other] = oname
    return Kit(kit.name, instruments, roles)


def draw_notes(rng, seconds: float, library=()):
    """-> (notes, groove name, bpm): a programmed groove, one of the library's (if any:
    a third of the streams) or a randomised one."""
    import numpy as np

    from drumclassifier.grooves.generator import random_program
    from drumclassifier.grooves.library import play
    from drumclassifier.grooves.patterns import GROOVES, program
    if library and rng.random() < 1 / 3:
        g = library[int(rng.integers(len(library)))]
        bpm = (g.bpm * rng.uniform(0.75, 1.3) if g.bpm else
               np.exp(rng.uniform(np.log(60), np.log(200))))
        bpm = float(min(240, max(50, bpm)))
        return play(g, bpm, seconds, rng), f"{g.source}:{g.name}", bpm
    if rng.random() < 0.4:
        name = str(rng.choice(sorted(GROOVES)))
        lo, hi = GROOVES[name][0]
        bpm = float(min(240, max(50, rng.uniform(lo, hi) * rng.uniform(0.75, 1.3))))
        return program(name, bpm, seconds, rng), name, bpm
    bpm = float(np.exp(rng.uniform(np.log(50), np.log(240))))        # log-uniform 50-240
    return random_program(bpm, seconds, rng), "random", bpm


def label_onsets(onsets, notes, sr: int) -> list[tuple[int, str]]:
    """Detected onsets [Onset] + truth notes -> [(sample, "kick+hihat" | "")].

    Every note goes to the nearest onset within TOL_S; an onset's labels are its notes'
    classes (sorted, unique); an onset without notes is a negative ("")."""
    import numpy as np
    if not onsets:
        return []
    times = np.array([o.sample for o in onsets]) / sr
    labels: list[set] = [set() for _ in onsets]
    for n in notes:
        k = int(np.argmin(np.abs(times - n.time_s)))
        if abs(times[k] - n.time_s) <= TOL_S:
            labels[k].add(n.label)
    return [(o.sample, "+".join(sorted(lab))) for o, lab in zip(onsets, labels)]


def write_onsets(path: Path, labelled: list) -> None:
    """[(sample, labels)] -> path, atomically (the onsets file marks a stream done)."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sample", "labels"])
        w.writerows(labelled)
    tmp.replace(path)


def relabel(out: Path, detector) -> list[dict]:
    """Detect again on every stream OUT/streams.csv lists; its rows with the new counts."""
    from types import SimpleNamespace

    import soundfile as sf
    from tqdm import tqdm
    with (out / "streams.csv").open() as f:
        rows = list(csv.DictReader(f))
    for row in tqdm(rows, desc="relabel", unit="stream", dynamic_ncols=True):
        audio = out / row["audio"]
        with audio.with_name(audio.stem + ".truth.csv").open() as f:
            notes = [SimpleNamespace(time_s=float(r["time_s"]), label=r["label"])
                     for r in csv.DictReader(f)]
        y, sr = sf.read(audio, dtype="float32", always_2d=True)
        labelled = label_onsets(detector(sr).process(y), notes, sr)
        write_onsets(audio.with_name(audio.stem + ".onsets.csv"), labelled)
        row.update(onsets=len(labelled), negatives=sum(not lab for _, lab in labelled))
    return rows


def render_one(i: int, split: str, kits: dict, out: Path, seconds: float, seed: int,
               detector, library=(), fonts=()) -> dict:
    import soundfile as sf

    from drumclassifier.grooves.render import SR, mix, train_condition
    d = out / split
    stem = f"{i:05d}"
    audio, truth, ons = d / f"{stem}.flac", d / f"{stem}.truth.csv", d / f"{stem}.onsets.csv"
    rng = _rng(seed, split, i)
    names = sorted(kits)
    kit = kits[names[int(rng.integers(len(names)))]]
    kit = complete_kit(kit, [kits[n] for n in names if n != kit.name], rng)
    notes, groove, bpm = draw_notes(rng, seconds, library)
    clean, kept = mix(notes, kit)
    y, cond = train_condition(clean, bpm, rng, fonts)
    row = {"split": split, "audio": str(audio.relative_to(out)), "kit": kit.name,
           "groove": groove, "bpm": round(bpm, 1), "condition": cond, "notes": len(kept)}
    if ons.is_file() and audio.is_file():          # resumable: already done
        with ons.open() as f:
            labs = [r["labels"] for r in csv.DictReader(f)]
        return {**row, "onsets": len(labs), "negatives": sum(not x for x in labs)}
    d.mkdir(parents=True, exist_ok=True)
    sf.write(audio, y, SR, subtype="PCM_24")
    with truth.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time_s", "label", "velocity"])
        for n in kept:
            w.writerow([f"{n.time_s:.6f}", n.label, n.velocity])
    # the stored (24-bit) audio is what training reads: detect on exactly that
    y, _ = sf.read(audio, dtype="float32", always_2d=True)
    labelled = label_onsets(detector.process(y), kept, SR)
    write_onsets(ons, labelled)
    return {**row, "onsets": len(labelled), "negatives": sum(not lab for _, lab in labelled)}


def run(args) -> int:
    from drumclassifier.errors import ConfigError

    from .config import OnsetConfig
    from .onset import OnsetDetector

    out = Path(args.out)
    if args.relabel:
        if not (out / "streams.csv").is_file():
            raise ConfigError(f"--relabel: {out / 'streams.csv'} not found (render first)")
        rows = relabel(out, lambda sr: OnsetDetector(sr, OnsetConfig()))
    else:
        rows = render(args, out)
    if not rows:
        return 0
    tmp = out / "streams.csv.tmp"                  # replaced, not rewritten in place
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    tmp.replace(out / "streams.csv")
    n_on = sum(int(r["onsets"]) for r in rows)
    n_neg = sum(int(r["negatives"]) for r in rows)
    print(f"{len(rows)} streams, {sum(int(r['notes']) for r in rows)} notes, {n_on} detected "
          f"onsets ({n_neg} with no drum note near) -> {out / 'streams.csv'}", file=sys.stderr)
    return 0


def render(args, out: Path) -> list[dict]:
    """Render (or resume) the streams of both splits; one row per stream."""
    from tqdm import tqdm

    from drumclassifier.errors import ConfigError
    from drumclassifier.grooves.render import SR, load_kits

    from .config import OnsetConfig
    from .onset import OnsetDetector

    manifest = Path(args.manifest)
    if not manifest.is_file():
        raise ConfigError(f"{manifest}: manifest not found (build it with "
                          "`drumclassifier corpus build`)")
    library = []
    if args.mma or args.h2songs:
        from drumclassifier.grooves.library import build_library, find_mma
        mma = find_mma() if args.mma else None
        if args.mma and not mma and not (out / "library.json").is_file():
            raise ConfigError("--mma: mma is not installed (apt-get install mma)")
        songs = sorted(Path(args.h2songs).rglob("*.h2song")) if args.h2songs else []
        library = build_library(out / "library.json", mma, songs)
        by = {}
        for g in library:
            by[g.source] = by.get(g.source, 0) + 1
        print(f"groove library: {len(library)} grooves {by} ({out / 'library.json'})",
              file=sys.stderr)
    fonts = []
    if args.music_fonts:
        from drumclassifier.grooves.render import melodic_fonts
        fonts = melodic_fonts(sorted(Path(args.music_fonts).rglob("*.sf2")))
        if not fonts:
            raise ConfigError(f"--music-fonts {args.music_fonts}: no SoundFont with melodic "
                              "programs found")
        print(f"music fonts: {', '.join(f.name for f in fonts)}", file=sys.stderr)
    rows = []
    for split, n in (("train", args.streams), ("val", args.val_streams)):
        kits = load_kits(manifest, split)
        if n and not kits:
            raise ConfigError(f"{manifest}: no kits in split {split!r}")
        detector = OnsetDetector(SR, OnsetConfig())
        for i in tqdm(range(n), desc=f"grooves {split}", unit="stream", dynamic_ncols=True):
            rows.append(render_one(i, split, kits, out, args.seconds, args.seed, detector,
                                   library, fonts))
    return rows
