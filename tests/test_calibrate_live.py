"""The guided live calibration, `drumclassifier calibrate --device D --out my.kit`.

The drummer is simulated, the device path is real:
- each take is a generated raw file (bench/sounds.py's kit of generated hits) that the
  ALSA `file` plugin plays into the REAL sounddevice/PortAudio InputStream callback
  (bench/drummer.py: unpaced, exact with int16 samples). A stream reads the file from its
  start each time it opens, and the session opens one per take, so the answer that
  starts a take swaps in the file the drummer "plays";
- a scripted answer list stands in for the keyboard (no human can run here);
- PortAudio reads the ALSA configuration once, when it initialises, so the session runs
  in a subprocess (bench.drummer.run_session);
- the JACK dummy server (conftest.jack_server) is a paced device whose input is silence:
  the take that Enter ends.
"""
from __future__ import annotations

import csv
import re

import numpy as np
import pytest
import soundfile as sf

from bench.drummer import TAKE_S, alsa_file_env, groove_file, run_session, take_file
from drumclassifier.cli import main
from drumclassifier.kit import KitProfile
from realtime.calibrate import GuidedSession, Prompter, Take, TakeHit, hits_in

from .realtime_helpers import assert_pieces_right
from .test_kit import SR, recording

PIECES = "kick,snare,hihat--pedal hat,hihat,toms--floor tom"
HITS = 6


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """One guided session (shipped weights) on the ALSA file device: a bad snare take
    (a too-quiet and a clipped hit) re-taken, the pedal hat skipped, a short hihat take
    (3 of 6 hits, ended by the time limit) re-taken."""
    d = tmp_path_factory.mktemp("live")
    soft_to_hard = np.linspace(-24, -4, HITS)
    t = {k: take_file(d / f"{k}.raw", k, soft_to_hard, i)
         for i, k in enumerate(["kick", "snare", "hihat", "tom"])}
    bad = take_file(d / "snare_bad.raw", "snare", [-30, -48, -20, 0, -8, -12], 10)
    short = take_file(d / "hihat_short.raw", "hihat", [-20, -12, -6], 11)
    np.zeros(SR, "<i2").tofile(d / "in.raw")          # PortAudio opens it when it starts
    (d / "rt.yaml").write_text("audio:\n  dtype: int16\n")
    out = d / "my.kit"
    argv = ["-d", "injected", "--out", out, "--pieces", PIECES, "--hits-per-piece", HITS,
            "--take-seconds", TAKE_S, "--augment", 8, "--rt-config", d / "rt.yaml",
            "--model-device", "cpu"]
    answers = [("", t["kick"]), ("", None),                   # kick: start, keep
               ("", bad), ("r", t["snare"]), ("", None),     # snare: bad take, re-take, keep
               ("s", None),                                   # pedal hat: skip
               ("", short), ("r", t["hihat"]), ("", None),   # hihat: 3 hits, re-take, keep
               ("", t["tom"]), ("", None),                    # floor tom
               ("", None)]                                    # after the fit: save
    res = run_session(alsa_file_env(d, d / "in.raw"), d, argv, answers)
    return d, out, res


def test_guided_session_profile_classifies_held_back_hits(session):
    d, out, res = session
    assert res["rc"] == 0 and res["left"] == []
    prof = KitProfile.load(out)
    assert prof.names == ["kick", "snare", "hihat", "floor tom"]      # pedal hat skipped
    assert [p.note for p in prof.pieces] == [36, 38, 42, 41]
    said = "\n".join(res["transcript"])
    assert "cross-validated accuracy" in said and "time: session" in said
    assert "not taught: pedal hat" in said
    # held-back hits of the same generated kit, through the live path with the profile
    sf.write(d / "play.wav", recording(4, seed=1), SR)
    ev = d / "events.csv"
    assert main(["stream", str(d / "play.wav"), "--fast", "--quiet", "--kit", str(out),
                 "--events", str(ev), "--model-device", "cpu"]) == 0
    rows = list(csv.DictReader(ev.open()))
    assert_pieces_right(rows, [n for n in prof.names for _ in range(4)])


