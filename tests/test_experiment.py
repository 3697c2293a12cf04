"""The experiment harness's bookkeeping (bench/experiment.py): leave-one-group-out
manifests and run names, including single-kit groups named "source/kit". No training
here: CI cannot afford a run; the statistics are covered in test_report.py."""
from __future__ import annotations

import csv

import pytest

from bench import experiment as ex

FIELDS = ["path", "label", "source", "kit", "group", "split"]


@pytest.fixture()
def exp_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(ex, "EXP_DIR", tmp_path / "exp")
    return tmp_path / "exp"


def write_manifest(path):
    rows = [["audio/a.flac", "kick", "hydrogen", "BJA_Pacific", "hydrogen/BJA_Pacific", "train"],
            ["audio/b.flac", "snare", "fluid", "Standard", "fluid", "train"],
            ["audio/c.flac", "toms", "hydrogen", "Millo", "millo", "test"]]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        w.writerows(rows)
    return path


def test_single_kit_group_held_out_in_a_flat_file(exp_dir, tmp_path):
    m = write_manifest(tmp_path / "corpus" / "manifest.csv")
    out = ex.logo_manifest(m, "hydrogen/BJA_Pacific")
    assert out.parent == exp_dir / "manifests" and "/" not in out.name
    rows = list(csv.DictReader(out.open()))
    assert [r["split"] for r in rows] == ["heldout", "train", "test"]
    assert rows[0]["path"] == str((m.parent / "audio/a.flac").resolve())   # absolute
    assert ex.run_name("base", 1, "hydrogen/BJA_Pacific") == "base@hydrogen_BJA_Pacific-s1"
    assert ex.run_name("base", 0, None) == "base-s0"
    assert ex.arm_tag("base@hydrogen/BJA_Pacific") == "base@hydrogen_BJA_Pacific"


def test_runs_of_a_logo_arm_are_found_by_its_group_name(exp_dir):
    for seed in (0, 1):
        run = exp_dir / ex.run_name("base", seed, "hydrogen/BJA_Pacific")
        run.mkdir(parents=True)
        (run / "last.pt").write_bytes(b"")
    (exp_dir / "base@hydrogen_BJA_Pacific-sX").mkdir()      # not a seed: ignored
    got = ex.arm_runs("base@hydrogen/BJA_Pacific")
    assert [p.name for p in got] == ["base@hydrogen_BJA_Pacific-s0", "base@hydrogen_BJA_Pacific-s1"]


def test_unknown_group_is_refused(exp_dir, tmp_path):
    m = write_manifest(tmp_path / "corpus" / "manifest.csv")
    with pytest.raises(SystemExit, match="no rows of group"):
        ex.logo_manifest(m, "nope")


def test_a_later_phase_starts_each_seed_from_its_own_earlier_run():
    got = ex.seed_overrides(["train.init_from=runs/exp/gonly-s{seed}/last.pt", "train.lr=1e-3"], 2)
    assert got == ["train.init_from=runs/exp/gonly-s2/last.pt", "train.lr=1e-3"]
