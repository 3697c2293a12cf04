"""`drumclassifier classify`: label files and folders, in batches, decoding in parallel."""
from __future__ import annotations

import argparse
import csv
import filecmp
import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .classifier import model_threads
from .cli_common import add_model_args, refuse_device_flag

EPILOG = """output formats:
  table  one line per file: path, label, confidence, then every class's probability
  csv    path,label,confidence,p_kick,p_snare,p_hihat,p_toms,p_cymbals,bytes,mtime_ns,model
  json   a list of {path, label, confidence, probs, bytes, mtime_ns, model}
         (bytes, mtime_ns: the file's size and modification time; model: which weights
         and config labelled it; --resume compares them)
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
    p.add_argument("--resume", action="store_true",
                   help="OUT exists (csv or json, from an earlier run, complete or "
                        "interrupted): keep the rows of files unchanged since (same size, "
                        "modification time and model), classify only what is new or "
                        "changed, drop rows of files no longer there, and rewrite OUT")
    p.add_argument("--sort-into", metavar="DIR",
                   help="copy (never move) each file into DIR/<label>/; never overwrites; a "
                        "file already there with the same bytes is skipped, and DIR is never "
                        "read as input (it may lie inside a folder being sorted)")
    add_model_args(p)
    refuse_device_flag(p)
    p.add_argument("-b", "--batch-size", type=int, default=16,
                   help="files per model call (default: %(default)s)")
    p.add_argument("-j", "--jobs", type=int, default=min(4, os.cpu_count() or 1),
                   help="decoding threads (default: min(4, CPUs))")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


# files decoded ahead per model round: a window is sorted by length into batches
WINDOW_BATCHES = 8


def iter_batches(clf, files, batch_size: int, jobs: int, on_error, threads: int = 1):
    """Yield (paths, probs [n, n_labels]) per window of files, in input order.

    A window (WINDOW_BATCHES x batch_size files) is decoded by `jobs` threads while the
    model works on the window before it; its files are grouped by length into batches (a
    batch costs what its longest item costs, and each item's result does not depend on its
    batch) that run on `threads` threads, and keep running while the caller writes the
    previous window's results. At most three windows of decoded audio are in memory, so a
    folder of any size is fine. Files that fail go to on_error(path, msg), in order.
    """
    import torch

    from .errors import DrumClassifierError

    def load(path):
        try:
            return path, clf.load(path), None
        except DrumClassifierError as e:
            return path, None, str(e)
        except Exception as e:  # an unexpected decoder failure must not end the batch
            return path, None, f"{path}: {type(e).__name__}: {e}"

    files = list(files)
    span = WINDOW_BATCHES * batch_size
    windows = [files[i:i + span] for i in range(0, len(files), span)]

    def results(paths, groups, calls):
        probs = torch.empty(len(paths), len(clf.labels))
        for g, call in zip(groups, calls):
            probs[g] = call.result()
        return paths, probs

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as decode, \
            ThreadPoolExecutor(max_workers=max(1, threads)) as model:
        ahead = [decode.submit(load, p) for p in windows[0]] if windows else []
        in_flight = None       # the window whose model calls run while the caller writes
        for k in range(len(windows)):
            loaded = [f.result() for f in ahead]
            ahead = [decode.submit(load, p) for p in windows[k + 1]] if k + 1 < len(windows) else []
            ok = []
            for path, wave, err in loaded:
                if err:
                    on_error(path, err)
                else:
                    ok.append((path, wave))
            by_length = sorted(range(len(ok)), key=lambda i: ok[i][1].shape[-1])
            groups = [by_length[i:i + batch_size] for i in range(0, len(ok), batch_size)]
            calls = [model.submit(clf.predict, [ok[i][1] for i in g]) for g in groups]
            if in_flight and in_flight[0]:
                yield results(*in_flight)
            in_flight = ([path for path, _ in ok], groups, calls)
        if in_flight and in_flight[0]:
            yield results(*in_flight)


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


def file_stamp(path) -> tuple[int, int]:
    """(size in bytes, modification time in ns): what says a file changed since a run."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def read_previous(out_path: Path, fmt: str) -> dict[str, dict]:
    """A --resume output's rows by their path text: {path: row} (csv: a dict of strings;
    json: the object). Raises ValueError if the file is not an output of that format."""
    text = out_path.read_text(encoding="utf-8", errors="replace")
    if fmt == "csv":
        rows = list(csv.DictReader(text.splitlines()))
        if rows and not {"path", "bytes", "mtime_ns", "model"} <= set(rows[0]):
            raise ValueError("no path/bytes/mtime_ns/model columns (written by an older "
                             "version or another program)")
    else:
        rows = json.loads(text) if text.strip() else []
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "path" in r
                                                  for r in rows):
            raise ValueError("not a JSON list of classify results")
    return {r["path"]: r for r in rows}


def unchanged(row: dict, stamp: tuple[int, int], model_id: str) -> bool:
    """A previous row still describes the file: same bytes, same mtime, same model."""
    return (str(row.get("model")) == model_id and str(row.get("bytes")) == str(stamp[0])
            and str(row.get("mtime_ns")) == str(stamp[1]))


