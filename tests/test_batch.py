"""Batch classification: the fast path (folded batch norms, files grouped by length, model
calls on parallel threads) gives the API's probabilities, and --resume classifies only what
is new or changed. ONNX Runtime (equal-length batches on the CPU) gives torch's numbers."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from drumclassifier import DrumClassifier, classify_cli
from drumclassifier.checkpoint import read_checkpoint
from drumclassifier.cli import main
from drumclassifier.errors import DrumClassifierError
from drumclassifier.model import build_model

from .conftest import SR, hihat_like, kick_like

ONE_SHOTS = Path(__file__).resolve().parents[1] / "examples" / "one-shots"


@pytest.fixture(scope="module")
def shipped():
    return DrumClassifier(device="cpu")


@pytest.fixture()
def library(tmp_path):
    """The example one-shots, each also cut short (50 ms, 300 ms), as mono and at 48 kHz:
    20 real drum files of many lengths, so a window's batches are reordered by length."""
    lib = tmp_path / "lib"
    lib.mkdir()
    for f in sorted(ONE_SHOTS.glob("*.flac")):
        x, sr = sf.read(f, dtype="float32", always_2d=True)
        sf.write(lib / f.name, x, sr)
        sf.write(lib / f"{f.stem}-50ms.wav", x[:int(0.05 * sr)], sr)
        sf.write(lib / f"{f.stem}-300ms-mono.wav", x[:int(0.3 * sr)].mean(1), sr)
        n48 = int(len(x) * 48000 / sr)    # crude resample: only the rate path matters here
        sf.write(lib / f"{f.stem}-48k.wav",
                 np.stack([np.interp(np.linspace(0, len(x) - 1, n48), np.arange(len(x)),
                                     x[:, c]) for c in range(x.shape[1])], 1).astype(np.float32),
                 48000)
    return lib


def test_batch_path_gives_the_api_probabilities(shipped, library, monkeypatch):
    """Windows of 4 files, batches of 2 grouped by length, two model threads: every file's
    probabilities equal classify_from_path's (one file alone) within float tolerance, and
    results come back in input order."""
    monkeypatch.setattr(classify_cli, "WINDOW_BATCHES", 2)
    files = sorted(library.iterdir())
    torch.set_num_threads(1)
    try:
        got_paths, got = [], []
        for paths, probs in classify_cli.iter_batches(shipped, files, 2, 2, pytest.fail, 2):
            got_paths += paths
            got.append(probs)
    finally:
        torch.set_num_threads(os.cpu_count() or 1)
    assert got_paths == files
    got = torch.cat(got)
    want = torch.tensor([[r.probs[lab] for lab in shipped.labels]
                         for r in shipped.classify_from_path(files)])
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    assert [shipped.labels[i] for i in got.argmax(1)] == [
        r.label for r in shipped.classify_from_path(files)]


def test_folded_model_is_the_checkpoint_network(shipped, library):
    """Batch norms folded into the convs (inference only) give what the network the
    checkpoint describes gives, on real drum audio."""
    net = build_model(shipped.cfg)
    net.load_state_dict(read_checkpoint(shipped.weights_path)["state_dict"])
    net.eval()
    waves = [shipped.load(f) for f in sorted(library.iterdir())]
    x, lengths = shipped._batch(waves, None)
    with torch.inference_mode():
        feats, frames = shipped.features(x, lengths)
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in shipped.model.modules())
        assert torch.allclose(torch.sigmoid(net(feats, frames)),
                              torch.sigmoid(shipped.model(feats, frames)), atol=1e-5)


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def test_resume_classifies_only_what_is_new_or_changed(tiny_checkpoint, sound_files,
                                                       tmp_path, capsys):
    out = tmp_path / "labels.csv"
    argv = ["classify", "-r", str(sound_files), "-w", str(tiny_checkpoint), "--format", "csv",
            "-o", str(out), "-q"]
    assert main(argv) == 0
    first = _rows(out)
    assert [r["path"].rsplit("/", 1)[-1] for r in first] == ["kick.wav", "hat.wav"]
    assert first[0]["bytes"] == str((sound_files / "kick.wav").stat().st_size)
    # mark the kick's kept row: a row that is kept is copied, never recomputed
    text = out.read_text().replace(first[0]["confidence"], "0.1234", 1)
    out.write_text(text)
    sf.write(sound_files / "new.wav", kick_like(), SR)               # new
    sf.write(sound_files / "sub" / "hat.wav", hihat_like() * 0.5, SR)   # changed
    os.utime(sound_files / "sub" / "hat.wav", ns=(1, 1))
    capsys.readouterr()
    assert main(argv + ["--resume"]) == 0
    err = capsys.readouterr().err
    assert "1 files unchanged (kept), 2 new or changed to classify" in err
    rows = _rows(out)
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["kick.wav", "new.wav", "hat.wav"]
    assert rows[0]["confidence"] == "0.1234"                  # kept as it was
    assert rows[2]["mtime_ns"] == "1"                         # the changed file re-done
    assert not (tmp_path / "labels.csv.partial").exists()
    # a file gone: its row is dropped; nothing else is classified again
    (sound_files / "new.wav").unlink()
    assert main(argv + ["--resume"]) == 0
    assert "2 files unchanged (kept), 0 new or changed to classify, 1 rows of files no " \
           "longer there dropped" in capsys.readouterr().err
    assert [r["path"].rsplit("/", 1)[-1] for r in _rows(out)] == ["kick.wav", "hat.wav"]


