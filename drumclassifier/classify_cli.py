"""`drumclassifier classify`: label files and folders, in batches, decoding in parallel."""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .cli_common import add_model_args

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
                   help="copy (never move) each file into DIR/<label>/; never overwrites")
    add_model_args(p)
    p.add_argument("-b", "--batch-size", type=int, default=32,
                   help="files per model call (default: 32)")
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


def unique_destination(dest_dir: Path, name: str) -> Path:
    """DIR/name, or DIR/stem (2).ext ... if taken: a copy never overwrites.

    `name` must be a bare file name (no separators, not "." or ".."), so the
    destination is always inside dest_dir.
    """
    if not name or name in (".", "..") or Path(name).name != name or "\\" in name:
        raise ValueError(f"not a bare file name: {name!r}")
    dest = dest_dir / name
    k = 2
    while dest.exists() or dest.is_symlink():
        dest = dest_dir / f"{Path(name).stem} ({k}){Path(name).suffix}"
        k += 1
    return dest


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

    from .audio import display_path, find_audio_files
    from .classifier import DrumClassifier

    out_path = Path(args.output) if args.output else None
    if out_path and out_path.exists() and not args.force:
        print(f"drumclassifier classify: error: {out_path} exists; use --force to overwrite",
              file=sys.stderr)
        return 2
    unlistable: list = []
    files = find_audio_files(args.paths, recursive=args.recursive, errors=unlistable)
    for _, msg in unlistable:
        print(f"error: {msg}", file=sys.stderr)
    if not files:
        print("drumclassifier classify: error: no audio files found in "
              + ", ".join(map(display_path, args.paths)), file=sys.stderr)
        return 2
    clf = DrumClassifier(args.weights, args.config, args.model_device)
    labels = clf.labels
    failures = [path for path, _ in unlistable]

    def on_error(path, msg):
        failures.append(path)
        tqdm.write(f"error: {msg}", file=sys.stderr)

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
                if args.sort_into:
                    dest_dir = Path(args.sort_into) / r.label
                    try:
                        dest_dir.mkdir(parents=True, exist_ok=True)
                        copy_into(Path(src), dest_dir)
                    except OSError as e:   # full disk, read-only target...: this file fails
                        on_error(src, f"{name}: cannot copy into {display_path(dest_dir)} "
                                      f"({e.strerror or e})")
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
    if failures:
        print(f"{len(failures)} of {len(files)} files failed", file=sys.stderr)
    return 1 if failures else 0