def run(args) -> int:
    from tqdm import tqdm

    from .audio import display_path, duration_s, find_audio_files
    from .classifier import DrumClassifier

    def fail(msg: str) -> int:
        print(f"drumclassifier classify: error: {msg}", file=sys.stderr)
        return 2

    out_path = Path(args.output) if args.output else None
    if args.resume and (out_path is None or args.format == "table"):
        return fail("--resume needs -o OUT with --format csv or json (a table has no "
                    "file sizes and times to compare)")
    if args.resume and args.force:
        return fail("--resume keeps OUT's unchanged rows; --force overwrites OUT: "
                    "choose one")
    if out_path and out_path.exists() and not (args.force or args.resume):
        return fail(f"{out_path} exists; use --resume to classify only what is new or "
                    "changed since it was written, or --force to overwrite it")
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
        return fail("no audio files found in " + ", ".join(map(display_path, args.paths))
                    + hint)
    clf = DrumClassifier(args.weights, args.config, args.model_device)
    labels, model_id = clf.labels, clf.model_id
    threads = model_threads(clf)
    if threads > 1:
        import torch
        torch.set_num_threads(1)     # see model_threads: one torch thread per model call

    kept: dict = {}                  # file -> its previous row, for files unchanged since
    if args.resume and out_path.exists():
        try:
            previous = read_previous(out_path, args.format)
        except (ValueError, OSError) as e:
            return fail(f"--resume: cannot read {out_path}: {e}")
        for src in files:
            row = previous.get(display_path(src))
            try:
                if row is not None and unchanged(row, file_stamp(src), model_id):
                    kept[src] = row
            except OSError:
                pass                 # gone or unreadable now: classify it and report it
        gone = len(set(previous) - {display_path(f) for f in files})
        print(f"resume {display_path(out_path)}: {len(kept)} files unchanged (kept), "
              f"{len(files) - len(kept)} new or changed to classify"
              + (f", {gone} rows of files no longer there dropped" if gone else ""),
              file=sys.stderr)
    todo = [f for f in files if f not in kept]

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

    # a resumed output is written next to OUT and replaces it at the end (also after an
    # interruption: then it holds the kept rows and what was classified so far)
    write_path = (out_path.with_name(out_path.name + ".partial") if out_path and args.resume
                  else out_path)
    out = (open(write_path, "x" if write_path == out_path and not args.force else "w",
                newline="", encoding="utf-8") if out_path else sys.stdout)
    header = (["path", "label", "confidence"] + [f"p_{lab}" for lab in labels]
              + ["bytes", "mtime_ns", "model"])
    writer = csv.writer(out) if args.format == "csv" else None
    if writer:
        writer.writerow(header)
    as_json = []
    position = {src: i for i, src in enumerate(files)}
    cursor = 0                       # files before it have been written or have failed

    def emit(row):
        if writer:
            writer.writerow([row[h] for h in header])
        else:
            as_json.append(row)

    def emit_kept(upto: int):
        """The kept rows of files before position `upto`, in input order."""
        nonlocal cursor
        for src in files[cursor:upto]:
            if src in kept:
                emit(kept[src])
        cursor = max(cursor, upto)

    bar = tqdm(total=len(todo), unit="file", file=sys.stderr,
               disable=args.quiet or len(todo) < 2, dynamic_ncols=True)
    try:
        for paths, probs in iter_batches(clf, todo, args.batch_size, args.jobs, on_error,
                                         threads):
            for src, r in zip(paths, clf.results(probs, paths)):
                name = display_path(src)     # printable even if the name is not UTF-8
                if args.format == "table":
                    probs_txt = " ".join(f"{lab}={r.probs[lab]:.3f}" for lab in labels)
                    print(f"{name}\t{r.label}\t{r.confidence:.3f}\t{probs_txt}", file=out)
                else:
                    emit_kept(position[src] + 1)     # src itself is not a kept file
                    size, mtime = file_stamp(src)
                    if writer:
                        emit(dict(zip(header, [name, r.label, f"{r.confidence:.4f}"]
                                      + [f"{r.probs[lab]:.4f}" for lab in labels]
                                      + [size, mtime, model_id])))
                    else:
                        emit({"path": name, "label": r.label,
                              "confidence": round(r.confidence, 4),
                              "probs": {k: round(v, 4) for k, v in r.probs.items()},
                              "bytes": size, "mtime_ns": mtime, "model": model_id})
                note_if_long(src, name)
                if args.sort_into:
                    sort(src, name, r.label)
            out.flush()
            bar.update(len(paths))
    finally:
        emit_kept(len(files))
        if args.format == "json":    # also after an interruption: what was done is kept
            json.dump(as_json, out, indent=1)
            out.write("\n")
        bar.update(len(failures))
        bar.close()
        if out_path:
            out.close()
            if write_path != out_path:
                os.replace(write_path, out_path)
    if args.sort_into:
        n = sorted_n
        print(f"sorted into {display_path(args.sort_into)}: {n['sorted']} copied, "
              f"{n['skipped']} skipped (already there, same bytes), {n['failed']} failed",
              file=sys.stderr)
    if failures:
        print(f"{len(failures)} of {len(files)} files failed", file=sys.stderr)
    return 1 if failures else 0
