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

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .errors import AudioError

# Below this peak (-120 dBFS) a file is treated as silent: nothing to classify.
SILENCE_PEAK = 1e-6
# Above this peak (+120 dBFS) samples are not a level but garbage (an unscaled integer
# buffer, a corrupt float file); the spectrogram's power would overflow float32 to inf.
MAX_PEAK = 1e6
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
    peak = x.abs().max().item()
    if peak < SILENCE_PEAK:
        raise AudioError(f"{name}: audio is silent (peak below -120 dBFS)")
    if peak > MAX_PEAK:
        raise AudioError(f"{name}: sample values up to {peak:.3g} are not audio levels "
                         "(peak above +120 dBFS; full scale is 1.0)")


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


def lead_in(before: np.ndarray | None, sample_rate_hz: int, target_rate_hz: int,
            n: int) -> torch.Tensor:
    """The audio just before an onset -> the model's lead-in, [2, n] float32 at the
    model rate: its last n samples, zeros in front where it is shorter (the stream's
    start). before: [m, channels] at sample_rate_hz, or None (silence)."""
    out = torch.zeros(2, n)
    if before is None or len(before) == 0:
        return out
    x = torch.from_numpy(to_stereo(np.asarray(before, np.float32)).T.copy())   # [2, m]
    if sample_rate_hz != target_rate_hz:
        import torchaudio.functional as AF
        keep = int(np.ceil(n * sample_rate_hz / target_rate_hz)) + 64
        x = AF.resample(x[:, -keep:], sample_rate_hz, target_rate_hz)
    x = x[:, -n:]
    out[:, n - x.shape[-1]:] = x
    return out


def display_path(path) -> str:
    """A path as printable text: bytes that are not UTF-8 (a Latin-1 name on a UTF-8 system)
    become \\xNN escapes, so no message or output line can fail to encode."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def read(path: str | Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode the first `max_seconds` of a file (None: all of it):
    ([n_samples, channels] float32, rate)."""
    path = Path(path)
    name = display_path(path)
    try:
        # Python's open() first: its errors say why (permission, symlink loop, name too
        # long...) where libsndfile only says "System error"
        with open(path, "rb"):
            pass
        # bytes on POSIX: a name that is not valid UTF-8 still opens
        with sf.SoundFile(str(path) if os.name == "nt" else os.fsencode(path)) as f:
            rate = f.samplerate
            if rate <= 0:
                raise AudioError(f"{name}: invalid sample rate {rate}")
            frames = -1 if max_seconds is None else int(np.ceil(max_seconds * rate))
            data = f.read(frames=frames, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except FileNotFoundError:
        raise AudioError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise AudioError(f"{name}: is a directory, not an audio file") from None
    except PermissionError:
        raise AudioError(f"{name}: permission denied") from None
    except OSError as e:
        if e.strerror:      # from open(): ELOOP, ENAMETOOLONG, ENOTDIR, EIO...
            raise AudioError(f"{name}: cannot open ({e.strerror.lower()})") from None
        raise AudioError(f"{name}: cannot decode audio ({_first_line(e)})") from None
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        reason = _first_line(e)
        if path.stat().st_size == 0:
            reason = "empty file (0 bytes)"
        raise AudioError(f"{name}: cannot decode audio ({reason})") from None
    return data, rate


def _first_line(e: BaseException) -> str:
    text = str(e)
    prefix = getattr(e, "prefix", "")     # libsndfile's "Error opening <path>: "
    if prefix and text.startswith(prefix):
        text = text[len(prefix):]
    text = display_path(text).strip()
    return text.splitlines()[0] if text else type(e).__name__


def load(path: str | Path, target_rate_hz: int, window_s: float) -> torch.Tensor:
    """A file -> [2, n] float32 at the model rate, n <= window, trailing digital silence cut."""
    data, rate = read(path, window_s)
    x = torch.from_numpy(np.ascontiguousarray(data.T))
    return prepare(x, rate, target_rate_hz, int(round(window_s * target_rate_hz)),
                   name=display_path(path))


def duration_s(path: str | Path) -> float | None:
    """A file's length in seconds from its header (nothing decoded); None if unknown."""
    try:
        info = sf.info(str(path) if os.name == "nt" else os.fsencode(path))
    except Exception:  # noqa: BLE001 (unknown is an answer: the decoder reports the error)
        return None
    return info.frames / info.samplerate if info.samplerate > 0 and info.frames >= 0 else None


def find_audio_files(paths, recursive: bool = True, errors: list | None = None,
                     exclude=()) -> list[Path]:
    """Expand files and folders into a sorted list of audio files.

    Folders are walked without following symlinked folders (no loops); files given
    explicitly are kept whatever their extension, so the user hears why they fail.
    A folder that cannot be listed is appended to `errors` as (path, message).
    exclude: folders the walk never enters (e.g. classify's --sort-into target, which may
    lie inside a folder being sorted).
    """
    out: list[Path] = []
    skip = {os.path.realpath(e) for e in exclude}

    def unlistable(e: OSError) -> None:
        if errors is not None:
            where = e.filename if e.filename is not None else "?"
            why = (e.strerror or str(e)).lower()
            errors.append((Path(where), f"{display_path(where)}: cannot list folder ({why})"))

    for p in map(Path, paths):
        try:
            is_dir = p.is_dir()
        except OSError:       # e.g. a name longer than NAME_MAX: read() says so
            is_dir = False
        if is_dir:
            if recursive:
                for root, dirs, files in os.walk(p, followlinks=False, onerror=unlistable):
                    dirs[:] = sorted(d for d in dirs if not skip
                                     or os.path.realpath(os.path.join(root, d)) not in skip)
                    out += [Path(root) / f for f in sorted(files)
                            if Path(f).suffix.lower() in AUDIO_EXTENSIONS]
            else:
                try:
                    out += sorted(q for q in p.iterdir()
                                  if q.suffix.lower() in AUDIO_EXTENSIONS and not q.is_dir())
                except OSError as e:
                    unlistable(e)
        else:
            out.append(p)
    return out
