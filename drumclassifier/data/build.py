"""`drumclassifier corpus build`: fetch, label, render, de-duplicate, split, write a manifest.

    drumclassifier corpus build [--out DIR] [--sources a,b] [--from DIR ...] [--csv FILE ...]

Packages are fetched with `apt-get download` into DIR/debs and unpacked with
`dpkg -x` into DIR/pkgs/PKG (nothing is installed). Every one-shot is written as
DIR/audio/<source>/<kit>/<name>.flac (44.1 kHz stereo, <= 4 s, onset at sample
0); DIR/manifest.csv lists the kept ones, DIR/duplicates.csv the dropped ones.
Re-running skips what is already done.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
import time
from pathlib import Path

# Built only on request (--sources all or by name): measured not to help the model
NOT_DEFAULT_SOURCES = ("drumsynth",)
SOURCES = {
    # source name: (Debian packages, kind)
    "hydrogen": (["hydrogen-drumkits", "hydrogen-data"], "hydrogen"),
    "avldrums": (["avldrums.lv2-soundfont"], "avl"),
    "fluid": (["fluid-soundfont-gm"], "gm"),
    "timgm6mb": (["timgm6mb-soundfont"], "gm"),
    "sfgmbank": (["csound-soundfont"], "gm"),
    "lmms": (["lmms-common"], "lmms"),
    "sonicpi": (["sonic-pi-samples"], "sonicpi"),
    "drumsynth": (["lmms-common"], "drumsynth"),
    "generaluser": (["minuet-data"], "gm"),
    # npm packages are "npm:NAME@VERSION"; the Debian copy is read to skip identical files
    "supersonic": (["npm:supersonic-scsynth-samples@0.84.2", "sonic-pi-samples"], "supersonic"),
    "chuck": (["chuck-data"], "chuck"),
    "drumline": (["fluidr3mono-gm-soundfont"], "drumline"),
    # a GitHub repository, not a package: read from --muldjord DIR or cloned (muldjord.git_url)
    "muldjord": ([], "multimic"),
}
GM_FONTS = {"fluid": ("FluidR3_GM.sf2", "FluidR3_GM"), "timgm6mb": ("TimGM6mb.sf2", "TimGM6mb"),
            "sfgmbank": ("sf_GMbank.sf2", "sf_GMbank"),
            "generaluser": ("GeneralUser-v1.47.sf2", "GeneralUser")}

# The AVL drumkits' own key map (bank 0 preset 0, MIDI channel 1), read from the
# key-prefixed sample names inside both SF2 files ("48-SabianRockHatSwis",
# "50-SabianAA16CrashCh" ...). Left out: 37 side stick, 39 hand clap,
# 54 tambourine, 56 cowbell, 61 maraca.
AVL_KEYMAP = {
    36: "kick",
    38: "snare", 40: "snare",                                   # center, edge
    41: "toms", 43: "toms", 45: "toms", 47: "toms",             # floor/rack tom, center/edge
    42: "hihat", 44: "hihat", 46: "hihat", 48: "hihat",         # closed, pedal, semi-open, swish
    49: "cymbals", 50: "cymbals", 51: "cymbals", 52: "cymbals",  # crash, choke, ride, ride choke
    53: "cymbals", 55: "cymbals", 57: "cymbals", 58: "cymbals",  # ride bell, splash, crash 2, choke
    59: "cymbals", 60: "cymbals",                               # ride shank, 22" Paiste 2002
}

def load_config(path: str | Path | None):
    """The corpus settings (drumclassifier/data/config.py) overridden by a YAML file."""
    from .config import load_corpus_config

    return load_corpus_config(path)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["build", "stats"],
                        help="build: fetch, render and write the corpus; stats: per source/class table")
    parser.add_argument("--out", default="data/corpus", help="corpus folder (default: data/corpus)")
    parser.add_argument("--sources", default="default",
                        help=f"comma-separated packaged sources to include: {','.join(SOURCES)}; "
                             "'default' = all but drumsynth (adding its synthetic drums made held-out "
                             "toms worse in bench/experiment.py: README model card), 'all', or "
                             "'none' (only --from/--csv data)")
    parser.add_argument("--from", dest="from_dirs", action="append", default=[], metavar="DIR",
                        help="add your own library: DIR/<class>/... audio files (repeatable)")
    parser.add_argument("--csv", dest="csv_files", action="append", default=[], metavar="FILE",
                        help="add your own library listed as path,label[,kit] rows (repeatable)")
    parser.add_argument("--config", default=None,
                        help="corpus config YAML (default: configs/corpus.yaml of the repo, if present)")
    parser.add_argument("--pkgs", default=None, metavar="DIR",
                        help="read already unpacked packages from DIR/<pkg> instead of fetching")
    parser.add_argument("--muldjord", default=None, metavar="DIR",
                        help="a clone of the MuldjordKit repository (sfzinstruments/DrumGizmo.MuldjordKit, "
                             "CC-BY-4.0; 347 MB); without it the builder clones it into OUT/repos")
    parser.add_argument("--baseline", default=None, metavar="MANIFEST",
                        help="build: keep every hit of this earlier manifest when de-duplicating and "
                             "report how the held-out (val/test) splits differ from it")
    parser.add_argument("--manifest", default=None,
                        help="stats: the manifest to describe (default: OUT/manifest.csv)")
    parser.add_argument("--markdown", action="store_true", help="stats: print a Markdown table")


def _log(msg: str) -> None:
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


def collect_items(out: Path, sources: list[str], cfg: dict, pkgs_dir: Path | None = None,
                  from_dirs=(), csv_files=(), muldjord_dir: Path | None = None) -> list:
    """All items of the selected sources (fetching packages as needed)."""
    from . import sources as S
    from .render import FontRenderer
    from .sf2 import velocity_layers

    def layers_of(font):
        try:
            return velocity_layers(font)
        except (ValueError, KeyError, struct.error) as e:  # unreadable: configured velocities only
            _log(f"corpus: {font.name}: velocity layers not read ({e})")
            return None

    def fetch(spec: str) -> Path | None:
        if spec.startswith("npm:"):
            name = spec[4:].rsplit("@", 1)[0]
            return pkgs_dir / name / "package" if pkgs_dir else S.fetch_npm_package(spec[4:], out, log=_log)
        return pkgs_dir / spec if pkgs_dir else S.fetch_package(spec, out, log=_log)

    items = []
    for src in sources:
        pkgs, kind = SOURCES[src]
        roots = []
        for pkg in pkgs:
            root = fetch(pkg)
            if root is not None and root.exists():
                roots.append(root)
        if kind == "multimic":
            root = S.git_repository(cfg["muldjord"]["git_url"], muldjord_dir, out, log=_log)
            roots = [root] if root is not None else []
        if not roots:
            _log(f"corpus: source {src} skipped: no package")
            continue
        n0 = len(items)
        try:
            if kind == "hydrogen":
                for root in roots:
                    for kd in S.hydrogen_kit_dirs(root):
                        ov = (cfg.get("hydrogen_overrides") or {}).get(kd.name)
                        items += S.hydrogen_items(kd, ov, source=src)
            elif kind == "lmms":
                for root in roots:
                    for d in sorted(root.glob("usr/share/lmms/samples/drums")):
                        items += S.named_file_items(d, src, "lmms_drums")
            elif kind == "sonicpi":
                for root in roots:
                    for d in sorted(root.glob("usr/share/sonic-pi/samples")):
                        items += S.named_file_items(d, src, "sonic_pi")
            elif kind == "drumsynth":
                lmms = shutil.which("lmms")
                if lmms is None:
                    _log("corpus: drumsynth: renders through lmms, which is not on PATH (install it)")
                for root in roots if lmms else []:
                    for d in sorted(root.glob("usr/share/lmms/samples/drumsynth")):
                        items += S.drumsynth_items(d, lmms, cfg["drumsynth"].get("overrides"), source=src)
            elif kind == "gm":
                fname, family = GM_FONTS[src]
                fonts = sorted(roots[0].rglob(fname))
                if fonts:
                    r = FontRenderer(fonts[0])
                    layers = layers_of(fonts[0])
                    presets = [(p, n) for p, n in r.drum_presets()
                               if not any(x.lower() in n.lower() for x in cfg["exclude_presets"])]
                    for p, n in presets:
                        keys = next((v for k, v in (cfg.get("preset_keys") or {}).items()
                                     if k.lower() in n.lower()), None)
                        keymap = None if keys is None else {k: S.label_from_gm_key(k) for k in keys}
                        items += S.font_items(fonts[0], src, family, cfg["gm_velocities"],
                                              keymap=keymap, presets=[(p, n)], layers=layers)
            elif kind == "supersonic":  # only the files Debian's sonic-pi-samples lacks
                debian = [p for r in roots[1:] for p in r.glob("usr/share/sonic-pi/samples/*")]
                items += S.new_files_only(S.named_file_items(roots[0] / "samples", src, "supersonic"),
                                          debian)
            elif kind == "chuck":  # the book's chapter folders hold copies of its audio/ folder
                for root in roots:
                    for d in sorted(root.glob("usr/share/doc/chuck-data/examples/data")):
                        items += S.named_file_items(d, src, "chuck_data")
                    for d in sorted(root.glob("usr/share/doc/chuck-data/examples/book/digital-artists/audio")):
                        items += S.named_file_items(d, src, "chuck_book")
            elif kind == "drumline":  # FluidR3Mono's marching presets; its kits are Fluid's
                fonts = sorted(roots[0].rglob("FluidR3Mono_GM.sf3"))
                font = FontRenderer(fonts[0]) if fonts else None   # loaded once: names only
                for preset, keys in (cfg["drumline"]["presets"] if fonts else {}).items():
                    name = font.preset_name(128, int(preset)) or str(preset)
                    items += S.font_items(fonts[0], src, "FluidR3Mono", cfg["gm_velocities"],
                                          keymap={int(k): lab for k, lab in keys.items()},
                                          presets=[(int(preset), name)])
            elif kind == "multimic":
                m = cfg["muldjord"]
                items += S.multimic_items(roots[0] / m["samples"], "MuldjordKit", m["pieces"],
                                          m["perspectives"], m["hits_per_piece"], source=src)
            elif kind == "avl":
                fonts = sorted({p.name: p for p in roots[0].rglob("*_LV2.sf2")}.values())
                for font in fonts:
                    r = FontRenderer(font)
                    name = r.preset_name(0, 0) or font.stem
                    family = "AVL_" + font.stem.replace("_4_LV2", "")
                    items += S.font_items(font, src, family, cfg["avl_velocities"],
                                          keymap=AVL_KEYMAP, bank=0, presets=[(0, name)],
                                          channel=0, is_drums=False, layers=layers_of(font))
        except Exception as e:  # noqa: BLE001 - one broken source must not stop the others
            _log(f"corpus: source {src} failed: {type(e).__name__}: {e}")
        if len(items) == n0:
            _log(f"corpus: source {src}: no one-shot found")
    for d in from_dirs:
        items += S.user_folder_items(Path(d))
    for c in csv_files:
        items += S.user_csv_items(Path(c))
    return items


def _save_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def materialise(items: list, out: Path, cfg: dict) -> tuple[list[dict], list]:
    """Write every item's FLAC (skipping done ones); return rows and mono snippets."""
    import numpy as np
    import soundfile as sf
    from tqdm import tqdm

    from .mics import mix_mics
    from .render import SAMPLE_RATE_HZ, DrumSynthRenderer, FontRenderer, load_audio, trim, write_flac
    from .sources import MicMix, SynthRender

    cache_path = out / "cache.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    window = int(cfg["dedupe"]["window_seconds"] * SAMPLE_RATE_HZ)
    max_samples = int(cfg["max_seconds"] * SAMPLE_RATE_HZ)
    renderers: dict[str, FontRenderer | DrumSynthRenderer] = {}
    rows, snippets, seen = [], [], set()
    silent: dict[str, int] = {}
    new = 0
    for it in tqdm(items, desc="one-shots", unit="hit", file=sys.stderr, mininterval=1.0):
        rel = it.rel_path
        if rel in seen:
            continue
        seen.add(rel)
        dst = out / rel
        try:
            if dst.exists():
                info = cache.get(rel)
                if info is None:
                    info = {"n": sf.info(str(dst)).frames, "trim": None}
                    cache[rel] = info
                snip, _ = sf.read(str(dst), frames=window, dtype="float32", always_2d=True)
            else:
                if isinstance(it.render, MicMix):
                    x = mix_mics(it.render.mics)
                elif isinstance(it.render, SynthRender):
                    r = it.render
                    if r.lmms not in renderers:
                        renderers[r.lmms] = DrumSynthRenderer(
                            r.lmms, timeout_s=cfg["drumsynth"]["timeout_seconds"])
                    x = renderers[r.lmms].render(r.preset)
                elif it.render is not None:
                    r = it.render
                    if r.font not in renderers:
                        renderers[r.font] = FontRenderer(r.font, cfg["hold_seconds"],
                                                         cfg["max_seconds"] + 0.5,
                                                         cfg["tail_threshold_db"])
                    x = renderers[r.font].render(r.key, r.velocity, r.preset, r.bank,
                                                 r.channel, r.is_drums)
                else:
                    x = load_audio(it.file)
                y, lead = trim(x, cfg["lead_threshold_db"], cfg["tail_threshold_db"], max_samples)
                if len(y) < 64:
                    silent[it.source] = silent.get(it.source, 0) + 1
                    continue
                write_flac(dst, y)
                info = {"n": len(y), "trim": lead}
                cache[rel] = info
                snip = y[:window]
                new += 1
                if new % 500 == 0:
                    _save_json(cache_path, cache)
        except Exception as e:  # noqa: BLE001 - report one line, go on with the next
            _log(f"corpus: failed {it.origin}: {type(e).__name__}: {e}")
            continue
        rows.append({"path": rel, "label": it.label, "source": it.source, "kit": it.kit,
                     "group": "", "velocity": it.velocity, "n_samples": info["n"],
                     "split": "", "lead_trim_samples": info["trim"], "origin": it.origin})
        snippets.append(np.asarray(snip, dtype=np.float32).mean(axis=1))
    _save_json(cache_path, cache)
    for src, n in sorted(silent.items()):
        _log(f"corpus: {src}: {n} silent render(s)/file(s) skipped (key absent from a kit)")
    return rows, snippets


