"""`drumclassifier classify` and tester.py, called as main([...]); the command line's
layering (what --help and the light modules import) and its flags."""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import tester
from drumclassifier.cli import main

from .conftest import SR, kick_like

REPO = Path(__file__).resolve().parents[1]


def test_classify_folder_csv(tiny_checkpoint, sound_files, tmp_path, capsys):
    out = tmp_path / "out.csv"
    rc = main(["classify", "-r", str(sound_files), "-w", str(tiny_checkpoint), "--format", "csv",
               "-o", str(out), "-q"])
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["kick.wav", "hat.wav"]
    assert list(rows[0]) == ["path", "label", "confidence", "p_kick", "p_snare", "p_hihat",
                             "p_toms", "p_cymbals", "bytes", "mtime_ns", "model"]


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


def test_sort_into_twice_copies_nothing_new(tiny_checkpoint, sound_files, tmp_path, capsys):
    dest = tmp_path / "sorted"
    argv = ["classify", "-r", str(sound_files), "-w", str(tiny_checkpoint), "--sort-into",
            str(dest), "-q"]
    assert main(argv) == 0
    assert "2 copied, 0 skipped" in capsys.readouterr().err
    before = sorted(p.relative_to(dest) for p in dest.rglob("*.wav"))
    assert main(argv) == 0                       # the same files again: all already there
    assert "0 copied, 2 skipped (already there, same bytes), 0 failed" in capsys.readouterr().err
    assert sorted(p.relative_to(dest) for p in dest.rglob("*.wav")) == before
    # a file of the same name with other bytes is still copied, beside the first
    sf.write(sound_files / "kick.wav", 0.5 * kick_like(), SR)
    assert main(argv) == 0
    assert "1 copied, 1 skipped" in capsys.readouterr().err
    assert len(list(dest.rglob("kick (2).wav"))) == 1


def test_sort_into_inside_the_source_is_never_read(tiny_checkpoint, sound_files, capsys):
    dest = sound_files / "sorted"                 # the target inside the folder sorted, -r
    argv = ["classify", "-r", str(sound_files), "-w", str(tiny_checkpoint), "--format", "csv",
            "--sort-into", str(dest), "-q"]
    for _ in range(2):
        assert main(argv) == 0
        out, err = capsys.readouterr()
        assert len(out.strip().splitlines()) == 3              # header + the 2 inputs only
        assert "sorted" not in "".join(out.splitlines()[1:])    # no copy read back
    assert "0 copied, 2 skipped" in err
    assert len(list(dest.rglob("*.wav"))) == 2


