"""Session report: figures given back from a generated session, PNG size, self-contained HTML
that headless Chromium renders, session directories never overwritten, end to end via stream.

The generated session (make_session): SECTIONS of known tempo, kick on beats 1 and 3,
snare on 2 and 4 (played SNARE_LAG_MS late), hihat on every eighth; Gaussian timing
jitter JITTER_MS on every hit; velocities drawn around known means. Tolerances are stated
next to each assertion.
"""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from drumclassifier.cli import main
from drumclassifier.errors import DrumClassifierError
from realtime.report import TIMELINE_SIZE_PX, analyse, build_report, read_events

REPO = Path(__file__).resolve().parents[1]
SECTIONS = [(96.0, 40.0), (120.0, 40.0)]      # (BPM, seconds)
JITTER_MS = 5.0
SNARE_LAG_MS = 10.0
VEL_MEAN = {"kick": 100, "snare": 90, "hihat": 70}
VEL_STD = 6.0


def make_session(d: Path, sections=SECTIONS, seed: int = 0, with_json: bool = True) -> dict:
    """Write d/events.csv (+ session.json); return the truth: times/labels/velocities."""
    rng = np.random.default_rng(seed)
    rows, t0 = [], 0.5
    for bpm, secs in sections:
        beat = 60 / bpm
        n_eighths = round(secs / beat * 2)
        for k in range(n_eighths):
            t = t0 + k * beat / 2
            labs = ["hihat"]
            if k % 2 == 0:
                labs.append("kick" if (k // 2) % 2 == 0 else "snare")
            jit = rng.normal(0, JITTER_MS / 1000)
            for lab in labs:
                lag = SNARE_LAG_MS / 1000 if lab == "snare" else 0.0
                vel = int(np.clip(round(rng.normal(VEL_MEAN[lab], VEL_STD)), 1, 127))
                rows.append((t + jit + lag, lab, vel))
        t0 += n_eighths * beat / 2
    rows.sort()
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "events.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time_s", "label", "confidence", "velocity", "latency_ms", "wall_latency_ms"])
        for t, lab, v in rows:
            w.writerow([f"{t:.6f}", lab, "0.9", v, "40.0", "41.0"])
    duration = t0 + 0.5
    if with_json:
        (d / "session.json").write_text(json.dumps({"duration_s": duration, "source": "test"}))
    return {"rows": rows, "duration_s": duration, "change_s": 0.5 + sections[0][1]}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    d = tmp_path_factory.mktemp("session")
    truth = make_session(d)
    a = build_report(d)
    return d, truth, a


def test_counts_per_instrument_and_per_minute_are_exact(session):
    _, truth, a = session
    rows = truth["rows"]
    for lab in VEL_MEAN:
        assert a.counts[lab] == sum(r[1] == lab for r in rows)
        for pm in a.per_minute:
            m = pm["minute"] - 1
            assert pm[lab] == sum(r[1] == lab and 60 * m <= r[0] < 60 * (m + 1) for r in rows)
    assert sum(pm["total"] for pm in a.per_minute) == len(rows)
    assert a.n_hits == len({round(r[0] - (SNARE_LAG_MS / 1000 if r[1] == "snare" else 0), 6)
                            for r in rows})
    assert a.duration_s == pytest.approx(truth["duration_s"])


def test_dynamics_give_back_the_velocities(session):
    _, truth, a = session
    for lab, mean in VEL_MEAN.items():
        v = np.array([r[2] for r in truth["rows"] if r[1] == lab])
        assert a.dynamics[lab]["mean"] == pytest.approx(v.mean())      # exact from the CSV
        assert abs(a.dynamics[lab]["mean"] - mean) < 1.5                # generator mean
        assert abs(a.dynamics[lab]["std"] - VEL_STD) < 1.5


def test_tempo_sections_and_curve(session):
    _, truth, a = session
    sec = [s for s in a.sections if np.isfinite(s.bpm)]
    assert len(sec) == 2, [vars(s) for s in a.sections]
    for s, (bpm, _) in zip(sec, SECTIONS):
        assert abs(s.bpm - bpm) < 0.3                    # grid tempo within 0.3 BPM
    # the boundary falls between the last hit at the old and the first at the new tempo
    assert abs(sec[1].start_s - truth["change_s"]) < 0.5
    # windowed curve: within 2 BPM of the truth away from the change (> 5 s from it)
    c, b = a.tempo_centres_s, a.tempo_bpm
    far = np.abs(c - truth["change_s"]) > 5
    expect = np.where(c < truth["change_s"], SECTIONS[0][0], SECTIONS[1][0])
    assert np.all(np.abs(b[far] - expect[far]) < 2.0)


