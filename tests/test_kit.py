"""Kit profiles: calibration on a generated kit, the file format's checks, `stream --kit`."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from bench.sounds import burst
from drumclassifier.cli import main
from drumclassifier.kit import (
    FORMAT,
    VERSION,
    FitOptions,
    Head,
    KitError,
    KitProfile,
    Piece,
    file_sha256,
    fit_head,
    fit_head_cv,
    fit_profile,
    fit_temperature,
    guess_note,
    parse_piece,
)

from .realtime_helpers import assert_pieces_right, kick_over_kick_tail

SR = 44100
ORDER = ["kick", "snare", "hihat", "toms--floor tom"]          # as played
KINDS = ["kick", "snare", "hihat", "tom"]


def recording(per_piece: int, seed: int) -> np.ndarray:
    """The pieces in ORDER, per_piece hits each at -20..-3 dBFS, a pause between pieces."""
    rng = np.random.default_rng(seed)
    parts = [np.zeros(SR // 2, np.float32)]
    for kind in KINDS:
        for _ in range(per_piece):
            parts += [burst(kind, rng, 10 ** (rng.uniform(-20, -3) / 20)),
                      np.zeros(int(0.15 * SR), np.float32)]
        parts.append(np.zeros(SR, np.float32))
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """A profile calibrated (with the shipped weights) from a generated recording."""
    d = tmp_path_factory.mktemp("kit")
    sf.write(d / "calib.wav", recording(6, seed=0), SR)
    sf.write(d / "play.wav", recording(4, seed=1), SR)     # held-back hits, same kit
    out = d / "my.kit"
    rc = main(["calibrate", "--from-file", str(d / "calib.wav"), "--pieces", ",".join(ORDER),
               "--hits-per-piece", "6", "--out", str(out), "--model-device", "cpu"])
    assert rc == 0
    return d, out


def test_calibrated_profile_classifies_held_back_hits(kit, capsys):
    d, out = kit
    prof = KitProfile.load(out)
    assert prof.names == ["kick", "snare", "hihat", "floor tom"]
    assert [p.label for p in prof.pieces] == ["kick", "snare", "hihat", "toms"]
    assert [p.note for p in prof.pieces] == [36, 38, 42, 41]
    assert all(p.n_hits == 6 for p in prof.pieces)
    assert all(p.min_db <= p.max_db for p in prof.pieces)
    assert prof.fit["cv_folds"] >= 2 and all(p.cv_accuracy is not None for p in prof.pieces)
    # the held-back recording through the live path with the profile
    ev, mid = d / "events.csv", d / "play.mid"
    rc = main(["stream", str(d / "play.wav"), "--fast", "--quiet", "--kit", str(out),
               "--events", str(ev), "--midi-file", str(mid), "--model-device", "cpu"])
    assert rc == 0
    rows = list(csv.DictReader(ev.open()))
    played = [n for n in prof.names for _ in range(4)]
    assert_pieces_right(rows, played)
    by_name = {p.name: p for p in prof.pieces}
    assert [int(r["note"]) for r in rows] == [by_name[r["piece"]].note for r in rows]
    assert {r["label"] for r in rows if r["piece"] == "floor tom"} == {"toms"}
    import mido
    notes = [m.note for m in mido.MidiFile(mid).tracks[0] if m.type == "note_on"
             and m.velocity > 0]
    assert sorted(notes) == sorted(int(r["note"]) for r in rows)   # (order within an onset may differ)
    # anytime: each piece sent at the first rung it is sure of, within the ladder
    ev2 = d / "events-anytime.csv"
    rc = main(["stream", str(d / "play.wav"), "--fast", "--quiet", "--kit", str(out),
               "--anytime-ms", "5", "10", "20", "--min-confidence", "0.8",
               "--events", str(ev2), "--model-device", "cpu"])
    assert rc == 0
    rows2 = list(csv.DictReader(ev2.open()))
    assert_pieces_right(rows2, played)
    assert all(float(r["context_ms"]) <= 20.01 for r in rows2)


def test_profile_round_trip(kit, tmp_path):
    _, out = kit
    prof = KitProfile.load(out)
    prof.save(tmp_path / "copy.kit")
    again = KitProfile.load(tmp_path / "copy.kit", prof.weights_sha256, prof.labels)
    emb = torch.randn(7, prof.embedding_dim)
    assert torch.allclose(prof.probs(emb), again.probs(emb), atol=1e-6)
    assert again.head.temperature == prof.head.temperature
    assert again.pieces == prof.pieces and again.fit == prof.fit
    d = json.loads(out.read_text())
    assert d["format"] == FORMAT and d["version"] == VERSION
    assert isinstance(d["heads"][0]["weight"], list)


def test_refuses_overwrite_without_force(kit, capsys):
    d, out = kit
    before = out.read_bytes()
    rc = main(["calibrate", "--from-file", str(d / "calib.wav"), "--pieces", ",".join(ORDER),
               "--out", str(out)])
    assert rc == 2 and "exists; use --force" in capsys.readouterr().err
    assert out.read_bytes() == before


@pytest.mark.parametrize("content, message", [
    ('{"format": "drumclassifier-kit", "version": 1, "pieces": [', "not valid JSON"),
    ('{"hello": 1}', "not a DrumClassifier kit profile"),
    ('[1, 2, 3]', "not a DrumClassifier kit profile"),
    ('{"format": "drumclassifier-kit", "version": 99}', "version 99 is not supported"),
    ('{"format": "drumclassifier-kit", "version": 1, "pieces": []}', "corrupt kit profile"),
])
def test_bad_profiles_refused(tmp_path, content, message):
    p = tmp_path / "bad.kit"
    p.write_text(content)
    with pytest.raises(KitError, match=message):
        KitProfile.load(p)


def test_binary_and_tampered_profiles_refused(kit, tmp_path):
    _, out = kit
    p = tmp_path / "weights.kit"
    p.write_bytes(b"PK\x03\x04\x00\xff\xfe" * 10)          # e.g. a torch checkpoint
    with pytest.raises(KitError, match="corrupt kit profile"):
        KitProfile.load(p)
    d = json.loads(out.read_text())
    d["heads"][0]["bias"] = d["heads"][0]["bias"][:-1]      # shapes no longer fit
    p.write_text(json.dumps(d))
    with pytest.raises(KitError, match="head shapes"):
        KitProfile.load(p)
    with pytest.raises(KitError, match="not found"):
        KitProfile.load(tmp_path / "missing.kit")


def test_profile_of_other_weights_refused(kit, tiny_checkpoint, capsys):
    d, out = kit
    with pytest.raises(KitError, match="fitted on other model weights"):
        KitProfile.load(out, file_sha256(tiny_checkpoint))
    rc = main(["stream", str(d / "play.wav"), "--fast", "--quiet", "--kit", str(out),
               "-w", str(tiny_checkpoint), "--model-device", "cpu"])
    assert rc == 2
    assert "fitted on other model weights" in capsys.readouterr().err


def test_stream_without_kit_unchanged(kit, tmp_path):
    d, _ = kit
    ev = tmp_path / "ev.csv"
    assert main(["stream", str(d / "play.wav"), "--fast", "--quiet", "--events", str(ev),
                 "--model-device", "cpu"]) == 0
    assert ev.read_text().splitlines()[0] == \
        "time_s,label,confidence,velocity,latency_ms,wall_latency_ms,context_ms"


def test_pieces_notes_and_velocity():
    assert parse_piece("toms--Floor Tom", ["kick", "toms"]) == ("Floor Tom", "toms")
    assert parse_piece("kick", ["kick", "toms"]) == ("kick", "kick")
    with pytest.raises(Exception, match="class must be one of"):
        parse_piece("cowbell", ["kick", "toms"])
    assert guess_note("open hat", "hihat") == 46 and guess_note("ride bell", "cymbals") == 53
    assert guess_note("snare", "snare") == 38
    p = Piece("snare", "snare", 38, min_db=-30.0, max_db=-6.0)
    assert p.velocity(-6.0) == 127 and p.velocity(-36.0) == 1 and p.velocity(-80.0) == 1
    assert 1 < p.velocity(-20.0) < 127


def test_fit_head_separates_clusters():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(20, 8, generator=g) + 3 * i for i in range(3)])
    y = torch.arange(3).repeat_interleave(20)
    assert (fit_head(x, y, 3).probs(x).argmax(1) == y).all()


def test_folder_calibration_and_notes(tmp_path, capsys):
    rng = np.random.default_rng(3)
    for sub, kind in [("kick", "kick"), ("hihat--open hat", "hihat"), ("snare", "snare")]:
        (tmp_path / "kit" / sub).mkdir(parents=True)
        for i in range(3):
            sf.write(tmp_path / "kit" / sub / f"{i}.wav", burst(kind, rng, 0.5), SR)
    out = tmp_path / "f.kit"
    assert main(["calibrate", "--from-folder", str(tmp_path / "kit"), "--notes", "kick=35",
                 "--augment", "4", "--out", str(out), "--model-device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "fitting:" in err and "step" in err             # the fit's progress bar
    prof = KitProfile.load(out)
    assert {p.name: p.note for p in prof.pieces} == {"kick": 35, "open hat": 46, "snare": 38}
    assert main(["calibrate", "--from-folder", str(tmp_path / "kit"), "--notes", "cowbell=56",
                 "--out", str(tmp_path / "g.kit")]) == 2


def test_fit_reports_progress_to_the_last_step(tiny):
    rng = np.random.default_rng(0)
    hits = [torch.from_numpy(np.stack([burst(k, rng, 0.5)] * 2)) for k in ("kick", "snare") * 3]
    steps = []
    fit_profile(tiny, hits, [0, 1] * 3, [Piece("kick", "kick", 36), Piece("snare", "snare", 38)],
                augment=2, progress=lambda done, total: steps.append((done, total)))
    total = steps[-1][1]
    assert steps[-1] == (total, total) and [d for d, _ in steps] == list(range(1, total + 1))
    assert all(t == total for _, t in steps)


def test_clipped_hits_from_files_get_no_gain_advice():
    from drumclassifier.calibrate import check_hits
    hits = [np.full((2000, 1), v, np.float32) for v in (1.0, 0.001, 0.5)]
    where = ["a.wav", "b.wav", "c.wav"]
    _, live = check_hits(hits, SR, 20.0, where)
    _, files = check_hits(hits, SR, 20.0, where, from_input=False)
    assert "clipped hit at a.wav: lower the input gain and re-take" in live
    assert any(w.startswith("too quiet hit (-60.0 dB) at b.wav: raise the input gain") for w in live)
    clipped = [w for w in files if w.startswith("clipped hit at a.wav")]
    assert len(clipped) == 1 and "the file's audio reaches full scale" in clipped[0]
    assert not any("gain" in w or "re-take" in w or "mic" in w for w in files)


# ---- several pieces per onset, anytime decisions with a profile ---------------------------
def fixed_profile(dim: int, probs: list[float]) -> KitProfile:
    """A profile whose head gives `probs` over its pieces whatever the embedding."""
    labels = ["kick", "snare", "hihat", "toms", "cymbals"]
    pieces = [Piece("kick", "kick", 36, gate_db=-90.0), Piece("hihat", "hihat", 42, gate_db=-90.0),
              Piece("floor tom", "toms", 41, gate_db=-90.0)][:len(probs)]
    head = Head(torch.zeros(dim), torch.ones(dim), torch.zeros(len(probs), dim),
                torch.tensor(probs).log())
    return KitProfile(pieces, head, labels, "0" * 64)


def hits_of(n: int, final: bool):
    from realtime.slicer import Hit
    rng = np.random.default_rng(0)
    return [Hit(i, None, (0.1 * rng.standard_normal((441, 1))).astype(np.float32), -20.0, 441,
                final=final) for i in range(n)]


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    from drumclassifier import DrumClassifier
    return DrumClassifier(tiny_checkpoint, None, "cpu")


def test_several_pieces_per_onset(tiny):
    from realtime.classify import KitClassify
    dim = tiny.embed([torch.zeros(2, 441)]).shape[1]
    prof = fixed_profile(dim, [0.5, 0.4, 0.1])              # a kick + hihat hit
    hits = hits_of(2, final=True)
    pieces = lambda out: [[x[2]["piece"] for x in o] for o in out]   # noqa: E731
    _, out = KitClassify(tiny, prof, SR, max_pieces=2, extra_piece_min=0.35)(hits)
    assert pieces(out) == [["kick", "hihat"]] * 2
    assert [x[2]["note"] for x in out[0]] == [36, 42]
    assert out[0][0][1] == pytest.approx(0.5) and out[0][1][1] == pytest.approx(0.4)
    _, out = KitClassify(tiny, prof, SR, max_pieces=1)(hits)   # the default: one piece
    assert pieces(out) == [["kick"]] * 2
    _, out = KitClassify(tiny, prof, SR, max_pieces=3, extra_piece_min=0.45)(hits)
    assert pieces(out) == [["kick"]] * 2                      # the runner-up under the floor
    prof.pieces[1].min_confidence = 0.45                      # a piece's own floor counts too
    _, out = KitClassify(tiny, prof, SR, max_pieces=2, extra_piece_min=0.35)(hits)
    assert pieces(out) == [["kick"]] * 2


def test_kit_anytime_waits_until_sure_or_last(tiny):
    from realtime.classify import KitClassify
    dim = tiny.embed([torch.zeros(2, 441)]).shape[1]
    unsure, sure = fixed_profile(dim, [0.6, 0.3, 0.1]), fixed_profile(dim, [0.9, 0.05, 0.05])
    early, last = hits_of(1, final=False), hits_of(1, final=True)
    assert KitClassify(tiny, unsure, SR, min_confidence=0.8)(early)[1] == [None]
    assert KitClassify(tiny, unsure, SR, min_confidence=0.8)(last)[1][0][0][2]["piece"] == "kick"
    assert KitClassify(tiny, sure, SR, min_confidence=0.8)(early)[1][0][0][2]["piece"] == "kick"


def test_kit_anytime_sure_of_class_sends_the_top_piece_of_the_sure_class(tiny):
    from drumclassifier.kit import Piece
    from realtime.classify import KitClassify
    dim = tiny.embed([torch.zeros(2, 441)]).shape[1]
    prof = fixed_profile(dim, [0.3, 0.36, 0.34])  # kick 0.3, hihat 0.36, floor tom 0.34
    prof.pieces[0] = Piece("rack tom", "toms", 48, gate_db=-90.0)  # toms: 0.30 + 0.34
    early = hits_of(1, final=False)
    assert KitClassify(tiny, prof, SR, min_confidence=0.6)(early)[1] == [None]  # no piece sure
    _, out = KitClassify(tiny, prof, SR, min_confidence=0.6, sure_of="class", max_pieces=1)(early)
    # toms are sure (0.64), and the floor tom is the more probable tom; the hihat, the
    # most probable single piece, is not sent
    assert [(x[0], x[2]["piece"], x[2]["note"]) for x in out[0]] == [("toms", "floor tom", 41)]
    with pytest.raises(ValueError, match="sure_of"):
        KitClassify(tiny, prof, SR, sure_of="drum")


def sigmoid_profile(dim: int, probs: list[float]) -> KitProfile:
    """A version-4 profile (a sigmoid per piece) giving `probs` whatever the embedding."""
    prof = fixed_profile(dim, probs)
    prof.head.bias, prof.head.multi_label = torch.tensor(probs).logit(), True
    return prof


def test_sigmoid_profile_sends_every_piece_struck(tiny):
    from realtime.classify import KitClassify
    dim = tiny.embed([torch.zeros(2, 441)]).shape[1]
    prof = sigmoid_profile(dim, [0.9, 0.8, 0.1])               # kick + hihat, no tom
    _, out = KitClassify(tiny, prof, SR, max_pieces=3)(hits_of(2, final=True))
    assert [[x[2]["piece"] for x in o] for o in out] == [["kick", "hihat"]] * 2
    _, out = KitClassify(tiny, prof, SR, max_pieces=1)(hits_of(1, final=True))
    assert [x[2]["piece"] for x in out[0]] == ["kick"]       # the cap, most probable first
    _, out = KitClassify(tiny, sigmoid_profile(dim, [0.2, 0.1, 0.3]), SR)(hits_of(1, True))
    assert out == [[]]                                         # no piece: nothing (a tail)


def test_kit_profile_does_not_send_a_kick_ringing_from_before(tiny):
    """decision.rise_classes on the kit path: the profile hears kick + hihat at a hihat
    struck over a kick's tail, and sends only the hihat; a new kick goes with it."""
    from realtime.classify import KitClassify
    from realtime.slicer import Hit
    dim = tiny.embed([torch.zeros(2, 441)]).shape[1]
    prof = sigmoid_profile(dim, [0.9, 0.8, 0.1])               # kick + hihat, no tom
    audio, before = kick_over_kick_tail("hihat")
    over_tail = Hit(0, None, audio, -6.0, len(audio), before=before)
    audio, before = kick_over_kick_tail("kick")
    new_kick = Hit(1, None, audio, -6.0, len(audio), before=before)
    _, (a, b) = KitClassify(tiny, prof, SR)([over_tail, new_kick])
    assert [x[2]["piece"] for x in a] == ["hihat"]
    assert [x[2]["piece"] for x in b] == ["kick", "hihat"]
    _, (a, _) = KitClassify(tiny, prof, SR, rise_classes=[])([over_tail, new_kick])
    assert [x[2]["piece"] for x in a] == ["kick", "hihat"]


