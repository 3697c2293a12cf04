"""How fast `drumclassifier classify` labels a sample library, against the I/O floor.

In one run, over the same files:
  1. decode only: every file read, mixed to stereo, resampled and cut to the analysis
     window exactly as classify does, by the same decoding threads, no model: the floor;
  2. classify: the real command (`drumclassifier classify -r FOLDER --format csv -o OUT`),
     timed from the start of the process to its end (loading the model included);
  3. classify --resume on the unchanged library: what a second run costs;
  4. agreement: for a sample of files, the command's probabilities against the Python API
     (`DrumClassifier.classify_from_path`, one file at a time): the largest difference
     (the CSV holds 4 decimals, so up to 5e-5 is rounding) and the labels that differ.

    python -m bench.batch_speed [FOLDER] [--repeat N] [--check 200]

FOLDER defaults to the corpus's one-shots (data/corpus/audio, 4,548 files after
`drumclassifier corpus build`). Copies of a folder can make a bigger library
(`--repeat 4` classifies a folder of 4 copies, hard links where possible).
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def link_copies(src: Path, dst: Path, repeat: int) -> None:
    """dst/copy{k}/... = src's tree, repeat times (hard links: no extra disk)."""
    for k in range(repeat):
        for f in src.rglob("*"):
            if f.is_file():
                out = dst / f"copy{k}" / f.relative_to(src)
                out.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(f, out)
                except OSError:
                    shutil.copy2(f, out)


def timed_classify(args_list: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "drumclassifier.cli", "classify", *args_list],
                          capture_output=True, text=True)
    return time.perf_counter() - t0, done


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", nargs="?", default="data/corpus/audio")
    p.add_argument("--repeat", type=int, default=1, help="copies of FOLDER to classify")
    p.add_argument("--check", type=int, default=200, help="files checked against the API")
    p.add_argument("-j", "--jobs", type=int, default=min(4, os.cpu_count() or 1),
                   help="decoding threads, for the floor and the command (its default)")
    args = p.parse_args()

    from drumclassifier import DrumClassifier
    from drumclassifier.audio import display_path, find_audio_files
    from drumclassifier.errors import DrumClassifierError

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"bench.batch_speed: error: {folder} is not a folder (build the corpus, or "
              "name a folder of one-shots)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        if args.repeat > 1:
            link_copies(folder, Path(tmp) / "lib", args.repeat)
            folder = Path(tmp) / "lib"
        files = find_audio_files([folder], recursive=True)
        clf = DrumClassifier(device="cpu")
        print(f"{len(files)} files in {folder}; {os.cpu_count()} cores; model "
              f"{clf.model_id} ({clf.cfg.net.members} members, reads up to "
              f"{clf.cfg.analysis_s:g} s of each file)")

        def load(path):
            try:
                return clf.load(path).shape[-1]
            except DrumClassifierError:
                return 0
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.jobs) as pool:
            lengths = list(pool.map(load, files))
        floor_s = time.perf_counter() - t0
        secs = sum(lengths) / clf.cfg.sample_rate_hz
        print(f"audio the model reads: {secs / max(1, len(files)):.2f} s per file on average")

        out = Path(tmp) / "labels.csv"
        common = ["-r", str(folder), "--format", "csv", "-o", str(out), "-q",
                  "-j", str(args.jobs), "--model-device", "cpu"]
        run_s, done = timed_classify(common)
        if done.returncode not in (0, 1):
            print(done.stderr, file=sys.stderr)
            return 1
        resume_s, done2 = timed_classify(common + ["--resume"])
        resumed = done2.stderr.strip().splitlines()[:1]

        rows = {r["path"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
        sample = random.Random(0).sample(files, min(args.check, len(files)))
        worst, differ, checked = 0.0, 0, 0
        for f in sample:
            row = rows.get(display_path(f))
            if row is None:
                continue
            r = clf.classify_from_path(f)
            worst = max(worst, *(abs(r.probs[lab] - float(row[f"p_{lab}"]))
                                 for lab in clf.labels))
            differ += r.label != row["label"]
            checked += 1

    per_min = 60 * len(files)
    print("\n| what | seconds | files per minute |\n|---|---|---|")
    print(f"| decode only ({args.jobs} threads): the floor | {floor_s:.1f} | "
          f"{per_min / floor_s:,.0f} |")
    print(f"| `drumclassifier classify` (whole command) | {run_s:.1f} | {per_min / run_s:,.0f} |")
    print(f"| the same again with --resume (nothing changed) | {resume_s:.1f} | "
          f"{per_min / resume_s:,.0f} |")
    print(f"\nresume: {resumed[0] if resumed else '(no summary)'}")
    print(f"against the API on {checked} files: largest probability difference "
          f"{worst:.1e} (CSV rounding: up to 5e-5), labels differing: {differ}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