def test_timing_steadiness(session):
    _, _, a = session
    st = a.steadiness
    # consecutive-interval jitter of independent N(0, J) hits: sqrt(2) J (+-35 %)
    for lab in VEL_MEAN:
        assert abs(st[lab]["ioi_jitter_ms"] - np.sqrt(2) * JITTER_MS) < 0.35 * np.sqrt(2) * JITTER_MS
    # each hit's spread around the grid ~ J (+-40 %); the snare sits SNARE_LAG_MS behind (+-2 ms)
    assert abs(st["hihat"]["offset_std_ms"] - JITTER_MS) < 0.4 * JITTER_MS
    lag = st["snare"]["offset_mean_ms"] - st["kick"]["offset_mean_ms"]
    assert abs(lag - SNARE_LAG_MS) < 2.0
    for s in a.sections:                                 # a steady player does not drift
        assert abs(s.drift_max_ms) < 6.0 and abs(s.offset_rms_ms - JITTER_MS) < 2.0


def test_drift_of_a_dragging_player_is_reported(tmp_path):
    """120 BPM with the hits slowly falling behind then catching up (a 30 ms bulge)."""
    make_session(tmp_path, [(120.0, 40.0)], seed=3)
    rows = []
    with open(tmp_path / "events.csv") as f:
        r = list(csv.reader(f))
    for row in r[1:]:
        t = float(row[0])
        row[0] = f"{t + 0.030 * np.sin(np.pi * t / 40.5) ** 2:.6f}"
        rows.append(row)
    with open(tmp_path / "events.csv", "w", newline="") as f:
        csv.writer(f).writerows([r[0]] + rows)
    a = analyse(read_events(tmp_path / "events.csv"), 41.0)
    s = [s for s in a.sections if np.isfinite(s.bpm)]
    assert len(s) == 1 and abs(s[0].bpm - 120) < 1.5
    assert s[0].drift_range_ms > 15                      # bulge of 30 ms, part absorbed by the fit


def test_timeline_png_has_the_stated_size(session):
    d, _, _ = session
    from PIL import Image  # matplotlib depends on pillow
    with Image.open(d / "timeline.png") as im:
        assert im.size == TIMELINE_SIZE_PX


class _Refs(HTMLParser):
    """Every attribute that could load something: src, href, srcset, poster, data, action."""

    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [v or "" for k, v in attrs
                      if k in ("src", "href", "srcset", "poster", "data", "action")]


def test_html_is_self_contained(session):
    d, _, _ = session
    text = (d / "report.html").read_text()
    assert "http://" not in text and "https://" not in text      # base64 has no ':'
    parser = _Refs()
    parser.feed(text)
    assert len(parser.refs) == 4 and all(r.startswith("data:image/png;base64,")
                                         for r in parser.refs)
    assert not {"script", "link", "iframe", "object"} & set(parser.tags)
    assert "url(" not in text and "@import" not in text
    assert "<table" in text and "BPM" in text
    rep = json.loads((d / "report.json").read_text())
    assert rep["counts"]["hihat"] > 0


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is needed to check the HTML report and was not found: "
                "sudo apt-get install chromium chromium-driver (setup.sh installs them)")


def test_html_renders_in_headless_chromium(session, tmp_path):
    d, _, _ = session
    shot = tmp_path / "shot.png"
    cmd = [find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1200,900",
           (d / "report.html").resolve().as_uri()]
    p = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), f"no screenshot (exit {p.returncode}): {p.stderr[-2000:]}"
    from PIL import Image
    with Image.open(shot) as im:
        assert im.size == (1200, 900)
        px = np.asarray(im.convert("RGB"))
    colours = np.unique(px.reshape(-1, 3), axis=0)
    assert len(colours) > 100, f"blank-looking screenshot: {len(colours)} distinct colours"
    assert (px.min(axis=2) < 128).mean() > 0.005      # some dark pixels (text, markers)


def test_empty_session_still_reports(tmp_path):
    (tmp_path / "events.csv").write_text("time_s,label,confidence,velocity\n")
    a = build_report(tmp_path)
    assert a.n_hits == 0 and (tmp_path / "report.html").is_file()


