"""Hostile files through `drumclassifier classify` (main([...]) with the tiny checkpoint).

A corpus of bad, odd and extreme files is generated in one folder and classified in one
run with stdout/stderr as STRICT UTF-8 streams (as a terminal outside Python's UTF-8 mode):
a path that cannot be encoded would crash the run. For each file the run gives either a
result line or exactly one `error: <file>: <reason>` line, never a traceback; the batch goes
on past every failure and the exit status is 1.

Expected outcome per file (CASES): "ok" = classified; otherwise a regex the error's reason
must match. Odd-but-valid audio (DC only, clipped full-scale square, 8-bit, 8 kHz, 6
channels, one sample, a data chunk claiming 4 GB, MP3 with trailing garbage) is classified:
the tool does not judge content; only what cannot be decoded or holds no finite, audible
samples is refused.
"""
from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import sys
import tracemalloc
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from drumclassifier.cli import main

from .conftest import SR, kick_like

REPO = Path(__file__).resolve().parents[1]
NON_UTF8 = b"caf\xe9 \xff\xfe kick.wav"          # Latin-1 bytes: not valid UTF-8
LONG = "k" * 120 + "\u00e9" * 60 + ".wav"        # 250 bytes: near NAME_MAX (255)

CASES = {
    "zero_bytes.wav": "empty file",
    "truncated_header.wav": r"cannot decode audio \(.*(fmt|Malformed|format)",
    "text.wav": "cannot decode audio",
    "huge_data_size.wav": "ok",     # header claims ~4 GB, 0.5 s present: what is there is used
    "nan.wav": "NaN",
    "inf.wav": "NaN or infinite",
    "float_1e30.wav": r"not audio levels",   # finite, but its power would overflow to inf
    "float_unnormalised.wav": "ok",           # peaks at 1000 (+60 dBFS): still a level
    "dc_only.wav": "ok",
    "square_full_scale.wav": "ok",  # clipping is fine
    "pcm_u8.wav": "ok",
    "pcm_24.wav": "ok",
    "float32.wav": "ok",
    "rate_8k.wav": "ok",
    "rate_192k.wav": "ok",
    "mono.wav": "ok",
    "stereo.wav": "ok",
    "six_channels.wav": "ok",
    "one_sample.wav": "ok",
    "garbage_appended.mp3": "ok",
    os.fsdecode(NON_UTF8): "ok",
    LONG: "ok",
    "loop_a.wav": "symbolic links",  # loop_a.wav -> loop_b.wav -> loop_a.wav
    "loop_b.wav": "symbolic links",
    "unreadable.wav": "ROOT",        # chmod 000: see test_unreadable_file
}


def write_corpus(d: Path) -> None:
    hit = kick_like(dur_s=0.5)
    stereo = np.stack([hit, hit], 1)
    (d / "zero_bytes.wav").write_bytes(b"")
    good = io.BytesIO()
    sf.write(good, hit, SR, format="WAV", subtype="PCM_16")
    raw = bytearray(good.getvalue())
    (d / "truncated_header.wav").write_bytes(bytes(raw[:20]))
    (d / "text.wav").write_text("this is not audio\n" * 50)
    i = raw.find(b"data")
    raw[i + 4:i + 8] = struct.pack("<I", 0xFFFFFFF0)
    (d / "huge_data_size.wav").write_bytes(bytes(raw))
    sf.write(d / "nan.wav", np.where(np.arange(4410) % 7, 0.1, np.nan).astype(np.float32), SR,
             subtype="FLOAT")
    sf.write(d / "inf.wav", np.r_[hit[:100], np.inf, hit[:100]].astype(np.float32), SR,
             subtype="FLOAT")
    sf.write(d / "float_1e30.wav", hit * 1e30, SR, subtype="FLOAT")
    sf.write(d / "float_unnormalised.wav", hit * 1000, SR, subtype="FLOAT")
    sf.write(d / "dc_only.wav", np.full(SR, 0.5, np.float32), SR, subtype="FLOAT")
    sq = np.sign(np.sin(2 * np.pi * 100 * np.arange(SR) / SR)).astype(np.float32)
    sf.write(d / "square_full_scale.wav", sq, SR, subtype="PCM_16")
    sf.write(d / "pcm_u8.wav", hit, SR, subtype="PCM_U8")
    sf.write(d / "pcm_24.wav", stereo, SR, subtype="PCM_24")
    sf.write(d / "float32.wav", stereo, SR, subtype="FLOAT")
    sf.write(d / "rate_8k.wav", kick_like(sr=8000), 8000)
    sf.write(d / "rate_192k.wav", kick_like(sr=192000, dur_s=0.3), 192000)
    sf.write(d / "mono.wav", hit, SR)
    sf.write(d / "stereo.wav", stereo, SR)
    sf.write(d / "six_channels.wav", np.stack([hit * (k + 1) / 6 for k in range(6)], 1), SR)
    sf.write(d / "one_sample.wav", np.array([0.5], np.float32), SR)
    sf.write(d / "garbage_appended.mp3", stereo, SR, format="MP3")
    with open(d / "garbage_appended.mp3", "ab") as f:
        f.write(np.random.default_rng(0).bytes(20000))
    with open(os.fsencode(d) + b"/" + NON_UTF8, "wb") as f:
        sf.write(f, hit, SR, format="WAV")
    sf.write(d / LONG, hit, SR)
    (d / "loop_a.wav").symlink_to("loop_b.wav")
    (d / "loop_b.wav").symlink_to("loop_a.wav")
    (d / "sub").mkdir()
    sf.write(d / "sub" / "nested.wav", hit, SR)
    (d / "sub" / "back_up").symlink_to("..")          # a folder loop: must not be followed
    sf.write(d / "unreadable.wav", hit, SR)
    (d / "unreadable.wav").chmod(0)


