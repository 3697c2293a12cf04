"""Corpus building on tiny synthetic sources: no network, no apt, a few seconds."""
from __future__ import annotations

import csv
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from drumclassifier.data import build as B
from drumclassifier.data.config import CorpusConfig, default_config_path
from drumclassifier.data.dedupe import find_duplicates
from drumclassifier.data.labels import label_from_drumsynth, label_from_gm_key, label_from_name
from drumclassifier.data.manifest import COLUMNS, read_manifest
from drumclassifier.data.render import trim
from drumclassifier.data.sf2 import cover_layers, velocity_layers
from drumclassifier.data.sources import SynthRender, drumsynth_items, font_items, hydrogen_items
from drumclassifier.data.splits import assign_splits, check_no_leak
from drumclassifier.data.stats import corpus_stats, format_stats

SR = 44100


def _kick(sr=SR, f0=60.0, seed=0):
    t = np.arange(int(0.5 * sr)) / sr
    f = f0 + 120 * np.exp(-t * 30)
    return (0.8 * np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t * 8)).astype(np.float32)


def _noise(sr=SR, decay=30.0, seed=1, hp=True):
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.4 * sr)) / sr
    x = rng.standard_normal(len(t))
    if hp:
        x = np.diff(x, prepend=0.0)
    return (0.3 * x * np.exp(-t * decay)).astype(np.float32)


def _tone(f, sr=SR, decay=6.0):
    t = np.arange(int(0.6 * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * f * t) * np.exp(-t * decay)).astype(np.float32)


# ------------------------------------------------------------------ labels
@pytest.mark.parametrize("name,label", [
    ("Kick (Tama Superstar 22\")", "kick"), ("BassDrum", "kick"), ("bd_808", "kick"),
    ("drum_bass_hard", "kick"), ("Snare Jazz", "snare"), ("sn_dub", "snare"),
    ("Hi-Hat Closed (Paiste 14\")", "hihat"), ("Closed HH 2", "hihat"), ("Side OHH", "hihat"),
    ("drum_cymbal_closed", "hihat"), ("drum_cymbal_pedal", "hihat"), ("VariBreaks Hat 1 Op", "hihat"),
    ("Tom Low", "toms"), ("tomhi2", "toms"), ("Pearl Tom Floor", "toms"),
    ("Crash/Ride Bell (Paiste)", "cymbals"), ("Ride (Custom, Zagrebin 22\")", "cymbals"),
    ("China", "cymbals"), ("drum_splash_soft", "cymbals"), ("ride-cup", "cymbals"),
    # ambiguous or not one of the five: left out
    ("Pearl Side Stick", None), ("Snare Rimshot", None), ("Rim Click", None), ("Hand Clap", None),
    ("Snare Roll", None), ("Cowbell", None), ("Tambourine Pedal", None), ("Conga 1", None),
    ("snare_rim01", None), ("elec_bell", None), ("loop_amen", None), ("Drum 1", None), ("17", None),
])
def test_label_rules(name, label):
    assert label_from_name(name) == label


def test_label_overrides_and_gm_keys():
    assert label_from_name("f3 - bass drum 2") == "kick"
    assert label_from_name("f3 - bass drum 2", {"f3 bass drum 2": None}) is None
    assert [label_from_gm_key(k) for k in (36, 37, 38, 42, 45, 49, 53, 39)] == [
        "kick", None, "snare", "hihat", "toms", "cymbals", "cymbals", None]


