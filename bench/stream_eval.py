"""Stream benchmark: the real live engine (fast file mode) and peer onset detectors on drum
streams with exact truth (bench/streams), scored with one matcher.

    .venv/bin/python -m bench.streams --out data/streams \
        --kits Millo_MultiLayered2 TR808EmulationKit VariBreaks --streams-per-kit 3
    bash bench/setup_peers.sh                       # once: .venv-bench with aubio, librosa
    .venv/bin/python -m bench.stream_eval data/streams --tune-kits VariBreaks \
        [-w WEIGHTS] [--out runs/stream_eval] [--no-peers]

Scoring (every system, every stream):
  onsets     truth notes closer than --merge-ms (10 ms) are one onset (kick + hihat on
             one beat is one onset; a 30 ms flam is two). Detections and truth onsets are
             matched one-to-one within +-tol (greedy, closest pairs first); P/R/F at
             +-25 and +-50 ms. Timing error = detection - truth over the +-50 ms matches.
  classes    per class, the truth onsets of that class against the engine's events of
             that label (several labels per hit allowed), same matcher, +-25 ms. The
             same for the model shipped before (--compare-weights, same streams: paired,
             95 % intervals of the F difference by resampling streams) and for ADTOF
             (--adtof: an offline transcriber that sees the whole file; bench-only peer
             from .venv-adtof, bash bench/setup_adtof.sh).
  latency    the engine's per-hit latency_ms (hit-to-note in stream time: detection +
             context + block + queueing + inference). In fast mode audio arrives faster
             than real time, so queueing holds a backlog the live path does not have;
             "live" = latency_ms - queue_ms is reported beside it (bench/latency.py's
             "without queueing").
  speed      real-time factor = engine wall time / stream duration (lower is faster).
Counts are summed over the streams of a condition before P/R/F (micro average).
Peers: aubio (method `default` = hfc with aubio's defaults: buf 512, hop 256, threshold
0.058, minioi 50 ms; and a tuned one: method x threshold (hfc, specflux, complex), buf 1024,
hop 128, minioi 20 ms, the best mean F@25 on the --tune-kits streams, which are then left
out of every table) and librosa.onset.onset_detect
(librosa.load defaults, backtrack off, units time), run from .venv-bench in a subprocess.

Writes OUT/report.md (one table per condition + summary + targets), OUT/results.json
(everything, per stream too), OUT/figures.json (the numbers behind the plots) and
OUT/summary.png.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from drumclassifier.classes import CLASSES

ROOT = Path(__file__).resolve().parents[1]
LABELS = CLASSES
TOLS_MS = (25, 50)
CLASS_TOL_MS = 25
MERGE_MS = 10.0
DRUM_ONLY = ("clean", "reverb", "room_mono")
TARGETS = {"onset_f25": 0.95, "kick": 0.90, "snare": 0.90, "hihat": 0.90, "toms": 0.85,
           "cymbals": 0.85, "lat_median_ms": 30.0, "lat_p95_ms": 40.0}
# tuned aubio: the method and threshold with the best mean F@25 on the tuning streams
AUBIO_METHODS = ("hfc", "specflux", "complex")
AUBIO_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0)


# ---- matching ---------------------------------------------------------------------------
def group_onsets(times, merge_s: float = MERGE_MS / 1000) -> np.ndarray:
    """Sorted onset times with notes closer than merge_s to a group's first note merged
    into it (the group keeps its first time)."""
    t = np.sort(np.asarray(times, float))
    out: list[float] = []
    for x in t:
        if not out or x - out[-1] >= merge_s:
            out.append(float(x))
    return np.asarray(out)


def match(ref, est, tol_s: float) -> list[tuple[int, int]]:
    """One-to-one pairs (i_ref, j_est) with |est - ref| <= tol_s, closest pairs first."""
    ref, est = np.asarray(ref, float), np.asarray(est, float)
    if not len(ref) or not len(est):
        return []
    order = np.argsort(est)
    es = est[order]
    cand = []
    for i, r in enumerate(ref):
        lo, hi = np.searchsorted(es, r - tol_s - 1e-9), np.searchsorted(es, r + tol_s + 1e-9)
        cand += [(abs(es[k] - r), i, int(order[k])) for k in range(lo, hi)]
    cand.sort()
    used_r, used_e, pairs = set(), set(), []
    for _, i, j in cand:
        if i not in used_r and j not in used_e:
            used_r.add(i)
            used_e.add(j)
            pairs.append((i, j))
    return sorted(pairs)


def prf(tp: int, fp: int, fn: int) -> dict:
    """Precision, recall, F (an empty side gives 1.0 only when both are empty)."""
    p = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    r = tp / (tp + fn) if tp + fn else (1.0 if fp == 0 else 0.0)
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "p": p, "r": r, "f": f}


def score_onsets(truth_times, det_times, tols_ms=TOLS_MS, merge_ms: float = MERGE_MS) -> dict:
    """Onset counts at each tolerance, and signed errors (ms) of the widest tolerance."""
    ref = group_onsets(truth_times, merge_ms / 1000)
    est = np.sort(np.asarray(det_times, float))
    out = {}
    for tol in tols_ms:
        pairs = match(ref, est, tol / 1000)
        out[f"tol{tol}"] = prf(len(pairs), len(est) - len(pairs), len(ref) - len(pairs))
        if tol == max(tols_ms):
            out["errors_ms"] = [float((est[j] - ref[i]) * 1000) for i, j in pairs]
    return out


def score_classes(truth, events, tol_ms: float = CLASS_TOL_MS, labels=LABELS,
                  merge_ms: float = MERGE_MS) -> dict:
    """truth: [(time_s, label)], events: [(time_s, label)] -> {label: counts}."""
    out = {}
    for c in labels:
        ref = group_onsets([t for t, lab in truth if lab == c], merge_ms / 1000)
        est = np.sort(np.unique([t for t, lab in events if lab == c]))
        pairs = match(ref, est, tol_ms / 1000)
        out[c] = prf(len(pairs), len(est) - len(pairs), len(ref) - len(pairs))
    return out


def add_counts(a: dict | None, b: dict) -> dict:
    if a is None:
        return {k: b[k] for k in ("tp", "fp", "fn")}
    return {k: a[k] + b[k] for k in ("tp", "fp", "fn")}


def pct(x, q) -> float:
    return float(np.percentile(np.asarray(x, float), q)) if len(x) else float("nan")


# ---- systems ----------------------------------------------------------------------------
def read_truth(path: Path, velocity: bool = False) -> list[tuple]:
    """[(time_s, label)] or, with velocity, [(time_s, label, velocity)]."""
    with open(path, newline="") as f:
        return [(float(r["time_s"]), r["label"]) + ((int(r["velocity"]),) if velocity else ())
                for r in csv.DictReader(f)]


def run_engine(clf, path: Path, cfg, fast: bool = True) -> dict:
    """The live path in file mode (fast, or paced in real time): events, wall time and
    counters for one file."""
    from realtime import Engine, FileSource, ListSink
    keep = ListSink()

    src = FileSource(path, cfg.audio.blocksize, fast=fast)
    t0 = time.perf_counter()
    stats = Engine(clf, src, [keep], cfg).run()
    wall = time.perf_counter() - t0
    events = keep.events
    hits = {}
    for e in events:
        hits.setdefault(e.hit_index, e)
    return {"events": [(e.time_s, e.label) for e in events],
            "onsets": sorted(e.time_s for e in hits.values()),
            "latency_ms": [e.latency_ms for e in hits.values()],
            "live_latency_ms": [e.latency_ms - e.queue_ms for e in hits.values()],
            "wall_latency_ms": [e.wall_latency_ms for e in hits.values()],
            "wall_s": wall, "seconds": stats.seconds,
            "queue_dropped": stats.queue_dropped, "errors": list(stats.errors)}


def adtof_events(files: list[str], cache: Path) -> dict | None:
    """ADTOF's output for `files` (bench.adtof.run_adtof), kept in `cache` and reused while
    the files (paths, sizes, mtimes) are the same: it does not depend on our model."""
    from .adtof import run_adtof
    key = [[f, Path(f).stat().st_size, Path(f).stat().st_mtime_ns] for f in files]
    if cache.is_file():
        old = json.loads(cache.read_text())
        if old.get("key") == key:
            return old["result"]
    res = run_adtof(files)
    if res is not None:
        cache.write_text(json.dumps({"key": key, "result": res}))
    return res


def run_peers(files: list[str], methods: dict, python: Path) -> dict:
    """bench/streams/peers.py in the bench venv; {} if that venv is missing."""
    if not python.exists():
        print(f"peers skipped: {python} not found (bash bench/setup_peers.sh)", file=sys.stderr)
        return {}
    with tempfile.TemporaryDirectory() as d:
        jobs, out = Path(d) / "jobs.json", Path(d) / "out.json"
        jobs.write_text(json.dumps({"files": files, "methods": methods}))
        subprocess.run([str(python), str(ROOT / "bench" / "streams" / "peers.py"), str(jobs),
                        str(out)], check=True)
        return json.loads(out.read_text())


def aubio_default() -> dict:
    return {"tool": "aubio", "method": "default", "buf_size": 512, "hop_size": 256}


def aubio_tuned(method: str, threshold: float) -> dict:
    """Finer hop (2.9 ms, like ours) and a 20 ms minimum inter-onset interval."""
    return {"tool": "aubio", "method": method, "buf_size": 1024, "hop_size": 128,
            "threshold": threshold, "minioi_ms": 20.0}


def tune_aubio(rows, root: Path, python: Path) -> tuple[tuple | None, dict]:
    """(method, threshold) with the best mean onset F@25 over the tuning streams, and the
    whole grid's scores."""
    if not rows:
        return None, {}
    files = [str(root / r["audio"]) for r in rows]
    grid = {f"{m} {t:g}": (m, t) for m in AUBIO_METHODS for t in AUBIO_THRESHOLDS}
    res = run_peers(files, {k: aubio_tuned(*v) for k, v in grid.items()}, python)
    if not res or res.get("errors"):
        return None, res.get("errors", {})
    truths = {r["audio"]: [x for x, _ in read_truth(root / r["truth"])] for r in rows}
    curve = {}
    for k in grid:
        on = res["onsets"][k]
        curve[k] = float(np.mean([score_onsets(truths[r["audio"]], on[str(root / r["audio"])])
                                  ["tol25"]["f"] for r in rows]))
    best = max(curve, key=lambda k: curve[k])
    return grid[best], curve


