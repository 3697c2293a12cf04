"""Typed real-time configuration: configs/realtime.yaml onto dataclasses.

The dataclass defaults below ARE the defaults (so an installed wheel needs no YAML);
configs/realtime.yaml mirrors them with comments, and a test keeps the two equal.
An unknown key in a YAML file is an error, as for the model config.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from drumclassifier.classes import GM_NOTES
from drumclassifier.config import LIVE_CONTEXT_MS, merge_structured, read_yaml
from drumclassifier.errors import ConfigError


@dataclass
class AudioConfig:
    sample_rate_hz: int = 44100     # device rate; slices are resampled to the model's rate
    blocksize: int = 128            # frames per device callback (2.9 ms at 44.1 kHz)
    channels: int = 1               # device input channels (the model's channel policy applies)
    dtype: str = "float32"          # device sample format: float32 or int16
    latency: str = "low"            # PortAudio latency hint: low, high, or seconds as a string
    ring_s: float = 2.0             # ring buffer capacity (s) between callback and analysis
    stall_s: float = 2.0            # a live device silent this long (no callbacks) is gone


@dataclass
class OnsetConfig:
    frame_size: int = 512           # STFT frame (samples at 44.1 kHz; scaled with the rate)
    hop_size: int = 128             # detection step (samples at 44.1 kHz; scaled with the rate)
    diff_frames: int = 2            # flux compares frame t with frame t - diff_frames
    low_hz: float = 0.0             # bands below this compare with the max of the last low_ms
    low_ms: float = 25.0            # (a frame shorter than a bass note's period wobbles)
    bands_per_octave: int = 6       # log-frequency bands the flux is summed over
    band_quantile: float = 0.0      # 0: flux = mean rise over bands; q in (0, 1): the rise
                                    # that a share 1 - q of the bands reach (broadband hits
                                    # pass, a note raising a few partials does not; nor does
                                    # a tom in noise: configs/realtime-music.yaml only)
    f_min_hz: float = 30.0
    f_max_hz: float = 17000.0
    log_mul: float = 1000.0         # log1p(log_mul * band magnitude)
    gain_to_dbfs: float = -6.0      # a quieter take is boosted (before the log) so its recent
    gain_max_db: float = 30.0       # peak reads as gain_to_dbfs, by at most gain_max_db
                                    # (0 = off); louder takes are never cut
    gain_release_db_s: float = 1.0  # the recent peak falls this fast (dB/s) after a loud hit
    delta: float = 0.2              # absolute threshold on the flux (log rise per band)
    ratio: float = 1.0              # adaptive part: + ratio * mean flux over the last avg_ms
    avg_ms: float = 100.0
    rearm_ratio: float = 0.5        # re-arm once the flux falls below this x the last peak
    min_gap_ms: float = 20.0        # minimum inter-onset interval (short enough for flams)
    min_level_db: float = -60.0     # frames quieter than this (dBFS RMS) never start an onset
    refine_block: int = 16          # onset time refined to this many samples in the time domain


@dataclass
class SlicerConfig:
    context_ms: float = LIVE_CONTEXT_MS        # audio after the onset given to the model (latency floor)
    # anytime decisions: classify each hit at these contexts (ms after the onset, ascending)
    # and send it at the first one whose decision is sure enough (decision.min_confidence),
    # at the latest at the last; context_ms is then unused. [] = off: one fixed context_ms.
    anytime_ms: list[float] = field(default_factory=list)
    # a second, later look at each hit for the classes in decision.late_classes: they are
    # sent from it, every other class at context_ms as always. 0 = off. For files and
    # recordings, not for triggering: a cymbal's note goes out late_look_ms after its
    # onset (configs/realtime-offline.yaml; docs/benchmarks.md, "Longer waits")
    late_look_ms: float = 0.0
    history_s: float = 1.0          # audio kept for slicing (must exceed the detection delay)

    @property
    def contexts_ms(self) -> list[float]:
        """The contexts a hit is classified at: the ladder, or [context_ms]; then the
        late look, if any."""
        late = [self.late_look_ms] if self.late_look_ms > 0 else []
        return (list(self.anytime_ms) or [self.context_ms]) + late


@dataclass
class DecisionConfig:
    # anytime (slicer.anytime_ms): a hit is sent at its first rung at least this sure
    # (drumclassifier/anytime.py: generic = its least sure class, threshold-centred;
    # kit profile = the top piece's probability). 0.95: on held-out kits it gained 4-7
    # points of recall over 0.8 for 5 ms more median wait with a profile, and never lost
    # with the generic model (bench/calibration.py, README "Anytime decisions")
    min_confidence: float = 0.95
    # kit profile: pieces sent per hit, at most. A profile with a sigmoid per piece
    # (version 4) sends every piece present: 3 covers crash + kick + hihat (held-out kits
    # in grooves, bench/kit_grooves.py: docs/calibration.md). A softmax profile (versions
    # 1-3) sends a piece besides the top one only at extra_piece_min or more
    max_pieces: int = 3
    extra_piece_min: float = 0.35
    # softmax kit profile: what min_confidence is about. piece: the top piece (its note is sure);
    # class: the top class, its pieces' probabilities summed, sending that class's most
    # probable piece. Measured on held-out kits taught drum by drum (K=8, 0.95): class
    # decided at a 20 ms median instead of 40 ms, at the same class recall, but sent the
    # right piece less often (README "Anytime decisions")
    sure_of: str = "piece"
    # slicer.late_look_ms > 0: the classes (with a kit profile, their pieces) decided at
    # the late look. Cymbals: at 20 ms a ride or an 808 cymbal sounds like a hihat, their
    # wash tells them apart
    late_classes: list[str] = field(default_factory=lambda: ["cymbals"])
    # a class among rise_classes (a kit profile: its pieces) is sent only where its own
    # band (realtime.slicer.RISE_BANDS_HZ) rose at least min_rise_db at the onset, the
    # first 20 ms after it against the 20 ms before it: a kick still ringing under the
    # hihat struck over it is not a new kick, a chord is not a hihat. Chosen on the
    # validation grooves; held-out grooves in docs/benchmarks.md ("Did it rise"). Cymbals
    # only with music (configs/realtime-music.yaml): a drummer strikes a cymbal over the
    # last one's wash, where the band rises too little (held-out kit grooves, cymbals
    # -0.03 to -0.06). [] = off
    rise_classes: list[str] = field(default_factory=lambda: ["kick", "snare", "hihat"])
    min_rise_db: float = 1.0


@dataclass
class WorkerConfig:
    queue_size: int = 64            # pending hits; beyond this the drop policy applies (counted)
    max_batch: int = 32             # hits classified in one model call when a backlog builds
    drop_policy: str = "oldest"     # oldest: drop the stalest pending hit; newest: the new one
    torch_threads: int = 1          # CPU threads of the model call (0 = torch's default)


@dataclass
class VelocityConfig:
    # velocity = 1 + 126 * clip((peak_db - min_db) / (max_db - min_db), 0, 1) ** gamma
    # peak_db: the hit's peak level (dBFS) over its context window, like a drum module's scan time,
    # less what was already ringing before the onset (realtime.slicer.hit_peak_db).
    min_db: float = -48.0
    max_db: float = -3.0
    gamma: float = 1.0              # <1 lifts soft hits, >1 compresses them


@dataclass
class MidiConfig:
    channel: int = 10               # 1-16; 10 is the General MIDI drum channel
    note_length_ms: float = 50.0    # note-off this long after each note-on
    api: str = "auto"               # rtmidi API: auto (each compiled API in turn), alsa, jack
    client_name: str = "drumclassifier"
    notes: dict[str, int] = field(default_factory=lambda: dict(GM_NOTES))   # class -> note


@dataclass
class RealtimeConfig:
    audio: AudioConfig = field(default_factory=AudioConfig)
    onset: OnsetConfig = field(default_factory=OnsetConfig)
    slicer: SlicerConfig = field(default_factory=SlicerConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    velocity: VelocityConfig = field(default_factory=VelocityConfig)
    midi: MidiConfig = field(default_factory=MidiConfig)

    @property
    def late_look_classes(self) -> list[str]:
        """The classes a late look decides; [] when there is none."""
        return list(self.decision.late_classes) if self.slicer.late_look_ms else []


def load_realtime_config(src: str | Path | dict | list | None = None,
                         overrides: dict | None = None) -> RealtimeConfig:
    """Defaults, merged with a YAML file or dict (or several files, in order: the music
    config and the offline one), then with `overrides` (a nested dict)."""
    if isinstance(src, (str, Path)):
        src = [src]
    if isinstance(src, list):                     # YAML files
        source, layers = " + ".join(map(str, src)), [read_yaml(f) for f in src]
    else:                                         # a dict, or nothing: the defaults
        source, layers = "realtime config", [src or {}]
    cfg = merge_structured(RealtimeConfig, *layers, overrides or {}, source=source)
    validate(cfg, source)
    return cfg


def validate(cfg: RealtimeConfig, source: str = "realtime config") -> None:
    def bad(msg):
        raise ConfigError(f"{source}: {msg}")
    a, o = cfg.audio, cfg.onset
    if a.sample_rate_hz <= 0 or a.blocksize <= 0 or a.channels <= 0:
        bad("audio.sample_rate_hz, blocksize and channels must be positive")
    if a.dtype not in ("float32", "int16"):
        bad(f"audio.dtype must be float32 or int16, got {a.dtype!r}")
    if o.hop_size <= 0 or o.frame_size < o.hop_size:
        bad("onset.hop_size must be positive and at most onset.frame_size")
    if not 0 <= o.band_quantile < 1:
        bad(f"onset.band_quantile must be in [0, 1), got {o.band_quantile}")
    if o.gain_max_db < 0 or o.gain_release_db_s < 0:
        bad(f"onset.gain_max_db and gain_release_db_s must be >= 0, got {o.gain_max_db}, "
            f"{o.gain_release_db_s}")
    if cfg.slicer.context_ms <= 0:
        bad("slicer.context_ms must be positive")
    lad = list(cfg.slicer.anytime_ms)
    if lad and (lad[0] <= 0 or any(b <= a for a, b in zip(lad, lad[1:]))):
        bad(f"slicer.anytime_ms must be positive and ascending, got {lad}")
    late = cfg.slicer.late_look_ms
    if late < 0 or (late and late <= cfg.slicer.context_ms):
        bad(f"slicer.late_look_ms must be 0 (off) or longer than context_ms, got {late}")
    if late and lad:
        bad("slicer.late_look_ms works with one fixed context_ms, not with anytime_ms")
    from .slicer import RISE_BANDS_HZ
    unknown = [x for x in cfg.decision.rise_classes if x not in RISE_BANDS_HZ]
    if unknown:
        bad(f"decision.rise_classes: {', '.join(unknown)} (the classes with a band of their "
            f"own: {', '.join(RISE_BANDS_HZ)})")
    if late and not cfg.decision.late_classes:
        bad("slicer.late_look_ms needs decision.late_classes (the classes it decides)")
    d = cfg.decision
    if not 0 <= d.min_confidence <= 1 or not 0 <= d.extra_piece_min <= 1 or d.max_pieces < 1:
        bad("decision.min_confidence and extra_piece_min must be in 0-1, max_pieces >= 1")
    if d.sure_of not in ("piece", "class"):
        bad(f"decision.sure_of must be piece or class, got {d.sure_of!r}")
    if cfg.worker.drop_policy not in ("oldest", "newest"):
        bad(f"worker.drop_policy must be oldest or newest, got {cfg.worker.drop_policy!r}")
    if cfg.worker.torch_threads < 0:
        bad(f"worker.torch_threads must be >= 0, got {cfg.worker.torch_threads}")
    if cfg.worker.queue_size < 1 or cfg.worker.max_batch < 1:
        bad("worker.queue_size and worker.max_batch must be at least 1")
    if not 1 <= cfg.midi.channel <= 16:
        bad(f"midi.channel must be 1-16, got {cfg.midi.channel}")
    if any(not 0 <= n <= 127 for n in cfg.midi.notes.values()):
        bad("midi.notes must be MIDI note numbers 0-127")
    if cfg.velocity.max_db <= cfg.velocity.min_db:
        bad("velocity.max_db must be above velocity.min_db")