def strict_stream() -> io.TextIOWrapper:
    """A text stream like a non-UTF-8-mode terminal: unencodable text raises."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict",
                            write_through=True)


def run_strict(argv) -> tuple[int, str, str]:
    out, err = strict_stream(), strict_stream()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(argv)
    return rc, out.buffer.getvalue().decode(), err.buffer.getvalue().decode()


def shown(name: str) -> str:
    """How a file name appears in output: undecodable bytes as \\xNN escapes."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


@pytest.fixture(scope="module")
def corpus_run(tiny_checkpoint, tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    write_corpus(d)
    rc, out, err = run_strict(["classify", "-r", str(d), "-w", str(tiny_checkpoint), "-q",
                               "-j", "2"])
    return d, rc, out, err


def test_batch_goes_on_and_exit_status_is_1(corpus_run):
    _d, rc, out, err = corpus_run
    assert rc == 1
    assert "Traceback" not in err and "Traceback" not in out
    n_bad = sum(1 for v in CASES.values() if v not in ("ok", "ROOT"))
    assert f"{n_bad} of " in err
    # each output line names one file: results on stdout, one error line per bad file
    names = [Path(ln.split("\t")[0]).name for ln in out.splitlines()]
    assert "nested.wav" in names and names.count("nested.wav") == 1   # the loop is not followed
    errs = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errs) == n_bad
    other = [ln for ln in err.splitlines() if not ln.startswith("error:")
             and "files failed" not in ln and ln.strip()]
    # the only other stderr text allowed is libmpg123's own warning about the garbage
    assert all("Xing" in ln or "mpg123" in ln.lower() for ln in other), other


@pytest.mark.parametrize("name", [n for n, v in CASES.items() if v != "ROOT"])
def test_each_hostile_file(corpus_run, name):
    d, _rc, out, err = corpus_run
    want = CASES[name]
    path_txt = shown(str(d / name))
    results = [ln for ln in out.splitlines() if ln.split("\t")[0] == path_txt]
    errors = [ln for ln in err.splitlines() if ln.startswith(f"error: {path_txt}: ")]
    if want == "ok":
        assert len(results) == 1 and not errors, (errors, err[-2000:])
        fields = results[0].split("\t")
        probs = [float(kv.split("=")[1]) for kv in fields[3].split()]
        assert all(0 <= p <= 1 for p in probs) and len(probs) == 5
    else:
        assert not results and len(errors) == 1, err[-2000:]
        reason = errors[0][len(f"error: {path_txt}: "):]
        assert re.search(want, reason), reason