def diagnose(truth, det_times, tol_ms: float = 25) -> dict:
    """Unmatched truth onsets (time, classes, max velocity) and false alarms (times)."""
    ref = group_onsets([t for t, *_ in truth])
    est = np.sort(np.asarray(det_times, float))
    pairs = match(ref, est, tol_ms / 1000)
    hit_r, hit_e = {i for i, _ in pairs}, {j for _, j in pairs}
    missed = []
    for i, t in enumerate(ref):
        if i not in hit_r:
            notes = [n for n in truth if t - 1e-9 <= n[0] < t + MERGE_MS / 1000]
            missed.append((float(t), sorted({n[1] for n in notes}),
                           max((n[2] for n in notes), default=0)))
    return {"missed": missed, "false_alarms": [float(est[j]) for j in range(len(est))
                                               if j not in hit_e]}


# ---- aggregation and output ---------------------------------------------------------------
def aggregate(per_stream: list[dict], systems: list[str]) -> dict:
    """Per condition (plus 'drum-only' = clean+reverb+room_mono): summed counts -> P/R/F,
    pooled errors and latencies, real-time factor."""
    groups = defaultdict(list)
    for s in per_stream:
        groups[s["condition"]].append(s)
        if s["condition"] in DRUM_ONLY:
            groups["drum-only"].append(s)
    agg = {}
    for cond, ss in groups.items():
        a = {"streams": len(ss), "seconds": sum(s["seconds"] for s in ss), "systems": {}}
        for name in systems:
            have = [s for s in ss if name in s["systems"]]
            if not have:
                continue
            sy = {}
            for tol in TOLS_MS:
                c = None
                for s in have:
                    c = add_counts(c, s["systems"][name][f"tol{tol}"])
                sy[f"tol{tol}"] = prf(c["tp"], c["fp"], c["fn"])
            err = [e for s in have for e in s["systems"][name]["errors_ms"]]
            sy["err_median_ms"] = pct(err, 50)
            sy["err_p95_abs_ms"] = pct(np.abs(err), 95)
            if "classes" in have[0]["systems"][name]:
                sy["classes"] = {}
                for lab in LABELS:
                    c = None
                    for s in have:
                        c = add_counts(c, s["systems"][name]["classes"][lab])
                    sy["classes"][lab] = prf(c["tp"], c["fp"], c["fn"])
            if "latency_ms" in have[0]["systems"][name]:
                lat = [x for s in have for x in s["systems"][name]["latency_ms"]]
                live = [x for s in have for x in s["systems"][name]["live_latency_ms"]]
                sy.update(lat_median_ms=pct(lat, 50), lat_p95_ms=pct(lat, 95),
                          live_lat_median_ms=pct(live, 50), live_lat_p95_ms=pct(live, 95),
                          rtf=sum(s["systems"][name]["wall_s"] for s in have)
                          / sum(s["seconds"] for s in have))
            a["systems"][name] = sy
        agg[cond] = a
    return agg