def test_kit_late_look_sends_the_late_pieces_from_the_later_rung(tiny):
    from realtime.classify import KitClassify
    from realtime.slicer import Hit
    from realtime.worker import More
    dim = tiny.embed([torch.zeros(2, 441)]).shape[1]
    prof = sigmoid_profile(dim, [0.9, 0.8, 0.7])          # kick, hihat, floor tom all present
    kc = KitClassify(tiny, prof, SR, late_classes=["toms"], first_ms=10)
    x = (0.1 * np.random.default_rng(0).standard_normal((SR // 5, 1))).astype(np.float32)
    first = Hit(0, None, x[:441], -20.0, 441, final=False)
    late = Hit(0, None, x, -20.0, len(x), final=True)
    cut = Hit(1, None, x[:200], -20.0, 200, final=True, partial=True)
    _, (a, b, c) = kc([first, late, cut])
    assert isinstance(a, More) and [i[2]["piece"] for i in a] == ["kick", "hihat"]
    assert [i[2]["piece"] for i in b] == ["floor tom"]
    assert [i[2]["piece"] for i in c] == ["kick", "hihat", "floor tom"]
    # a kit with no piece of the late classes: everything at the first rung all the same
    _, (a, b) = KitClassify(tiny, prof, SR, late_classes=["cymbals"], first_ms=10)([first, late])
    assert [i[2]["piece"] for i in a] == ["kick", "hihat", "floor tom"] and b == []
    from drumclassifier.errors import ConfigError
    with pytest.raises(ConfigError, match="sigmoid per piece"):
        KitClassify(tiny, fixed_profile(dim, [0.9, 0.1]), SR, late_classes=["toms"])


def test_sigmoid_profile_sends_each_piece_at_its_own_rung(tiny):
    """Anytime with a sigmoid per piece: the sure kick goes at the first rung, the hihat
    struck with it at the last, each once; through the real worker and its counters."""
    from realtime.classify import KitClassify
    from realtime.config import VelocityConfig
    from realtime.slicer import Track
    from realtime.worker import HitQueue, More, Worker
    dim = tiny.embed([torch.zeros(2, 441)]).shape[1]
    kc = KitClassify(tiny, sigmoid_profile(dim, [0.97, 0.7, 0.01]), SR, min_confidence=0.95,
                     max_pieces=3)
    first, last = hits_of(1, final=False)[0], hits_of(1, final=True)[0]
    first.track = last.track = Track(0, None)
    _, out = kc([first])
    assert isinstance(out[0], More) and [x[2]["piece"] for x in out[0]] == ["kick"]
    first.track.sent.clear()
    worker = Worker(HitQueue(8), kc, [], VelocityConfig(), SR)
    from realtime.onset import Onset
    for h in (first, last):
        h.onset = Onset(0, 128, 1.0)
    events = worker.process([first]) + worker.process([last])
    assert [(e.piece, e.context_ms) for e in events] == [("kick", 10.0), ("hihat", 10.0)]
    assert (worker.classified, worker.waiting) == (1, 1)
    # every piece sure (present or absent) at the first rung: done, later rungs skipped
    kc.profile = sigmoid_profile(dim, [0.97, 0.02, 0.01])
    done = hits_of(1, final=False)[0]
    done.track = Track(1, None)
    assert [x[2]["piece"] for x in kc([done])[1][0]] == ["kick"]
    assert not isinstance(kc([hits_of(1, final=False)[0]])[1][0], More)


def test_piece_decisions_rule():
    from drumclassifier.anytime import piece_decisions
    p = torch.tensor([[0.97, 0.7, 0.01], [0.97, 0.7, 0.01], [0.97, 0.03, 0.01]])
    send, done = piece_decisions(p, torch.full((3,), 0.5), 0.95,
                                 torch.tensor([False, True, False]))
    assert send.tolist() == [[True, False, False], [True, True, False], [True, False, False]]
    assert done.tolist() == [False, True, True]


def test_groove_variants_strike_together_over_tails():
    from drumclassifier.kit import GrooveMix, groove_variants
    rng = np.random.default_rng(0)
    hits = [torch.from_numpy(np.stack([burst(k, rng, 0.5)] * 2))
            for k in ("kick", "kick", "snare", "snare", "hihat", "hihat")]
    y = [0, 0, 1, 1, 2, 2]
    waves, leads, t, src = groove_variants(hits, y, 3, 60, SR, (5.0, 20.0), 1024, rng,
                                           mix=GrooveMix(p_empty=0.1))
    assert len(waves) == 360 and leads.shape == (360, 2, 1024) and t.shape == (360, 3)
    lengths = torch.tensor([w.shape[-1] for w in waves])
    assert lengths.max() == 882 and ((lengths == 220) | (lengths == 882)).float().mean() > 0.9
    # a hit shorter than the context ends where it ends (the 0.3 s bursts, cut to 1 s)
    alone = GrooveMix(p_together=0.0, p_tails=0.0, p_empty=0.0, p_room=0.0)   # (a room rings on)
    one = groove_variants(hits, y, 3, 2, SR, (1000.0,), 1024, rng, (0.0, 0.0), alone)[0]
    assert all(w.shape[-1] == int(0.3 * SR) for w in one)
    n = t.sum(1)
    own = t[torch.arange(360), torch.tensor(y)[torch.tensor(src)]]
    assert (own[n > 0] == 1).all()              # a variant with a hit names its own piece
    assert (n == 2).any() and (n == 3).any()    # pieces struck together
    assert 0.03 < (n == 0).float().mean() < 0.2   # tails only: an onset with no piece
    quiet = groove_variants(hits, y, 3, 20, SR, (20.0,), 1024, rng,
                            mix=GrooveMix(p_tails=0.0, p_empty=0.0))[1]
    ringing = groove_variants(hits, y, 3, 20, SR, (20.0,), 1024, rng,
                              mix=GrooveMix(p_tails=1.0, p_empty=0.0, tail_ms=(25, 100)))[1]
    # the tails ring in the lead-in (its last 100 samples may hold a late-detected attack)
    assert ringing[..., :-100].pow(2).mean() > 100 * quiet[..., :-100].pow(2).mean()


def test_groove_variants_through_a_room_mic():
    """p_room: a variant's hits heard through one room mic (mono, a reverberant tail that
    rings past the hit); p_pink: a pink noise floor. Seeded: the same fit twice is equal."""
    from drumclassifier.kit import GrooveMix, groove_variants, noise_floor, room_versions
    rng = np.random.default_rng(0)
    hits = [torch.from_numpy(np.stack([burst(k, rng, 0.5), 0.2 * burst(k, rng, 0.5)]))
            for k in ("kick", "snare")]
    rooms = room_versions(hits, 2, SR, GrooveMix(room_rt60_s=(0.5, 0.5)), rng)
    for h, r in zip(hits, rooms[0]):
        assert torch.equal(r[0], r[1])                     # one mic
        assert r.shape[-1] > h.shape[-1] + 0.4 * SR        # the room rings on
        n = h.shape[-1]
        assert r[0, n:].abs().max() > 1e-3 * r[0, :n].abs().max()
    assert not torch.equal(rooms[0][0], rooms[1][0])      # two rooms
    mix = GrooveMix(p_room=1.0, p_tails=0.0, p_together=0.0, p_empty=0.0, p_pink=1.0)
    a = groove_variants(hits, [0, 1], 2, 4, SR, (20.0,), 1024, np.random.default_rng(3), mix=mix)
    b = groove_variants(hits, [0, 1], 2, 4, SR, (20.0,), 1024, np.random.default_rng(3), mix=mix)
    assert all(torch.equal(x, z) for x, z in zip(a[0], b[0]))
    # pink: most of its power below 1 kHz (white: about 1 kHz / 22 kHz of it)
    pink = noise_floor((1, SR), True, SR, np.random.default_rng(0))
    spec = torch.fft.rfft(pink[0]).abs().square()
    assert spec[:1000].sum() > 0.5 * spec.sum() and abs(float(pink.std()) - 1) < 1e-3


def test_played_variants_hear_the_room_only_with_take_too():
    from drumclassifier.kit import GrooveMix, PlayedTake, played_variants
    rng = np.random.default_rng(0)
    kick, snare = (torch.from_numpy(burst(k, rng, 0.5)) for k in ("kick", "snare"))
    # the snare 50 ms after the kick's 0.3 s burst ended: dry, its lead-in is silent
    at = np.array([2000, 2000 + len(kick) + int(0.05 * SR)])
    audio = torch.zeros(2, SR)
    for o, b in zip(at, (kick, snare)):
        audio[:, o:o + len(b)] += b
    take = PlayedTake(audio, at, torch.eye(2))

    def variants(mix):
        return played_variants(take, 8, SR, (20.0,), 1024, np.random.default_rng(1), mix=mix)
    plain = variants(GrooveMix(p_room=0.0, p_pink=0.0))
    off = variants(GrooveMix(p_room=1.0, p_pink=1.0, take_too=False))
    on = variants(GrooveMix(p_room=1.0, p_pink=1.0, take_too=True, room_rt60_s=(0.8, 0.8)))
    assert all(torch.equal(a, b) for a, b in zip(plain[0], off[0]))   # room for the take: off
    assert [w.shape for w in on[0]] == [w.shape for w in plain[0]]
    assert torch.equal(on[2], plain[2])

    def lead_over_hit(v):     # the snare's variants: lead-in RMS over the hit's (gain-free)
        return np.median([float(v[1][k].pow(2).mean() / v[0][k].pow(2).mean())
                          for k in range(8, 16)])
    # in the room the kick still rings under the snare
    assert lead_over_hit(on) > 5 * lead_over_hit(plain)     # measured: 10x


def test_multi_label_head_names_both_pieces_of_a_pair():
    """One sigmoid per piece, fitted on singles and pairs: a pair it never saw (0 + 2)
    gets both of its pieces present, the third absent."""
    g = torch.Generator().manual_seed(0)
    proto = torch.randn(3, 16, generator=g) * 2
    t = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]] * 40).float()
    x = t @ proto + 0.3 * torch.randn(len(t), 16, generator=g)
    head = fit_head(x, t, 3)
    assert head.multi_label
    p = head.probs((proto[0] + proto[2])[None])[0]
    assert p[0] > 0.5 and p[2] > 0.5 and p[1] < 0.5, p


