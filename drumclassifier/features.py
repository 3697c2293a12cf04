"""Stereo log-mel front end with a fixed reference, and optional per-clip channel normalisation.

LogMel has no per-clip normalisation and no `center=True` padding: frame t covers samples
[t*hop, t*hop + n_fft), so a clip, the same clip zero-padded to 4 s, and a live
snippet of it all give the same frames. Features are log(mel + floor) - log(floor):
digital silence maps to exactly 0, which is also what the model's zero padding
inserts, so padded and unpadded computations agree.

`features.norm` (default none) adds a per-clip channel normalisation against EQ, mic
and level differences: `band_mean` (BandMeanNorm) or `pcen` (PCEN). They are built here
(`channel_norm`) but the network owns and applies them as its first layer (model.CRNN),
so learnable PCEN parameters train with the network and travel in its state_dict; with
norm none the network has no such layer and old checkpoints load unchanged. Both read
only an item's valid frames: padding, and a batch's other items, change nothing.
Both are blind at the shortest contexts in a way the plain log-mel is not: with one
frame (5 ms) band_mean leaves nothing (see `band_mean_min_frames`), and PCEN's gain
normalisation leaves little of the spectrum's level (E^(1 - alpha) at the onset).
"""
from __future__ import annotations

import math

import torch
import torchaudio
from torch import nn

from .config import FeatureConfig, ModelConfig


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


class BandMeanNorm(nn.Module):
    """Per (channel, mel band) mean removal over each item's valid frames, on the log-mel.

    A fixed EQ or mic response is a constant per band in the log domain, so removing the
    band's mean over the clip removes it; what is left is how each band evolves in time.
    The mean is sum / max(frames, min_frames): with min_frames = 1 (default) it is the
    plain mean over the valid frames (zero mean per band); a larger value shrinks the
    mean of a short context towards 0 (as if the missing frames were silence), so the
    first frames of a live hit keep part of their spectrum instead of becoming all 0.

    forward(feats [B, C, F, T] zero beyond each item's frames, frames [B]) -> same shape.
    """

    def __init__(self, min_frames: int = 1):
        super().__init__()
        self.min_frames = int(min_frames)

    def forward(self, feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        mask = frame_mask(frames, feats.shape[-1]).to(feats.dtype)
        count = frames.clamp(min=self.min_frames).to(feats.dtype)[:, None, None, None]
        mean = (feats * mask).sum(-1, keepdim=True) / count  # [B, C, F, 1]
        return (feats - mean) * mask

    def extra_repr(self) -> str:
        return f"min_frames={self.min_frames}"


class PCEN(nn.Module):
    """Per-channel energy normalisation (Wang et al. 2017), causal, per mel band.

    On the mel energy E = mel / log_floor (recovered exactly from the log-mel as
    expm1(feats), so silence is 0):
        M[t] = (1 - s) M[t-1] + s E[t],  M[-1] = 0 (silence before the onset)
        PCEN[t] = (E[t] / (eps + M[t])**alpha + delta)**r - delta**r
    M is a causal first-order low-pass (computed as one lower-triangular matrix product,
    see `smoother`): the output at frame t reads frames 0..t only, so a live snippet
    gives the same first frames as the whole hit.
    alpha ~ 1 divides each band by its recent level (automatic gain control: EQ and level
    differences cancel), delta and r compress like a log but bounded near 0; silence
    and padding map to exactly 0. s comes from the time constant T (frames):
    s = (sqrt(1 + 4 T^2) - 1) / (2 T^2), as in librosa.pcen.
    Fixed (default): the parameters are constants from the config (non-persistent
    buffers). Learnable: alpha, delta, r and s per mel band, stored as logs (so they stay
    positive; alpha and r are clamped to <= 1 when used), initialised from the config.

    forward(feats [B, C, F, T] log-mel zero beyond each item's frames, frames [B]) -> same.
    """

    def __init__(self, f: FeatureConfig, sample_rate_hz: int):
        super().__init__()
        pc = f.pcen
        t_frames = pc.time_constant_s * sample_rate_hz / f.hop_length
        s = (math.sqrt(1 + 4 * t_frames ** 2) - 1) / (2 * t_frames ** 2)
        init = torch.log(torch.tensor([pc.alpha, pc.delta, pc.r, s]).clamp(min=1e-6))
        init = init[:, None].repeat(1, f.n_mels)  # [4, F]: log alpha, log delta, log r, log s
        self.eps, self.learnable = pc.eps, pc.learnable
        if pc.learnable:
            self.log_params = nn.Parameter(init)
        else:
            self.register_buffer("log_params", init, persistent=False)

    def forward(self, feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        alpha, delta, r, s = torch.exp(self.log_params)[..., None]  # each [F, 1]
        alpha, r, s = alpha.clamp(max=1.0), r.clamp(max=1.0), s.clamp(max=1.0 - 1e-6)
        energy = torch.expm1(feats)  # [B, C, F, T], mel / log_floor
        t = feats.shape[-1]
        if self.learnable:  # one smoother per band
            smooth = torch.einsum("bcfj,ftj->bcft", energy, self.smoother(s, t))
        else:  # one s for all bands: one [T, T] kernel, a plain matrix product
            smooth = energy @ self.smoother(s[:1], t)[0].T
        out = (energy / (self.eps + smooth) ** alpha + delta) ** r - delta ** r
        return out * frame_mask(frames, feats.shape[-1]).to(feats.dtype)

    @staticmethod
    def smoother(s: torch.Tensor, t: int) -> torch.Tensor:
        """[F, T, T] lower-triangular K[f, t, j] = s (1 - s)^(t - j) for j <= t, else exactly 0.

        M = K E is the recursion M[t] = (1 - s) M[t-1] + s E[t] from M[-1] = 0, unrolled:
        one batched matrix product instead of T sequential steps (T <= 173 frames per 1 s),
        and the zeros above the diagonal keep it exactly causal.
        """
        k = torch.arange(t, device=s.device)
        lag = (k[:, None] - k[None, :]).to(s.dtype)  # [T, T], t - j
        causal = lag >= 0
        log_k = torch.log(s)[:, :, None] + lag.clamp(min=0) * torch.log1p(-s)[:, :, None]
        return torch.where(causal, torch.exp(log_k), torch.zeros((), dtype=s.dtype, device=s.device))

    def extra_repr(self) -> str:
        return f"eps={self.eps}, learnable={self.learnable}"


def channel_norm(cfg: ModelConfig) -> nn.Module | None:
    """The normalisation `features.norm` asks for; None for `none`."""
    f = cfg.features
    if f.norm == "band_mean":
        return BandMeanNorm(f.band_mean_min_frames)
    if f.norm == "pcen":
        return PCEN(f, cfg.sample_rate_hz)
    return None