def labelling(per_stream: list[dict], systems: list[str]) -> list[str]:
    """The systems that label classes (ours, the model compared, ADTOF), in order."""
    return [s for s in systems if any("classes" in x["systems"].get(s, {}) for x in per_stream)]


def class_comparison(per_stream: list[dict], systems: list[str], conds: list[str],
                     base: str, boot: int = 2000, seed: int = 0) -> str:
    """Per condition and class: F (±CLASS_TOL_MS) of every system that labels classes,
    and each one's difference from `base` with a 95 % interval from resampling streams
    (the same streams for both: paired)."""
    named = labelling(per_stream, systems)
    if base not in named:
        return ""
    head = ["condition", "class", "truth"] + [f"{s} F" for s in named] + [
        f"{s} - {base}" for s in named if s != base]
    L = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rng = np.random.default_rng(seed)
    for cond in conds:
        ss = [x for x in per_stream if x["condition"] == cond
              or cond == "drum-only" and x["condition"] in DRUM_ONLY]
        ss = [x for x in ss if all(n in x["systems"] for n in named)]
        if not ss:
            continue
        idx = rng.integers(len(ss), size=(boot, len(ss)))
        for lab in LABELS:
            # [streams, 3] counts (tp, fp, fn) per system
            cnt = {n: np.array([[x["systems"][n]["classes"][lab][k] for k in ("tp", "fp", "fn")]
                                for x in ss], float) for n in named}
            if cnt[base][:, [0, 2]].sum() == 0:
                continue

            def f_of(c):   # c [..., 3] summed counts -> F
                tp, fp, fn = c[..., 0], c[..., 1], c[..., 2]
                return np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 1.0)
            row = [cond, lab, str(int(cnt[base][:, 0].sum() + cnt[base][:, 2].sum()))]  # tp + fn
            row += [f3(float(f_of(cnt[n].sum(0)))) for n in named]
            fb = f_of(cnt[base][idx].sum(1))                       # [boot]
            for n in named:
                if n == base:
                    continue
                d = float(f_of(cnt[n].sum(0)) - f_of(cnt[base].sum(0)))
                db = f_of(cnt[n][idx].sum(1)) - fb
                row.append(f"{d:+.3f} [{np.percentile(db, 2.5):+.3f}, {np.percentile(db, 97.5):+.3f}]")
            L.append("| " + " | ".join(row) + " |")
    return "\n".join(L)


