"""Audio helpers: load, resample, trim, render soundfont hits, write FLAC atomically.

Every one-shot of the corpus is 44.1 kHz stereo float, at most 4 s, starting at
its onset: leading samples below `lead_threshold_db` (relative to the clip's
peak) are trimmed, and the tail is cut where it stays below `tail_threshold_db`.
Files are read by the classifier's own loader (drumclassifier/audio.py: its decoder,
its errors and its channel policy), so a corpus hit and a classified file agree.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import audio

SAMPLE_RATE_HZ = 44100
MAX_SECONDS = 4.0
MAX_SAMPLES = int(SAMPLE_RATE_HZ * MAX_SECONDS)


def resample(x: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Resample (n, c) audio with torchaudio.functional.resample (band-limited sinc)."""
    if sr_in == sr_out:
        return x
    import torch
    import torchaudio.functional as AF

    y = AF.resample(torch.from_numpy(np.ascontiguousarray(x.T)), sr_in, sr_out)
    return y.T.numpy().astype(np.float32)


def load_audio(path: str | Path) -> np.ndarray:
    """A whole file as (n, 2) float32 at 44.1 kHz, by audio.read and audio.to_stereo
    (mono duplicated; channels beyond two folded into both at -3 dB).

    Raises AudioError (one line naming the file) when it cannot be read."""
    x, sr = audio.read(path)
    return resample(audio.to_stereo(x), sr)


def trim(x: np.ndarray, lead_threshold_db: float = -50.0, tail_threshold_db: float = -80.0,
         max_samples: int = MAX_SAMPLES) -> tuple[np.ndarray, int]:
    """Trim leading silence, the silent tail, and cut to `max_samples`.

    Args:
        x: (n, 2) audio.
        lead_threshold_db: the hit starts at the first sample whose magnitude
            exceeds the clip's peak by this many dB (negative).
        tail_threshold_db: the end is after the last sample above peak + this (dB).

    Returns:
        (trimmed (m, 2) audio, number of leading samples removed). Silent input
        gives an empty array.
    """
    mag = np.abs(x).max(axis=1) if len(x) else np.zeros(0, np.float32)
    peak = float(mag.max()) if len(mag) else 0.0
    if peak <= 1e-7:
        return x[:0], 0
    above = np.nonzero(mag > peak * 10 ** (lead_threshold_db / 20))[0]
    start = int(above[0])
    x = x[start:start + max_samples]
    mag = mag[start:start + max_samples]
    tail = np.nonzero(mag > peak * 10 ** (tail_threshold_db / 20))[0]
    end = int(tail[-1]) + 1
    return x[:end], start