def test_resume_after_an_interrupted_run(tiny_checkpoint, sound_files, tmp_path, monkeypatch,
                                         capsys):
    """Ctrl-C mid-library (simulated: the second model call raises KeyboardInterrupt, as
    the signal would in the main thread): OUT keeps the rows done, --resume does the rest.
    Also for JSON, which is written at the end of a run."""
    for i in range(3):
        sf.write(sound_files / f"k{i}.wav", kick_like(), SR)
    monkeypatch.setattr(classify_cli, "WINDOW_BATCHES", 1)
    real_predict = DrumClassifier.predict
    for fmt in ("csv", "json"):
        out = tmp_path / f"labels.{fmt}"
        argv = ["classify", "-r", str(sound_files), "-w", str(tiny_checkpoint), "--format",
                fmt, "-o", str(out), "-q", "-b", "1"]
        calls = []

        def interrupted(self, *a, **k):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real_predict(self, *a, **k)
        monkeypatch.setattr(DrumClassifier, "predict", interrupted)
        assert main(argv) == 130                  # "drumclassifier classify: interrupted"
        done = _rows(out) if fmt == "csv" else json.loads(out.read_text())
        assert len(done) == 1
        monkeypatch.setattr(DrumClassifier, "predict", real_predict)
        capsys.readouterr()
        assert main(argv + ["--resume"]) == 0
        assert "1 files unchanged (kept), 4 new or changed" in capsys.readouterr().err
        rows = _rows(out) if fmt == "csv" else json.loads(out.read_text())
        assert len(rows) == 5 and rows[0] == done[0]


@pytest.mark.parametrize("extra, why", [
    (["--format", "table"], "--resume needs -o OUT with --format csv or json"),
    (["--format", "csv", "--force"], "choose one"),
    (["--format", "csv", "FOREIGN"], "cannot read"),
])
def test_resume_refusals_leave_out_alone(tiny_checkpoint, sound_files, tmp_path, capsys,
                                         extra, why):
    out = tmp_path / "labels.csv"
    out.write_text("path,label\nsomething,kick\n")     # not written by classify
    extra = [e for e in extra if e != "FOREIGN"]
    rc = main(["classify", str(sound_files), "-w", str(tiny_checkpoint), "-o", str(out),
               "--resume", *extra])
    assert rc == 2
    assert why in capsys.readouterr().err
    assert out.read_text() == "path,label\nsomething,kick\n"


# ---- ONNX Runtime for equal-length batches (the live path) -------------------------------

def test_onnx_runtime_gives_torchs_numbers(shipped):
    """Live rungs (5, 10, 20 ms after the onset, with what rang before) and 1 s items,
    alone and in equal-length batches: probabilities and kit embeddings through ONNX
    Runtime equal torch's."""
    torch_only = DrumClassifier(device="cpu", runtime="torch")
    assert shipped.runtime == "onnx" and torch_only.runtime == "torch"
    g = torch.Generator().manual_seed(0)
    lead = shipped.cfg.lead_in_samples
    for ms in (5, 10, 20, 1000):
        n = int(SR * ms / 1000)
        for b in (1, 3):
            waves = [torch.randn(2, n, generator=g) * 0.1 for _ in range(b)]
            before = [torch.randn(2, lead, generator=g) * 0.1 for _ in range(b)]
            assert torch.allclose(shipped.predict(waves, before=before),
                                  torch_only.predict(waves, before=before), atol=1e-5)
            assert torch.allclose(shipped.embed(waves, spectrum=True, before=before),
                                  torch_only.embed(waves, spectrum=True, before=before),
                                  atol=1e-4)
    assert shipped._onnx_runner is not None          # it did run through ONNX Runtime
    assert getattr(torch_only, "_onnx_runner", None) is None


def test_runtime_choice_is_checked():
    with pytest.raises(DrumClassifierError, match="runtime 'tensorrt'"):
        DrumClassifier(device="cpu", runtime="tensorrt")


def test_engine_warms_the_model_up_before_the_first_hit(tmp_path):
    """The ONNX export (about 1 s) happens when the engine is built, not at the first hit."""
    from realtime import Engine, FileSource, ListSink
    clf = DrumClassifier(device="cpu")
    sf.write(tmp_path / "k.wav", kick_like(), SR)
    assert getattr(clf, "_onnx_runner", None) is None
    Engine(clf, FileSource(tmp_path / "k.wav", 128, fast=True), [ListSink()])
    assert clf._onnx_runner is not None


def test_batch_speed_bench_prints_floor_speed_resume_and_agreement(library, capsys,
                                                                   monkeypatch):
    """bench/batch_speed.py on a small real library: the three timed rows and the check
    against the API (no figure is asserted: the machine is shared)."""
    from bench import batch_speed
    monkeypatch.setattr("sys.argv", ["batch_speed", str(library), "--check", "5"])
    assert batch_speed.main() == 0
    out = capsys.readouterr().out
    assert "| decode only (" in out and "the floor |" in out
    assert "| `drumclassifier classify` (whole command) |" in out
    assert "20 files unchanged (kept), 0 new or changed" in out
    assert "against the API on 5 files" in out and "labels differing: 0" in out
