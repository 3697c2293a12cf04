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
import copy
import json
import os
import sys
import time
from pathlib import Path

SOURCES = {
    # source name: (Debian packages, kind)
    "hydrogen": (["hydrogen-drumkits", "hydrogen-data"], "hydrogen"),
    "avldrums": (["avldrums.lv2-soundfont"], "avl"),
    "fluid": (["fluid-soundfont-gm"], "gm"),
    "timgm6mb": (["timgm6mb-soundfont"], "gm"),
    "sfgmbank": (["csound-soundfont"], "gm"),
    "lmms": (["lmms-common"], "lmms"),
    "sonicpi": (["sonic-pi-samples"], "sonicpi"),
}
GM_FONTS = {"fluid": ("FluidR3_GM.sf2", "FluidR3_GM"), "timgm6mb": ("TimGM6mb.sf2", "TimGM6mb"),
            "sfgmbank": ("sf_GMbank.sf2", "sf_GMbank")}

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

DEFAULT_CONFIG = {
    "lead_threshold_db": -50.0,
    "tail_threshold_db": -80.0,
    "max_seconds": 4.0,
    "hold_seconds": 0.3,
    "gm_velocities": [40, 80, 127],
    "avl_velocities": [13, 40, 65, 90, 115],
    "exclude_presets": ["SFX"],
    "preset_keys": {"Orchestra": [35, 36, 38, 40]},
    "dedupe": {"threshold": 0.99, "window_seconds": 0.5, "max_lag_ms": 50,
               "priority": ["hydrogen", "avldrums", "sonicpi", "lmms", "fluid", "timgm6mb",
                            "sfgmbank", "user"]},
    "hydrogen_overrides": {"rumpf_kit_z01_h2": {
        "f3 bass drum 2": None, "g3 bass drum 3": None, "a3 bass drum 4": None,
        "d#4 cymbal 1": None, "e4 cymbal 2": None, "f4 ride bell": None}},
    "groups": {
        "black_pearl": ["hydrogen/GMRockKit", "hydrogen/The Black Pearl.*",
                        "avldrums/AVL_Black_Pearl.*", "avldrums/AVL_Red_Zeppelin.*"],
        "fluid": ["fluid/.*"],
        "tim": ["timgm6mb/.*", "sfgmbank/.*"],
        "electric_empire": ["hydrogen/ElectricEmpireKit", "hydrogen/HardElectro1",
                            "hydrogen/VariBreaks", "hydrogen/TR808EmulationKit"],
        "millo": ["hydrogen/Millo.*"],
        "forzee": ["hydrogen/ForzeeStereo"],
        "sonicpi": ["sonicpi/.*"],
        "lmms": ["lmms/.*"],
    },
    "splits": {"test": ["millo", "electric_empire"], "val": ["forzee", "sonicpi"]},
    "user_split": "train",
}


def default_config_path() -> Path | None:
    p = Path(__file__).resolve().parents[2] / "configs" / "corpus.yaml"
    return p if p.exists() else None


def load_config(path: str | Path | None) -> dict:
    """DEFAULT_CONFIG updated (one level deep) by a YAML file, if any."""
    cfg = copy.deepcopy(DEFAULT_CONFIG)
    if path:
        import yaml

        with open(path) as f:
            user = yaml.safe_load(f) or {}
        for k, v in user.items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict) and k not in ("groups",
                                                                                  "hydrogen_overrides"):
                cfg[k].update(v)
            else:
                cfg[k] = v
    return cfg


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["build"], help="what to do (build the corpus)")
    parser.add_argument("--out", default="data/corpus", help="corpus folder (default: data/corpus)")
    parser.add_argument("--sources", default="all",
                        help=f"comma-separated packaged sources to include: {','.join(SOURCES)}; "
                             "'all' (default) or 'none' (only --from/--csv data)")
    parser.add_argument("--from", dest="from_dirs", action="append", default=[], metavar="DIR",
                        help="add your own library: DIR/<class>/... audio files (repeatable)")
    parser.add_argument("--csv", dest="csv_files", action="append", default=[], metavar="FILE",
                        help="add your own library listed as path,label[,kit] rows (repeatable)")
    parser.add_argument("--config", default=None,
                        help="corpus config YAML (default: configs/corpus.yaml of the repo, if present)")
    parser.add_argument("--pkgs", default=None, metavar="DIR",
                        help="read already unpacked packages from DIR/<pkg> instead of fetching")


def _log(msg: str) -> None:
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


