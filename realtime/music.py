"""Music under the drums: a check of a whole file that picks the onset detector for it.

The default detector's flux is the mean rise over its bands, so bass and chord notes fire
it like drums (held-out drums in music: onset F 0.35, more than 3 false onsets for each
drum hit). The music detector (configs/realtime-music.yaml: the rise a quarter of the
bands reach, every band against its max over 25 ms) fires far less on notes, but it loses
tonal toms in noise and strokes of rolls faster than about 12 a second, so it cannot be
the default for a drummer's microphone.

A file can be looked at whole before it is streamed: both detectors run over it, and
where the default fires at least MUSIC_RATIO times as often as the music detector, there
is music under the drums and the music detector is used. Measured on whole files, default
/ music onsets: drums alone 0.64-1.05 (60 validation-kit training grooves), 0.71-1.35
(held-out streams, every condition); with music under them up to 2.7 (validation, where
the music is mostly quiet) and 1.84-6.09 (held-out); a synthetic 32nd-note roll 1.84,
tonal toms in 20 dB noise 1.3. Chosen above all of the drum-only files and the roll.
docs/benchmarks.md, "Music under the drums", has what it changes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from drumclassifier.errors import DrumClassifierError

from .config import OnsetConfig, RealtimeConfig

# the settings of configs/realtime-music.yaml (tests/test_realtime.py keeps them equal)
MUSIC_ONSET = {"band_quantile": 0.75, "low_hz": 20000.0, "delta": 0.075}
MUSIC_DECISION = {"rise_classes": ["kick", "snare", "hihat", "cymbals"]}
MUSIC_RATIO = 2.0
MODES = ("auto", "on", "off")


@dataclass
class MusicScan:
    default_onsets: int     # onsets of the default detector over the whole file
    music_onsets: int       # onsets of the music detector
    seconds: float

    @property
    def ratio(self) -> float:
        return self.default_onsets / max(1, self.music_onsets)

    @property
    def music(self) -> bool:
        return self.ratio >= MUSIC_RATIO


def music_onset_config(onset: OnsetConfig) -> OnsetConfig:
    """`onset` with the music detector's settings."""
    return replace(onset, **MUSIC_ONSET)


def scan(path, onset: OnsetConfig, block_frames: int = 1 << 16) -> MusicScan:
    """Both detectors over the file at `path`, read block by block ([n, channels] float32;
    the detectors mix to mono). A file that breaks off (truncated, corrupt further in) is
    judged on what could be read: streaming it says the error and keeps the hits before
    it. A file that cannot be opened: DrumClassifierError naming it."""
    import soundfile as sf

    from .onset import OnsetDetector
    from .sources import sf_name
    try:
        f = sf.SoundFile(sf_name(path))
    except (RuntimeError, sf.LibsndfileError) as e:
        raise DrumClassifierError(f"{path}: cannot decode audio ({e})") from None
    with f:
        sr = f.samplerate
        dets = (OnsetDetector(sr, onset), OnsetDetector(sr, music_onset_config(onset)))
        counts, frames = [0, 0], 0
        while True:
            try:
                block = f.read(block_frames, dtype="float32", always_2d=True)
            except (RuntimeError, sf.LibsndfileError):
                break
            if not len(block):
                break
            frames += len(block)
            for k, d in enumerate(dets):
                counts[k] += len(d.process_online(block))
    return MusicScan(counts[0], counts[1], frames / sr)


def needs_scan(cfg: RealtimeConfig, mode: str) -> bool:
    """Whether `choose` will scan the file: mode "auto" and an onset config that is not
    already a music detector (band_quantile set)."""
    if mode not in MODES:
        raise DrumClassifierError(f"music mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode == "auto" and cfg.onset.band_quantile == 0


def choose(path, cfg: RealtimeConfig, mode: str) -> tuple[RealtimeConfig, MusicScan | None]:
    """The config to stream the file at `path` with, and the scan it came from (None: not
    scanned). mode: "auto" scans the file (needs_scan) and takes the music config (its
    detector, and the rise check for cymbals too) if there is music, "on" takes it, "off"
    keeps cfg."""
    found = scan(path, cfg.onset) if needs_scan(cfg, mode) else None
    if mode == "on" or (found is not None and found.music):
        cfg = replace(cfg, onset=music_onset_config(cfg.onset),
                      decision=replace(cfg.decision, **MUSIC_DECISION))
    return cfg, found


def describe(found: MusicScan) -> str:
    """One line for stderr when the scan found music."""
    return (f"music under the drums (the default onset detector fires {found.ratio:.1f}x as "
            f"often as the music detector over the file: {found.default_onsets} against "
            f"{found.music_onsets}): the music settings are used (configs/realtime-music.yaml: "
            f"its onset detector, and cymbals only where their band rose; --music off: the "
            f"default)")