def drop_duplicates(rows: list[dict], snippets: list, cfg: dict,
                    keep_first: set[str] = frozenset()) -> tuple[list[dict], list[dict]]:
    """Remove near-exact duplicates within each label; returns (kept, dropped rows).

    Rows whose path is in `keep_first` (an earlier manifest's) rank before all
    others, so a rebuild with more sources keeps every hit it kept before.
    """
    from .dedupe import find_duplicates
    from .render import SAMPLE_RATE_HZ
    from .sources import AUDIO_EXTS

    dcfg = cfg["dedupe"]
    prio = {s: i for i, s in enumerate(dcfg["priority"])}
    dropped_rows = []
    drop_idx: set[int] = set()
    for label in sorted({r["label"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["label"] == label]
        # recorded files (not renders) of one kit: the stricter same-kit threshold
        kit_ids = [f"{rows[i]['source']}/{rows[i]['kit']}"
                   if Path(rows[i]["origin"]).suffix.lower() in AUDIO_EXTS else None for i in idx]
        order = sorted(range(len(idx)), key=lambda k: (
            rows[idx[k]]["path"] not in keep_first,
            prio.get(rows[idx[k]]["source"], len(prio)),
            -(int(rows[idx[k]]["velocity"]) if rows[idx[k]]["velocity"] not in (None, "") else 0),
            rows[idx[k]]["path"]))
        dup = find_duplicates([snippets[i] for i in idx], order, dcfg["threshold"],
                              int(dcfg["max_lag_ms"] * SAMPLE_RATE_HZ / 1000), same_kit=kit_ids,
                              same_kit_threshold=dcfg.get("same_kit_file_threshold", dcfg["threshold"]))
        for d, (k, corr) in dup.items():
            drop_idx.add(idx[d])
            dropped_rows.append({**rows[idx[d]], "duplicate_of": rows[idx[k]]["path"],
                                 "correlation": f"{corr:.4f}"})
    kept = [r for i, r in enumerate(rows) if i not in drop_idx]
    return kept, dropped_rows


def baseline_diff(rows: list[dict], base: list[dict], splits=("test", "val")) -> list[dict]:
    """Hits of the held-out splits that differ from an earlier manifest's.

    Returns rows {change: added|missing|moved, split, path, label, kit}: a
    held-out split kept exactly is absent; "moved" is a hit whose split changed.
    """
    now = {r["path"]: r for r in rows}
    then = {r["path"]: r for r in base}
    out = []
    for path in sorted(set(now) | set(then)):
        a, b = now.get(path), then.get(path)
        if a is not None and b is not None and a["split"] != b["split"] and (
                a["split"] in splits or b["split"] in splits):
            out.append({"change": "moved", "split": f"{b['split']}->{a['split']}", "path": path,
                        "label": a["label"], "kit": a["kit"]})
        elif b is None and a["split"] in splits:
            out.append({"change": "added", "split": a["split"], "path": path, "label": a["label"],
                        "kit": a["kit"]})
        elif a is None and b["split"] in splits:
            out.append({"change": "missing", "split": b["split"], "path": path, "label": b["label"],
                        "kit": b["kit"]})
    return out


def _write_csv(path: Path, rows: list[dict], cols: list[str]) -> None:
    import csv

    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def build(out: Path, sources: list[str], cfg: dict, pkgs_dir: Path | None = None,
          from_dirs=(), csv_files=(), baseline: Path | None = None,
          muldjord_dir: Path | None = None) -> list[dict]:
    """Build the corpus in `out` and return the manifest rows.

    With `baseline` (an earlier manifest), its hits are kept first when
    de-duplicating and OUT/baseline-diff.csv lists how val/test differ from it.
    """
    from .manifest import read_manifest, write_manifest
    from .splits import assign_splits, check_no_leak
    from .stats import corpus_stats, format_stats

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    items = collect_items(out, sources, cfg, pkgs_dir, from_dirs, csv_files, muldjord_dir)
    _log(f"corpus: {len(items)} one-shots to write or check")
    rows, snippets = materialise(items, out, cfg)
    base = read_manifest(baseline) if baseline else []
    kept, dropped = drop_duplicates(rows, snippets, cfg, {r["path"] for r in base})
    assign_splits(kept, cfg)
    check_no_leak(kept)
    kept.sort(key=lambda r: r["path"])
    write_manifest(out / "manifest.csv", kept)
    _write_csv(out / "duplicates.csv", dropped,
               ["path", "label", "source", "kit", "duplicate_of", "correlation"])
    per_src: dict[str, int] = {}
    for d in dropped:
        per_src[d["source"]] = per_src.get(d["source"], 0) + 1
    _log("corpus: duplicates dropped per source: "
         + (", ".join(f"{k} {v}" for k, v in sorted(per_src.items())) or "none"))
    print(format_stats(corpus_stats(kept, cfg)))
    if baseline:
        diff = baseline_diff(kept, base)
        _write_csv(out / "baseline-diff.csv", diff, ["change", "split", "path", "label", "kit"])
        counts: dict[tuple, int] = {}
        for d in diff:
            counts[(d["change"], d["split"])] = counts.get((d["change"], d["split"]), 0) + 1
        print(f"\nheld-out splits vs {baseline}: "
              + (", ".join(f"{n} {c} ({s})" for (c, s), n in sorted(counts.items()))
                 or "identical") + f" (list: {out / 'baseline-diff.csv'})")
    print(f"\n{len(kept)} one-shots in {out / 'manifest.csv'} ({len(dropped)} duplicates dropped, "
          f"{time.time() - t0:.0f} s)")
    return kept


def run(args) -> int:
    from .config import default_config_path

    cfg_path = args.config or default_config_path()
    cfg = load_config(cfg_path)
    if args.action == "stats":
        from .manifest import read_manifest
        from .stats import corpus_stats, format_stats

        path = Path(args.manifest or Path(args.out) / "manifest.csv")
        if not path.exists():
            print(f"corpus: {path}: no such manifest", file=sys.stderr)
            return 2
        print(format_stats(corpus_stats(read_manifest(path), cfg), markdown=args.markdown))
        return 0
    if args.sources.strip().lower() == "all":
        sources = list(SOURCES)
    elif args.sources.strip().lower() == "default":
        sources = [s for s in SOURCES if s not in NOT_DEFAULT_SOURCES]
    elif args.sources.strip().lower() in ("none", ""):
        sources = []
    else:
        sources = [s.strip() for s in args.sources.split(",") if s.strip()]
        unknown = [s for s in sources if s not in SOURCES]
        if unknown:
            print(f"corpus: unknown source(s) {unknown}; known: {', '.join(SOURCES)}",
                  file=sys.stderr)
            return 2
    for d in args.from_dirs:
        if not Path(d).is_dir():
            print(f"corpus: --from {d}: not a folder", file=sys.stderr)
            return 2
    if args.baseline and not Path(args.baseline).exists():
        print(f"corpus: --baseline {args.baseline}: no such manifest", file=sys.stderr)
        return 2
    if args.muldjord and not Path(args.muldjord).is_dir():
        print(f"corpus: --muldjord {args.muldjord}: not a folder", file=sys.stderr)
        return 2
    rows = build(Path(args.out), sources, cfg, Path(args.pkgs) if args.pkgs else None,
                 args.from_dirs, args.csv_files, Path(args.baseline) if args.baseline else None,
                 Path(args.muldjord) if args.muldjord else None)
    return 0 if rows else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="drumclassifier corpus")
    configure_parser(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
