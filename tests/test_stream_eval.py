"""The stream benchmark: matcher and scorer on hand-made cases, the generator's truth against
its rendered audio, and one small end-to-end run through the real engine (no peers)."""
from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
import soundfile as sf

from bench import stream_eval as se
from bench.streams import CONDITIONS, SR, Kit, apply_condition, mix, program
from bench.streams.generate import StreamSpec, plan, render_stream, write_truth
from drumclassifier.grooves.render import Instrument, assign_roles
from tests.conftest import hihat_like, kick_like


# ---- matcher and scorer -----------------------------------------------------------------
def test_exact_hits_score_one():
    s = se.score_onsets([0.5, 1.0, 1.5], [0.5, 1.0, 1.5])
    for tol in (25, 50):
        assert s[f"tol{tol}"] == {"tp": 3, "fp": 0, "fn": 0, "p": 1.0, "r": 1.0, "f": 1.0}
    assert s["errors_ms"] == [0.0, 0.0, 0.0]


def test_hit_outside_tolerance_is_a_miss_and_a_false_alarm():
    s = se.score_onsets([1.0], [1.030])
    assert (s["tol25"]["tp"], s["tol25"]["fp"], s["tol25"]["fn"]) == (0, 1, 1)
    assert s["tol50"]["tp"] == 1 and s["errors_ms"] == [pytest.approx(30.0)]
    # the boundary is inclusive
    assert se.score_onsets([1.0], [1.025])["tol25"]["tp"] == 1


def test_double_detection_counts_one_hit_and_one_false_alarm():
    s = se.score_onsets([1.0], [0.995, 1.010])["tol25"]
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 0)
    assert s["p"] == 0.5 and s["r"] == 1.0
    # the closer detection is the one matched
    assert se.match([1.0], [0.990, 1.003], 0.025) == [(0, 1)]


def test_simultaneous_truth_notes_are_one_onset_but_a_flam_is_two():
    truth = [1.0, 1.0, 1.004, 2.0, 2.030]   # kick+hihat(+4 ms) at 1 s; a 30 ms flam at 2 s
    s = se.score_onsets(truth, [1.001, 2.0, 2.031])["tol25"]
    assert (s["tp"], s["fp"], s["fn"]) == (3, 0, 0)
    # one detection for the flam leaves its other stroke missed
    s = se.score_onsets(truth, [1.001, 2.015])["tol25"]
    assert (s["tp"], s["fp"], s["fn"]) == (2, 0, 1)


def test_several_labels_on_one_onset():
    truth = [(1.0, "kick"), (1.0, "hihat"), (1.5, "snare")]
    events = [(1.002, "kick"), (1.002, "hihat"), (1.5, "snare"), (1.5, "cymbals")]
    c = se.score_classes(truth, events)
    for lab in ("kick", "hihat", "snare"):
        assert c[lab]["f"] == 1.0
    assert (c["cymbals"]["fp"], c["cymbals"]["p"]) == (1, 0.0)
    assert c["toms"] == {"tp": 0, "fp": 0, "fn": 0, "p": 1.0, "r": 1.0, "f": 1.0}
    # a wrong label at the right time: a miss for one class, a false alarm for the other
    c = se.score_classes([(1.0, "toms")], [(1.0, "snare")])
    assert (c["toms"]["fn"], c["snare"]["fp"]) == (1, 1)


def test_empty_truth_and_empty_detections():
    s = se.score_onsets([], [0.5, 0.7])["tol25"]
    assert (s["tp"], s["fp"], s["fn"], s["p"], s["f"]) == (0, 2, 0, 0.0, 0.0)
    s = se.score_onsets([], [])["tol25"]
    assert s["f"] == 1.0
    s = se.score_onsets([0.5], [])["tol25"]
    assert (s["fn"], s["r"], s["f"]) == (1, 0.0, 0.0)


def test_aggregate_sums_counts_before_f():
    def one(cond, tp, fp, fn):
        c = {"tp": tp, "fp": fp, "fn": fn}
        return {"condition": cond, "seconds": 10.0,
                "systems": {"x": {"tol25": c, "tol50": c, "errors_ms": [1.0, -1.0]}}}
    agg = se.aggregate([one("clean", 9, 1, 0), one("reverb", 1, 0, 9)], ["x"])
    d = agg["drum-only"]["systems"]["x"]["tol25"]
    assert (d["tp"], d["fp"], d["fn"]) == (10, 1, 9)
    assert d["f"] == pytest.approx(2 * 10 / (2 * 10 + 1 + 9))


