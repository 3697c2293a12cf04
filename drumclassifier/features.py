"""Stereo log-mel front end with a fixed reference.

LogMel has no per-clip normalisation and no `center=True` padding: frame t covers samples
[t*hop, t*hop + n_fft), so a clip, the same clip zero-padded to 4 s, and a live
snippet of it all give the same frames. Features are log(mel + floor) - log(floor):
digital silence maps to exactly 0, which is also what the model's zero padding
inserts, so padded and unpadded computations agree.

(Per-clip channel normalisations, PCEN and band-mean removal, were measured and
removed: docs/experiments.md.)
"""
from __future__ import annotations

import math

import torch
import torchaudio
from torch import nn

from .config import ModelConfig


def frames_for(n_samples: torch.Tensor | int, hop_length: int) -> torch.Tensor | int:
    """Frames that start inside the content: ceil(n / hop), at least 1."""
    if isinstance(n_samples, int):
        return max(1, math.ceil(n_samples / hop_length))
    return torch.clamp((n_samples + hop_length - 1) // hop_length, min=1)


class LogMel(nn.Module):
    """[B, 2, N] waveform + lengths -> [B, 2, n_mels, T] log-mel + frame counts.

    A module (filterbank and window are buffers) so `.to(device)` moves it.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        f = cfg.features
        self.n_fft, self.hop = f.n_fft, f.hop_length
        self.log_floor = f.log_floor
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate_hz, n_fft=f.n_fft, hop_length=f.hop_length,
            n_mels=f.n_mels, f_min=f.f_min_hz, f_max=min(f.f_max_hz, cfg.sample_rate_hz / 2),
            center=False, power=2.0, norm="slaney", mel_scale="slaney")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [B, 2, N] (zero beyond each length), lengths: [B] samples.

        Returns feats [B, 2, n_mels, T] (T = max frames in the batch) and frames [B].
        Only the frames that start inside the content are computed: padding costs nothing.
        """
        frames = frames_for(lengths, self.hop)
        t_max = int(frames.max())
        need = (t_max - 1) * self.hop + self.n_fft  # samples that frames 0..t_max-1 cover
        if x.shape[-1] < need:
            x = nn.functional.pad(x, (0, need - x.shape[-1]))
        mel = self.mel(x[..., :need])  # [B, 2, n_mels, t_max]
        feats = torch.log1p(mel / self.log_floor)  # = log(mel + floor) - log(floor)
        mask = torch.arange(t_max, device=x.device)[None, :] < frames[:, None]  # [B, T]
        return feats * mask[:, None, None, :], frames


def band_profile(feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """[B, 2, F, T] log-mel + [B] frame counts -> [B, F] the hit's spectral shape.

    Per mel band, the mean over the item's valid frames and both channels, minus its mean
    over bands: a gain is (nearly) a constant in this log domain, so what is left is the
    shape. A kit profile reads it next to the embedding (kit.FitOptions.spectrum): one
    kit's drums differ in spectrum from the first frame on, which the embedding, trained
    to generalise over kits, partly discards at 5-10 ms (bench/calibration.py).
    """
    mask = frame_mask(frames, feats.shape[-1])[:, 0, 0, :].to(feats.dtype)      # [B, T]
    prof = (feats.mean(1) * mask[:, None, :]).sum(-1) / mask.sum(-1, keepdim=True)  # [B, F]
    return prof - prof.mean(1, keepdim=True)


def frame_mask(frames: torch.Tensor, t: int) -> torch.Tensor:
    """Float [B, 1, 1, T]: 1 on each item's first frames[b] frames, 0 on its padding."""
    return (torch.arange(t, device=frames.device)[None, :] < frames[:, None])[:, None, None, :].float()