def test_retake_replaces_the_pieces_hits(session):
    _, out, res = session
    prof = KitProfile.load(out)
    assert all(p.n_hits == HITS for p in prof.pieces)     # not the bad or short takes' too
    snare = prof.pieces[1]
    assert -25 < snare.min_db and snare.max_db < -3        # the re-take's -24..-4 dB
    said = res["transcript"]
    assert sum(s.startswith("snare: heard 6 of 6") for s in said) == 2
    assert any(s.startswith("hihat: heard 3 of 6 hits") and "(time limit)" in s for s in said)


def test_quiet_clipped_and_missing_hits_are_warned(session):
    said = "\n".join(session[2]["transcript"])
    assert "warning: too quiet hit (-48.0 dB) at hit 2" in said
    assert "warning: clipped hit at hit 4" in said
    assert "warning: 3 hits heard, 6 expected" in said


def test_existing_profile_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "my.kit"
    out.write_text("mine")
    # refused before any device is opened: no such device is needed
    assert main(["calibrate", "-d", "no such device", "--out", str(out)]) == 2
    assert "exists; use --force" in capsys.readouterr().err
    assert out.read_text() == "mine"


def test_enter_ends_a_take_on_a_paced_device(jack_server, tiny_checkpoint, tmp_path):
    """The JACK dummy device runs in real time and hears silence: Enter ends the take, no
    hit is heard; the piece is skipped, the drummer quits, nothing is saved."""
    out = tmp_path / "none.kit"
    argv = ["-d", "system", "--out", out, "--pieces", "kick,snare", "-w", tiny_checkpoint,
            "--model-device", "cpu"]
    res = run_session(jack_server, tmp_path, argv, [("", None), ("s", None), ("q", None)],
                      enter_after_s=0.5)
    said = "\n".join(res["transcript"])
    assert res["rc"] == 1 and not out.exists() and res["left"] == []
    assert "kick: heard 0 of 8 hits" in said and "(ended by Enter)" in said
    assert "no hit heard" in said and "nothing saved" in said


def test_guided_session_with_the_play_along_groove(tmp_path):
    """After the fit the drummer answers g, sees the tab, presses Enter and plays the
    groove into the real input callback; the take is labelled and the profile refitted
    with it, then saved."""
    d = tmp_path
    kinds = ["kick", "snare", "hihat", "tom", "cymbal"]
    t = {k: take_file(d / f"{k}.raw", k, np.linspace(-24, -4, HITS), i)
         for i, k in enumerate(kinds)}
    np.zeros(SR, "<i2").tofile(d / "in.raw")
    (d / "rt.yaml").write_text("audio:\n  dtype: int16\n")
    out = d / "g.kit"
    argv = ["-d", "injected", "--out", out, "--pieces",
            "kick,snare,hihat,toms--floor tom,cymbals--ride", "--hits-per-piece", HITS,
            "--take-seconds", TAKE_S, "--augment", 8, "--rt-config", d / "rt.yaml",
            "--model-device", "cpu", "--groove-bpm", 110]
    answers = [a for k in kinds for a in (("", t[k]), ("", None))]
    answers += [("g", None), ("", groove_file(d / "groove.raw", 110, 3)), ("", None)]
    res = run_session(alsa_file_env(d, d / "in.raw"), d, argv, answers)
    said = "\n".join(res["transcript"])
    assert res["rc"] == 0, said
    assert "floor tom |" in said and "110 BPM" in said             # the tab was shown
    line = next(x for x in res["transcript"] if "of the play-along groove's" in x)
    heard, positions = map(int, re.search(r": (\d+) of the play-along groove's (\d+) beats",
                                          line).groups())
    assert heard >= 0.9 * positions
    # the take played the tab's dynamics (bench.drummer.groove_file): said, no warning
    assert "dynamics: the soft strokes" in said and "strokes (x, g) were only" not in said
    prof = KitProfile.load(out)
    assert prof.fit["played"]["onsets"] >= heard