def kit_table(per_stream: list[dict], systems: list[str]) -> str:
    """Drum-only streams pooled per kit: class F (P/R) of every system that labels
    classes. Where a class is lost is usually one kit's sound (its rides, its kicks)."""
    named = labelling(per_stream, systems)
    ss = [x for x in per_stream if x["condition"] in DRUM_ONLY]
    if not named or not ss:
        return ""
    L = ["| kit | system | " + " | ".join(f"{lab} F (P/R)" for lab in LABELS) + " |",
         "|---|---|" + "---|" * len(LABELS)]
    for kit in sorted({x["kit"] for x in ss}):
        for n in named:
            mine = [x["systems"][n]["classes"] for x in ss if x["kit"] == kit and n in x["systems"]]
            tot = {lab: {k: sum(c[lab][k] for c in mine) for k in ("tp", "fp", "fn")}
                   for lab in LABELS}
            cells = []
            for lab in LABELS:
                c = tot[lab]
                if c["tp"] + c["fn"] == 0:      # the kit's grooves never play this class
                    cells.append(f"— ({c['fp']} false)" if c["fp"] else "—")
                else:
                    q = prf(c["tp"], c["fp"], c["fn"])
                    cells.append(f"{q['f']:.2f} ({q['p']:.2f}/{q['r']:.2f})")
            L.append(f"| {kit} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(L)


def f3(x) -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"


def f1(x) -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.1f}"


def condition_table(cond: str, a: dict, systems: list[str]) -> str:
    L = [f"### {cond} ({a['streams']} streams, {a['seconds'] / 60:.1f} min)", "",
         "| system | onset P@25 | R@25 | F@25 | F@50 | median err (ms) | p95 abs err (ms) |",
         "|---|---|---|---|---|---|---|"]
    for name in systems:
        s = a["systems"].get(name)
        if s:
            L.append(f"| {name} | {f3(s['tol25']['p'])} | {f3(s['tol25']['r'])} | "
                     f"{f3(s['tol25']['f'])} | {f3(s['tol50']['f'])} | "
                     f"{f1(s['err_median_ms'])} | {f1(s['err_p95_abs_ms'])} |")
    ours = a["systems"].get("drumclassifier")
    if ours:
        L += ["", f"| drumclassifier class (±{CLASS_TOL_MS} ms) | P | R | F | truth | detected |",
              "|---|---|---|---|---|---|"]
        for lab in LABELS:
            c = ours["classes"][lab]
            if c["tp"] + c["fn"] + c["fp"]:
                L.append(f"| {lab} | {f3(c['p'])} | {f3(c['r'])} | {f3(c['f'])} | "
                         f"{c['tp'] + c['fn']} | {c['tp'] + c['fp']} |")
        L += ["", (f"latency (fast mode, ms): median {f1(ours['lat_median_ms'])}, p95 "
                  f"{f1(ours['lat_p95_ms'])}; without fast-mode queueing (live): median "
                  f"{f1(ours['live_lat_median_ms'])}, p95 {f1(ours['live_lat_p95_ms'])}; "
                  f"real-time factor {ours['rtf']:.3f} ({1 / ours['rtf']:.0f}x real time)")]
    return "\n".join(L)