@pytest.mark.parametrize("folder,stem,label", [
    ("tr808", "Kick", "kick"), ("acoustic", "JazzKick", "kick"), ("linn", "linn_kik", "kick"),
    ("r_n_b", "k_muffle", "kick"), ("misc", "bouncy809bd", "kick"), ("misc", "gabbakick", "kick"),
    ("acoustic", "JazzSnr", "snare"), ("electro", "S_Linn", "snare"), ("r_n_b", "popsnare", "snare"),
    ("misc", "amen_sn_1", "snare"), ("tr909", "Hat-o2", "hihat"), ("electro", "H_closed", "hihat"),
    ("misc_hats", "live_sound_oh", "hihat"), ("misc_hats", "stack_hhh", "hihat"),
    ("jorgensohn", "hihatopclo", "hihat"), ("tr606", "TR606_Tom_L", "toms"),
    ("electro", "Syntom_1", "toms"), ("jorgensohn", "ramacymlong", "cymbals"),
    ("misc_hats", "amen_ride", "cymbals"), ("tr77", "Tr77_cym", "cymbals"),
    # claps, rims, cowbells, perc, mixed names and whole folders of effects/instruments: out
    ("tr808", "Handclap", None), ("tr808", "Rimshot", None), ("tr808", "Cowbell", None),
    ("r_n_b", "snare&hat", None), ("farfisa", "Fisa_K_H", None), ("acoustic", "Brush1", None),
    ("misc_hats", "shaker_ride", None), ("misc_perc", "deep_cowbell", None),
    ("misc_electro", "what_to_do_at_220", None), ("misc_synth", "it's_the_music_tom_c", None),
    ("effects", "Gunshot", None), ("misc_claps", "clap2", None), ("misc", "neo808", None),
])
def test_drumsynth_labels(folder, stem, label):
    assert label_from_drumsynth(folder, stem) == label