def test_class_sure_rule():
    from drumclassifier.anytime import class_mass, class_sure, pick_pieces
    p = torch.tensor([[0.3, 0.36, 0.34], [0.1, 0.8, 0.1]])  # [B, P]; pieces of classes 3, 2, 3
    torch.testing.assert_close(class_mass(p, [3, 2, 3], 5),
                               torch.tensor([[0, 0, 0.36, 0.64, 0], [0, 0, 0.8, 0.2, 0]]))
    conf, top = class_sure(p, [3, 2, 3], 5)
    torch.testing.assert_close(conf, torch.tensor([0.64, 0.8]))
    assert top.tolist() == [2, 1]
    assert pick_pieces(p[0], [0.0] * 3, 0.35, 2, top=2) == [2, 1]  # chosen first, then by prob


def test_pick_pieces_rule():
    from drumclassifier.anytime import class_confidence, first_confident, pick_pieces
    p = torch.tensor([0.1, 0.5, 0.4])
    assert pick_pieces(p, [0.0] * 3, 0.35, 2) == [1, 2]
    assert pick_pieces(p, [0.0] * 3, 0.35, 1) == [1]
    assert pick_pieces(p, [0.6, 0.6, 0.6], 0.35, 2) == []     # the top piece under its floor
    conf = torch.tensor([[0.5, 0.9, 0.1], [0.95, 0.2, 0.1], [0.1, 0.1, 0.1]])  # [R, N]
    assert first_confident(conf, 0.8).tolist() == [1, 0, 2]   # unsure throughout: the last
    th = torch.tensor([0.5, 0.5])
    # nothing present is no decision; one class clearly present, the other clearly not: sure
    assert class_confidence(torch.tensor([[0.01, 0.01]]), th) < 0.5
    assert class_confidence(torch.tensor([[0.99, 0.01]]), th) > 0.95


