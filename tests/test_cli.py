"""`drumclassifier classify` and tester.py, called as main([...])."""
from __future__ import annotations

import csv
import json

import numpy as np
import soundfile as sf

import tester
from drumclassifier.cli import main

from .conftest import SR, kick_like


def test_classify_folder_csv(tiny_checkpoint, sound_files, tmp_path, capsys):
    out = tmp_path / "out.csv"
    rc = main(["classify", "-r", str(sound_files), "-w", str(tiny_checkpoint), "--format", "csv",
               "-o", str(out), "-q"])
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["kick.wav", "hat.wav"]
    assert list(rows[0]) == ["path", "label", "confidence", "p_kick", "p_snare", "p_hihat",
                             "p_toms", "p_cymbals"]


def test_output_never_overwritten(tiny_checkpoint, sound_files, tmp_path, capsys):
    out = tmp_path / "out.csv"
    out.write_text("precious")
    rc = main(["classify", str(sound_files), "-w", str(tiny_checkpoint), "-o", str(out)])
    assert rc == 2 and out.read_text() == "precious"
    assert "exists" in capsys.readouterr().err


def test_bad_files_reported_and_batch_goes_on(tiny_checkpoint, sound_files, capsys):
    (sound_files / "empty.wav").write_bytes(b"")
    (sound_files / "text.wav").write_text("not audio")
    sf.write(sound_files / "silent.wav", np.zeros(SR, np.float32), SR)
    sf.write(sound_files / "nan.wav", np.full(100, np.nan, np.float32), SR, subtype="FLOAT")
    rc = main(["classify", "-r", str(sound_files), "-w", str(tiny_checkpoint), "-q"])
    captured = capsys.readouterr()
    assert rc == 1
    errs = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errs) == 4
    assert any("empty.wav" in e and "empty file" in e for e in errs)
    assert any("silent.wav" in e and "silent" in e for e in errs)
    assert any("nan.wav" in e and "NaN" in e for e in errs)
    assert "Traceback" not in captured.err
    assert len(captured.out.strip().splitlines()) == 2  # kick.wav and hat.wav still classified


def test_json_and_sort_into_copies(tiny_checkpoint, sound_files, tmp_path, capsys):
    dest = tmp_path / "sorted"
    rc = main(["classify", "-r", str(sound_files), "-w", str(tiny_checkpoint), "--format", "json",
               "--sort-into", str(dest), "-q"])
    assert rc == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 2
    for r in results:
        assert (dest / r["label"]).is_dir()
    assert (sound_files / "kick.wav").exists()  # copied, not moved
    # a second run does not overwrite: it adds "name (2).wav"
    main(["classify", "-r", str(sound_files), "-w", str(tiny_checkpoint), "--sort-into", str(dest),
          "-q"])
    assert len(list(dest.rglob("*.wav"))) == 4


def test_missing_weights_clear_message(tmp_path, sound_files, capsys):
    rc = main(["classify", str(sound_files), "-w", str(tmp_path / "none.pt")])
    err = capsys.readouterr().err
    assert rc == 2 and "not found" in err and "Traceback" not in err


def test_tester_file_and_folder(tiny_checkpoint, sound_files, tmp_path, capsys):
    assert tester.main(["-i", str(sound_files), "-w", str(tiny_checkpoint)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    one = tmp_path / "one.flac"
    sf.write(one, kick_like(), SR)
    assert tester.main(["-i", str(one), "-w", str(tiny_checkpoint)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(one)) and len(line.split("\t")) == 4