def summary_table(agg: dict, systems: list[str], conds: list[str]) -> str:
    peers = [s for s in systems if s != "drumclassifier"]
    head = (["condition", "ours F@25", "ours F@50"] + [f"{p} F@25" for p in peers]
            + [f"{lab} F" for lab in LABELS] + ["lat med/p95 (ms)", "live lat med/p95", "RTF"])
    L = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cond in conds:
        if cond not in agg:
            continue
        s = agg[cond]["systems"]
        o = s.get("drumclassifier")
        row = [f"**{cond}**" if cond == "drum-only" else cond,
               f3(o["tol25"]["f"]) if o else "—", f3(o["tol50"]["f"]) if o else "—"]
        row += [f3(s[p]["tol25"]["f"]) if p in s else "—" for p in peers]
        if o:
            row += [f3(o["classes"][lab]["f"]) if o["classes"][lab]["tp"]
                    + o["classes"][lab]["fn"] else "—" for lab in LABELS]
            row += [f"{f1(o['lat_median_ms'])} / {f1(o['lat_p95_ms'])}",
                    f"{f1(o['live_lat_median_ms'])} / {f1(o['live_lat_p95_ms'])}",
                    f"{o['rtf']:.3f}"]
        else:
            row += ["—"] * (len(LABELS) + 3)
        L.append("| " + " | ".join(row) + " |")
    return "\n".join(L)


def targets(agg: dict, paced: dict | None = None) -> list[tuple[str, str, bool]]:
    """(target, measured, met) on the drum-only pool; latency judged on the paced run when
    there is one, else on the fast run without its queueing."""
    a = agg.get("drum-only", {}).get("systems", {})
    o = a.get("drumclassifier")
    if not o:
        return []
    out = []
    f = o["tol25"]["f"]
    out.append(("onset F@25 >= 0.95", f3(f), f >= TARGETS["onset_f25"]))
    for p, s in a.items():
        if p != "drumclassifier":
            out.append((f"onset F@25 above {p}", f"{f3(f)} vs {f3(s['tol25']['f'])}",
                        f > s["tol25"]["f"]))
    for lab in LABELS:
        c = o["classes"][lab]
        if c["tp"] + c["fn"]:
            out.append((f"{lab} F >= {TARGETS[lab]:.2f}", f3(c["f"]), c["f"] >= TARGETS[lab]))
    for key, name in (("lat_median_ms", "median latency <= 30 ms"),
                      ("lat_p95_ms", "p95 latency <= 40 ms")):
        live = o["live_" + key]
        txt = f"{f1(o[key])} ms fast mode, {f1(live)} ms without its queueing"
        if paced:
            live = paced["median_ms" if key == "lat_median_ms" else "p95_ms"]
            txt += f", **{f1(live)} ms paced (real time)**"
        out.append((name, txt, live <= TARGETS[key]))
    return out


def miss_table(per_stream: list[dict], conds: list[str]) -> str:
    """Where the engine's onset detector misses (±25 ms): soft notes, dense passages
    (under 60 ms after the previous truth onset: flams, rolls), by class."""
    L = ["| condition | truth onsets | missed | soft (vel <= 45) | dense (< 60 ms) | "
         + " | ".join(f"with {lab}" for lab in LABELS) + " | false alarms |",
         "|" + "---|" * (5 + len(LABELS))]
    for cond in conds:
        ss = [s for s in per_stream if s["condition"] == cond
              or cond == "drum-only" and s["condition"] in DRUM_ONLY]
        if not ss:
            continue
        n = missed = soft = dense = fa = 0
        by = dict.fromkeys(LABELS, 0)
        for s in ss:
            d = s["systems"]["drumclassifier"]
            n += d["tol25"]["tp"] + d["tol25"]["fn"]
            fa += len(d["diagnosis"]["false_alarms"])
            onsets = s["truth_onsets"]
            for t, labs, vel in d["diagnosis"]["missed"]:
                missed += 1
                soft += vel <= 45
                k = int(np.searchsorted(onsets, t - 1e-9))
                dense += k > 0 and t - onsets[k - 1] < 0.060
                for lab in labs:
                    by[lab] += 1
        L.append(f"| {cond} | {n} | {missed} | {soft} | {dense} | "
                 + " | ".join(str(by[lab]) for lab in LABELS) + f" | {fa} |")
    return "\n".join(L)


