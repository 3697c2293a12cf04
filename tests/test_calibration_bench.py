"""bench/calibration.py (simulated drummers on held-out kits) and
bench/calibration_compare.py, on a generated corpus with the shipped model.

Two generated kits: one named like the corpus's Hydrogen kits ("Instrument__layer.flac"),
one like its sound-font kits (the piece is the key in the `origin` column), plus a
one-class "kit" that must not be simulated.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench import calibration, calibration_compare
from tests.conftest import SR, hihat_like, kick_like


def _write(root: Path, rel: str, x: np.ndarray) -> str:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    sf.write(root / rel, np.stack([x, x], 1), SR, subtype="PCM_16")
    return rel


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("heldout")
    rows = []

    def row(rel, label, kit, origin=""):
        rows.append({"path": rel, "label": label, "source": "gen", "kit": kit, "group": kit,
                     "split": "test", "origin": origin})
    for layer in range(4):  # velocity layers: the same drum, softer to harder
        g = 0.3 + 0.2 * layer
        row(_write(root, f"h/Kick_A__k{layer}.flac", g * kick_like(seed=layer)), "kick", "hydro")
        row(_write(root, f"h/Hat__h{layer}.flac", g * hihat_like(seed=layer)), "hihat", "hydro")
        row(_write(root, f"f/036_kick_v{layer}.flac", g * kick_like(dur_s=0.3, seed=9)), "kick",
            "font", f"gen.sf2#128:0:36:{layer}")
        row(_write(root, f"f/042_hihat_v{layer}.flac", g * hihat_like(dur_s=0.1, seed=9)),
            "hihat", "font", f"gen.sf2#128:0:42:{layer}")
    row(_write(root, "one/kick1.flac", kick_like(seed=5)), "kick", "lonely")
    row(_write(root, "one/kick2.flac", kick_like(seed=6)), "kick", "lonely")
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root


def test_pieces_are_the_kits_drums():
    assert calibration.drum_of(Path("x/Tom_Mid__t2_03.flac"), "") == "Tom_Mid"
    assert calibration.drum_of(Path("x/036_kick_v13.flac"), "Pearl.sf2#0:0:36:13") == "key 36"
    assert calibration.drum_of(Path("x/bd_808.flac"), "bd_808.flac") == "bd_808"


@pytest.mark.parametrize("pieces", ["drum", "class"])
def test_bench_simulates_drummers_and_compares_models(corpus, tmp_path, capsys, pieces):
    out = tmp_path / f"{pieces}.json"
    rc = calibration.main(["--manifest", str(corpus / "manifest.csv"), "--split", "test",
                           "--k", "2", "--draws", "2", "--threads", "1", "--pieces", pieces,
                           "--min-confidence", "0.5", "0.95", "--out", str(tmp_path / "c.png"),
                           "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr()
    assert "2 of them with two classes or more" in text.err  # "lonely" (kicks only) is not
    d = json.loads(out.read_text())
    assert d["kits"] == ["font", "hydro"]
    tot = np.asarray(d["anytime_tot"])  # [system, K, confidence, draw, class]
    # each kit's pieces have 4 layers, K=2 teaches 2 of each: 2 test hits per piece, and
    # whatever the pieces are, a kit holds 4 kicks and 4 hats: 2 x 2 test kicks per draw
    assert (tot[:, 0, :, :, 0] == 4).all() and (tot[:, 0, :, :, 2] == 4).all()
    assert tot[..., [1, 3, 4]].sum() == 0  # classes the kits lack are not counted as misses
    assert "| - |" in text.out or "- |" in text.out
    ok = np.asarray(d["anytime_ok"])
    assert (ok <= tot).all() and ok[1].sum() > 0
    # the comparison: a model against itself differs by exactly nothing
    capsys.readouterr()
    assert calibration_compare.main([f"a={out}", f"b={out}", "--k", "2"]) == 0
    cmp = capsys.readouterr().out
    assert "b - a, per model pair: anytime mean recall +0.000" in cmp
    assert "| a | 1 |" in cmp and "| - |" in cmp


def test_bench_says_when_there_is_nothing_to_test(corpus, tmp_path):
    rows = list(csv.DictReader((corpus / "manifest.csv").open()))
    one = [r for r in rows if r["path"].endswith(("k0.flac", "h0.flac"))]  # one hit per drum
    for r in one:
        r["path"] = str(corpus / r["path"])
    m = tmp_path / "one.csv"
    with m.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(one)
    with pytest.raises(SystemExit, match="nothing to test"):
        calibration.main(["--manifest", str(m), "--split", "test", "--k", "2", "--draws", "1",
                          "--threads", "1", "--out", str(tmp_path / "c.png")])


def test_compare_refuses_files_of_other_draws(corpus, tmp_path, capsys):
    a = {"split": "test", "seed": 0, "draws": 2, "kits": ["x"], "labels": ["kick"],
         "weights": "a", "anytime_ok": [], "anytime_tot": [], "anytime_median_ms": [],
         "fixed_ok": [], "fixed_tot": []}
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps({**a, "draws": 3, "weights": "b"}))
    with pytest.raises(SystemExit, match="other draws"):
        calibration_compare.main([f"a={tmp_path / 'a.json'}", f"b={tmp_path / 'b.json'}"])
    with pytest.raises(SystemExit, match="NAME=GLOB"):
        calibration_compare.main([f"a={tmp_path / 'none*.json'}"])


def test_kit_compare_pairs_streams_and_bounds_the_difference(capsys):
    """bench.kit_compare: B finds one more kick than A in every stream -> kick F rises with
    an interval above 0; snare is identical -> 0 [0, 0]; a stream only one run has is left out."""
    from bench import kit_compare

    def run(extra_kick: int, ids) -> dict:
        def cls(tp):
            return {"tp": tp, "fp": 1, "fn": 10 - tp}
        return {"streams": [{"id": i, "condition": i.split("/")[0],
                             "profile": {"classes": {c: cls(5 + (extra_kick if c == "kick" else 0))
                                                     for c in ("kick", "snare", "hihat", "toms", "cymbals")}}}
                            for i in ids]}
    ids = [f"{c}/g{k}" for c in ("clean", "noise20") for k in range(4)]
    rows = kit_compare.compare(run(0, ids), run(1, ids + ["clean/extra"]), n_boot=200)
    kick = next(r for r in rows if r["condition"] == "all" and r["label"] == "kick")
    snare = next(r for r in rows if r["condition"] == "all" and r["label"] == "snare")
    assert kick["streams"] == 8 and kick["diff"] > 0 and kick["lo"] > 0
    assert snare["diff"] == snare["lo"] == snare["hi"] == 0
    assert {r["condition"] for r in rows} == {"all", "clean", "noise20"}