def collect_items(out: Path, sources: list[str], cfg: dict, pkgs_dir: Path | None = None,
                  from_dirs=(), csv_files=()) -> list:
    """All items of the selected sources (fetching packages as needed)."""
    from . import sources as S
    from .render import FontRenderer

    items = []
    for src in sources:
        pkgs, kind = SOURCES[src]
        roots = []
        for pkg in pkgs:
            root = (pkgs_dir / pkg) if pkgs_dir else S.fetch_package(pkg, out, log=_log)
            if root is not None and root.exists():
                roots.append(root)
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
            elif kind == "gm":
                fname, family = GM_FONTS[src]
                fonts = sorted(roots[0].rglob(fname))
                if fonts:
                    r = FontRenderer(fonts[0])
                    presets = [(p, n) for p, n in r.drum_presets()
                               if not any(x.lower() in n.lower() for x in cfg["exclude_presets"])]
                    for p, n in presets:
                        keys = next((v for k, v in (cfg.get("preset_keys") or {}).items()
                                     if k.lower() in n.lower()), None)
                        keymap = None if keys is None else {k: S.label_from_gm_key(k) for k in keys}
                        items += S.font_items(fonts[0], src, family, cfg["gm_velocities"],
                                              keymap=keymap, presets=[(p, n)])
            elif kind == "avl":
                fonts = sorted({p.name: p for p in roots[0].rglob("*_LV2.sf2")}.values())
                for font in fonts:
                    r = FontRenderer(font)
                    name = r.preset_name(0, 0) or font.stem
                    family = "AVL_" + font.stem.replace("_4_LV2", "")
                    items += S.font_items(font, src, family, cfg["avl_velocities"],
                                          keymap=AVL_KEYMAP, bank=0, presets=[(0, name)],
                                          channel=0, is_drums=False)
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

    from .render import SAMPLE_RATE_HZ, FontRenderer, load_audio, trim, write_flac

    cache_path = out / "cache.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    window = int(cfg["dedupe"]["window_seconds"] * SAMPLE_RATE_HZ)
    max_samples = int(cfg["max_seconds"] * SAMPLE_RATE_HZ)
    renderers: dict[str, FontRenderer] = {}
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
                if it.render is not None:
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


def drop_duplicates(rows: list[dict], snippets: list, cfg: dict) -> tuple[list[dict], list[dict]]:
    """Remove near-exact duplicates within each label; returns (kept, dropped rows)."""
    from .dedupe import find_duplicates
    from .render import SAMPLE_RATE_HZ

    dcfg = cfg["dedupe"]
    prio = {s: i for i, s in enumerate(dcfg["priority"])}
    dropped_rows = []
    drop_idx: set[int] = set()
    for label in sorted({r["label"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["label"] == label]
        order = sorted(range(len(idx)), key=lambda k: (
            prio.get(rows[idx[k]]["source"], len(prio)),
            -(int(rows[idx[k]]["velocity"]) if rows[idx[k]]["velocity"] not in (None, "") else 0),
            rows[idx[k]]["path"]))
        dup = find_duplicates([snippets[i] for i in idx], order, dcfg["threshold"],
                              int(dcfg["max_lag_ms"] * SAMPLE_RATE_HZ / 1000))
        for d, (k, corr) in dup.items():
            drop_idx.add(idx[d])
            dropped_rows.append({**rows[idx[d]], "duplicate_of": rows[idx[k]]["path"],
                                 "correlation": f"{corr:.4f}"})
    kept = [r for i, r in enumerate(rows) if i not in drop_idx]
    return kept, dropped_rows


def count_table(rows: list[dict], by: str) -> str:
    from . import CLASSES

    keys = sorted({r[by] for r in rows})
    lines = [f"{by:<10}" + "".join(f"{c:>8}" for c in CLASSES) + f"{'total':>8}"]
    for k in keys + ["total"]:
        sel = [r for r in rows if k == "total" or r[by] == k]
        lines.append(f"{k:<10}" + "".join(f"{sum(r['label'] == c for r in sel):>8}"
                                          for c in CLASSES) + f"{len(sel):>8}")
    return "\n".join(lines)


def build(out: Path, sources: list[str], cfg: dict, pkgs_dir: Path | None = None,
          from_dirs=(), csv_files=()) -> list[dict]:
    """Build the corpus in `out` and return the manifest rows."""
    import csv

    from .manifest import write_manifest
    from .splits import assign_splits, check_no_leak

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    items = collect_items(out, sources, cfg, pkgs_dir, from_dirs, csv_files)
    _log(f"corpus: {len(items)} one-shots to write or check")
    rows, snippets = materialise(items, out, cfg)
    kept, dropped = drop_duplicates(rows, snippets, cfg)
    assign_splits(kept, cfg)
    check_no_leak(kept)
    kept.sort(key=lambda r: r["path"])
    write_manifest(out / "manifest.csv", kept)
    tmp = out / "duplicates.csv.tmp"
    with open(tmp, "w", newline="") as f:
        cols = ["path", "label", "source", "kit", "duplicate_of", "correlation"]
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(dropped)
    os.replace(tmp, out / "duplicates.csv")
    per_src: dict[str, int] = {}
    for d in dropped:
        per_src[d["source"]] = per_src.get(d["source"], 0) + 1
    _log("corpus: duplicates dropped per source: "
         + (", ".join(f"{k} {v}" for k, v in sorted(per_src.items())) or "none"))
    print(count_table(kept, "source"))
    print()
    print(count_table(kept, "split"))
    print(f"\n{len(kept)} one-shots in {out / 'manifest.csv'} ({len(dropped)} duplicates dropped, "
          f"{time.time() - t0:.0f} s)")
    return kept


def run(args) -> int:
    cfg_path = args.config or default_config_path()
    cfg = load_config(cfg_path)
    if args.sources.strip().lower() == "all":
        sources = list(SOURCES)
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
    rows = build(Path(args.out), sources, cfg, Path(args.pkgs) if args.pkgs else None,
                 args.from_dirs, args.csv_files)
    return 0 if rows else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="drumclassifier corpus")
    configure_parser(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
