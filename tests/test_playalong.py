"""The play-along groove of calibration (realtime/playalong.py): which piece plays which
part, the tab, labelling a take (start and tempo fitted), and `calibrate --groove` end to
end on generated drums with the shipped model."""
from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf

from bench.drummer import GROOVE_KIND
from bench.sounds import burst
from drumclassifier.cli import main
from drumclassifier.errors import DrumClassifierError
from drumclassifier.kit import KitProfile, Piece
from realtime.playalong import DYNAMICS_MIN_DB, GROOVE, LOUD, assign_roles, dynamics_db, label_take, parse_roles, tab

SR = 44100
KIT = [Piece("kick", "kick", 36), Piece("snare", "snare", 38), Piece("hihat", "hihat", 42),
       Piece("open hat", "hihat", 46), Piece("pedal hat", "hihat", 44),
       Piece("rack tom", "toms", 48), Piece("floor tom", "toms", 41),
       Piece("crash", "cymbals", 49), Piece("ride", "cymbals", 51)]


def roles_by_name(pieces, chosen=None) -> dict[str, str]:
    return {r: pieces[i].name for r, i in assign_roles(pieces, chosen).items()}


def test_roles_follow_names_then_class_then_fallbacks():
    assert roles_by_name(KIT) == {
        "kick": "kick", "snare": "snare", "hihat": "hihat", "open hihat": "open hat",
        "ride": "ride", "crash": "crash", "high tom": "rack tom", "mid tom": "rack tom",
        "floor tom": "floor tom"}
    # a small kit: one piece per class plays every part of its class; no toms: the snare
    small = [Piece("bd", "kick", 36), Piece("sd", "snare", 38), Piece("hh", "hihat", 42),
             Piece("cym", "cymbals", 49)]
    r = roles_by_name(small)
    assert r["open hihat"] == "hh" and r["ride"] == r["crash"] == "cym"
    assert r["high tom"] == r["floor tom"] == "sd"
    # plain pieces before special ones: the snare, not the rim; the ride, not its bell
    odd = [Piece("kick", "kick", 36), Piece("rim", "snare", 37), Piece("snare", "snare", 38),
           Piece("ride bell", "cymbals", 53), Piece("ride", "cymbals", 51)]
    r = roles_by_name(odd)
    assert r["snare"] == "snare" and r["ride"] == "ride" and r["crash"] == "ride"
    with pytest.raises(DrumClassifierError, match="needs a snare"):
        assign_roles([Piece("kick", "kick", 36), Piece("hihat", "hihat", 42)])


def test_groove_pieces_choose_where_names_do_not_say():
    two_kicks = [Piece("bd 1", "kick", 36), Piece("bd 2", "kick", 35), *KIT[1:]]
    assert roles_by_name(two_kicks)["kick"] == "bd 1"                # taught order
    chosen = parse_roles("kick=BD 2, floor tom=rack tom")
    assert chosen == {"kick": "BD 2", "floor tom": "rack tom"}
    r = roles_by_name(two_kicks, chosen)
    assert r["kick"] == "bd 2" and r["floor tom"] == "rack tom"
    with pytest.raises(DrumClassifierError, match="ROLE=PIECE"):
        parse_roles("cowbell=bell")
    with pytest.raises(DrumClassifierError, match="not one of the pieces"):
        assign_roles(KIT, {"kick": "gong"})


def test_tab_shows_eight_bars_with_the_kits_names():
    t = tab(KIT, 120)
    rows = {line.split("|")[0].strip(): line.split("|", 1)[1] for line in t.splitlines()
            if line.count("|") == 9}
    assert set(rows) == {"kick", "snare", "hihat", "open hat", "ride", "crash", "rack tom",
                         "floor tom"}
    assert rows["kick"].count("X") == 8 and rows["kick"].count("x") == 8 and rows["open hat"].count("o") == 2
    # dynamics: the hihat loud on the beat, soft on the "and"; ghost notes on the snare
    assert rows["hihat"].split("|")[0] == "X-x-" * 4 and rows["snare"].count("g") == 4
    assert "120 BPM (about 16 s)" in t and "not in the groove" in t and "pedal hat" in t