# ---- how a profile is fitted: temperature, augmentation; old and removed formats ----
def test_version_1_profile_read_as_one_head(kit, tmp_path):
    _, out = kit
    d = json.loads(out.read_text())
    h = d.pop("heads")[-1]
    d |= {"version": 1, "head": {k: h[k] for k in ("mean", "std", "weight", "bias")}}
    p = tmp_path / "v1.kit"
    p.write_text(json.dumps(d))
    old = KitProfile.load(p)
    assert (old.head.temperature, old.head.normalise) == (1.0, False)
    emb = torch.randn(3, old.embedding_dim)
    t = {k: torch.tensor(h[k]) for k in ("mean", "std", "weight", "bias")}
    want = torch.softmax(((emb - t["mean"]) / t["std"]) @ t["weight"].T + t["bias"], -1)
    assert torch.allclose(old.probs(emb), want, atol=1e-5)


def test_profile_with_a_head_per_context_refused(kit):
    # one head per context (FitOptions.per_context) was measured and removed: a profile
    # that has several is refused; one head that names its context reads as before
    _, out = kit
    d = json.loads(out.read_text())
    one = dict(d["heads"][0], context_ms=5.0)
    emb = torch.randn(3, d["embedding_dim"])
    assert torch.equal(KitProfile.from_dict(d | {"heads": [one]}).probs(emb),
                       KitProfile.load(out).probs(emb))
    with pytest.raises(KitError, match="2 heads, one per context .* removed"):
        KitProfile.from_dict(d | {"heads": [one, dict(one, context_ms=80.0)]})


