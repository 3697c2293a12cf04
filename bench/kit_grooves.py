"""Kit profiles in grooves: simulated drummers on held-out kits, calibrated path vs generic.

For each held-out kit (split == test of --manifest; kits no model was trained on), a
simulated drummer teaches every piece of the kit exactly as `drumclassifier calibrate
--from-folder` reads it: one sub-folder CLASS--piece per instrument of the kit (a
Hydrogen instrument, a SoundFont key), its velocity layers the hits. The profile is fitted
by that very command. Then grooves rendered with the same kit (bench.streams: programmed
grooves with ghost notes, flams, fills, crashes; conditions drum-only, mono room mic,
20 dB noise) go through the live engine in file mode twice, on the same audio:

  generic  the shipped model, the default live settings (20 ms context);
  profile  the profile (--kit), with the same live settings, or the anytime ladder
           --anytime-ms and --min-confidence.

Scored per system: class F at +-25 ms (bench.stream_eval's matcher, pooled over streams),
the right-piece rate (of the truth notes whose class was found, the share with an event
naming the instrument that played them; the kit path only) and the decision context
(ms of audio after the onset each sent note's decision used: median, 90th percentile).
With --paced N, the first N clean streams are also played in real time through both
systems: hit-to-note latency per note (wall clock from the onset's arrival: detection,
the context waited for, the audio block, queueing and the model call), median and p95.

    .venv/bin/python -m bench.kit_grooves --out runs/kit_grooves

A best case for timbre: the grooves play the very samples that were taught (a real
drummer never hits twice alike); the hard part measured is the groove: hits together,
tails under new hits, a room, noise. CPU, about a minute per kit.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.stream_eval import CLASS_TOL_MS, LABELS, add_counts, match, pct, prf, score_classes
from bench.streams import GROOVES, SR, apply_condition, load_kits, plan, render_stream

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MANIFEST = ROOT / "data" / "corpus" / "manifest-today.csv"
CONDITIONS = ("clean", "room_mono", "noise20")


def teach_folder(kit, folder: Path) -> dict[str, str]:
    """The kit as `calibrate --from-folder` reads it: folder/CLASS--piece/ with the piece's
    velocity layers (symlinks). Returns instrument name -> piece name."""
    names = {}
    for inst in kit.instruments.values():
        piece = inst.name.replace("/", "_")
        d = folder / f"{inst.label}--{piece}"
        d.mkdir(parents=True, exist_ok=True)
        for k, (_vel, path) in enumerate(sorted(inst.layers)):
            (d / f"{k:03d}{Path(path).suffix}").symlink_to(Path(path).resolve())
        names[inst.name] = piece
    return names


def calibrate(folder: Path, out: Path, log: Path, groove: Path | None = None,
              bpm: float = 0.0, groove_pieces: str = "") -> float:
    """`drumclassifier calibrate --from-folder folder --out out [--groove groove
    --groove-bpm bpm --groove-pieces ...]`, in this process; its output goes to `log`.
    Returns the seconds it took."""
    from drumclassifier.cli import main
    t0 = time.perf_counter()
    buf = io.StringIO()
    extra = (["--groove", str(groove), "--groove-bpm", f"{bpm:g}",
              "--groove-pieces", groove_pieces] if groove else [])
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(["calibrate", "--from-folder", str(folder), "--out", str(out), "--force",
                   *extra])
    log.write_text(buf.getvalue())
    if rc != 0:
        raise SystemExit(f"calibrate failed on {folder} (see {log})")
    return time.perf_counter() - t0


# the play-along groove's roles (realtime/playalong.py) as bench.streams' mixer names them
MIX_ROLE = {"hihat": "hh_closed", "open hihat": "hh_open", "ride": "ride", "crash": "crash",
            "kick": "kick", "snare": "snare", "high tom": "tom_hi", "mid tom": "tom_mid",
            "floor tom": "tom_low"}


def groove_pieces(kit, piece_of: dict[str, str]) -> str:
    """--groove-pieces for the simulated drummer: each part of the play-along groove on
    the piece that plays it in the kit's grooves (bench.streams' role of the kit), as a
    drummer plays the groove on the drums they always play."""
    return ",".join(f"{r}={piece_of[kit.roles[m]]}" for r, m in MIX_ROLE.items()
                    if m in kit.roles)


def play_along(kit, folder: Path, piece_of: dict[str, str], bpm: float,
               rng: np.random.Generator, spread_ms: float = 4.0) -> np.ndarray:
    """The simulated drummer plays the play-along groove on the kit as `calibrate
    --from-folder folder --show-groove --groove-pieces groove_pieces(...)` shows it: each
    note up to spread_ms off the grid (the notes of one beat each their own way, as hands
    and feet are), at the tab's velocity +-15, after 0.5 s of silence. -> [n, 2] float32 at SR."""
    from bench.streams import Kit, Note, mix
    from drumclassifier.calibrate import resolve_pieces
    from drumclassifier.kit import Piece
    from realtime.playalong import GROOVE, assign_roles, parse_roles
    pieces = [Piece(*p) for p in resolve_pieces([d.name for d in sorted(folder.iterdir())],
                                                LABELS, {})]
    inst_of = {piece: inst for inst, piece in piece_of.items()}
    chosen = parse_roles(groove_pieces(kit, piece_of))
    roles = {MIX_ROLE[r]: inst_of[pieces[i].name]
             for r, i in assign_roles(pieces, chosen).items()}
    notes = [Note(0.5 + beat * 60.0 / bpm + rng.uniform(-spread_ms, spread_ms) / 1000,
                  MIX_ROLE[role], int(np.clip(vel + rng.integers(-15, 16), 1, 127)))
             for beat, role, vel in GROOVE]
    audio, _ = mix(sorted(notes, key=lambda n: n.time_s), Kit(kit.name, kit.instruments, roles))
    return audio