def grid_onsets(bpm: float, rng, start: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Onset times of the groove's grid positions played at bpm, +-6 ms, and their beats."""
    beats = np.array(sorted({n.beat for n in GROOVE}))
    return start + beats * 60 / bpm + rng.uniform(-0.006, 0.006, len(beats)), beats


def test_label_take_fits_start_and_tempo_and_labels_every_onset():
    rng = np.random.default_rng(0)
    played, beats = grid_onsets(103.0, rng, start=2.4)      # asked for 100 BPM, played 103
    count_in = 2.4 - np.arange(4, 0, -1) * 60 / 103          # four clicks heard before it
    flams = played[[5, 20]] + 0.030            # hand and foot of one beat heard apart
    tails = played[[7, 30]] + 0.140            # the detector fired in a tail, between beats
    onsets = np.sort(np.concatenate([count_in, np.delete(played, [9]), flams, tails]))
    roles = assign_roles(KIT)
    lab = label_take(onsets, len(KIT), roles, 100.0, "take.wav")
    assert lab.positions == len(beats) and lab.matched == len(beats) - 1
    assert abs(lab.bpm - 103) < 0.3 and abs(lab.start_s - 2.4) < 0.005
    names = [p.name for p in KIT]

    def at(t):
        k = np.argmin(np.abs(lab.onsets_s - t))
        assert abs(lab.onsets_s[k] - t) < 1e-9, f"{t} not taught"
        return {names[i] for i in np.flatnonzero(lab.targets[k])}
    assert at(played[0]) == {"kick", "hihat"}                  # beat 1 of bar 1
    assert at(played[list(beats).index(16)]) == {"crash", "kick", "hihat"}   # bar 5, beat 1
    assert at(tails[0]) == set() and at(count_in[0]) == set()   # onsets with no new hit
    assert lab.left_out == 2 and not np.isin(flams, lab.onsets_s).any()   # neither


def test_dynamics_compares_loud_and_soft_strokes_of_the_same_pieces():
    """Loud grid positions at -6 dB, soft ones at -14: 8 dB softer; every stroke equally
    loud: 0; a kick + hihat louder than a hihat alone is not taken for dynamics."""
    played, beats = grid_onsets(100.0, np.random.default_rng(2))
    roles = assign_roles(KIT)
    lab = label_take(played, len(KIT), roles, 100.0)
    loud = np.array([max(n.velocity for n in GROOVE if n.beat == b) >= LOUD for b in beats])
    assert (lab.at_position == np.arange(len(beats))).all()
    assert dynamics_db(lab, np.where(loud, -6.0, -14.0), roles) == pytest.approx(8.0)
    # all loud, but more pieces at once sound louder (about 3 dB a piece): still 0
    n_roles = np.array([sum(n.beat == b for n in GROOVE) for b in beats])
    assert dynamics_db(lab, -12.0 + 3.0 * n_roles, roles) == pytest.approx(0.0)
    assert dynamics_db(lab, -12.0 + 3.0 * n_roles, roles) < DYNAMICS_MIN_DB


def test_label_take_refuses_what_is_not_the_groove():
    rng = np.random.default_rng(1)
    roles = assign_roles(KIT)
    with pytest.raises(DrumClassifierError, match="only .* of the .* beats"):
        label_take(np.sort(rng.uniform(0, 20, 80)), len(KIT), roles, 100.0, "noise.wav")
    played, _ = grid_onsets(100.0, rng)
    with pytest.raises(DrumClassifierError, match="at about 140 BPM"):   # the wrong tempo
        label_take(played, len(KIT), roles, 140.0, "take.wav")
    with pytest.raises(DrumClassifierError, match="heard 5 hits"):
        label_take(played[:5], len(KIT), roles, 100.0, "take.wav")


def test_calibrate_with_a_played_groove(tmp_path, capsys):
    """Generated one-shots per piece and a take of the groove played with the same
    sounds: the take is labelled, joins the fit, and the profile says so."""
    rng = np.random.default_rng(5)
    folder = tmp_path / "kit"
    for sub, kind in [("kick", "kick"), ("snare", "snare"), ("hihat", "hihat"),
                      ("toms--floor tom", "tom"), ("cymbals--ride", "cymbal")]:
        (folder / sub).mkdir(parents=True)
        for i in range(3):
            sf.write(folder / sub / f"{i}.wav", burst(kind, rng, 10 ** (-3 * i / 20)), SR)
    assert main(["calibrate", "--from-folder", str(folder), "--show-groove",
                 "--groove-bpm", "110"]) == 0
    shown = capsys.readouterr().out
    assert "110 BPM" in shown and "floor tom |" in shown
    bpm = 110.0
    take = np.zeros(int(22 * SR), np.float32)
    for beat, role, _vel in GROOVE:
        i = int((0.5 + beat * 60 / bpm + rng.uniform(-0.004, 0.004)) * SR)
        x = burst(GROOVE_KIND[role], rng, 10 ** (rng.uniform(-9, -3) / 20))
        take[i:i + len(x)] += x
    sf.write(tmp_path / "groove.wav", take, SR)
    out = tmp_path / "k.kit"
    assert main(["calibrate", "--from-folder", str(folder), "--groove",
                 str(tmp_path / "groove.wav"), "--groove-bpm", "110", "--augment", "8",
                 "--out", str(out), "--model-device", "cpu"]) == 0
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "of the play-along groove's" in x)
    heard, positions = map(int, re.search(r": (\d+) of the play-along groove's (\d+) beats",
                                          line).groups())
    assert positions == len({n.beat for n in GROOVE}) and heard >= 0.9 * positions
    prof = KitProfile.load(out)
    assert prof.fit["played"]["onsets"] >= heard and prof.fit["played"]["augment"] == 30
    # every stroke at -9..-3 dBFS, the tab's x and g too: the drummer is told
    assert "groove.wav: the soft strokes (x, g) were only" in err

    # a take that is not the groove: one line naming the file, nothing written
    sf.write(tmp_path / "solo.wav", take[: 3 * SR], SR)
    bad = tmp_path / "bad.kit"
    assert main(["calibrate", "--from-folder", str(folder), "--groove",
                 str(tmp_path / "solo.wav"), "--out", str(bad)]) != 0
    assert "solo.wav" in capsys.readouterr().err and not bad.exists()


