"""Training grooves: rendering from a manifest's kits, live-onset labels, chokes, training."""
from __future__ import annotations

import csv
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from drumclassifier.cli import main
from drumclassifier.grooves.generator import random_program
from drumclassifier.grooves.patterns import Note
from drumclassifier.grooves.render import SR, Instrument, Kit, instrument_name, mix
from realtime.grooves import complete_kit, label_onsets
from realtime.onset import Onset

from .test_train import LABELS, TINY, synth


def test_instrument_names_group_velocity_layers():
    assert instrument_name("k/Closed_HH__123__hat.flac") == "Closed_HH"        # Hydrogen
    assert instrument_name("k/042_hihat_v090.flac") == "042_hihat"             # SoundFont key
    assert instrument_name("k/HihatClosed_014.flac") == "HihatClosed"          # numbered layers
    assert instrument_name("k/bassdrum01.flac") == "bassdrum01"                # one file, one piece


def test_notes_go_to_the_nearest_onset_within_25_ms_and_lonely_onsets_are_negatives():
    ons = [Onset(sample=round(t * SR), detect_sample=0, strength=1.0) for t in (1.0, 1.5, 2.0)]
    notes = [Note(1.004, "kick", 100), Note(0.998, "hh_closed", 80), Note(1.52, "snare", 90),
             Note(1.53, "crash", 90), Note(3.0, "tom_hi", 100)]       # 30 ms late: no onset
    assert label_onsets(ons, notes, SR) == [(ons[0].sample, "hihat+kick"),
                                            (ons[1].sample, "snare"),   # the crash is 30 ms off
                                            (ons[2].sample, "")]


def _kit(name, pieces, rng):
    inst = {}
    for role, label in pieces.items():
        path = f"/nonexistent/{name}/{role}.flac"
        inst[role] = Instrument(role, label, [(127, path)])
    return Kit(name, inst, {r: r for r in pieces})


def test_a_kit_borrows_the_pieces_it_lacks_with_their_family():
    rng = np.random.default_rng(0)
    small = _kit("small", {"kick": "kick", "snare": "snare"}, rng)
    donor = _kit("donor", {"hh_closed": "hihat", "hh_open": "hihat", "crash": "cymbals"}, rng)
    full = complete_kit(small, [donor], rng)
    assert full.roles["kick"] == "kick"                                # its own pieces stay
    assert full.roles["hh_closed"] == "donor/hh_closed"
    assert full.roles["hh_open"] == "donor/hh_open"                    # one hihat, not two
    assert "tom_hi" not in full.roles                                  # nobody has toms


def test_an_open_hihat_is_choked_by_the_next_closed_one():
    ring = np.ones((SR, 2), np.float32) * 0.5                          # 1 s of a ringing piece
    kit = Kit("k", {}, {"hh_open": "o", "hh_closed": "c"})
    kit.sample = lambda role, vel: ring if role == "hh_open" else np.zeros((10, 2), np.float32)
    y, kept = mix([Note(0.0, "hh_open", 127), Note(0.25, "hh_closed", 127)], kit, tail_s=1.0)
    assert len(kept) == 2
    assert np.abs(y[int(0.2 * SR)]).max() == pytest.approx(0.5)        # rings until the pedal
    assert np.abs(y[int(0.27 * SR):]).max() == 0.0                     # then stops (10 ms fade)


def test_random_grooves_cover_every_piece_and_stay_in_time():
    rng = np.random.default_rng(1)
    roles, starts = set(), []
    for _ in range(30):
        notes = random_program(float(rng.uniform(50, 240)), 20.0, rng)
        roles |= {n.role for n in notes}
        starts.append(notes[0].time_s)
        assert all(0 <= n.time_s < 40 and 1 <= n.velocity <= 127 for n in notes)
    assert {"kick", "snare", "hh_closed", "hh_open", "ride", "crash", "tom_hi", "tom_low"} <= roles
    assert min(starts) == 0.0                                          # some start on a hit