def test_kit_table_pools_drum_only_streams_per_kit():
    def one(cond, kit, kick, cym):
        zero = {"tp": 0, "fp": 0, "fn": 0}
        cls = {lab: dict(zero) for lab in se.LABELS}
        cls["kick"], cls["cymbals"] = kick, cym
        return {"condition": cond, "kit": kit, "systems": {"ours": {"classes": cls}}}
    streams = [one("clean", "A", {"tp": 3, "fp": 1, "fn": 0}, {"tp": 0, "fp": 2, "fn": 0}),
               one("reverb", "A", {"tp": 1, "fp": 0, "fn": 4}, {"tp": 0, "fp": 1, "fn": 0}),
               one("music", "A", {"tp": 0, "fp": 50, "fn": 50}, {"tp": 0, "fp": 0, "fn": 0}),
               one("clean", "B", {"tp": 2, "fp": 0, "fn": 0}, {"tp": 0, "fp": 0, "fn": 0})]
    rows = {r.split(" | ")[0].strip("| "): r for r in se.kit_table(streams, ["ours"]).splitlines()[2:]}
    assert set(rows) == {"A", "B"}                 # music is not drum-only: not pooled
    # A: kick tp 4, fp 1, fn 4 -> P 0.80, R 0.50, F 8/13; cymbals never played, 3 false
    assert "0.62 (0.80/0.50)" in rows["A"] and "— (3 false)" in rows["A"]
    assert "1.00 (1.00/1.00)" in rows["B"]


# ---- generator ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synth_kit(tmp_path_factory):
    """A five-class kit of generated sounds with sharp attacks (no corpus needed)."""
    d = tmp_path_factory.mktemp("kit")
    specs = {"Kick": ("kick", kick_like(seed=0)), "Snare": ("snare", hihat_like(seed=1) * 0.9),
             "Closed_HH": ("hihat", hihat_like(seed=2, dur_s=0.08)),
             "Tom_Hi": ("toms", kick_like(seed=3) * 0.7), "Crash": ("cymbals", hihat_like(seed=4))}
    inst = {}
    for name, (label, x) in specs.items():
        p = d / f"{name}.flac"
        sf.write(p, np.stack([x, x], 1), SR, subtype="PCM_24")
        inst[name] = Instrument(name, label, [(127, p)])
    return Kit("synth", inst, assign_roles(inst))


def energy_onset(x: np.ndarray, t: float, search_s: float = 0.015, win: int = 32) -> float:
    """A simple energy onset near t: from the loudest point of [t, t + 10 ms] (RMS over
    `win` samples ahead), walk back to where the level first falls below half (-6 dB)."""
    m = x.mean(1) if x.ndim == 2 else x
    e = np.concatenate([[0.0], np.cumsum(m.astype(np.float64) ** 2)])
    env = (e[win:] - e[:-win]) / win                  # env[i]: power of m[i:i+win]
    i0, ipk = int((t - search_s) * SR), int(t * SR)
    ipk += int(np.argmax(env[ipk:ipk + int(0.010 * SR)]))
    i = ipk
    while i > i0 and env[i - 1] >= 0.25 * env[ipk]:   # power: -6 dB in level
        i -= 1
    return (i + win / 2) / SR                          # the window's centre


def test_roles_fall_back_within_a_class(synth_kit):
    r = synth_kit.roles
    assert r["hh_open"] == r["hh_pedal"] == "Closed_HH"
    assert r["ride"] == "Crash" and r["tom_low"] == r["tom_mid"] == "Tom_Hi"


@pytest.mark.parametrize("cond", ["clean", "reverb", "room_mono", "mp3", "noise20"])
def test_truth_lines_up_with_the_rendered_audio(synth_kit, cond):
    notes = program("rock", 100, 6.0, np.random.default_rng(1))
    x, kept = mix(notes, synth_kit)
    y = apply_condition(x, cond, 100, np.random.default_rng(2))
    assert y.shape[0] == x.shape[0] and np.abs(y).max() <= 0.9
    # loud (velocity >= 100) onsets 100 ms or more after the previous one: the largest rise
    # near them is their own attack, not the tail (or the reverb) of an earlier hit
    times = se.group_onsets([n.time_s for n in kept])
    loud = {n.time_s for n in kept if n.velocity >= 100}
    isolated = [t for a, t in itertools.pairwise(times) if t - a >= 0.1 and t in loud][:8]
    assert len(isolated) >= 5
    for t in isolated:
        assert abs(energy_onset(y, t) - t) <= 0.002, (cond, t)