def test_take_from_hits_rebuilds_a_live_take():
    from realtime.calibrate import TakeHit
    from realtime.playalong import take_from_hits
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4 * SR, 2)).astype(np.float32)
    starts = [1000, 30000, 31000, 90000]
    ends = starts[1:] + [90000 + SR]          # each hit runs to the next onset, at most 1 s
    hits = [TakeHit(s, x[s:min(e, s + SR)]) for s, e in zip(starts, ends)]
    take = take_from_hits(hits, SR, "live")
    data, onsets = take.data, take.onsets
    assert list(onsets) == starts and data.shape == (90000 + SR, 2)
    assert np.array_equal(data[1000:75100], x[1000:75100]) and not data[:1000].any()
    assert not data[75100:90000].any()        # more than 1 s after an onset: not kept


def test_show_groove_writes_a_midi_file_to_play_along_with(tmp_path, capsys):
    import mido
    out = tmp_path / "along.mid"
    argv = ["calibrate", "--pieces", "kick,snare,hihat,toms--floor tom,cymbals--ride",
            "--notes", "floor tom=43",
            "--show-groove", "--groove-bpm", "120", "--groove-midi", str(out)]
    assert main(argv) == 0 and "wrote" in capsys.readouterr().out
    t, ons, vel = 0.0, [], {}
    for m in mido.MidiFile(out):
        t += m.time
        if m.type == "note_on":
            ons.append((round(t, 3), m.note, m.channel))
            vel[m.note] = vel.get(m.note, set()) | {m.velocity}
    assert {45, 110} <= vel[38]            # the snare's ghost notes and its backbeat
    clicks = [x for x in ons if x[1] in (33, 34)]
    assert len(clicks) == 9 * 4 and all(c == 9 for _, _, c in ons)    # GM drum channel
    assert (2.0, 36, 9) in ons and (2.0, 34, 9) in ons       # the groove's one after a bar
    assert 43 in {n for _, n, _ in ons}                         # the floor tom's own note
    assert main(argv) != 0 and "exists" in capsys.readouterr().err      # not overwritten
    assert main(["calibrate", "--pieces", "kick,snare", "--groove-midi", str(out)]) != 0