def test_unreadable_file(corpus_run):
    """chmod 000. Tests usually run as root here, and root reads a mode-000 file: then the
    file classifies in the corpus run, and the refusal is checked by reading it again as
    an unprivileged user (uid 65534) in a subprocess."""
    d, _rc, out, err = corpus_run
    path = d / "unreadable.wav"
    if os.geteuid() != 0:
        assert f"error: {path}: permission denied" in err
        return
    assert any(ln.startswith(f"{path}\t") for ln in out.splitlines())   # root reads it
    # as nobody: needs a folder nobody can enter, outside root's private pytest tmp
    import shutil
    import tempfile
    pub = Path(tempfile.mkdtemp(prefix="dc-perm-"))
    try:
        pub.chmod(0o755)
        shutil.copy(d / "mono.wav", pub / "locked.wav")
        (pub / "locked.wav").chmod(0)
        # import first (the interpreter's own files may be private to root), then drop to nobody
        code = ("import os, sys\n"
                "from drumclassifier.audio import read\n"
                "from drumclassifier.errors import AudioError\n"
                "os.setgid(65534); os.setuid(65534)\n"
                "try:\n    read(sys.argv[1], 4.0)\nexcept AudioError as e:\n    print(e)\n")
        r = subprocess.run([sys.executable, "-c", code, str(pub / "locked.wav")], cwd=REPO,
                           capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == f"{pub / 'locked.wav'}: permission denied"
    finally:
        shutil.rmtree(pub)


def test_ten_minute_file_decodes_only_the_window(tiny_checkpoint, tmp_path, monkeypatch):
    """10 minutes of audio: only the first 4 s are read (the read call's frames are bounded)
    and the Python-side allocation peak stays far below the decoded file (106 MB)."""
    path = tmp_path / "ten_minutes.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", SR, 1, "PCM_16") as f:
        block = (0.1 * rng.standard_normal(SR)).astype(np.float32)
        for _ in range(600):
            f.write(block)
    assert sf.info(path).duration == pytest.approx(600)
    frames_read = []
    real_read = sf.SoundFile.read

    def spy(self, frames=-1, *a, **kw):
        frames_read.append(frames)
        return real_read(self, frames, *a, **kw)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    tracemalloc.start()
    try:
        rc, out, err = run_strict(["classify", str(path), "-w", str(tiny_checkpoint), "-q"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rc == 0 and out.startswith(str(path)), err
    assert frames_read and all(0 < n <= 4 * SR for n in frames_read)
    assert peak < 20e6, f"peak Python allocation {peak / 1e6:.1f} MB"


def test_corpus_builder_reads_files_like_the_classifier(tmp_path):
    """data/render.py's load_audio is audio.py's reader and channel policy (whole file, 44.1
    kHz): a 6-channel file keeps channels 3-6, folded into both sides at -3 dB."""
    from drumclassifier.data.render import load_audio
    from drumclassifier.errors import AudioError
    hit = kick_like()
    six = np.stack([hit * (k + 1) / 6 for k in range(6)], 1)
    sf.write(tmp_path / "six.wav", six, SR, subtype="FLOAT")
    rest = six[:, 2:].mean(1, keepdims=True) * np.float32(0.70710677)
    np.testing.assert_allclose(load_audio(tmp_path / "six.wav"), six[:, :2] + rest, atol=1e-6)
    sf.write(tmp_path / "mono.wav", hit, SR // 2, subtype="FLOAT")
    mono = load_audio(tmp_path / "mono.wav")
    assert mono.shape == (2 * len(hit), 2) and (mono[:, 0] == mono[:, 1]).all()
    with pytest.raises(AudioError, match="file not found"):
        load_audio(tmp_path / "missing.wav")


def test_unusable_arguments_one_line_each(tiny_checkpoint, tmp_path):
    """Arguments that are not files: a missing file, a name longer than NAME_MAX, a path
    through a file, a folder. Each one line; the good file is still classified."""
    good = tmp_path / "good.wav"
    sf.write(good, kick_like(), SR)
    too_long = tmp_path / ("x" * 300 + ".wav")
    through_file = good / "inner.wav"
    args = [str(tmp_path / "missing.wav"), str(too_long), str(through_file), str(good)]
    rc, out, err = run_strict(["classify", *args, "-w", str(tiny_checkpoint), "-q"])
    assert rc == 1 and "Traceback" not in err
    assert len(out.splitlines()) == 1 and out.startswith(str(good))
    errs = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errs) == 3
    assert errs[0] == f"error: {tmp_path / 'missing.wav'}: file not found"
    assert errs[1].startswith(f"error: {too_long}: ") and "too long" in errs[1]
    assert errs[2].startswith(f"error: {through_file}: ")


def test_non_utf8_name_in_csv_output_and_sort_into(tiny_checkpoint, tmp_path):
    """A non-UTF-8 name is classified, written escaped into a UTF-8 CSV, and its copy in
    --sort-into keeps the original bytes."""
    src = tmp_path / "in"
    src.mkdir()
    with open(os.fsencode(src) + b"/" + NON_UTF8, "wb") as f:
        sf.write(f, kick_like(), SR, format="WAV")
    out_csv = tmp_path / "out.csv"
    rc, _out, err = run_strict(["classify", str(src), "-w", str(tiny_checkpoint), "-q",
                               "--format", "csv", "-o", str(out_csv),
                               "--sort-into", str(tmp_path / "sorted")])
    assert rc == 0, err
    text = out_csv.read_bytes().decode("utf-8")        # valid UTF-8
    assert shown(str(src) + "/" + os.fsdecode(NON_UTF8)) in text
    copies = [p for p in (tmp_path / "sorted").rglob("*") if p.is_file()]
    assert [os.fsencode(p.name) for p in copies] == [NON_UTF8]


# ---- files users own: --sort-into and -o ---------------------------------------------------
def test_sort_into_suffixes_collisions_and_never_overwrites(tiny_checkpoint, tmp_path):
    """Same names from two folders, a name already taken in the target (by a file and by a
    dangling symlink): every copy gets a free ' (k)' name; nothing existing is touched."""
    from drumclassifier import DrumClassifier
    a, b, dest = tmp_path / "a", tmp_path / "b", tmp_path / "sorted"
    for d in (a, b):
        d.mkdir()
        sf.write(d / "hit.wav", kick_like(), SR)
    label = DrumClassifier(tiny_checkpoint, device="cpu").classify_from_path(a / "hit.wav").label
    (dest / label).mkdir(parents=True)
    (dest / label / "hit.wav").write_text("precious")
    (dest / label / "hit (2).wav").symlink_to(tmp_path / "nowhere")
    rc, _out, err = run_strict(["classify", str(a), str(b), "-w", str(tiny_checkpoint), "-q",
                               "--sort-into", str(dest)])
    assert rc == 0, err
    assert (dest / label / "hit.wav").read_text() == "precious"
    assert (dest / label / "hit (2).wav").is_symlink()
    names = sorted(p.name for p in (dest / label).iterdir())
    assert names == ["hit (2).wav", "hit (3).wav", "hit (4).wav", "hit.wav"]
    assert (a / "hit.wav").exists() and (b / "hit.wav").exists()     # copied, not moved


def test_sort_into_cannot_escape_the_target(tiny_checkpoint, tmp_path):
    """Crafted names stay inside DIR/<label>/: a file named '..wav', '...wav' or with a
    leading dash; names with separators are refused by unique_destination; a label that
    is a path (a crafted checkpoint config) is refused when the config is loaded."""
    from drumclassifier.classify_cli import unique_destination
    from drumclassifier.config import load_model_config
    from drumclassifier.errors import ConfigError
    src, dest = tmp_path / "src", tmp_path / "sorted"
    src.mkdir()
    for name in ("..wav", "...wav", "-rf.wav", " .wav"):
        sf.write(src / name, kick_like(), SR, format="WAV")
    rc, _out, err = run_strict(["classify", str(src), "-w", str(tiny_checkpoint), "-q",
                               "--sort-into", str(dest)])
    assert rc == 0, err
    copies = [p for p in tmp_path.rglob("*.wav") if not p.is_relative_to(src)]
    assert len(copies) == 4
    assert all(p.resolve().parent.parent == dest.resolve() for p in copies)
    for bad in ("../x.wav", "a/../../x.wav", "..", ".", "", "/etc/passwd"):
        with pytest.raises(ValueError):
            unique_destination(dest, bad)
    for label in ("../../evil", "a/b", "..", "", " kick"):
        with pytest.raises(ConfigError, match="plain name|non-empty"):
            load_model_config({"labels": ["kick", "snare", "hihat", "toms", label]})


def test_sort_into_copy_failure_is_one_line_and_the_batch_goes_on(tiny_checkpoint, tmp_path):
    """The target's label folder is a FILE: the copy fails for that file only."""
    from drumclassifier import DrumClassifier
    src, dest = tmp_path / "src", tmp_path / "sorted"
    src.mkdir()
    sf.write(src / "hit.wav", kick_like(), SR)
    label = DrumClassifier(tiny_checkpoint, device="cpu").classify_from_path(src / "hit.wav").label
    dest.mkdir()
    (dest / label).write_text("a file where the label folder should be")
    rc, out, err = run_strict(["classify", str(src), "-w", str(tiny_checkpoint), "-q",
                               "--sort-into", str(dest)])
    assert rc == 1 and "Traceback" not in err
    errs = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errs) == 1 and f"{src / 'hit.wav'}: cannot copy into" in errs[0]
    assert out.startswith(str(src / "hit.wav"))      # the result itself was still printed


# ---- config and weights files: what tests/test_foundation.py does not already cover --------
@pytest.mark.parametrize("text,match", [
    ("audio: [unclosed\n", "cannot parse YAML"),
    ("audio:\n  blocksize: big\n", "audio.blocksize"),
    ("worker:\n  queue_size: 0\n", "queue_size"),
    ("audio: 3\n", "AudioConfig"),
    ("midi:\n  notes:\n    kick: 300\n", "0-127"),
])
def test_realtime_config_refusals(tmp_path, text, match):
    from drumclassifier.errors import ConfigError
    from realtime.config import load_realtime_config
    p = tmp_path / "rt.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_realtime_config(p)


@pytest.mark.parametrize("override,match", [
    ({"window_s": -1}, "window_s"), ({"sample_rate_hz": 0}, "sample_rate_hz"),
    ({"features": {"n_fft": 0}}, "n_fft"), ({"features": {"f_min_hz": 30000.0}}, "f_min_hz"),
    ({"labels": "kick"}, "labels"),
])
def test_model_config_wrong_types_and_ranges(override, match):
    from drumclassifier.config import load_model_config
    from drumclassifier.errors import ConfigError
    with pytest.raises(ConfigError, match=match):
        load_model_config(override)


def test_train_config_syntax_error(tmp_path):
    from drumclassifier.errors import ConfigError
    from drumclassifier.train import load_train_config
    p = tmp_path / "t.yaml"
    p.write_text("train: {epochs: [\n")
    with pytest.raises(ConfigError, match="cannot parse YAML"):
        load_train_config(p)
    with pytest.raises(ConfigError, match="key=value"):
        load_train_config(None, ["train.epochs"])


def test_odd_weights_files_are_refused_on_the_cli(tiny_checkpoint, tmp_path):
    """Zero bytes, a bare tensor, a dict with a config of the wrong type, a checkpoint of
    another format version: one line each from the CLI (exit 2), no traceback."""
    import torch
    wav = tmp_path / "hit.wav"
    sf.write(wav, kick_like(), SR)
    cases = {"zero.pt": "corrupt or truncated", "tensor.pt": "not a DrumClassifier checkpoint",
             "badcfg.pt": "stored config is invalid", "v2.pt": "version 2"}
    (tmp_path / "zero.pt").write_bytes(b"")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    torch.save({"format": "drumclassifier", "version": 1, "config": {"labels": "kick"},
                "state_dict": {}}, tmp_path / "badcfg.pt")
    ck = torch.load(tiny_checkpoint, weights_only=True)
    ck["version"] = 2
    torch.save(ck, tmp_path / "v2.pt")
    for name, want in cases.items():
        rc, out, err = run_strict(["classify", str(wav), "-w", str(tmp_path / name), "-q"])
        assert rc == 2 and not out and "Traceback" not in err
        assert err.count("\n") == 1 and want in err and name in err, err


def test_stream_a_non_utf8_name(tiny_checkpoint, tmp_path):
    """`drumclassifier stream` opens a file whose name is not UTF-8 (FileSource)."""
    from bench.sounds import burst_signal
    path = os.fsencode(tmp_path) + b"/" + NON_UTF8
    with open(path, "wb") as f:
        sf.write(f, burst_signal(seconds=1.0)[0], SR, format="WAV")
    rc, out, err = run_strict(["stream", os.fsdecode(path), "--fast", "-w",
                               str(tiny_checkpoint)])
    assert rc == 0, err
    assert len(out.splitlines()) >= 3 and "hits" in err