def run(clf, path: Path, cfg, classify=None, fast: bool = True) -> list:
    """The live engine on one file (file mode, fast or paced in real time): its events."""
    from realtime import Engine, FileSource, ListSink
    keep = ListSink()
    Engine(clf, FileSource(path, cfg.audio.blocksize, fast=fast), [keep], cfg,
           classify=classify).run()
    return keep.events


def right_pieces(truth, events, tol_ms: float = CLASS_TOL_MS) -> tuple[int, int]:
    """truth [(time_s, label, piece)], events with .time_s/.label/.piece -> (notes whose
    class was found, of those the notes with an event of their own piece)."""
    found = right = 0
    for c in LABELS:
        ref = [(t, p) for t, lab, p in truth if lab == c]
        ev = [e for e in events if e.label == c]
        if not ref or not ev:
            continue
        pairs = match(np.array([t for t, _ in ref]), np.array([e.time_s for e in ev]),
                      tol_ms / 1000)
        for i, _j in pairs:
            found += 1
            t, piece = ref[i]
            right += any(abs(e.time_s - t) <= tol_ms / 1000 and e.piece == piece for e in ev)
    return found, right


def score(truth, events) -> dict:
    found, right = right_pieces(truth, events)
    return {"classes": score_classes([(t, lab) for t, lab, _ in truth],
                                     [(e.time_s, e.label) for e in events]),
            "found": found, "right_piece": right,
            "context_ms": [e.context_ms for e in events]}


def pooled(rows: list[dict], system: str, conds=None) -> dict:
    """Per-class counts and the decision figures of `system`, pooled over rows."""
    sel = [r[system] for r in rows if conds is None or r["condition"] in conds]
    counts = dict.fromkeys(LABELS)
    for s in sel:
        for c in LABELS:
            counts[c] = add_counts(counts[c], s["classes"][c])
    cls = {c: prf(**counts[c]) for c in LABELS} if sel else {}
    ctx = [x for s in sel for x in s["context_ms"]]
    found = sum(s["found"] for s in sel)
    return {"classes": cls, "right_piece": sum(s["right_piece"] for s in sel) / found
            if found else float("nan"),
            "context_median_ms": pct(ctx, 50), "context_p90_ms": pct(ctx, 90),
            "notes_sent": len(ctx)}