def test_report_cli_refuses_to_overwrite_without_force(session, capsys, tmp_path):
    d, _, _ = session
    before = (d / "report.html").read_bytes()
    assert main(["report", str(d)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (d / "report.html").read_bytes() == before
    assert main(["report", str(d), "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.html").is_file()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "events.csv" in capsys.readouterr().err


def test_bad_events_file_is_one_clear_error(tmp_path):
    (tmp_path / "events.csv").write_text("time,label\n1,kick\n")
    with pytest.raises(DrumClassifierError, match="missing column"):
        build_report(tmp_path)


# ---- sessions from the live engine -------------------------------------------------------
def test_a_session_with_the_late_look_gets_its_report(tmp_path, capsys):
    """The offline config's late cymbals may arrive after later hits' notes (whether any
    does depends on the take and on how the worker's batches fall): the session's events
    and report still come out (the report reads events sorted by time)."""
    d = tmp_path / "take2"
    assert main(["stream", str(REPO / "examples" / "groove.flac"), "--fast", "-q",
                 "--session", str(d), "--rt-config", str(REPO / "configs" / "realtime-offline.yaml"),
                 "--model-device", "cpu"]) == 0
    assert (d / "report.html").is_file() and (d / "report.json").is_file()
    with open(d / "events.csv") as f:
        rows = list(csv.DictReader(f))
    late = [r for r in rows if float(r["context_ms"]) > 199]
    assert late and {r["label"] for r in late} == {"cymbals"}


def test_stream_session_end_to_end(tiny_checkpoint, tmp_path, capsys):
    """The real CLI on examples/groove.flac with the untrained tiny model: the session
    folder gets events, audio, session.json and the report (labels are not checked)."""
    import soundfile as sf
    d = tmp_path / "take1"
    assert main(["stream", str(REPO / "examples" / "groove.flac"), "--fast", "-q", "-w",
                 str(tiny_checkpoint), "--session", str(d), "--record-audio"]) == 0
    err = capsys.readouterr().err
    assert "report:" in err and str(d / "report.html") in err
    for name in ("events.csv", "report.html", "timeline.png", "report.json", "session.json",
                 "audio.flac"):
        assert (d / name).is_file(), name
    with open(d / "events.csv") as f:
        rows = list(csv.DictReader(f))
    with open(REPO / "examples" / "groove_truth.csv") as f:
        truth = list(csv.DictReader(f))
    assert len({r["time_s"] for r in rows}) >= len({r["time_s"] for r in truth}) // 2
    info = sf.info(str(d / "audio.flac"))
    src = sf.info(str(REPO / "examples" / "groove.flac"))
    assert info.frames == src.frames and info.samplerate == src.samplerate
    rec, _ = sf.read(str(d / "audio.flac"))
    orig, _ = sf.read(str(REPO / "examples" / "groove.flac"))
    assert np.abs(rec - orig).max() < 1e-4                 # 24-bit copy of the 16-bit file
    meta = json.loads((d / "session.json").read_text())
    assert meta["duration_s"] == pytest.approx(src.duration, abs=0.01)
    assert json.loads((d / "report.json").read_text())["events"] == len(rows)


def test_session_dir_is_never_overwritten_without_force(tiny_checkpoint, tmp_path, capsys):
    path = str(REPO / "examples" / "groove.flac")
    d = tmp_path / "old"
    d.mkdir()
    (d / "events.csv").write_text("precious")
    args = ["stream", path, "--fast", "-q", "-w", str(tiny_checkpoint), "--session", str(d)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--force" in err
    assert (d / "events.csv").read_text() == "precious" and len(list(d.iterdir())) == 1
    (tmp_path / "file").write_text("x")
    assert main(args[:-1] + [str(tmp_path / "file")]) == 2
    assert main(["stream", path, "--fast", "-q", "-w", str(tiny_checkpoint),
                 "--record-audio"]) == 2
    assert "--session" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
    assert (d / "events.csv").read_text().startswith("time_s,label")
    assert (d / "report.html").is_file()


def _events(n):
    from realtime.worker import Event
    return [Event(time_s=0.25 * i, label=lab, confidence=0.9, velocity=100 - i, latency_ms=40.0,
                  wall_latency_ms=41.0, detect_ms=5, queue_ms=0.1, infer_ms=2, batch_size=1,
                  hit_index=i, onset_sample=i * 11025, peak_db=-6)
            for i in range(n) for lab in (("kick", "hihat") if i % 2 == 0 else ("snare",))]


def test_live_view_plain_lines_when_not_a_terminal():
    import io

    from realtime.liveview import LiveView
    out = io.StringIO()
    v = LiveView(out)
    v.open()
    v.emit(_events(4))
    v.close()
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    assert len(lines) == 4 and "kick" in lines[0] and "hihat" in lines[0] and "\x1b" not in out.getvalue()


def test_live_view_on_a_terminal_counts_and_lists_the_last_hits():
    import io

    from realtime.liveview import LAST_N, LiveView
    out = io.StringIO()
    v = LiveView(out, force_terminal=True)
    v.open()
    v.emit(_events(12))
    v.close()
    assert v.counts == {"kick": 6, "hihat": 6, "snare": 6} and v.n_hits == 12
    assert len(v.last_hits) == LAST_N and v.last_hits[-1][1] == "snare"
    text = out.getvalue()
    assert "last hits" in text and "kick" in text and "\x1b[" in text   # drawn in place


def test_audio_recorder_fills_overflow_gaps_with_silence(tmp_path):
    """Audio time must stay event time: frames lost to an overflow become zeros."""
    import soundfile as sf

    from realtime.session import AudioRecorder
    rec = AudioRecorder(tmp_path / "a.flac", 44100, 2)
    rec.open()
    block = np.full((128, 2), 0.5, np.float32)
    rec.audio(block, 0)
    block[:] = 0.25                       # the caller reuses its buffer: the copy must hold
    rec.audio(block, 128 + 1000)          # 1000 frames lost
    rec.close()
    x, sr = sf.read(str(tmp_path / "a.flac"), dtype="float32")
    assert sr == 44100 and x.shape == (128 + 1000 + 128, 2) and rec.gap_frames == 1000
    assert np.allclose(x[:128], 0.5, atol=1e-5) and not x[128:1128].any()
    assert np.allclose(x[1128:], 0.25, atol=1e-5)
    with pytest.raises(DrumClassifierError, match="exists"):
        AudioRecorder(tmp_path / "a.flac", 44100, 2).open()