def figures(agg: dict, per_stream: list[dict], systems: list[str], conds: list[str],
            png: Path) -> dict:
    fig_data = {"class_f": {c: {lab: agg[c]["systems"]["drumclassifier"]["classes"][lab]["f"]
                                for lab in LABELS}
                            for c in conds if c in agg and "drumclassifier" in agg[c]["systems"]},
                "onset_f25": {c: {s: agg[c]["systems"][s]["tol25"]["f"]
                                  for s in systems if s in agg[c]["systems"]}
                              for c in conds if c in agg},
                "latency_ms": [x for s in per_stream if "drumclassifier" in s["systems"]
                               for x in s["systems"]["drumclassifier"]["latency_ms"]],
                "live_latency_ms": [x for s in per_stream if "drumclassifier" in s["systems"]
                                    for x in s["systems"]["drumclassifier"]["live_latency_ms"]]}
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(17, 4.8))
    cs = list(fig_data["class_f"])
    w = 0.8 / len(LABELS)
    for k, lab in enumerate(LABELS):
        ax[0].bar(np.arange(len(cs)) + k * w, [fig_data["class_f"][c][lab] for c in cs], w,
                  label=lab)
    ax[0].set_xticks(np.arange(len(cs)) + 0.4 - w / 2, cs, rotation=30, ha="right")
    ax[0].set_ylim(0, 1.25)
    ax[0].set_title(f"drumclassifier: F per class (±{CLASS_TOL_MS} ms)")
    ax[0].legend(fontsize=8, ncol=5, loc="upper center")
    cs = list(fig_data["onset_f25"])
    w = 0.8 / len(systems)
    for k, s in enumerate(systems):
        ax[1].bar(np.arange(len(cs)) + k * w, [fig_data["onset_f25"][c].get(s, 0) for c in cs],
                  w, label=s)
    ax[1].set_xticks(np.arange(len(cs)) + 0.4 - w / 2, cs, rotation=30, ha="right")
    ax[1].set_ylim(0, 1.25)
    ax[1].axhline(TARGETS["onset_f25"], color="k", lw=0.8, ls="--")
    ax[1].set_title("onset F (±25 ms): ours vs peers")
    ax[1].legend(fontsize=8, ncol=2, loc="upper center")
    bins = np.arange(0, max([60.0] + fig_data["latency_ms"]) + 2, 1.0)
    ax[2].hist(fig_data["latency_ms"], bins, alpha=0.6, label="fast mode (with backlog)")
    ax[2].hist(fig_data["live_latency_ms"], bins, alpha=0.6, label="without queueing (live)")
    for x in (TARGETS["lat_median_ms"], TARGETS["lat_p95_ms"]):
        ax[2].axvline(x, color="k", lw=0.8, ls="--")
    ax[2].set_xlabel("hit-to-note latency (ms)")
    ax[2].set_title("latency per hit")
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return fig_data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("streams", nargs="?", default=str(ROOT / "data" / "streams"),
                    help="folder written by `python -m bench.streams` (streams.csv)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "stream_eval"))
    ap.add_argument("-w", "--weights", help="checkpoint (default: the shipped weights)")
    ap.add_argument("--model-device", default="cpu")
    ap.add_argument("--conditions", nargs="+", help="only these conditions")
    ap.add_argument("--tune-kits", nargs="*", default=[],
                    help="kits whose streams only tune aubio's threshold (not reported)")
    ap.add_argument("--compare-weights", metavar="W",
                    help="also run the engine with these weights (the model shipped before) "
                         "on the same streams: paired class F differences")
    ap.add_argument("--compare-name", default="previous model")
    ap.add_argument("--adtof", action="store_true",
                    help="also score ADTOF (offline, bench-only; bash bench/setup_adtof.sh)")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--bench-python", default=str(ROOT / ".venv-bench" / "bin" / "python"))
    ap.add_argument("--limit", type=int, help="at most N streams (a quick look)")
    ap.add_argument("--paced", type=int, default=0, metavar="N",
                    help="also stream the first N drum-only streams paced in real time: their "
                         "latency is the live hit-to-note latency (costs N x 30 s)")
    ap.add_argument("--rt-config", metavar="FILE", action="append",
                    help="real-time config YAML (default: the built-in live settings); "
                         "repeat it to merge several, in order")
    ap.add_argument("--music", choices=["off", "auto", "on"], default="off",
                    help="the onset detector per file as `drumclassifier stream --music` picks "
                         "it (realtime/music.py); off (default): the config's, as `listen`")
    ap.add_argument("--context-ms", type=float,
                    help="audio after each onset given to the model (default: the live "
                         "default, configs/realtime.yaml)")
    args = ap.parse_args(argv)

    root = Path(args.streams)
    with open(root / "streams.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if args.conditions:
        rows = [r for r in rows if r["condition"] in args.conditions]
    tune_rows = [r for r in rows if r["kit"] in args.tune_kits]
    rows = [r for r in rows if r["kit"] not in args.tune_kits][: args.limit]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bench_py = Path(args.bench_python)

    import torch

    from drumclassifier import DrumClassifier
    from realtime import load_realtime_config
    cfg = load_realtime_config(args.rt_config, {"slicer": {"context_ms": args.context_ms}}
                               if args.context_ms else None)
    clf = DrumClassifier(args.weights, None, args.model_device)
    clf.predict([torch.zeros(2, 1323).uniform_(-0.1, 0.1)])          # one-off costs
    compare = (DrumClassifier(args.compare_weights, None, args.model_device)
               if args.compare_weights else None)
    per_stream = []
    stream_cfg = {}     # id -> the config its file was streamed with (--music: scanned once)
    t_all = time.perf_counter()
    from realtime.music import choose as choose_music
    for k, r in enumerate(rows):
        path = root / r["audio"]
        truth = read_truth(root / r["truth"])
        cfg_k, found = choose_music(path, cfg, args.music)
        stream_cfg[r["id"]] = cfg_k
        e = run_engine(clf, path, cfg_k)
        sc = score_onsets([t for t, _ in truth], e["onsets"])
        sc["classes"] = score_classes(truth, e["events"])
        sc["diagnosis"] = diagnose(read_truth(root / r["truth"], velocity=True), e["onsets"])
        sc.update({k2: e[k2] for k2 in ("latency_ms", "live_latency_ms", "wall_s",
                                        "queue_dropped", "errors")})
        per_stream.append({"id": r["id"], "condition": r["condition"], "kit": r["kit"],
                           "groove": r["groove"], "bpm": int(r["bpm"]),
                           "truth_onsets": group_onsets([t for t, _ in truth]).tolist(),
                           "seconds": e["seconds"], "audio": str(path),
                           "music_detector": cfg_k.onset.band_quantile > 0,
                           "music_ratio": found.ratio if found else None,
                           "systems": {"drumclassifier": sc}})
        msg = f"onset F@25 {sc['tol25']['f']:.3f}"
        if found is not None:
            msg += f", music ratio {found.ratio:.2f}{' (music detector)' if found.music else ''}"
        if compare is not None:
            e2 = run_engine(compare, path, cfg_k)
            sc2 = score_onsets([t for t, _ in truth], e2["onsets"])
            sc2["classes"] = score_classes(truth, e2["events"])
            per_stream[-1]["systems"][args.compare_name] = sc2
            msg += f" ({args.compare_name} {sc2['tol25']['f']:.3f})"
        print(f"[{k + 1}/{len(rows)}] {r['id']}: {msg}, {e['wall_s']:.1f} s", file=sys.stderr,
              flush=True)
    engine_s = time.perf_counter() - t_all
    paced: dict = {}
    for r in [r for r in rows if r["condition"] in DRUM_ONLY][: args.paced]:
        e = run_engine(clf, root / r["audio"], stream_cfg[r["id"]], fast=False)
        paced.setdefault("streams", []).append(r["id"])
        paced.setdefault("latency_ms", []).extend(e["latency_ms"])
        paced.setdefault("wall_latency_ms", []).extend(e["wall_latency_ms"])
    if paced:
        paced.update(median_ms=pct(paced["latency_ms"], 50), p95_ms=pct(paced["latency_ms"], 95),
                     wall_median_ms=pct(paced["wall_latency_ms"], 50),
                     wall_p95_ms=pct(paced["wall_latency_ms"], 95))

    systems = ["drumclassifier"] + ([args.compare_name] if compare is not None else [])
    adtof_info: dict = {}
    if args.adtof:
        res = adtof_events([s["audio"] for s in per_stream], out / "adtof-events.json")
        if res:
            adtof_info = {k: res[k] for k in ("version", "seconds", "errors")}
            systems.append("ADTOF (offline)")
            for s, r in zip(per_stream, rows):
                truth = read_truth(root / r["truth"])
                ev = [(float(t), lab) for t, lab in res["events"].get(s["audio"], [])]
                sc = score_onsets([t for t, _ in truth], sorted({t for t, _ in ev}))
                sc["classes"] = score_classes(truth, ev)
                s["systems"]["ADTOF (offline)"] = sc
    peer_info: dict = {}
    if not args.no_peers:
        best, curve = (tune_aubio(tune_rows, root, bench_py) if tune_rows
                       else (("specflux", 0.3), {}))
        methods = {"aubio hfc (default)": aubio_default(), "librosa": {"tool": "librosa"}}
        if best is not None:
            methods[f"aubio {best[0]} (tuned, thr {best[1]:g})"] = aubio_tuned(*best)
        t0 = time.perf_counter()
        res = run_peers([s["audio"] for s in per_stream], methods, bench_py)
        if res:
            peer_info = {"versions": res["versions"], "seconds": res["seconds"],
                         "errors": res["errors"], "aubio_tuning_f25": curve,
                         "aubio_tuned": best, "tune_streams": len(tune_rows),
                         "methods": methods, "wall_s": time.perf_counter() - t0}
            for name in methods:
                if name in res["onsets"]:
                    systems.append(name)
                    for s, r in zip(per_stream, rows):
                        truth = read_truth(root / r["truth"])
                        s["systems"][name] = score_onsets([t for t, _ in truth],
                                                          res["onsets"][name][s["audio"]])

    conds = [c for c in ("clean", "reverb", "room_mono", "mp3", "noise20", "music")
             if any(s["condition"] == c for s in per_stream)]
    agg = aggregate(per_stream, systems)
    summary_conds = conds + (["drum-only"] if "drum-only" in agg else [])
    cmd = "python " + " ".join([Path(sys.argv[0]).name if sys.argv[0] else "stream_eval.py"]
                               + (sys.argv[1:] if argv is None else list(argv)))
    md = ["# Stream benchmark", "",
          (f"`{cmd}` — {len(per_stream)} streams, weights "
          f"`{clf.weights_path}`, {'' if args.context_ms or args.rt_config else 'default '}"
          f"live settings (context "
          f"{cfg.slicer.context_ms:g} ms, block {cfg.audio.blocksize}, onset frame "
          f"{cfg.onset.frame_size}), engine total "
          f"{engine_s:.0f} s"
          + (f"; music detector on {sum(s['music_detector'] for s in per_stream)} of "
             f"{len(per_stream)} streams (--music {args.music})" if args.music != "off" else "")),
          ""]
    if peer_info:
        tuned = peer_info["aubio_tuning_f25"]
        top = sorted(tuned, key=lambda k: -tuned[k])[:5]
        md += [(f"Peers: {peer_info['versions']}. Tuned aubio: method x threshold grid "
                f"({len(tuned)} settings, buf 1024, hop 128, minioi 20 ms) on "
                f"{peer_info['tune_streams']} streams of {', '.join(args.tune_kits) or '—'} "
                f"(not reported below); best mean F@25: "
                + ", ".join(f"{k} {tuned[k]:.3f}" for k in top) + "."), ""]
    md += ["## Summary", "", summary_table(agg, systems, summary_conds), "",
           "drum-only = clean + reverb + room_mono pooled (the targets' streams).", "",
           "## Targets (drum-only streams)", "", "| target | measured | met |", "|---|---|---|"]
    md += [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in targets(agg, paced)]
    if paced:
        md += ["", (f"Paced in real time ({len(paced['streams'])} drum-only streams: "
               f"{', '.join(paced['streams'])}): hit-to-note latency median "
               f"{paced['median_ms']:.1f} ms, p95 {paced['p95_ms']:.1f} ms (stream time + "
               f"measured queueing and inference); wall clock from the onset block's arrival: "
               f"median {paced['wall_median_ms']:.1f} ms, p95 {paced['wall_p95_ms']:.1f} ms.")]
    comp = class_comparison(per_stream, systems, summary_conds, "drumclassifier")
    if comp and len([x for x in systems if x == args.compare_name or x.startswith("ADTOF")]):
        md += ["", f"## Per-class F (±{CLASS_TOL_MS} ms), paired on the same streams", "",
               "Differences from drumclassifier with 95 % intervals from resampling streams.",
               "", comp]
    if adtof_info:
        md += ["", (f"ADTOF: {adtof_info['version']}, {adtof_info['seconds']:.0f} s wall; "
                    f"an offline system (it reads the whole file, the future included); "
                    f"weights CC BY-NC-SA, bench only. Errors: {adtof_info['errors'] or 'none'}.")]
    kits = kit_table(per_stream, systems)
    if kits:
        md += ["", f"## Per kit, drum-only streams (class F at ±{CLASS_TOL_MS} ms, P/R)", "",
               kits]
    md += ["", "## Where the engine's onsets miss (±25 ms)", "",
           miss_table(per_stream, summary_conds), ""]
    md += ["", "## Per condition", ""]
    for c in summary_conds:
        md += [condition_table(c, agg[c], systems), ""]
    (out / "report.md").write_text("\n".join(md))
    fig = figures(agg, per_stream, systems, summary_conds, out / "summary.png")
    (out / "figures.json").write_text(json.dumps(fig, indent=1))
    (out / "results.json").write_text(json.dumps(
        {"command": cmd, "weights": str(clf.weights_path), "aggregate": agg, "paced": paced,
         "peers": peer_info, "adtof": adtof_info, "compare_weights": args.compare_weights,
         "streams": per_stream}, indent=1, default=float))
    print("\n".join(md))
    print(f"\nwrote {out / 'report.md'}, results.json, figures.json, summary.png",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