def test_bad_temperature_refused(kit, tmp_path):
    _, out = kit
    d = json.loads(out.read_text())
    d["heads"][0]["temperature"] = 0.0
    p = tmp_path / "t.kit"
    p.write_text(json.dumps(d))
    with pytest.raises(KitError, match="non-finite head values"):
        KitProfile.load(p)


def test_temperature_undoes_overconfidence():
    g = torch.Generator().manual_seed(0)
    true = 1.5 * torch.randn(4000, 3, generator=g)          # [N, P] calibrated logits
    y = torch.multinomial(torch.softmax(true, -1), 1, generator=g)[:, 0]
    assert fit_temperature(10 * true, y) == pytest.approx(10, rel=0.25)
    assert fit_temperature(true, y) == pytest.approx(1, rel=0.25)


def near_copies(n_hits: int, spread: float, seed: int):
    """3 pieces, n_hits hits each (hit-to-hit spread around its piece's centre), 10
    near-copies of each hit: what augmentation gives the fit."""
    g = torch.Generator().manual_seed(seed)
    y = np.repeat(np.arange(3), n_hits)                                  # [H]
    hit = torch.eye(3, 8)[y] * 2 + spread * torch.randn(len(y), 8, generator=g)  # [H, 8]
    var_hit = np.repeat(np.arange(len(y)), 10)                           # [V]
    emb = hit[var_hit] + 0.01 * torch.randn(len(var_hit), 8, generator=g)
    return emb, var_hit, y, {5.0: hit, 80.0: hit}