def test_music_adds_a_bed_without_moving_the_drums(synth_kit):
    # (the bass line's own attacks sit on the unjittered grid, a few ms from the drums', so
    # the energy check above would find them: check the drums' alignment by correlation)
    x, _ = mix(program("rock", 100, 6.0, np.random.default_rng(1)), synth_kit)
    y = apply_condition(x, "music", 100, np.random.default_rng(2))
    a, b = x.mean(1), y.mean(1)
    lags = np.arange(-200, 201)
    c = [np.dot(a[200:-200], b[200 + k:len(b) - 200 + k]) for k in lags]
    assert lags[int(np.argmax(c))] == 0
    k = np.dot(a, b) / np.dot(a, a)                    # the drums' gain in the mix
    bed = b - k * a
    assert 0.3 < np.sqrt((bed ** 2).mean() / ((k * a) ** 2).mean()) < 1.2   # about -3 dB


def test_program_covers_the_variations():
    rng = np.random.default_rng(0)
    notes = program("sixteenths", 90, 30.0, rng)
    vel = [n.velocity for n in notes if n.role == "snare"]
    assert min(vel) <= 40                                       # ghost notes
    assert {"crash", "tom_hi", "tom_low"} <= {n.role for n in notes}   # crashes, tom fills
    t = np.array(sorted(n.time_s for n in notes))
    assert np.diff(np.unique(t)).min() < 0.04                   # flams / rolls
    assert notes == program("sixteenths", 90, 30.0, np.random.default_rng(0))  # seeded
    for g, ((lo, hi), _) in __import__("bench.streams", fromlist=["GROOVES"]).GROOVES.items():
        assert 60 <= lo <= hi <= 200
        assert program(g, lo, 5.0, np.random.default_rng(0))


def test_plan_is_deterministic_and_spreads_grooves():
    a = plan(["k1", "k2"], ["rock", "bossa", "ballad"], 2, 30.0, 0)
    assert a == plan(["k1", "k2"], ["rock", "bossa", "ballad"], 2, 30.0, 0)
    assert [s.groove for s in a] == ["rock", "bossa", "ballad", "rock"]
    assert all(60 <= s.bpm <= 200 for s in a)


# ---- end to end through the real engine (untrained tiny model: onsets and plumbing) -----
def test_stream_eval_end_to_end(tmp_path, synth_kit, tiny_checkpoint):
    spec = StreamSpec("synth", "rock", 200, 3.0, 0)     # 4 bars: 6.6 s (paced once)
    clean, notes = render_stream(spec, synth_kit)
    rows = []
    for cond in ("clean", "mp3"):
        (tmp_path / cond).mkdir()
        y = apply_condition(clean, cond, spec.bpm, np.random.default_rng(0))
        sf.write(tmp_path / cond / "s.flac", y, SR, subtype="PCM_24")
        write_truth(tmp_path / cond / "s.csv", notes)
        rows.append({"id": f"{cond}/s", "condition": cond, "kit": "synth", "groove": "rock",
                     "bpm": 200, "seconds": len(y) / SR, "notes": len(notes),
                     "audio": f"{cond}/s.flac", "truth": f"{cond}/s.csv"})
    with open(tmp_path / "streams.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "out"
    assert se.main([str(tmp_path), "--out", str(out), "-w", str(tiny_checkpoint),
                    "--no-peers", "--paced", "1"]) == 0
    import json
    res = json.loads((out / "results.json").read_text())
    clean_f = res["aggregate"]["clean"]["systems"]["drumclassifier"]["tol25"]["f"]
    assert clean_f >= 0.9                  # the onset detector on sharp synthetic hits
    s = res["streams"][0]["systems"]["drumclassifier"]
    assert s["latency_ms"] and all(x > 0 for x in s["latency_ms"])
    # paced in real time: the live latency is the slice's context plus detection and model
    assert res["paced"]["streams"] == ["clean/s"]
    from realtime.config import RealtimeConfig
    # a note cannot go out before its context has been heard (no upper bound: timing
    # thresholds do not belong in tests on a shared machine)
    assert res["paced"]["median_ms"] >= RealtimeConfig().slicer.context_ms
    assert (out / "summary.png").stat().st_size > 10000
    md = (out / "report.md").read_text()
    assert "### clean" in md and "### mp3" in md and "drum-only" in md
    assert set(json.loads((out / "figures.json").read_text())) == {
        "class_f", "onset_f25", "latency_ms", "live_latency_ms"}
    assert CONDITIONS[0] == "clean"
    # --music auto: each file scanned as `stream` does; drums alone keep the default
    assert se.main([str(tmp_path), "--out", str(out), "-w", str(tiny_checkpoint),
                    "--no-peers", "--music", "auto"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert [s["music_detector"] for s in res["streams"]] == [False, False]
    assert all(0.5 < s["music_ratio"] < 2 for s in res["streams"])
    assert "music detector on 0 of 2 streams (--music auto)" in (out / "report.md").read_text()
