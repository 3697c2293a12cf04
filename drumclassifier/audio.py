"""Audio in: read any common file, apply the channel policy, resample, fit to the window.

Channel policy (the model is stereo):
- mono is duplicated to both channels;
- stereo is kept;
- more than two channels: channels 0 and 1 are taken as left and right, and the
  mean of all further channels (centre, LFE, surrounds...) is added to both at
  -3 dB (x 0.7071). For 5.1 this keeps the centre in the middle of the image.

Only the first `window_s` seconds are decoded: a 10-minute file costs no more
memory than a 4 s one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .errors import AudioError

# Below this peak (-120 dBFS) a file is treated as silent: nothing to classify.
SILENCE_PEAK = 1e-6
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc"}


def to_stereo(x: np.ndarray) -> np.ndarray:
    """[n_samples, n_channels] -> [n_samples, 2] by the channel policy above."""
    if x.ndim == 1:
        x = x[:, None]
    n_ch = x.shape[1]
    if n_ch == 1:
        return np.repeat(x, 2, axis=1)
    if n_ch == 2:
        return x
    rest = x[:, 2:].mean(axis=1, keepdims=True) * np.float32(0.70710677)
    return x[:, :2] + rest


def check_waveform(x: torch.Tensor, name: str) -> None:
    """Refuse what cannot be classified, with one line naming the item."""
    if x.numel() == 0 or x.shape[-1] == 0:
        raise AudioError(f"{name}: no audio samples (zero length)")
    if not torch.isfinite(x).all():
        raise AudioError(f"{name}: audio contains NaN or infinite values")
    if x.abs().max().item() < SILENCE_PEAK:
        raise AudioError(f"{name}: audio is silent (peak below -120 dBFS)")


def content_length(x: torch.Tensor) -> int:
    """Samples up to the last non-zero one: trailing digital silence is padding, not sound.

    This is what makes a clip and the same clip zero-padded to 4 s give the same output.
    x: [channels, n_samples].
    """
    nz = torch.nonzero(x.abs().amax(dim=0) > 0)
    return int(nz[-1].item()) + 1 if len(nz) else 0


def prepare(x: torch.Tensor, sample_rate_hz: int, target_rate_hz: int, max_samples: int,
            name: str = "waveform") -> torch.Tensor:
    """Any waveform -> [2, n] float32 at the model rate, at most `max_samples`, trailing zeros cut.

    x: [n_samples] (mono) or [channels, n_samples].
    """
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise AudioError(f"{name}: expected [channels, samples], got shape {tuple(x.shape)}")
    check_waveform(x, name)
    if x.shape[0] > x.shape[1] and x.shape[1] <= 8:
        raise AudioError(f"{name}: shape {tuple(x.shape)} looks like [samples, channels]; "
                         "pass [channels, samples]")
    x = torch.from_numpy(to_stereo(x.T.numpy()).T.copy())
    if sample_rate_hz != target_rate_hz:
        if sample_rate_hz <= 0:
            raise AudioError(f"{name}: invalid sample rate {sample_rate_hz}")
        import torchaudio.functional as AF
        # cut first (plus a margin for the filter) so resampling cost is bounded
        keep = int(np.ceil(max_samples * sample_rate_hz / target_rate_hz)) + 64
        x = AF.resample(x[:, :keep], sample_rate_hz, target_rate_hz)
    x = x[:, :max_samples]
    n = content_length(x)
    if n == 0:
        raise AudioError(f"{name}: audio is silent")
    return x[:, :n].contiguous()


def read(path: str | Path, max_seconds: float) -> tuple[np.ndarray, int]:
    """Decode the first `max_seconds` of a file: ([n_samples, channels] float32, rate)."""
    path = Path(path)
    try:
        with sf.SoundFile(str(path)) as f:
            rate = f.samplerate
            if rate <= 0:
                raise AudioError(f"{path}: invalid sample rate {rate}")
            frames = int(np.ceil(max_seconds * rate))
            data = f.read(frames=frames, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except FileNotFoundError:
        raise AudioError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise AudioError(f"{path}: is a directory, not an audio file") from None
    except PermissionError:
        raise AudioError(f"{path}: permission denied") from None
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        if path.exists() and path.stat().st_size == 0:
            reason = "empty file (0 bytes)"
        raise AudioError(f"{path}: cannot decode audio ({reason})") from None
    return data, rate


def load(path: str | Path, target_rate_hz: int, window_s: float) -> torch.Tensor:
    """A file -> [2, n] float32 at the model rate, n <= window, trailing digital silence cut."""
    data, rate = read(path, window_s)
    x = torch.from_numpy(np.ascontiguousarray(data.T))
    return prepare(x, rate, target_rate_hz, int(round(window_s * target_rate_hz)), name=str(path))


def find_audio_files(paths, recursive: bool = True) -> list[Path]:
    """Expand files and folders into a sorted list of audio files.

    Folders are walked without following symlinked folders (no loops); files given
    explicitly are kept whatever their extension, so the user hears why they fail.
    """
    import os
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            if recursive:
                for root, dirs, files in os.walk(p, followlinks=False):
                    dirs.sort()
                    out += [Path(root) / f for f in sorted(files)
                            if Path(f).suffix.lower() in AUDIO_EXTENSIONS]
            else:
                out += sorted(q for q in p.iterdir()
                              if q.is_file() and q.suffix.lower() in AUDIO_EXTENSIONS)
        else:
            out.append(p)
    return out