def write_flac(path: Path, x: np.ndarray, subtype: str = "PCM_24") -> None:
    """Write (n, 2) audio as 44.1 kHz FLAC through a temporary file and a rename."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    peak = float(np.abs(x).max()) if len(x) else 0.0
    if peak > 0.999:  # avoid clipping: renders at full velocity can exceed 0 dBFS
        x = x * (0.999 / peak)
    sf.write(str(tmp), x, SAMPLE_RATE_HZ, format="FLAC", subtype=subtype)
    os.replace(tmp, path)


class FontRenderer:
    """Render single drum hits from one soundfont with tinysoundfont, in-process.

    Args:
        font_path: .sf2/.sf3 file.
        hold_s: seconds between note-on and note-off.
        max_seconds: render length cap.
        tail_threshold_db: after note-off, stop once a 100 ms block stays below
            this level (dBFS).
    """

    def __init__(self, font_path: str | Path, hold_s: float = 0.3, max_seconds: float = MAX_SECONDS,
                 tail_threshold_db: float = -80.0):
        import tinysoundfont

        self.synth = tinysoundfont.Synth(samplerate=SAMPLE_RATE_HZ)
        self.sfid = self.synth.sfload(str(font_path))
        self.hold = int(hold_s * SAMPLE_RATE_HZ)
        self.max_samples = int(max_seconds * SAMPLE_RATE_HZ)
        self.tail = 10 ** (tail_threshold_db / 20)

    def preset_name(self, bank: int, preset: int) -> str | None:
        return self.synth.sfpreset_name(self.sfid, bank, preset)

    def drum_presets(self) -> list[tuple[int, str]]:
        """(preset number, name) of every bank-128 (percussion) preset of the font."""
        out = []
        for p in range(128):
            name = self.preset_name(128, p)
            if name is not None:
                out.append((p, name))
        return out

    def render(self, key: int, velocity: int, preset: int, bank: int = 128,
               channel: int = 9, is_drums: bool = True) -> np.ndarray:
        """One hit as (n, 2) float32 at 44.1 kHz, untrimmed, n <= max_samples + block."""
        s = self.synth
        s.sounds_off()
        s.program_select(channel, self.sfid, bank, preset, is_drums)
        block = SAMPLE_RATE_HZ // 10
        s.noteon(channel, key, velocity)
        first = np.frombuffer(s.generate(self.hold), dtype=np.float32).reshape(-1, 2)
        s.noteoff(channel, key)
        blocks = [first.copy()]
        n = len(first)
        while n < self.max_samples:
            b = np.frombuffer(s.generate(block), dtype=np.float32).reshape(-1, 2).copy()
            blocks.append(b)
            n += len(b)
            if np.abs(b).max() < self.tail:
                break
        s.sounds_off()
        return np.concatenate(blocks)[: self.max_samples]


# ---------------------------------------------------------------- DrumSynth through LMMS
# A one-instrument LMMS project: AudioFileProcessor playing the preset (LMMS
# synthesises .ds files when it loads them as samples) for one 4 s note at the
# sample's own pitch (key = base note 57), 120 bpm, 192 ticks per bar.
_LMMS_PROJECT = """<?xml version="1.0"?>
<!DOCTYPE lmms-project>
<lmms-project type="song" version="1.0" creator="LMMS" creatorversion="1.2.2">
  <head timesig_denominator="4" bpm="120" masterpitch="0" mastervol="100" timesig_numerator="4"/>
  <song>
    <trackcontainer type="song">
      <track type="0" muted="0" name="hit" solo="0">
        <instrumenttrack pitch="0" vol="100" fxch="0" pan="0" basenote="57" usemasterpitch="1"
                         pitchrange="1">
          <instrument name="audiofileprocessor">
            <audiofileprocessor stutter="0" interp="1" reversed="0" looped="0" sframe="0"
                                lframe="0" src="{src}" eframe="1" amp="100"/>
          </instrument>
          <chordcreator chord-enabled="0" chord="0" chordrange="1"/>
          <arpeggiator arp-enabled="0"/>
          <fxchain numofeffects="0" enabled="0"/>
        </instrumenttrack>
        <pattern type="1" muted="0" steps="16" name="hit" pos="0" len="384">
          <note key="57" vol="100" pos="0" pan="0" len="384"/>
        </pattern>
      </track>
    </trackcontainer>
  </song>
</lmms-project>
"""


class DrumSynthRenderer:
    """Render DrumSynth `.ds` presets with the `lmms` binary, one project per preset.

    Args:
        lmms: the lmms executable.
        lib_dirs: extra shared-library folders (an unpacked, not installed, lmms).
        qt_plugin_dir: Qt plugin folder holding platforms/libqoffscreen.so, if unpacked.
        timeout_s: a preset that takes longer is a failure.
    """

    def __init__(self, lmms: str, lib_dirs: list[str] = (), qt_plugin_dir: str | None = None,
                 timeout_s: float = 60.0):
        self.lmms = lmms
        self.env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        if lib_dirs:
            self.env["LD_LIBRARY_PATH"] = os.pathsep.join(
                [*lib_dirs, *filter(None, [os.environ.get("LD_LIBRARY_PATH")])])
        if qt_plugin_dir:
            self.env["QT_PLUGIN_PATH"] = qt_plugin_dir
        self.timeout_s = timeout_s

    def render(self, preset: str | Path) -> np.ndarray:
        """One preset as (n, 2) float32 at 44.1 kHz, untrimmed; raises RuntimeError on failure."""
        import subprocess
        import tempfile
        from xml.sax.saxutils import quoteattr

        with tempfile.TemporaryDirectory(prefix="drumsynth.") as tmp:
            project, wav = Path(tmp) / "hit.mmp", Path(tmp) / "hit.wav"
            project.write_text(_LMMS_PROJECT.replace('"{src}"', quoteattr(str(Path(preset).resolve()))))
            # HOME: lmms writes its .lmmsrc.xml there; keep it out of the user's home
            cmd = [self.lmms, "--allowroot", "render", str(project), "-f", "wav", "-a",
                   "-s", str(SAMPLE_RATE_HZ), "-o", str(wav)]
            try:
                r = subprocess.run(cmd, env={**self.env, "HOME": tmp}, capture_output=True,
                                   text=True, timeout=self.timeout_s, check=False)
            except subprocess.TimeoutExpired as e:
                raise RuntimeError(f"lmms timed out after {self.timeout_s:.0f} s") from e
            if r.returncode != 0 or not wav.exists():
                tail = (r.stderr.strip().splitlines() or ["no output"])[-1][-160:]
                raise RuntimeError(f"lmms exit status {r.returncode}: {tail}")
            return load_audio(wav)
