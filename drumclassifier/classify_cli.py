"""`drumclassifier classify`: label files and folders, in batches, decoding in parallel."""
from __future__ import annotations

import argparse
import csv
import filecmp
import json
import os
import shutil
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .cli_common import add_model_args, refuse_device_flag

EPILOG = """output formats:
  table  one line per file: path, label, confidence, then every class's probability
  csv    path,label,confidence,p_kick,p_snare,p_hihat,p_toms,p_cymbals
  json   a list of {path, label, confidence, probs}
A file that cannot be used gets one line on stderr and the batch goes on;
the exit status is 1 if any file failed."""


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files and/or folders")
    p.add_argument("-r", "--recursive", action="store_true",
                   help="walk folders recursively (default: only their top level)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="write results to OUT instead of stdout (refuses to overwrite)")
    p.add_argument("--force", action="store_true", help="allow overwriting -o OUT")
    p.add_argument("--sort-into", metavar="DIR",
                   help="copy (never move) each file into DIR/<label>/; never overwrites; a "
                        "file already there with the same bytes is skipped, and DIR is never "
                        "read as input (it may lie inside a folder being sorted)")
    add_model_args(p)
    refuse_device_flag(p)
    p.add_argument("-b", "--batch-size", type=int, default=32,
                   help="files per model call (default: %(default)s)")
    p.add_argument("-j", "--jobs", type=int, default=min(4, os.cpu_count() or 1),
                   help="decoding threads (default: min(4, CPUs))")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def iter_batches(clf, files, batch_size: int, jobs: int, on_error):
    """Yield (paths, probs) batches; files are decoded in threads while the model runs.

    At most a few batches of decoded audio are in flight, so memory stays bounded for
    a folder of any size. Files that fail are reported through on_error(path, msg).
    """
    from .errors import DrumClassifierError

    def load(path):
        try:
            return path, clf.load(path), None
        except DrumClassifierError as e:
            return path, None, str(e)
        except Exception as e:  # an unexpected decoder failure must not end the batch
            return path, None, f"{path}: {type(e).__name__}: {e}"

    window = deque()
    it = iter(files)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for path in it:
            window.append(pool.submit(load, path))
            if len(window) >= 3 * batch_size:
                break
        paths, waves = [], []
        while window:
            path, wave, err = window.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                window.append(pool.submit(load, nxt))
            if err:
                on_error(path, err)
            else:
                paths.append(path)
                waves.append(wave)
            if len(waves) == batch_size or (not window and waves):
                yield paths, clf.predict(waves)
                paths, waves = [], []


def taken_names(dest_dir: Path, name: str):
    """DIR/name, DIR/stem (2).ext, DIR/stem (3).ext ... while they exist: the names a copy
    of `name` may already have there (a dangling symlink counts as taken)."""
    if not name or name in (".", "..") or Path(name).name != name or "\\" in name:
        raise ValueError(f"not a bare file name: {name!r}")
    dest, k = dest_dir / name, 2
    while dest.exists() or dest.is_symlink():
        yield dest
        dest = dest_dir / f"{Path(name).stem} ({k}){Path(name).suffix}"
        k += 1


def unique_destination(dest_dir: Path, name: str) -> Path:
    """DIR/name, or DIR/stem (2).ext ... if taken: a copy never overwrites.

    `name` must be a bare file name (no separators, not "." or ".."), so the
    destination is always inside dest_dir.
    """
    taken = sum(1 for _ in taken_names(dest_dir, name))
    if not taken:
        return dest_dir / name
    return dest_dir / f"{Path(name).stem} ({taken + 1}){Path(name).suffix}"


def already_sorted(src: Path, dest_dir: Path, ignore=frozenset()) -> Path | None:
    """A copy of src already in dest_dir under its name or a numbered one: a regular file
    with the same bytes (sizes compared first, then contents); `ignore`: copies made by
    this run (two identical inputs still get one copy each)."""
    for cand in taken_names(dest_dir, src.name):
        if cand in ignore or cand.is_symlink() or not cand.is_file():
            continue
        try:
            if filecmp.cmp(src, cand, shallow=False):
                return cand
        except OSError:
            continue
    return None


def copy_into(src: Path, dest_dir: Path) -> Path:
    """Copy src into dest_dir under a free name; the file is created exclusively ('x'), so
    a file that appears meanwhile is never overwritten. Returns the copy's path."""
    while True:
        dest = unique_destination(dest_dir, src.name)
        try:
            with open(src, "rb") as fin, open(dest, "xb") as fout:
                shutil.copyfileobj(fin, fout)
        except FileExistsError:
            continue
        except BaseException:
            if dest.exists():        # ours, partial: do not leave half a copy behind
                dest.unlink()
            raise
        shutil.copystat(src, dest)
        return dest


def run(args) -> int:
    from tqdm import tqdm

    from .audio import display_path, duration_s, find_audio_files
    from .classifier import DrumClassifier

    out_path = Path(args.output) if args.output else None
    if out_path and out_path.exists() and not args.force:
        print(f"drumclassifier classify: error: {out_path} exists; use --force to overwrite",
              file=sys.stderr)
        return 2
    unlistable: list = []
    target = [args.sort_into] if args.sort_into else []     # never read as input
    files = find_audio_files(args.paths, recursive=args.recursive, errors=unlistable,
                             exclude=target)
    for _, msg in unlistable:
        print(f"error: {msg}", file=sys.stderr)
    if not files:
        deeper = 0 if args.recursive else len(find_audio_files(
            [p for p in args.paths if Path(p).is_dir()], recursive=True, exclude=target))
        hint = f" ({deeper} audio files in sub-folders: add -r)" if deeper else ""
        print("drumclassifier classify: error: no audio files found in "
              + ", ".join(map(display_path, args.paths)) + hint, file=sys.stderr)
        return 2
    clf = DrumClassifier(args.weights, args.config, args.model_device)
    labels = clf.labels
    failures = [path for path, _ in unlistable]
    sorted_n = {"sorted": 0, "skipped": 0, "failed": 0}
    made: set[Path] = set()          # copies this run made: never "already there"

    def on_error(path, msg):
        failures.append(path)
        tqdm.write(f"error: {msg}", file=sys.stderr)

    def note_if_long(src, name):
        """A groove or a song classified as one hit: said once per file."""
        secs = duration_s(src)
        if secs is not None and secs > clf.cfg.window_s:
            tqdm.write(f"note: {name}: {secs:.1f} s long; only its first "
                       f"{clf.cfg.analysis_s:g} s was classified, as one hit (for a groove "
                       "or a song: drumclassifier stream FILE)", file=sys.stderr)

    def sort(src, name, label):
        dest_dir = Path(args.sort_into) / label
        try:
            dest_dir.mkdir(parents=True, exist_ok=True)
            if already_sorted(Path(src), dest_dir, made) is not None:
                sorted_n["skipped"] += 1
                return
            made.add(copy_into(Path(src), dest_dir))
            sorted_n["sorted"] += 1
        except OSError as e:   # full disk, read-only target...: this file fails
            sorted_n["failed"] += 1
            on_error(src, f"{name}: cannot copy into {display_path(dest_dir)} "
                          f"({e.strerror or e})")

    out = (open(out_path, "w" if args.force else "x", newline="", encoding="utf-8")
           if out_path else sys.stdout)
    writer = csv.writer(out) if args.format == "csv" else None
    if writer:
        writer.writerow(["path", "label", "confidence"] + [f"p_{lab}" for lab in labels])
    as_json = []
    bar = tqdm(total=len(files), unit="file", file=sys.stderr,
               disable=args.quiet or len(files) < 2, dynamic_ncols=True)
    try:
        for paths, probs in iter_batches(clf, files, args.batch_size, args.jobs, on_error):
            for src, r in zip(paths, clf.results(probs, paths)):
                name = display_path(src)     # printable even if the name is not UTF-8
                if args.format == "table":
                    probs_txt = " ".join(f"{lab}={r.probs[lab]:.3f}" for lab in labels)
                    print(f"{name}\t{r.label}\t{r.confidence:.3f}\t{probs_txt}", file=out)
                elif writer:
                    writer.writerow([name, r.label, f"{r.confidence:.4f}"]
                                    + [f"{r.probs[lab]:.4f}" for lab in labels])
                else:
                    as_json.append({"path": name, "label": r.label,
                                    "confidence": round(r.confidence, 4),
                                    "probs": {k: round(v, 4) for k, v in r.probs.items()}})
                note_if_long(src, name)
                if args.sort_into:
                    sort(src, name, r.label)
            out.flush()
            bar.update(len(paths))
        if args.format == "json":
            json.dump(as_json, out, indent=1)
            out.write("\n")
    finally:
        bar.update(len(failures))
        bar.close()
        if out_path:
            out.close()
    if args.sort_into:
        n = sorted_n
        print(f"sorted into {display_path(args.sort_into)}: {n['sorted']} copied, "
              f"{n['skipped']} skipped (already there, same bytes), {n['failed']} failed",
              file=sys.stderr)
    if failures:
        print(f"{len(failures)} of {len(files)} files failed", file=sys.stderr)
    return 1 if failures else 0