# ---- the session's logic, without audio ---------------------------------------------------
class FakeTakes:
    """Stands in for the input device (record_take): each take is 6 hits of a constant
    level that grows by 1 dB per take, so a test can tell which take a piece kept."""

    def __init__(self):
        self.n = 0

    def __call__(self, n_hits: int) -> Take:
        self.n += 1
        a = np.full((2000, 1), 10 ** ((-30 + self.n) / 20), np.float32)
        return Take([TakeHit(i * SR, a) for i in range(n_hits)], n_hits * 0.5, "hits")


def test_session_retake_and_added_piece_after_the_fit():
    """After the fit: `r 1` re-takes the kick, `+ toms--rack tom 1=48` adds a piece."""
    fits = []

    def fit(kept):   # stands in for fit_profile: records what would be fitted
        fits.append([(k.name, k.note, len(k.hits), float(k.hits[0].max())) for k in kept])
        return "profile"

    from drumclassifier.calibrate import parse_added_piece
    p = Prompter.scripted(["", "", "", "", "r 1", "", "+ toms--rack tom 1=48", "", ""],
                          echo=False)
    s = GuidedSession([("kick", "kick", 36), ("snare", "snare", 38)], 6, FakeTakes(), fit,
                      lambda spec: parse_added_piece(spec, ["kick", "snare", "hihat", "toms",
                                                       "cymbals"]), p, SR, 20.0)
    res = s.run()
    assert res is not None and res.profile == "profile" and res.takes == 4
    assert [f[0] for f in fits[-1]] == ["kick", "snare", "rack tom 1"]
    assert fits[-1][2][1] == 48 and all(f[2] == 6 for f in fits[-1])
    level = {f[0]: f[3] for f in fits[-1]}
    assert level["kick"] == pytest.approx(10 ** (-27 / 20))   # the 3rd take replaced the 1st
    assert len(fits) == 3                                     # refitted after each change


def test_session_quits_on_end_of_input():
    p = Prompter.scripted([""], echo=False)
    s = GuidedSession([("kick", "kick", 36), ("snare", "snare", 38)], 6, FakeTakes(),
                      lambda kept: "profile", lambda spec: None, p, SR, 20.0)
    assert s.run() is None and "nothing saved" in p.transcript[-1]


def test_hits_do_not_depend_on_block_size():
    """The live hit cutter: same onsets and hit lengths whatever the device's block size."""
    x = recording(3, seed=2)[:, None]
    a, b = hits_in(x, SR, block=128), hits_in(x, SR, block=8192)
    assert len(a) == 12
    assert [(h.onset_sample, len(h.audio)) for h in a] == \
        [(h.onset_sample, len(h.audio)) for h in b]
    # each hit ends where the next begins (or after the 1 s window)
    for h, nxt in zip(a, a[1:]):
        assert h.onset_sample + len(h.audio) == min(nxt.onset_sample, h.onset_sample + SR)


def test_session_offers_the_play_along_groove_after_the_fit():
    """After the first fit, `g` records the play-along groove (the caller's), counts its
    take and refits; `s` inside it (not now) changes nothing."""
    fits, grooves = [], []

    def groove(kept):
        grooves.append([k.name for k in kept])
        return Take([TakeHit(0, np.zeros((100, 1), np.float32))], 21.0, "time") \
            if len(grooves) == 1 else None
    p = Prompter.scripted(["", "", "", "", "g", "g", ""], echo=False)
    s = GuidedSession([("kick", "kick", 36), ("snare", "snare", 38)], 6, FakeTakes(),
                      lambda kept: fits.append(len(kept)) or "profile", lambda spec: None, p,
                      SR, 20.0, groove=groove)
    res = s.run()
    assert res is not None and grooves == [["kick", "snare"]] * 2
    assert len(fits) == 2 and res.takes == 3 and res.playing_s == pytest.approx(2 * 3.0 + 21.0)
    assert any("g = play the play-along groove" in line for line in p.transcript)
