"""The corpus builder's settings, typed: every default is defined here, once.

`configs/corpus.yaml` (or `corpus build --config FILE`) overrides them; it is merged
onto this schema, so a typo (`dedupe.treshold`) or a wrong type is an error naming
the key. Mappings (groups, licences, overrides, key maps) merge key by key: a YAML
file adds or replaces entries and keeps the others.

The builder reads the result as a plain dict (`load_corpus_config`), as it always has.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import merge_structured, read_yaml


@dataclass
class DedupeConfig:
    threshold: float = 0.99            # waveform correlation after alignment: above = a duplicate
    window_seconds: float = 0.5        # s of each one-shot compared
    max_lag_ms: float = 50.0           # ms of alignment searched
    # kept first when two sources hold the same sound
    priority: list[str] = field(default_factory=lambda: [
        "hydrogen", "avldrums", "sonicpi", "lmms", "fluid", "timgm6mb", "sfgmbank", "muldjord",
        "chuck", "supersonic", "generaluser", "drumline", "drumsynth", "user"])
    # Two different recorded files of one kit (velocity layers, takes of one drum)
    # correlate 0.99-0.999 and are kept; a file copied at another gain is above 0.9999.
    same_kit_file_threshold: float = 0.999


@dataclass
class DrumSynthConfig:
    """LMMS DrumSynth presets, rendered by the `lmms` on PATH (only with --sources all
    or drumsynth: their synthetic drums made held-out toms worse, docs/experiments.md)."""
    timeout_seconds: float = 60.0
    # Hand-checked label exceptions, "folder/stem" in lower case (see labels.label_from_drumsynth),
    # checked against recorded hits' class statistics (spectral centroid, -40 dB decay, share of
    # energy below 150 Hz). Left out by the rules and by these: the long sub-bass "808" booms
    # (1.2-1.7 s at 50 Hz: kick or bass note?), unnamed members of misc_hats, Simple-c/-r.
    overrides: dict[str, str | None] = field(default_factory=lambda: {
        "misc/simple-k": "kick",            # 42 Hz centroid, 95 % of energy below 150 Hz
        "misc/simple-h": "hihat",           # 9.9 kHz, 44 ms
        "misc/simple-s": "snare",           # 3.5 kHz, 98 ms
        "misc/sticky_q_kick": "kick",       # "stick" rule misfires; 35 Hz, 85 % below 150 Hz
        "misc/beat_box_bd": "kick",         # "beat" rule misfires; 210 Hz, 78 % below 150 Hz
        "misc_hats/lighthat": "hihat",      # "lighthat": 10 kHz, 81 ms
        "misc/tomita_clip": None,           # Tomita, not a tom
        "misc/sounds_like_a_low_tom": None,  # 66 Hz, 0.26 s: kick-like; the name hedges
        "misc_perc/bell": None,             # a short bell (0.11 s), not a ride bell
        "misc_perc/layered_sleigh_bell": None})


@dataclass
class DrumlineConfig:
    """FluidR3Mono's Drumline Percussion presets: preset -> {key: class}.

    Measured by rendering every key at velocity 100 (spectral centroid / -40 dB decay):
    the marching snare's full strokes (keys 48-52, 60: 3.0-4.2 kHz, 0.30-0.43 s) are
    snares; its rim clicks and shots (53-59, 76: 30-110 ms) and rolls (72, 74: 1.4 s)
    are left out; the marching cymbals' sustained crashes (0.9-2.0 s) are cymbals, their
    chokes left out. Left out as not drum-kit pieces: the marching bass drums (presets
    57, 59) and tenors (95, 96: 1-2 kHz, 0.13-0.55 s: short dry drums unlike a kit's
    ringing toms)."""
    presets: dict[int, dict[int, str]] = field(default_factory=lambda: {
        56: {48: "snare", 50: "snare", 52: "snare", 60: "snare"},
        58: {k: "cymbals" for k in (70, 72, 73, 74, 77, 78, 81, 82, 84, 87, 91, 93, 97, 99)}})


@dataclass
class MicPieceConfig:
    label: str = "kick"
    close: list[str] = field(default_factory=list)   # the piece's own close mic(s)


def _muldjord_pieces() -> dict[str, MicPieceConfig]:
    P = MicPieceConfig
    return {
        "KdrumL": P("kick", ["KdrumL"]), "KdrumR": P("kick", ["KdrumR"]),
        "Snare": P("snare", ["Snare_top", "Snare_bottom"]),
        "Tom1": P("toms", ["Tom1"]), "Tom2": P("toms", ["Tom2"]),
        "Tom3": P("toms", ["Tom3"]), "Tom4": P("toms", ["Tom4"]),
        "HihatClosed": P("hihat", ["Hihat"]), "HihatOpen": P("hihat", ["Hihat"]),
        "RideL": P("cymbals", ["RideL"]), "RideLBell": P("cymbals", ["RideL"]),
        "RideR": P("cymbals", ["RideR"]), "RideRBell": P("cymbals", ["RideR"]),
        "CrashL": P("cymbals"), "CrashR": P("cymbals"), "China": P("cymbals"),
        # left out: SnareRest (the snare played with the stick resting on it: ambiguous)
    }


@dataclass
class MultiMicConfig:
    """MuldjordKit: a recorded Tama Superstar kit, 16 mono mic tracks per hit. Each kept
    hit is rendered from every perspective: "close" (the piece's own mics, centred), a
    stereo pair, or a stereo mix of every mic; pans are those of the kit's own sfz mix
    (0 = left, 0.5 = centre, 1 = right), the trigger track is left out."""
    git_url: str = "https://github.com/sfzinstruments/DrumGizmo.MuldjordKit"
    samples: str = "DrumGizmo/MuldjordKit/Samples"   # inside the repository
    # velocity layers kept per piece, spread from soft to hard: a piece has 3-56 hits,
    # and all of them x 4 perspectives would make this one kit outweigh the others
    hits_per_piece: int = 6
    pieces: dict[str, MicPieceConfig] = field(default_factory=_muldjord_pieces)
    # perspective -> "close" or {mic: [gain, pan]}
    perspectives: dict[str, Any] = field(default_factory=lambda: {
        "close": "close",
        "overhead": {"OHL": [1.0, 0.0], "OHR": [1.0, 1.0]},
        "room": {"AmbL": [1.0, 0.0], "AmbR": [1.0, 1.0]},
        "mix": {"KdrumL": [1.0, 0.5], "KdrumR": [1.0, 0.5], "Snare_top": [1.0, 0.5],
                "Snare_bottom": [1.0, 0.5], "Tom1": [1.0, 0.2], "Tom2": [1.0, 0.4], "Tom3": [1.0, 0.6],
                "Tom4": [1.0, 0.8], "Hihat": [1.0, 0.3], "RideL": [1.0, 0.25], "RideR": [1.0, 0.75],
                "OHL": [1.0, 0.0], "OHR": [1.0, 1.0], "AmbL": [1.0, 0.0], "AmbR": [1.0, 1.0]}})


@dataclass
class CorpusConfig:
    # trimming / length (dB relative to each clip's peak)
    lead_threshold_db: float = -50.0
    tail_threshold_db: float = -80.0
    max_seconds: float = 4.0
    # soundfont rendering
    hold_seconds: float = 0.3
    gm_velocities: list[int] = field(default_factory=lambda: [40, 80, 127])
    # one per AVL velocity layer (1-26, 27-52, 53-77, 78-102, 103-127)
    avl_velocities: list[int] = field(default_factory=lambda: [13, 40, 65, 90, 115])
    exclude_presets: list[str] = field(default_factory=lambda: ["SFX"])  # preset-name substrings
    # Kits whose layout is not General MIDI: only these keys are rendered. The GS
    # Orchestra kit puts timpani on 41-53 (and its "hihat" keys render as timpani).
    preset_keys: dict[str, list[int]] = field(default_factory=lambda: {"Orchestra": [35, 36, 38, 40]})
    dedupe: DedupeConfig = field(default_factory=DedupeConfig)
    # Hand-checked label exceptions per Hydrogen kit (normalised names, labels.normalise_name)
    hydrogen_overrides: dict[str, dict[str, str | None]] = field(default_factory=lambda: {
        # "bass drum 2/3/4" sit on GM tom keys but are short, low thuds that are neither
        # clearly kicks nor toms; the "cymbal 1/2" and "ride bell" of this found-sound kit
        # have 70-1000 Hz spectral centroids: not cymbals.
        "rumpf_kit_z01_h2": {"f3 bass drum 2": None, "g3 bass drum 3": None, "a3 bass drum 4": None,
                             "d#4 cymbal 1": None, "e4 cymbal 2": None, "f4 ride bell": None}})
    # Groups of kits sharing recordings (never split); a pattern fully matches "<source>/<kit>".
    # GeneralUser's kits share samples between presets: one group. Its dedupe against the
    # Fluid and Tim fonts found no shared kit piece, so it is a group of its own.
    groups: dict[str, list[str]] = field(default_factory=lambda: {
        "black_pearl": ["hydrogen/GMRockKit", "hydrogen/The Black Pearl.*", "avldrums/AVL_Black_Pearl.*",
                        "avldrums/AVL_Red_Zeppelin.*"],
        "fluid": ["fluid/.*", "drumline/.*"],           # FluidR3Mono is of the Fluid family
        "tim": ["timgm6mb/.*", "sfgmbank/.*"],
        "electric_empire": ["hydrogen/ElectricEmpireKit", "hydrogen/HardElectro1", "hydrogen/VariBreaks",
                            "hydrogen/TR808EmulationKit"],
        "millo": ["hydrogen/Millo.*"],
        "forzee": ["hydrogen/ForzeeStereo"],
        "sonicpi": ["sonicpi/.*"],
        "lmms": ["lmms/.*"],
        "drumsynth": ["drumsynth/.*"],
        "generaluser": ["generaluser/.*"],
        "supersonic": ["supersonic/.*"],
        "chuck": ["chuck/.*"],
        "muldjord": ["muldjord/.*"]})
    # Whole groups per split; all other groups are train.
    splits: dict[str, list[str]] = field(default_factory=lambda: {
        "test": ["millo", "electric_empire"],   # held out: one acoustic, one electronic group
        "val": ["forzee", "sonicpi"]})          # model selection: an acoustic kit and mixed one-shots
    user_split: str = "train"
    # Licences from each package's copyright file; first match of "<source>/<kit>".
    licences: dict[str, list[str]] = field(default_factory=lambda: {
        "GPL-2+": ["hydrogen/(ElectricEmpireKit|HardElectro1|VariBreaks|ColomboAcousticDrumkit)",
                   "hydrogen/(GMRockKit|TR808EmulationKit)", "lmms/.*", "drumsynth/.*", "chuck/.*"],
        "GPL-2": ["hydrogen/Millo.*", "hydrogen/The Black Pearl.*", "hydrogen/ForzeeStereo", "timgm6mb/.*"],
        "CC-BY-SA-3.0-US": ["hydrogen/BJA_Pacific"],
        "CC-BY-3.0": ["hydrogen/rumpf_kit_z01_h2"],
        "CC0": ["hydrogen/Audiophob", "sonicpi/.*", "supersonic/.*"],
        "CC-BY-SA-3.0": ["avldrums/.*"],
        "MIT": ["fluid/.*", "drumline/.*"],
        "public domain": ["sfgmbank/.*"],
        "GeneralUser GS v2.0": ["generaluser/.*"],
        "CC-BY-4.0": ["muldjord/.*"]})
    drumsynth: DrumSynthConfig = field(default_factory=DrumSynthConfig)
    drumline: DrumlineConfig = field(default_factory=DrumlineConfig)
    muldjord: MultiMicConfig = field(default_factory=MultiMicConfig)


def default_config_path() -> Path | None:
    """configs/corpus.yaml of a source checkout, if there is one."""
    p = Path(__file__).resolve().parents[2] / "configs" / "corpus.yaml"
    return p if p.exists() else None


def load_corpus_config(path: str | Path | None = None) -> dict:
    """The defaults above, overridden by a YAML file if given, as a plain dict."""
    from dataclasses import asdict

    layers = [read_yaml(path)] if path else []
    cfg = merge_structured(CorpusConfig, *layers, source=str(path or "corpus config"))
    return asdict(cfg)