def test_folder_with_audio_only_in_sub_folders_says_add_r(tiny_checkpoint, tmp_path, capsys):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("x.wav", "y.wav"):
        sf.write(tmp_path / "a" / "b" / name, kick_like(), SR)
    assert main(["classify", str(tmp_path / "a"), "-w", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "no audio files found" in err and "(2 audio files in sub-folders: add -r)" in err


def test_a_long_file_gets_one_note_pointing_to_stream(tiny_checkpoint, sound_files, capsys):
    groove = sound_files / "groove.wav"
    sf.write(groove, np.tile(kick_like(), 12), SR)            # 6 s: longer than the window
    assert main(["classify", str(sound_files), "-w", str(tiny_checkpoint), "-q"]) == 0
    out, err = capsys.readouterr()
    notes = [ln for ln in err.splitlines() if ln.startswith("note:")]
    assert len(notes) == 1 and "groove.wav" in notes[0] and "6.0 s long" in notes[0]
    assert "drumclassifier stream FILE" in notes[0]
    assert len(out.strip().splitlines()) == 2                 # still classified, both (no -r)


def test_missing_weights_clear_message(tmp_path, sound_files, capsys):
    rc = main(["classify", str(sound_files), "-w", str(tmp_path / "none.pt")])
    err = capsys.readouterr().err
    assert rc == 2 and "not found" in err and "Traceback" not in err


def test_tester_without_weights_uses_the_shipped_model(sound_files, capsys):
    assert tester.main(["-i", str(sound_files)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(len(ln.split("\t")) == 4 for ln in lines)


def test_tester_file_and_folder(tiny_checkpoint, sound_files, tmp_path, capsys):
    assert tester.main(["-i", str(sound_files), "-w", str(tiny_checkpoint)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    one = tmp_path / "one.flac"
    sf.write(one, kick_like(), SR)
    assert tester.main(["-i", str(one), "-w", str(tiny_checkpoint)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(one)) and len(line.split("\t")) == 4


# ---- the model's device: one flag, one clear line ------------------------------------------
@pytest.mark.parametrize("argv", [
    ["classify", "{wav}", "--model-device", "2"],
    ["stream", "{wav}", "--fast", "-q", "--model-device", "2"],
    ["evaluate", "{dir}", "--model-device", "2", "--out", "{tmp}/eval"],
    ["calibrate", "--from-folder", "{dir}", "--model-device", "USB", "--out", "{tmp}/x.kit"],
])
def test_a_wrong_model_device_is_one_line(argv, tiny_checkpoint, sound_files, tmp_path, capsys):
    argv = [a.format(wav=sound_files / "kick.wav", dir=sound_files, tmp=tmp_path) for a in argv]
    assert main(argv + ["-w", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err
    dev = argv[argv.index("--model-device") + 1]
    assert err.strip().splitlines() == [
        f"drumclassifier {argv[0]}: error: model device '{dev}': not a torch device (use cpu, "
        "cuda or cuda:N)"]
    assert not (tmp_path / "eval").exists() and not (tmp_path / "x.kit").exists()


@pytest.mark.parametrize("command", ["classify", "evaluate"])
def test_d_is_never_the_model_device(command, sound_files, capsys):
    """classify and evaluate have no audio device: -d is refused, naming --model-device."""
    with pytest.raises(SystemExit) as e:
        main([command, str(sound_files), "-d", "cpu"])
    assert e.value.code == 2
    assert "the model's device is --model-device cpu" in capsys.readouterr().err


def test_stream_d_is_the_play_output(sound_files, capsys):
    assert main(["stream", str(sound_files / "kick.wav"), "-d", "cpu"]) == 2
    assert "audio output for --play; the model's device is --model-device" in \
        capsys.readouterr().err


def test_help_texts_say_which_device_and_read_the_config_defaults(capsys):
    from realtime.config import AudioConfig, DecisionConfig, SlicerConfig
    helps = {}
    for command in ("classify", "listen", "stream", "calibrate", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        helps[command] = " ".join(capsys.readouterr().out.split())
    for command, text in helps.items():
        assert "--model-device DEV where the model runs" in text, command
    assert "-d D, --device D audio INPUT device" in helps["listen"]
    assert "-d [D], --device [D] a guided live session on this audio INPUT device" in \
        helps["calibrate"]
    assert "audio OUTPUT device" in helps["stream"]
    assert not re.search(r"-d\b", helps["classify"] + helps["evaluate"])   # hidden: refused
    for command in ("listen", "stream"):
        assert f"(default: {SlicerConfig().context_ms:g})" in helps[command]
        assert f"(default: {DecisionConfig().min_confidence:g})" in helps[command]
        assert f"the real-time config's, {AudioConfig().blocksize})" in helps[command]
    assert f"device rate in Hz (default {AudioConfig().sample_rate_hz})" in helps["listen"]
    assert f"the real-time config's, {SlicerConfig().context_ms:g})" in helps["calibrate"]


# ---- layering: what the light modules import ----------------------------------------------
def _modules_after(code: str) -> set[str]:
    r = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


@pytest.mark.parametrize("module", ["realtime.ringbuffer", "realtime.sources", "realtime",
                                    "drumclassifier.errors", "drumclassifier.config"])
def test_light_modules_do_not_import_torch(module):
    assert "torch" not in _modules_after(f"import {module}")


def test_help_imports_no_torch_and_no_command_module():
    mods = _modules_after("import contextlib, io\nfrom drumclassifier.cli import main\n"
                          "with contextlib.redirect_stdout(io.StringIO()), "
                          "contextlib.suppress(SystemExit):\n    main(['--help'])")
    assert "torch" not in mods
    assert not {m for m in mods if m.startswith("realtime")}
    assert "drumclassifier.classify_cli" not in mods


def test_drumclassifier_imports_nothing_from_realtime():
    """realtime may depend on drumclassifier, never the reverse (the table of commands in
    drumclassifier/cli.py names realtime's by module path)."""
    bad = [f"{p.relative_to(REPO)}:{i}" for p in (REPO / "drumclassifier").rglob("*.py")
           for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
           if re.match(r"\s*(from|import) realtime", line)]
    assert bad == []