def table(rows: list[dict], systems: list[str], conds) -> list[str]:
    L = ["| condition | system | " + " | ".join(f"{c} F" for c in LABELS)
         + " | right piece | decision context median / p90 (ms) |",
         "|---|---|" + "---|" * (len(LABELS) + 2)]
    for cond in [None, *conds]:
        for s in systems:
            a = pooled(rows, s, None if cond is None else [cond])
            if not a["classes"]:
                continue
            rp = "" if s == "generic" else f"{a['right_piece']:.3f}"
            cells = [f"{k['f']:.3f}" if k["tp"] + k["fn"] else "(not played)"
                     for k in (a["classes"][c] for c in LABELS)]
            L.append(f"| {cond or 'all'} | {s} | " + " | ".join(cells)
                     + f" | {rp} | {a['context_median_ms']:.1f} / {a['context_p90_ms']:.1f} |")
    return L


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--manifest", default=str(DEFAULT_MANIFEST),
                    help="corpus manifest: its test split's kits are the drummers' kits")
    ap.add_argument("--split", default="test",
                    help="the manifest split whose kits play (default: test; val: the "
                         "validation kits, to choose settings without the test kits)")
    ap.add_argument("--kits", nargs="+", help="kits (default: all of --split)")
    ap.add_argument("--streams-per-kit", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS))
    ap.add_argument("-w", "--weights", help="model weights (default: the shipped model)")
    ap.add_argument("--anytime-ms", type=float, nargs="+",
                    help="the kit path's anytime ladder (ms after the onset; default: the "
                         "real-time config's, off: one fixed 20 ms context)")
    ap.add_argument("--min-confidence", type=float,
                    help="anytime: send a piece once this sure (default: the config's)")
    ap.add_argument("--max-pieces", type=int, help="decision.max_pieces of the kit path "
                    "(default: the real-time config's)")
    ap.add_argument("--seed", type=int, default=1, help="grooves' seed (bench.streams uses "
                    "0 for data/streams-v2; another seed plays other tempos and fills)")
    ap.add_argument("--take-seed", type=int, default=None,
                    help="the simulated drummer's play-along take only (default: --seed): "
                         "one take per kit is one draw, this shows how much it matters")
    ap.add_argument("--fit", nargs="+", default=[], metavar="KEY=VALUE",
                    help="fit the profiles with other drumclassifier.kit.FitOptions than "
                         "calibrate's defaults (a variant to measure), e.g. balance=1; "
                         "mix.KEY=VALUE sets a field of its GrooveMix, e.g. mix.p_room=0.3")
    ap.add_argument("--late-look-ms", type=float, help="slicer.late_look_ms for both paths "
                    "(configs/realtime-offline.yaml: cymbals from a 200 ms look)")
    ap.add_argument("--paced", type=int, default=0, metavar="N",
                    help="also play the first N clean streams in real time (latency)")
    ap.add_argument("--rt-config", metavar="FILE", action="append",
                    help="real-time config YAML under both paths (the options above go on "
                         "top); repeat it to merge several, in order")
    ap.add_argument("--play-along", type=float, default=0.0, metavar="BPM",
                    help="the simulated drummer also plays the play-along groove at BPM "
                         "and it is passed to calibrate with --groove (0: not)")
    ap.add_argument("--play-along-spread-ms", type=float, default=4.0, metavar="MS",
                    help="the simulated drummer's timing: each note of the play-along up to "
                         "MS off the grid (default %(default)g)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "runs" / "kit_grooves"))
    a = ap.parse_args(argv)

    import torch

    from drumclassifier.classifier import DrumClassifier
    from realtime.classify import kit_classify
    from realtime.config import load_realtime_config
    torch.set_num_threads(a.threads)
    if a.fit:    # calibrate (run in this process) fits with FitOptions(): these defaults
        import drumclassifier.kit as kit_mod
        shipped = kit_mod.FitOptions
        over = {k: json.loads(v) for k, v in (x.split("=", 1) for x in a.fit)}
        # JSON lists -> tuples, as the dataclasses hold them (a list default is refused)
        over = {k: tuple(v) if isinstance(v, list) else v for k, v in over.items()}
        mix = {k.removeprefix("mix."): over.pop(k) for k in list(over) if k.startswith("mix.")}
        fields = [(k, type(v), dataclasses.field(default=v)) for k, v in over.items()]
        if mix:      # mix.KEY=VALUE: a field of the groove mix (kit.GrooveMix)
            fields.append(("mix", kit_mod.GrooveMix, dataclasses.field(
                default_factory=lambda: kit_mod.GrooveMix(**mix))))
        kit_mod.FitOptions = dataclasses.make_dataclass(   # the same, other defaults
            "FitOptions", fields, bases=(shipped,))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    kits = load_kits(Path(a.manifest), a.split)
    names = a.kits or [k for k, kit in kits.items() if len(kit.instruments) >= 2]
    clf = DrumClassifier(a.weights, device="cpu")
    late = {"slicer": {"late_look_ms": a.late_look_ms}} if a.late_look_ms else {}
    generic_cfg = load_realtime_config(a.rt_config, late)
    kit_over = {"slicer": {}, "decision": {}}
    for sec, key, v in (("slicer", "anytime_ms", a.anytime_ms),
                        ("slicer", "late_look_ms", a.late_look_ms),
                        ("decision", "min_confidence", a.min_confidence),
                        ("decision", "max_pieces", a.max_pieces)):
        if v is not None:
            kit_over[sec][key] = v
    kit_cfg = load_realtime_config(a.rt_config, kit_over)
    rows, cal, paced = [], {}, {"generic": [], "profile": []}
    # grooves cycle over the kits as in bench.streams (each kit plays different ones)
    specs = plan(names, list(GROOVES), a.streams_per_kit, a.seconds, a.seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            kit = kits[name]
            folder = Path(tmp) / name
            piece_of = teach_folder(kit, folder)
            prof = out / f"{name}.kit"
            groove = None
            if a.play_along:
                groove = Path(tmp) / f"{name}.play-along.flac"
                sf.write(groove, play_along(kit, folder, piece_of, a.play_along,
                                            np.random.default_rng([
                                                a.seed if a.take_seed is None else a.take_seed,
                                                7]),
                                            a.play_along_spread_ms), SR, subtype="PCM_24")
            cal[name] = {"pieces": len(piece_of), "hits": sum(len(i.layers) for i in
                                                              kit.instruments.values()),
                         "fit_s": round(calibrate(folder, prof, out / f"{name}.calibrate.log",
                                                  groove, a.play_along,
                                                  groove_pieces(kit, piece_of)), 1)}
            kc = kit_classify(clf, prof, kit_cfg, SR, quiet=True)
            for spec in (s for s in specs if s.kit == name):
                clean, notes = render_stream(spec, kit)
                truth = [(n.time_s, n.label, piece_of[kit.roles[n.role]]) for n in notes]
                for cond in a.conditions:
                    y = apply_condition(clean, cond, spec.bpm, np.random.default_rng(
                        [a.seed, len(rows)]))
                    path = Path(tmp) / f"{spec.id}__{cond}.flac"
                    sf.write(path, y, SR, subtype="PCM_24")
                    rows.append({"id": f"{cond}/{spec.id}", "kit": name, "condition": cond,
                                 "notes": len(notes),
                                 "generic": score(truth, run(clf, path, generic_cfg)),
                                 "profile": score(truth, run(clf, path, kit_cfg, kc))})
                    if cond == "clean" and len(paced["generic"]) < a.paced:
                        for sys_name, c, k in (("generic", generic_cfg, None),
                                               ("profile", kit_cfg, kc)):
                            paced[sys_name].append([
                                (e.wall_latency_ms, e.context_ms, e.detect_ms, e.infer_ms)
                                for e in run(clf, path, c, k, fast=False)])
                    path.unlink()
            print(f"{name}: {cal[name]['pieces']} pieces, {cal[name]['hits']} hits taught "
                  f"(fit {cal[name]['fit_s']} s); {len(rows)} streams done, "
                  f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    systems = ["generic", "profile"]
    md = [f"# Kit profiles in grooves: {len(names)} held-out kits, {len(rows)} streams "
          f"({', '.join(a.conditions)}; {sum(r['notes'] for r in rows)} notes)", "",
          f"Kit path: contexts {kit_cfg.slicer.contexts_ms} ms, min confidence "
          f"{kit_cfg.decision.min_confidence}, max pieces {kit_cfg.decision.max_pieces}"
          + (f"; fitted with {' '.join(a.fit)}" if a.fit else "")
          + (f"; with the play-along groove at {a.play_along:g} BPM" if a.play_along else "")
          + f"; weights {clf.weights_path.name}. Class F at ±{CLASS_TOL_MS} ms.", "",
          *table(rows, systems, a.conditions), ""]
    if a.paced:
        md += [f"Paced: hit-to-note latency per note, {a.paced} clean streams played in "
               "real time, and the medians of what it is made of: the context waited for "
               "after the onset, the detection delay, the model call (the rest: the block "
               "that completes the context, the analysis thread's poll, the worker's "
               "wake-up):", "",
               "| system | notes | median (ms) | p95 (ms) | context | detection | model call |",
               "|---|---|---|---|---|---|---|"]
        for sys_name, runs in paced.items():
            lat, ctx, det, call = zip(*[x for r in runs for x in r]) if any(runs) else [[]] * 4
            md.append(f"| {sys_name} | {len(lat)} | {pct(lat, 50):.1f} | {pct(lat, 95):.1f} | "
                      f"{pct(ctx, 50):.1f} | {pct(det, 50):.1f} | {pct(call, 50):.1f} |")
        md.append("")
    head = len(md)
    md += ["## Per kit (all conditions)", ""]
    for name in names:
        md += [f"### {name} ({cal[name]['pieces']} pieces, {cal[name]['hits']} hits taught)",
               *table([r for r in rows if r["kit"] == name], systems, []), ""]
    (out / "report.md").write_text("\n".join(md) + "\n")
    summary = {s: pooled(rows, s) for s in systems}
    (out / "results.json").write_text(json.dumps(
        {"args": vars(a), "calibration": cal, "summary": summary, "streams": rows,
         "paced_latency_ms": paced},
        indent=1, default=float))
    print("\n".join(md[:head]))
    print(f"report: {out / 'report.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