def test_fit_head_cv_and_temperature():
    emb, var_hit, y, hit_emb = near_copies(6, 1.5, 0)
    rng = np.random.default_rng(0)
    head, cv, fold = fit_head_cv(emb, var_hit, y, 3, hit_emb,
                                 FitOptions(temperature=True, l2=1e-4), 3, rng)
    # near-copies of overlapping hits: a head sure on its training hits, not on others
    assert head.temperature > 1
    assert sorted(cv) == [5.0, 80.0] and torch.isfinite(cv[5.0]).all()
    assert set(fold.tolist()) == {0, 1, 2}
    plain, none, _ = fit_head_cv(emb, var_hit, y, 3, hit_emb, FitOptions(), 0, rng)
    assert plain.temperature == 1.0 and none == {}


def test_single_hit_piece_never_held_out():
    emb, var_hit, y, hit_emb = near_copies(3, 0.3, 1)
    keep = (y != 2) | (np.arange(len(y)) == 6)           # piece 2 taught by one hit only
    idx = np.flatnonzero(keep)
    remap = {h: i for i, h in enumerate(idx)}
    m = np.isin(var_hit, idx)
    head, cv, fold = fit_head_cv(emb[m], np.array([remap[h] for h in var_hit[m]]),
                                 y[idx], 3, {c: e[idx] for c, e in hit_emb.items()},
                                 FitOptions(temperature=True), 3, np.random.default_rng(0))
    assert fold[y[idx] == 2].tolist() == [-1] and torch.isnan(cv[5.0][y[idx] == 2]).all()
    assert (head.probs(hit_emb[5.0][idx]).argmax(1).numpy() == y[idx]).all()