@pytest.fixture(scope="module")
def groove_corpus(tmp_path_factory):
    """Two train kits and a val kit of synthetic one-shots, rendered into grooves."""
    root = tmp_path_factory.mktemp("gcorpus")
    rng = np.random.default_rng(0)
    rows = []
    for kit, split in ((0, "train"), (1, "train"), (2, "val"), (3, "test")):
        for label in LABELS:
            for vel in (0.5, 1.0):
                rel = f"audio/kit{kit}/{label}_v{int(vel * 127):03d}.flac"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                sf.write(root / rel, synth(label, rng, kit, vel), SR, subtype="PCM_16")
                rows.append({"path": rel, "label": label, "source": "synth", "kit": f"kit{kit}",
                             "group": f"kit{kit}", "velocity": int(vel * 127), "split": split})
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = root / "grooves"
    args = ["grooves", "--out", str(out), "--manifest", str(root / "manifest.csv"),
            "--streams", "3", "--val-streams", "2", "--seconds", "4"]
    assert main(args) == 0
    return root, out, args


def test_grooves_are_rendered_labelled_and_resumable(groove_corpus):
    root, out, args = groove_corpus
    with (out / "streams.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["split"] for r in rows] == ["train"] * 3 + ["val"] * 2
    assert {r["kit"] for r in rows if r["split"] == "val"} == {"kit2"}  # never a train kit
    labelled = 0
    for r in rows:
        audio = out / r["audio"]
        truth = list(csv.DictReader(audio.with_name(audio.stem + ".truth.csv").open()))
        onsets = list(csv.DictReader(audio.with_name(audio.stem + ".onsets.csv").open()))
        assert len(truth) == int(r["notes"]) > 0 and len(onsets) == int(r["onsets"])
        for o in onsets:
            for lab in filter(None, o["labels"].split("+")):
                assert lab in LABELS
                # a labelled onset has a truth note of that class within 25 ms
                t = int(o["sample"]) / SR
                assert any(x["label"] == lab and abs(float(x["time_s"]) - t) <= 0.025
                           for x in truth)
                labelled += 1
    assert labelled > 20
    first = out / rows[0]["audio"]
    stamp = os.stat(first).st_mtime_ns
    assert main(args) == 0                                             # again: nothing redone
    assert os.stat(first).st_mtime_ns == stamp



def test_relabel_detects_again_on_the_stored_audio_and_renders_nothing(groove_corpus, tmp_path):
    import shutil
    _, out, _ = groove_corpus
    copy = tmp_path / "grooves"
    shutil.copytree(out, copy)
    rows = list(csv.DictReader((copy / "streams.csv").open()))
    audio = copy / rows[1]["audio"]
    ons = audio.with_name(audio.stem + ".onsets.csv")
    before = ons.read_text()
    ons.write_text("sample,labels\n")                  # as if another detector found nothing
    stamp = os.stat(audio).st_mtime_ns
    assert main(["grooves", "--out", str(copy), "--relabel"]) == 0
    assert ons.read_text() == before                    # today's detector, the same onsets
    assert os.stat(audio).st_mtime_ns == stamp          # the audio is not rendered again
    assert list(csv.DictReader((copy / "streams.csv").open())) == rows
    assert main(["grooves", "--out", str(tmp_path / "none"), "--relabel"]) != 0  # nothing to relabel

def test_training_on_grooves_makes_a_model_that_rejects_non_drums(groove_corpus, tmp_path):
    from drumclassifier.checkpoint import read_checkpoint
    root, out, _ = groove_corpus
    rc = main(["train", f"train.manifest={root / 'manifest.csv'}", f"train.runs_dir={tmp_path}",
               "train.name=g", "train.epochs=1", "train.steps_per_epoch=3", *TINY,
               f"train.grooves={out / 'streams.csv'}"])
    assert rc == 0
    ckpt = read_checkpoint(tmp_path / "g" / "best.pt")
    assert ckpt["config"]["rejects_non_drums"] is True
    assert len(ckpt["meta"]["val"]["groove_f1"]) == len(LABELS)
    # fine-tuning from it starts from its weights
    rc = main(["train", f"train.manifest={root / 'manifest.csv'}", f"train.runs_dir={tmp_path}",
               "train.name=g2", "train.epochs=1", "train.steps_per_epoch=1", *TINY,
               f"train.init_from={tmp_path / 'g' / 'best.pt'}", "train.lr=0"])
    assert rc == 0
    # the checkpoints' own networks (a DrumClassifier folds the batch norms' running
    # statistics, which one training step moves even at lr 0, into its conv weights)
    a = read_checkpoint(tmp_path / "g" / "best.pt")["state_dict"]
    b = read_checkpoint(tmp_path / "g2" / "best.pt")["state_dict"]
    assert all(np.allclose(a[k].numpy(), b[k].numpy()) for k in a if "num_batches" not in k
               and "running" not in k)


# ---- lead-in: the audio from before the onset --------------------------------------------

def test_training_with_a_lead_in_stores_it_and_the_model_reads_what_rang_before(
        groove_corpus, tmp_path):
    from drumclassifier import DrumClassifier
    root, out, _ = groove_corpus
    rc = main(["train", f"train.manifest={root / 'manifest.csv'}", f"train.runs_dir={tmp_path}",
               "train.name=led", "train.epochs=1", "train.steps_per_epoch=2", *TINY,
               f"train.grooves={out / 'streams.csv'}", "model.lead_in_frames=4"])
    assert rc == 0
    clf = DrumClassifier(tmp_path / "led" / "best.pt", device="cpu")
    p = clf.cfg.lead_in_samples
    assert clf.cfg.lead_in_frames == 4 and p == 4 * clf.cfg.features.hop_length
    hit = torch.from_numpy(synth("snare", np.random.default_rng(1), 0, 1.0)[:882].T.copy())
    tail = torch.from_numpy(synth("cymbals", np.random.default_rng(2), 0, 1.0)[-p:].T.copy())
    silent = clf.predict([hit])
    # no lead-in given = silence before the onset, the same through both batch paths
    assert torch.allclose(silent, clf.predict([hit], before=[torch.zeros(2, p)]))
    assert torch.allclose(silent, clf.predict(hit[None], torch.tensor([hit.shape[-1]])))
    # a cymbal ringing before the onset is read: the answer changes
    assert not torch.allclose(silent, clf.predict([hit], before=[tail]), atol=1e-6)


def test_a_lead_in_is_the_last_samples_before_the_onset_zero_padded_at_the_start():
    from drumclassifier.audio import lead_in
    before = np.arange(1, 301, dtype=np.float32)[:, None] / 300          # [300, 1] mono
    x = lead_in(before, SR, SR, 100)
    assert x.shape == (2, 100) and torch.allclose(x[0], torch.from_numpy(before[-100:, 0]))
    assert torch.equal(x[0], x[1])                                          # mono to both sides
    y = lead_in(before[-40:], SR, SR, 100)                                   # stream start
    assert torch.count_nonzero(y[:, :60]) == 0 and torch.allclose(y[0, 60:], x[0, 60:])
    assert torch.count_nonzero(lead_in(None, SR, SR, 100)) == 0
    assert lead_in(np.ones((600, 2), np.float32), 48000, SR, 100).shape == (2, 100)


def test_a_groove_onset_is_read_with_its_lead_in_and_truncation_keeps_it(groove_corpus):
    from drumclassifier.augment import RandomTruncate
    from drumclassifier.dataset import GrooveBank
    _, out, _ = groove_corpus
    g = GrooveBank(out / "streams.csv", "train", LABELS, SR, progress=False)
    i = int(np.argmax(g.sample))                      # well into its stream
    w, led = g.get(i, 441), g.get(i, 441, 256)
    assert led.shape == (2, 256 + w.shape[-1]) and torch.equal(led[:, 256:], w)
    s = int(g.stream[i])
    a = int(g.offsets[s]) + int(g.sample[i])
    assert torch.equal(led[:, :256], g.data[:, a - 256:a].float())
    first = int(np.flatnonzero(g.stream == g.stream[0])[0])
    early = g.get(first, 441, int(g.sample[first]) + 100)   # starts before the stream did
    assert torch.count_nonzero(early[:, :100]) == 0
    x = torch.ones(8, 2, 1000)
    _, lengths = RandomTruncate(1.0, SR, min_ms=1.0, lead_in=300)(x, torch.full((8,), 1000))
    assert bool((lengths >= 300 + 44).all()) and bool((lengths <= 1000).all())


def test_the_groove_bank_holds_each_stream_as_decoded_end_to_end(groove_corpus):
    """The bank is one buffer filled stream by stream: each stream's slice is exactly its
    decoded audio (float16), back to back, nothing left over."""
    from drumclassifier import audio
    from drumclassifier.dataset import GrooveBank
    _, out, _ = groove_corpus
    g = GrooveBank(out / "streams.csv", "train", LABELS, SR, progress=False)
    rows = [r for r in csv.DictReader((out / "streams.csv").open()) if r["split"] == "train"]
    assert len(g.lengths) == len(rows) >= 2
    for s, r in enumerate(rows):
        path = out / r["audio"]
        w = audio.load(path, SR, audio.duration_s(path) + 1.0).to(torch.float16)
        assert torch.equal(g.data[:, int(g.offsets[s]):int(g.offsets[s + 1])], w)
    assert g.data.shape[-1] == int(g.offsets[-1])


# ---- groove libraries: mma and Hydrogen songs ------------------------------------------

H2SONG = """<?xml version="1.0" encoding="UTF-8"?>
<song><bpm>100</bpm>
 <instrumentList>
  <instrument><id>0</id><name>Kick</name></instrument>
  <instrument><id>1</id><name>Snare Rimshot</name></instrument>
  <instrument><id>2</id><name>Hat Closed</name></instrument>
  <instrument><id>3</id><name>Hand Clap</name></instrument>
 </instrumentList>
 <patternList>
  <pattern><name>a</name><size>192</size><noteList>
   <note><position>0</position><velocity>0.8</velocity><instrument>0</instrument></note>
   <note><position>96</position><velocity>1</velocity><instrument>1</instrument></note>
   <note><position>48</position><velocity>0.5</velocity><instrument>3</instrument></note>
  </noteList></pattern>
  <pattern><name>b</name><size>96</size><noteList>
   <note><position>0</position><velocity>0.6</velocity><instrument>2</instrument></note>
   <note><position>24</position><velocity>0.6</velocity><instrument>2</instrument></note>
  </noteList></pattern>
 </patternList>
 <patternSequence>
  <group><patternID>a</patternID><patternID>b</patternID></group>
  <group><patternID>b</patternID></group>
 </patternSequence>
</song>
"""


def test_a_hydrogen_song_is_read_in_its_pattern_sequence_with_roles_from_names(tmp_path):
    from drumclassifier.grooves.library import hydrogen_song
    (tmp_path / "s.h2song").write_text(H2SONG)
    g = hydrogen_song(tmp_path / "s.h2song")
    # group 1: a + b together (4 beats, the longer), group 2: b (2 beats) from beat 4;
    # "Snare Rimshot" is a snare, the clap is not one of the five classes
    assert g.beats == 6.0 and g.bpm == 100.0
    assert g.notes == [(0.0, "hh_closed", 76), (0.0, "kick", 102), (0.5, "hh_closed", 76),
                       (2.0, "snare", 127), (4.0, "hh_closed", 76), (4.5, "hh_closed", 76)]


def test_a_library_groove_loops_to_the_stream_length_with_hits_struck_together():
    from drumclassifier.grooves.library import Groove, play
    g = Groove("x", "test", 4.0, [(0.0, "kick", 100), (0.0, "hh_closed", 80), (2.0, "snare", 90)])
    notes = play(g, 120.0, 10.0, np.random.default_rng(0))   # 0.5 s a beat, from 0.25 s
    kicks = [n.time_s for n in notes if n.role == "kick"]
    assert len(kicks) == 5 and all(abs(b - a - 2.0) < 0.012 for a, b in zip(kicks, kicks[1:]))
    hats = [n.time_s for n in notes if n.role == "hh_closed"]
    assert all(abs(k - h) <= 0.002 for k, h in zip(kicks, hats))    # together within 2 ms
    assert all(0 <= n.time_s <= 10.0 and 1 <= n.velocity <= 127 for n in notes)


@pytest.mark.skipif(not shutil.which("mma"), reason="mma is not installed (setup.sh installs it)")
def test_mma_plays_a_groove_of_its_library_and_its_midi_drums_are_read(tmp_path):
    from drumclassifier.grooves.library import find_mma, mma_groove, mma_groove_names, mma_lib_dir
    names = mma_groove_names(mma_lib_dir())
    assert len(names) > 1000 and "50sRock" in names
    g = mma_groove(find_mma(), "50sRock", 4, tmp_path)
    roles = {r for _, r, _ in g.notes}
    assert g.beats == 16.0 and {"kick", "snare", "hh_closed"} <= roles
    assert all(0 <= b < 16.0 for b, _, _ in g.notes)
    assert mma_groove(find_mma(), "NoSuchGroove", 4, tmp_path) is None


def test_grooves_play_hydrogen_songs_when_asked(groove_corpus, tmp_path):
    root, _, _ = groove_corpus
    (tmp_path / "songs").mkdir()
    (tmp_path / "songs" / "s.h2song").write_text(H2SONG)
    out = tmp_path / "g"
    assert main(["grooves", "--out", str(out), "--manifest", str(root / "manifest.csv"),
                 "--streams", "9", "--val-streams", "0", "--seconds", "3",
                 "--h2songs", str(tmp_path / "songs")]) == 0
    rows = list(csv.DictReader((out / "streams.csv").open()))
    assert (out / "library.json").is_file()
    assert any(r["groove"] == "hydrogen:s" for r in rows)


def _a_melodic_font():
    from pathlib import Path
    for p in sorted(Path("data/corpus/pkgs").rglob("TimGM6mb.sf2")) + \
            [Path("/usr/share/sounds/sf2/TimGM6mb.sf2"), Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")]:
        if p.is_file():
            return p
    return None


def test_training_music_is_planned_bass_chords_lead_and_played_as_tones():
    from drumclassifier.grooves.render import SR, music_bed_train, music_plan
    rng = np.random.default_rng(3)
    plan = music_plan(8.0, 120.0, rng)
    assert plan and {p for p, *_ in plan} <= {"bass", "chords", "lead"}
    assert all(0 <= t < 8.0 and d > 0 and 20 <= k <= 100 for _, t, d, k in plan)
    y = music_bed_train(SR * 4, 120.0, np.random.default_rng(4))
    assert y.shape == (SR * 4, 2) and np.isfinite(y).all() and np.abs(y).max() > 0.5


@pytest.mark.skipif(_a_melodic_font() is None,
                    reason="no General MIDI SoundFont here (the corpus build unpacks them)")
def test_training_music_plays_a_soundfonts_melodic_programs_and_drum_only_fonts_are_left_out(
        tmp_path):
    from drumclassifier.grooves.render import SR, melodic_fonts, music_bed_train
    font = _a_melodic_font()
    (tmp_path / "not.sf2").write_bytes(b"RIFF0000junk")
    assert melodic_fonts([tmp_path / "not.sf2", font]) == [font]
    rng = np.random.default_rng(0)
    beds = [music_bed_train(SR * 3, 100.0, rng, [font]) for _ in range(4)]
    assert all(b.shape == (SR * 3, 2) and np.isfinite(b).all() for b in beds)
    assert sum(float(np.abs(b).max()) > 0.5 for b in beds) >= 3