def test_drumsynth_overrides_and_items(tmp_path):
    cfg = B.load_config(default_config_path())
    ov = cfg["drumsynth"]["overrides"]
    assert label_from_drumsynth("misc", "sticky_q_kick") is None     # "stick" rule
    assert label_from_drumsynth("misc", "sticky_q_kick", ov) == "kick"
    assert label_from_drumsynth("misc", "tomita_clip") == "toms"
    assert label_from_drumsynth("misc", "tomita_clip", ov) is None
    for rel in ("tr808/Kick", "tr808/Clave", "effects/Laser", "misc_hats/hh"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{rel}.ds").write_text("[General]\n")
    items = drumsynth_items(tmp_path, "/x/lmms", ov)
    assert [(i.kit, i.name, i.label) for i in items] == [("misc_hats", "hh", "hihat"),
                                                         ("tr808", "Kick", "kick")]
    assert items[1].rel_path == "audio/drumsynth/tr808/Kick.flac"
    assert items[1].render == SynthRender(str(tmp_path / "tr808/Kick.ds"), "/x/lmms")


def test_hydrogen_old_format_kit(tmp_path):
    # HardElectro1, Millo-Drums_v.1, rumpf: <filename> in the instrument, no <layer>
    sf.write(tmp_path / "bd.wav", _kick(), SR)
    sf.write(tmp_path / "cl.wav", _noise(), SR)
    (tmp_path / "drumkit.xml").write_text(
        "<drumkit_info><name>Old</name><instrumentList>"
        "<instrument><id>0</id><filename>bd.wav</filename><name>Kick 1</name></instrument>"
        "<instrument><id>1</id><filename>cl.wav</filename><name>Clap 1</name></instrument>"
        "</instrumentList></drumkit_info>")
    items = hydrogen_items(tmp_path)
    assert [(i.name, i.label, i.velocity) for i in items] == [("Kick 1__bd", "kick", None)]


# ------------------------------------------------------------------ trimming / dedupe
def test_trim_puts_onset_at_zero():
    x = np.zeros((1000, 2), np.float32)
    x[300:] = np.stack([_tone(400)[:700]] * 2, 1)
    y, lead = trim(x)
    assert 290 <= lead <= 310 and abs(y[0]).max() > 0


def test_duplicates_gain_and_offset_dropped_different_kept():
    a = _kick()
    copy = np.concatenate([np.zeros(7, np.float32), 0.4 * a])[: len(a)]
    other = _tone(120, decay=3)[: len(a)]  # a different low sound
    dropped = find_duplicates([a, copy, other], order=[0, 1, 2])
    assert set(dropped) == {1} and dropped[1][0] == 0 and dropped[1][1] > 0.99


def test_two_takes_of_one_kit_kept_copies_dropped():
    a = _kick()
    rng = np.random.default_rng(0)
    take = a + 0.012 * rng.standard_normal(len(a)).astype(np.float32)  # corr ~0.995
    copy = 0.3 * a                                                      # corr 1
    kw = {"order": [0, 1, 2], "same_kit_threshold": 0.999}
    assert set(find_duplicates([a, take, copy], same_kit=["k", "k", "k"], **kw)) == {2}
    # across kits (or for renders: None) the 0.99 threshold applies
    assert set(find_duplicates([a, take, copy], same_kit=["k", "j", "k"], **kw)) == {1, 2}
    assert set(find_duplicates([a, take, copy], same_kit=None, **kw)) == {1, 2}


def test_drop_duplicates_keeps_baseline_hits_first():
    cfg = B.load_config(None)
    a = _kick()
    rows = [{"path": p, "label": "kick", "source": s, "kit": "k", "velocity": None, "origin": "x#1"}
            for p, s in [("audio/hydrogen/k/a.flac", "hydrogen"), ("audio/fluid/k/b.flac", "fluid")]]
    kept, dropped = B.drop_duplicates(rows, [a, 0.5 * a], cfg)
    assert [r["source"] for r in kept] == ["hydrogen"]
    kept, dropped = B.drop_duplicates(rows, [a, 0.5 * a], cfg, keep_first={"audio/fluid/k/b.flac"})
    assert [r["source"] for r in kept] == ["fluid"] and dropped[0]["source"] == "hydrogen"


def test_baseline_diff_lists_held_out_changes():
    base = [{"path": "a", "split": "test", "label": "kick", "kit": "k"},
            {"path": "b", "split": "val", "label": "snare", "kit": "k"},
            {"path": "c", "split": "train", "label": "toms", "kit": "k"}]
    now = [base[0], {**base[1], "split": "train"}, base[2],
           {"path": "d", "split": "test", "label": "hihat", "kit": "k2"},
           {"path": "e", "split": "train", "label": "hihat", "kit": "k3"}]
    diff = B.baseline_diff(now, base)
    assert [(d["change"], d["split"], d["path"]) for d in diff] == [
        ("moved", "val->train", "b"), ("added", "test", "d")]
    assert B.baseline_diff(now[:1] + now[2:], base)[0]["change"] == "missing"


# ------------------------------------------------------------------ splits
def test_assign_splits_never_leaks_a_group():
    cfg = {"groups": {"fam": ["fluid/.*", "tim/.*"], "held": ["hydrogen/Millo.*"]},
           "splits": {"test": ["held"], "val": ["hydrogen/Forzee"]}, "user_split": "train"}
    rows = [{"source": s, "kit": k, "group": ""} for s, k in [
        ("fluid", "Standard"), ("tim", "Room"), ("hydrogen", "Millo_v1"), ("hydrogen", "Millo_ML2"),
        ("hydrogen", "Forzee"), ("hydrogen", "Other"), ("user", "mine")] * 3]
    assign_splits(rows, cfg)
    check_no_leak(rows)
    by = {(r["source"], r["kit"]): (r["group"], r["split"]) for r in rows}
    assert by[("fluid", "Standard")] == ("fam", "train") == by[("tim", "Room")]
    assert by[("hydrogen", "Millo_ML2")] == ("held", "test")
    assert by[("hydrogen", "Forzee")][1] == "val" and by[("user", "mine")][1] == "train"
    with pytest.raises(ValueError):
        assign_splits(rows, {**cfg, "splits": {"test": ["fam"], "val": ["fam"]}})
    rows[0]["split"] = "val"
    with pytest.raises(AssertionError):
        check_no_leak(rows)


def test_default_split_groups_are_disjoint_and_config_is_typed(tmp_path):
    from dataclasses import asdict

    from drumclassifier.errors import ConfigError

    cfg = B.load_config(default_config_path())
    assert cfg == asdict(CorpusConfig())   # the shipped YAML only shows how to override
    typo = tmp_path / "typo.yaml"
    typo.write_text("dedupe:\n  treshold: 0.9\n")
    with pytest.raises(ConfigError, match="treshold"):
        B.load_config(typo)
    more = tmp_path / "more.yaml"
    more.write_text("groups:\n  mine: ['user/x']\n")
    assert B.load_config(more)["groups"] == {**cfg["groups"], "mine": ["user/x"]}
    assert not set(cfg["splits"]["test"]) & set(cfg["splits"]["val"])
    assert {"millo", "electric_empire"} <= set(cfg["splits"]["test"])


# ------------------------------------------------------------------ end to end
DRUMKIT = """<?xml version="1.0" encoding="UTF-8"?>
<drumkit_info xmlns="http://www.hydrogen-music.org/drumkit">
 <name>TestKit</name>
 <instrumentList>
{instruments}
 </instrumentList>
</drumkit_info>"""


def _instrument(name, layers):
    ls = "".join(f"<layer><filename>{f}</filename><min>{lo}</min><max>{hi}</max></layer>"
                 for f, lo, hi in layers)
    return f"<instrument><id>0</id><name>{name}</name>{ls}</instrument>"


@pytest.fixture()
def fake_sources(tmp_path):
    kit = tmp_path / "pkgs" / "hydrogen-drumkits" / "usr/share/hydrogen/data/drumkits/TestKit"
    kit.mkdir(parents=True)
    sounds = {
        "kick_soft.wav": 0.3 * _kick(48000), "kick_hard.wav": _kick(48000, f0=55),
        "snare.wav": 0.5 * _tone(200, 48000) + np.pad(_noise(48000, 20, seed=3, hp=False),
                                                     (0, int(0.2 * 48000))),
        "stick.wav": _noise(48000, 80, seed=4), "clap.wav": _noise(48000, 40, seed=5),
        "hh.wav": _noise(48000, 40, seed=6), "tom.wav": _tone(110, 48000, 4),
        "crash.wav": _noise(48000, 2, seed=7),
    }
    for f, x in sounds.items():
        # 48 kHz mono with 100 samples of leading silence: must be resampled and trimmed
        sf.write(kit / f, np.concatenate([np.zeros(100, np.float32), x]), 48000)
    insts = [_instrument("Kick", [("kick_soft.wav", 0, 0.5), ("kick_hard.wav", 0.5, 1)]),
             _instrument("Snare", [("snare.wav", 0, 1)]),
             _instrument("Side Stick", [("stick.wav", 0, 1)]),
             _instrument("Hand Clap", [("clap.wav", 0, 1)]),
             _instrument("Hi-Hat Closed", [("hh.wav", 0, 1)]),
             _instrument("Tom Low", [("tom.wav", 0, 1)]),
             _instrument("Crash", [("crash.wav", 0, 1)])]
    (kit / "drumkit.xml").write_text(DRUMKIT.format(instruments="\n".join(insts)))
    user = tmp_path / "mine"
    (user / "kick").mkdir(parents=True)
    (user / "snare").mkdir()
    (user / "notaclass").mkdir()
    k = _kick(48000, f0=55)
    # the same sound as kick_hard.wav: other gain, 5 samples later, stereo 44.1 kHz
    dup = 0.5 * np.concatenate([np.zeros(5, np.float32), k])
    sf.write(user / "kick" / "my_kick.wav", np.stack([dup, dup], 1), 48000)
    sf.write(user / "snare" / "my_snare.flac", _tone(330), SR)
    sf.write(user / "notaclass" / "x.wav", _tone(500), SR)
    lib = tmp_path / "lib"
    lib.mkdir()
    sf.write(lib / "ride.wav", _noise(SR, 1.5, seed=9), SR)
    (tmp_path / "lib.csv").write_text("path,label,kit\nlib/ride.wav,cymbals,myride\n")
    return tmp_path


def test_build_end_to_end(fake_sources, tmp_path):
    out = tmp_path / "corpus"
    cfg = B.load_config(None)
    cfg["splits"] = {"test": ["hydrogen/TestKit"], "val": []}
    rows = B.build(out, ["hydrogen"], cfg, pkgs_dir=fake_sources / "pkgs",
                   from_dirs=[fake_sources / "mine"], csv_files=[fake_sources / "lib.csv"])
    with open(out / "manifest.csv") as f:
        header = next(csv.reader(f))
    assert header[:8] == ["path", "label", "source", "kit", "group", "velocity", "n_samples", "split"]
    assert header == COLUMNS
    man = read_manifest(out / "manifest.csv")
    assert len(man) == len(rows)
    names = {Path(r["path"]).stem: r for r in man}
    labels = sorted(r["label"] for r in man if r["source"] == "hydrogen")
    # stick and clap left out; both kick layers kept (different sounds)
    assert labels == ["cymbals", "hihat", "kick", "kick", "snare", "toms"]
    assert not any("Stick" in n or "Clap" in n for n in names)
    # the user's copy of kick_hard is dropped, their snare and CSV ride kept
    assert not any(r["source"] == "user" and r["label"] == "kick" for r in man)
    assert {(r["label"], r["kit"]) for r in man if r["source"] == "user"} == {
        ("snare", "mine"), ("cymbals", "myride")}
    dups = read_manifest(out / "duplicates.csv")
    assert len(dups) == 1 and dups[0]["source"] == "user" and "kick_hard" in dups[0]["duplicate_of"]
    for r in man:
        x, sr = sf.read(out / r["path"], always_2d=True)
        assert sr == SR and x.shape[1] == 2 and len(x) == int(r["n_samples"]) <= 4 * SR
        assert np.abs(x[:8]).max() > 1e-3 * np.abs(x).max()  # onset at sample 0
        assert r["split"] == ("test" if r["source"] == "hydrogen" else "train")
    vel = {r["origin"].rsplit("/", 1)[-1]: r["velocity"] for r in man}
    assert vel["kick_soft.wav"] == "32" and vel["kick_hard.wav"] == "95" and vel["snare.wav"] == ""
    check_no_leak(man)
    # resumable: a second run writes nothing new and gives the same manifest
    mtime = (out / names["Kick__kick_hard"]["path"]).stat().st_mtime
    B.build(out, ["hydrogen"], cfg, pkgs_dir=fake_sources / "pkgs",
            from_dirs=[fake_sources / "mine"], csv_files=[fake_sources / "lib.csv"])
    assert read_manifest(out / "manifest.csv") == man
    assert (out / names["Kick__kick_hard"]["path"]).stat().st_mtime == mtime
    # user files are never touched
    assert (fake_sources / "mine" / "kick" / "my_kick.wav").exists()


# ------------------------------------------------------------------ soundfont rendering
def _tiny_sf2(path: Path, layers: bool = False) -> None:
    """A one-sample, one-preset (bank 128, preset 0) SoundFont 2 file; with `layers`,
    velocities 1-63 and 64-127 play two different sample records of keys 35-40."""
    t = np.arange(4000) / 22050
    smp = (0.6 * np.sin(2 * np.pi * 220 * t) * np.exp(-t * 10) * 32767).astype("<i2")
    smpl = smp.tobytes() + b"\0" * 92  # 46 zero samples after the sample data

    def ck(cid, data):
        return cid + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")

    def lst(kind, body):
        return ck(b"LIST", kind + body)

    info = lst(b"INFO", ck(b"ifil", struct.pack("<HH", 2, 1)) + ck(b"isng", b"EMU8000\0")
               + ck(b"INAM", b"tiny\0\0"))
    sdta = lst(b"sdta", ck(b"smpl", smpl))
    name = lambda s: s.encode().ljust(20, b"\0")
    phdr = (name("Kit") + struct.pack("<HHHIII", 0, 128, 0, 0, 0, 0)
            + name("EOP") + struct.pack("<HHHIII", 0, 0, 1, 0, 0, 0))
    pbag = struct.pack("<HHHH", 0, 0, 1, 0)
    pmod = b"\0" * 10
    pgen = struct.pack("<HH", 41, 0) + struct.pack("<HH", 0, 0)
    inst = name("Inst") + struct.pack("<H", 0) + name("EOI") + struct.pack("<H", 1)
    ibag = struct.pack("<HHHH", 0, 0, 1, 0)
    imod = b"\0" * 10
    igen = struct.pack("<HH", 53, 0) + struct.pack("<HH", 0, 0)
    sample = name("s") + struct.pack("<IIIIIBbHH", 0, len(smp), 8, len(smp) - 8, 22050, 60, 0, 0, 1)
    shdr = sample + name("EOS") + struct.pack("<IIIIIBbHH", 0, 0, 0, 0, 0, 0, 0, 0, 0)
    if layers:  # zones: global (keys 35-40), vel 1-63 -> sample 0, vel 64-127 -> sample 1
        inst = name("Inst") + struct.pack("<H", 0) + name("EOI") + struct.pack("<H", 3)
        ibag = struct.pack("<HH", 0, 0) + struct.pack("<HH", 1, 0) + struct.pack("<HH", 3, 0) \
            + struct.pack("<HH", 5, 0)
        gen = lambda op, a, b=None: struct.pack("<HBB", op, a, b) if b is not None else struct.pack("<HH", op, a)
        igen = (gen(43, 35, 40) + gen(44, 1, 63) + gen(53, 0) + gen(44, 64, 127) + gen(53, 1)
                + gen(0, 0))
        shdr = sample + sample + shdr[len(sample):]
    pdta = lst(b"pdta", ck(b"phdr", phdr) + ck(b"pbag", pbag) + ck(b"pmod", pmod)
               + ck(b"pgen", pgen) + ck(b"inst", inst) + ck(b"ibag", ibag) + ck(b"imod", imod)
               + ck(b"igen", igen) + ck(b"shdr", shdr))
    body = b"sfbk" + info + sdta + pdta
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_render_tiny_soundfont(tmp_path):
    # no skip: setup.sh installs tinysoundfont, and a missing install must fail here
    from drumclassifier.data.render import FontRenderer

    font = tmp_path / "tiny.sf2"
    _tiny_sf2(font)
    r = FontRenderer(font, hold_s=0.1, max_seconds=1.0)
    assert r.drum_presets() == [(0, "Kit")]
    soft, loud = r.render(60, 40, 0), r.render(60, 127, 0)
    assert soft.shape[1] == 2 and len(loud) <= SR + SR // 10
    assert np.abs(loud).max() > np.abs(soft).max() > 0
    y, lead = trim(loud)
    assert len(y) > 0 and lead < 50


def test_velocity_layers_from_sf2(tmp_path):
    font = tmp_path / "tiny.sf2"
    _tiny_sf2(font)
    one = velocity_layers(font)
    assert set(one) == {(128, 0)} and one[(128, 0)][60] == [(1, 127)] and len(one[(128, 0)]) == 128
    _tiny_sf2(font, layers=True)
    two = velocity_layers(font)[(128, 0)]
    assert sorted(two) == list(range(35, 41)) and two[38] == [(1, 63), (64, 127)]
    assert cover_layers([40, 80, 127], two[38]) == [40, 80, 127]
    assert cover_layers([100], two[38]) == [32, 100]
    items = font_items(font, "t", "T", [100], presets=[(0, "Kit")], layers=velocity_layers(font))
    assert sorted((i.render.key, i.velocity) for i in items if i.render.key == 38) == [(38, 32), (38, 100)]
    assert {i.render.key for i in items} == {35, 36, 38, 40}  # GM keys of the five classes only


# ------------------------------------------------------------------ stats table
def test_stats_table_and_command(tmp_path, capsys):
    from drumclassifier.data.manifest import write_manifest

    cfg = B.load_config(default_config_path())
    rows = [{"path": f"p{i}", "label": lab, "source": src, "kit": kit, "group": grp, "split": sp}
            for i, (lab, src, kit, grp, sp) in enumerate([
                ("kick", "fluid", "FluidR3_GM_000_Standard", "fluid", "train"),
                ("kick", "fluid", "FluidR3_GM_008_Room", "fluid", "train"),
                ("hihat", "drumsynth", "tr808", "drumsynth", "train"),
                ("toms", "hydrogen", "Millo_MultiLayered2", "millo", "test"),
                ("snare", "sonicpi", "sonic_pi", "sonicpi", "val")])]
    st = corpus_stats(rows, cfg)
    assert [(s["source"], s["split"]) for s in st] == [
        ("drumsynth", "train"), ("fluid", "train"), ("total", "train"), ("sonicpi", "val"),
        ("total", "val"), ("hydrogen", "test"), ("total", "test"), ("total", "all")]
    fluid = st[1]
    assert (fluid["kick"], fluid["total"], fluid["kits"], fluid["licence"]) == (2, 2, 2, "MIT")
    assert st[0]["licence"] == "GPL-2+" and st[5]["licence"] == "GPL-2"
    assert (st[-1]["total"], st[-1]["toms"], st[-1]["kits"]) == (5, 1, 5)
    text = format_stats(st)
    assert text.splitlines()[0].split() == ["source", "group", "split", "K", "S", "H", "T", "C",
                                            "total", "kits", "licence"]
    write_manifest(tmp_path / "m.csv", rows)
    assert B.main(["stats", "--manifest", str(tmp_path / "m.csv"), "--markdown"]) == 0
    md = capsys.readouterr().out.splitlines()
    assert md[0].startswith("| source | group | split | K |") and md[1].startswith("|---|")
    assert md[-1] == "| **total** |  | **all** | **2** | **1** | **1** | **1** | **0** | **5** | **5** |  |"
    assert B.main(["stats", "--manifest", str(tmp_path / "none.csv")]) == 2


# ------------------------------------------------------------------ sources added later
def test_multimic_items_perspectives_layers_and_mix(tmp_path):
    """A DrumGizmo-layout kit: <Piece>/<hit>-<Piece>-<Mic>.flac, mono mic tracks."""
    from drumclassifier.data.mics import mix_mics
    from drumclassifier.data.sources import MicMix, multimic_items

    samples = tmp_path / "Samples"
    for piece, hits in (("Tom1", 9), ("CrashL", 2)):
        (samples / piece).mkdir(parents=True)
        for n in range(1, hits + 1):
            for mic, level in (("Tom1", 0.8), ("OHL", 0.2), ("OHR", 0.4), ("Trigger", 1.0)):
                sf.write(samples / piece / f"{n}-{piece}-{mic}.flac",
                         (level * n / hits * _tone(200.0)).astype(np.float32), SR)
    pieces = {"Tom1": {"label": "toms", "close": ["Tom1"]}, "CrashL": {"label": "cymbals"},
              "Absent": {"label": "kick"}}
    persp = {"close": "close", "overhead": {"OHL": [1.0, 0.0], "OHR": [1.0, 1.0]}}
    items = multimic_items(samples, "Kit", pieces, persp, hits_per_piece=3)
    got = sorted((i.kit, i.name, i.label) for i in items)
    # 3 of Tom1's 9 hits spread soft to hard; the crash has no close mic; Trigger never used
    assert got == sorted([("Kit/close", f"Tom1_{n:03d}", "toms") for n in (1, 5, 9)]
                         + [("Kit/overhead", f"Tom1_{n:03d}", "toms") for n in (1, 5, 9)]
                         + [("Kit/overhead", f"CrashL_{n:03d}", "cymbals") for n in (1, 2)])
    vels = [i.velocity for i in items if i.kit == "Kit/close"]
    assert vels == sorted(vels) and 1 <= vels[0] < vels[-1] <= 127
    oh = next(i for i in items if i.kit == "Kit/overhead" and i.name == "Tom1_009")
    assert isinstance(oh.render, MicMix) and all("Trigger" not in f for f, _, _ in oh.render.mics)
    x = mix_mics(oh.render.mics)
    # equal-power pan: OHL (0.2) hard left, OHR (0.4) hard right
    assert x.shape[1] == 2 and np.allclose(x[:, 1], 2 * x[:, 0], atol=1e-4)
    centred = mix_mics(((oh.render.mics[0][0], 1.0, 0.5),))
    assert np.allclose(centred[:, 0], centred[:, 1]) and np.isclose(
        np.abs(centred[:, 0]).max(), np.abs(x[:, 0]).max() / np.sqrt(2), rtol=1e-3)


def test_new_files_only_skips_byte_identical_copies(tmp_path):
    from drumclassifier.data.sources import named_file_items, new_files_only

    a, b = tmp_path / "npm", tmp_path / "deb"
    a.mkdir(), b.mkdir()
    sf.write(a / "bd_jazz.flac", _kick(), SR)
    sf.write(a / "hat_zild.flac", _noise(), SR)
    sf.write(b / "drum_cymbal_closed.flac", _noise(), SR)   # the same bytes, another name
    items = new_files_only(named_file_items(a, "supersonic", "supersonic"), list(b.iterdir()))
    assert [(i.name, i.label) for i in items] == [("bd_jazz", "kick")]


def test_git_repository_prefers_the_users_clone(tmp_path):
    from drumclassifier.data.sources import git_repository

    assert git_repository("https://example.invalid/x.git", tmp_path, tmp_path / "out") == tmp_path
    logged = []
    assert git_repository(str(tmp_path / "no-such-repo"), None, tmp_path / "out", log=logged.append) is None
    assert "--muldjord" in logged[0] and not (tmp_path / "out" / "repos" / "no-such-repo.part").exists()


def test_new_sources_are_configured_with_groups_and_licences():
    from drumclassifier.data.splits import group_of
    from drumclassifier.data.stats import licence_of

    cfg = B.load_config(None)
    for src in ("generaluser", "supersonic", "chuck", "drumline", "muldjord"):
        assert src in B.SOURCES and src in cfg["dedupe"]["priority"]
    assert group_of("drumline", "FluidR3Mono_056_MarchingSnare", cfg) == "fluid"   # Fluid family
    assert group_of("muldjord", "MuldjordKit/room", cfg) == "muldjord"
    assert group_of("generaluser", "GeneralUser_000_Standard", cfg) == "generaluser"
    assert licence_of("muldjord", "MuldjordKit/mix", cfg) == "CC-BY-4.0"
    assert licence_of("chuck", "chuck_data", cfg) == "GPL-2+"
    assert licence_of("supersonic", "supersonic", cfg) == "CC0"
    for group in ("generaluser", "supersonic", "chuck", "muldjord"):   # all training material
        assert group not in cfg["splits"]["test"] + cfg["splits"]["val"]
    # drumline: only snare strokes and sustained cymbals; no bass drums or tenors
    assert set(cfg["drumline"]["presets"]) == {56, 58}
    assert {lab for keys in cfg["drumline"]["presets"].values() for lab in keys.values()} == {"snare", "cymbals"}