@pytest.mark.parametrize("normalise", [False, True])
def test_head_separates_clusters(normalise):
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(20, 8, generator=g) + 3 * torch.eye(8)[i] * 3
                   for i in range(3)])
    y = torch.arange(3).repeat_interleave(20)
    head = fit_head(x, y, 3, normalise=normalise)
    assert (head.probs(x).argmax(1) == y).all()
    again = Head.from_dict(json.loads(json.dumps(head.to_dict())))
    assert torch.allclose(again.probs(x), head.probs(x), atol=1e-6)


def test_augment_hits_contexts_jitter_and_eq():
    from drumclassifier.kit import augment_hits
    hit = torch.zeros(2, SR // 10)
    hit[:, 0] = 1.0                                          # an impulse at the onset
    var, src, ctx = augment_hits([hit, hit], 6, SR, [5.0, 20.0], np.random.default_rng(0),
                                 jitter_ms=(-2.0, -1.0))
    assert src == [0] * 6 + [1] * 6 and sorted(set(ctx)) == [5.0, 20.0]
    assert [v.shape[-1] for v in var] == [round(c * SR / 1000) for c in ctx]
    # the detector fired 1-2 ms early: the impulse sits 1-2 ms into every variant
    at = [int(v[0].abs().argmax()) for v in var]
    assert all(0.9e-3 * SR <= a <= 2.1e-3 * SR for a in at)
    flat, _, _ = augment_hits([hit], 4, SR, [20.0], np.random.default_rng(1))
    eq, _, _ = augment_hits([hit], 4, SR, [20.0], np.random.default_rng(1), eq_db=9.0)
    spec = [torch.fft.rfft(v[0]).abs() for v in (flat[0], eq[0])]
    assert not torch.allclose(spec[0], spec[1], rtol=0.05)


# ---- the band profile next to the embedding (profile version 3) ----
def test_calibrated_profile_reads_the_band_profile(kit):
    from drumclassifier import DrumClassifier
    _, out = kit
    prof = KitProfile.load(out)
    clf = DrumClassifier(None, None, "cpu")
    n_mels, dim = clf.cfg.features.n_mels, clf.embed([torch.zeros(2, 441)]).shape[1]
    assert prof.spectrum and prof.fit["spectrum"] is True
    assert prof.embedding_dim == dim + n_mels
    assert prof.head.spectrum_dims == n_mels


def test_band_profile_is_level_free_and_ignores_padding():
    from drumclassifier.config import load_model_config
    from drumclassifier.features import LogMel, band_profile
    cfg = load_model_config(None)
    mel = LogMel(cfg)
    hit = torch.from_numpy(burst("snare", np.random.default_rng(0), 0.5))[None].repeat(2, 1)
    n = 2205                                                  # 50 ms
    x = torch.zeros(3, 2, 4 * n)
    x[0, :, :n], x[1, :, :n], x[2] = hit[:, :n], 0.25 * hit[:, :n], hit[:, :4 * n]
    prof = band_profile(*mel(x, torch.tensor([n, n, 4 * n])))          # [3, n_mels]
    assert prof.shape == (3, cfg.features.n_mels)
    assert torch.allclose(prof.mean(1), torch.zeros(3), atol=1e-4)     # shape only
    assert (prof[0] - prof[1]).abs().max() < 0.05                       # -12 dB: same shape
    alone = band_profile(*mel(x[:1, :, :n], torch.tensor([n])))
    assert torch.allclose(alone[0], prof[0], atol=1e-4)                 # padding is not read
    assert (prof[0] - prof[2]).abs().max() > 0.1                        # more of the hit: not


def test_head_input_normalises_only_the_embedding():
    from drumclassifier.kit import head_input
    x = torch.tensor([[3.0, 4.0, 0.0, 7.0, -2.0]])
    z = head_input(x, normalise=True, spectrum_dims=2)
    assert torch.allclose(z, torch.tensor([[0.6, 0.8, 0.0, 7.0, -2.0]]))
    assert torch.equal(head_input(x, normalise=False, spectrum_dims=2), x)
    h = fit_head(torch.randn(40, 5), torch.arange(40) % 2, 2, normalise=True, spectrum_dims=2)
    again = Head.from_dict(json.loads(json.dumps(h.to_dict())))
    assert again.spectrum_dims == 2 and torch.allclose(again.logits(x), h.logits(x))


def test_version_2_profile_reads_the_embedding_only(kit, tmp_path):
    _, out = kit
    d = json.loads(out.read_text())
    for h in d["heads"]:
        del h["spectrum_dims"]
    d["version"] = 2
    p = tmp_path / "v2.kit"
    p.write_text(json.dumps(d))
    assert not KitProfile.load(p).spectrum
    d["version"] = 3
    d["heads"][0]["spectrum_dims"] = len(d["heads"][0]["mean"])   # no embedding left
    p.write_text(json.dumps(d))
    with pytest.raises(KitError, match="head shapes"):
        KitProfile.load(p)


def test_stream_fast_late_look_default_follows_the_kit_profile(tiny, tmp_path):
    """stream --fast looks again at 200 ms only where it can: the generic model, or a
    sigmoid profile with a piece of the late classes; not a softmax profile, not one fitted
    with a play-along take, not one that does not load (kit_classify says why), not paced,
    not when asked otherwise."""
    import argparse

    from realtime.cli import _fast_late_look
    from realtime.config import load_realtime_config
    dim = tiny.embed([torch.zeros(2, 441)]).shape[1]
    sig = sigmoid_profile(dim, [0.9, 0.8, 0.7]).save(tmp_path / "sig.kit")   # kick, hihat, floor tom
    soft = fixed_profile(dim, [0.5, 0.4, 0.1]).save(tmp_path / "soft.kit")
    toms = load_realtime_config(None, {"decision": {"late_classes": ["toms"]}})
    cymbals = load_realtime_config(None)

    def look(cfg=toms, **kw):
        a = dict(fast=True, late_look_ms=None, kit=None) | kw
        return _fast_late_look(argparse.Namespace(**a), cfg)
    assert look() and look(kit=str(sig))
    assert not look(cfg=cymbals, kit=str(sig))            # no cymbal piece: nothing to look for
    assert not look(kit=str(soft)) and not look(kit=str(tmp_path / "none.kit"))
    played = sigmoid_profile(dim, [0.9, 0.8, 0.7])           # fitted with a play-along take
    played.fit["played"] = {"onsets": 60, "augment": 30}
    assert not look(kit=str(played.save(tmp_path / "played.kit")))
    assert not look(fast=False) and not look(late_look_ms=0.0)
    assert not look(cfg=load_realtime_config(None, {"slicer": {"anytime_ms": [5, 10, 20]}}))


def test_kit_line_suggests_the_play_along_groove_when_the_fit_had_none(tiny, tmp_path, capsys):
    """listen/stream --kit say once, beside the kit line, when the profile was fitted from
    single hits only (and say nothing more when it had the play-along take)."""
    from realtime.classify import kit_classify
    from realtime.config import load_realtime_config
    dim = tiny.embed([torch.zeros(2, 441)]).shape[1]
    cfg = load_realtime_config(None)
    for played in (None, {"onsets": 60, "augment": 30}):
        prof = sigmoid_profile(dim, [0.9, 0.8, 0.7])
        prof.weights_sha256 = file_sha256(tiny.weights_path)
        prof.fit["played"] = played
        kit_classify(tiny, prof.save(tmp_path / f"{bool(played)}.kit"), cfg, SR)
        err = capsys.readouterr().err
        assert "kit: " in err and ("play-along groove" in err) == (played is None)


def test_embed_batched_runs_batches_of_one_frame_count_with_the_same_embeddings(tiny):
    """The fit embeds its variants in batches of one frame count (ONNX Runtime's equal-
    length path on the CPU, one call per core): each variant's embedding is the one it gets
    alone, within float rounding, and every batch reports progress."""
    from drumclassifier.features import frames_for
    from drumclassifier.kit import embed_batched, frame_batches
    g = torch.Generator().manual_seed(0)
    lengths = [200, 441, 441, 882, 1000, 1323, 2205, 441, 44100, 882, 300, 44000]
    waves = [0.1 * torch.randn(2, n, generator=g) for n in lengths]
    lead = tiny.cfg.lead_in_samples
    before = 0.05 * torch.randn(len(waves), 2, lead, generator=g)
    batches = frame_batches(tiny, waves, 2)
    assert sorted(i for b in batches for i in b) == list(range(len(waves)))
    hop = tiny.cfg.features.hop_length
    for b in batches:
        assert len(b) <= 2 and len({frames_for(lead + lengths[i], hop) for i in b}) == 1
    ticks = []
    emb = embed_batched(tiny, waves, 2, spectrum=True, tick=lambda: ticks.append(1),
                        before=before)
    alone = torch.cat([tiny.embed([w], spectrum=True, before=before[i:i + 1])
                       for i, w in enumerate(waves)])
    assert len(ticks) == len(batches)
    assert torch.allclose(emb, alone, atol=1e-4)


def test_refit_with_the_take_reuses_the_hits_part_and_fits_the_same_profile(tiny):
    """The guided session's refit after the play-along take takes the hits' groove variants
    and embeddings from the fit before it (kit.FitCache): the profile is the one a fit from
    scratch gives, and a change to the hits is not served from the cache."""
    from drumclassifier.kit import FitCache, Piece, PlayedTake, fit_profile
    g = torch.Generator().manual_seed(3)
    hits = [0.3 * torch.randn(2, n, generator=g) * torch.linspace(1, 0, n)
            for n in (2000, 2400, 3000, 2600, 1800, 2200)]
    y = [0, 0, 1, 1, 2, 2]
    pieces = lambda: [Piece(n, lab, 36) for n, lab in   # noqa: E731
                      (("kick", "kick"), ("snare", "snare"), ("hihat", "hihat"))]
    audio = torch.zeros(2, 20000)
    for i, o in enumerate((1000, 6000, 11000, 16000)):
        audio[:, o:o + hits[2 * (i % 3)].shape[-1]] += hits[2 * (i % 3)]
    take = PlayedTake(audio, np.array([1000, 6000, 11000, 16000]),
                      torch.eye(3)[[0, 1, 2, 0]])
    kw = dict(augment=6, weights_sha256="x", seed=4)
    cache = FitCache()
    fit_profile(tiny, hits, y, pieces(), cache=cache, **kw)          # the first fit
    key = cache.key
    ticks = []
    cached = fit_profile(tiny, hits, y, pieces(), cache=cache, played=take,
                         progress=lambda d, t: ticks.append((d, t)), **kw)
    fresh = fit_profile(tiny, hits, y, pieces(), played=take, **kw)
    assert cache.key == key and ticks[-1][0] == ticks[-1][1]
    for a in ("weight", "bias", "mean", "std"):
        assert torch.allclose(getattr(cached.head, a), getattr(fresh.head, a), atol=1e-4)
    hits[0] = hits[0] * 0.5                                       # a piece re-taken
    fit_profile(tiny, hits, y, pieces(), cache=cache, played=take, **kw)
    assert cache.key != key
