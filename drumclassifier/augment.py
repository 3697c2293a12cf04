"""Training augmentations for drum hits, batched, active only in training mode.

Data convention (shared with the trainer):
    x:       Tensor[B, 2, N] float32 stereo at ``sample_rate_hz``; the hit's onset is
             at sample 0.
    lengths: LongTensor[B], valid samples per item; x[b, :, lengths[b]:] is exactly 0.

Every augmentation is a small ``nn.Module`` with ``forward(x, lengths) -> (x, lengths)``.
It picks each item independently with probability ``p`` and leaves the others (and the
whole batch in eval mode) untouched; it never modifies its inputs in place and always
returns a batch that keeps the zero-beyond-length invariant. Randomness comes from the
global torch RNG (on x's device), so ``torch.manual_seed`` makes a run repeatable.

``Augmenter.from_config(cfg.augment, sample_rate_hz)`` chains them in the order of a
plausible signal chain: level and tone first, then pitch, the room and onset timing,
then saturation and codec, then the stereo picture, then the cut the live path makes,
and noise last so it stays inside the (possibly truncated) length.
The room stage is off (p = 0) by default; a stage at p = 0 draws no random numbers, so
adding one leaves a seeded run exactly as it was. Saturation is the Distortion stage
(tanh / hard clip). Decay reshaping, low-pass and bit-crush stages were measured, did
not help and were removed (docs/experiments.md; REMOVED_AUGMENT_KEYS).
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from fractions import Fraction

import torch
import torchaudio.transforms as AT
from omegaconf import DictConfig
from torch import Tensor, nn

from .config import merge_structured
from .errors import ConfigError

# --------------------------------------------------------------------------- helpers

def valid_mask(lengths: Tensor, n: int) -> Tensor:
    """Bool[B, N]: True where the sample index is below the item's length."""
    return torch.arange(n, device=lengths.device)[None, :] < lengths[:, None]


def zero_beyond_length(x: Tensor, lengths: Tensor) -> Tensor:
    """x: [B, C, N]. Returns x with every sample at index >= lengths[b] set to exactly 0."""
    mask = valid_mask(lengths, x.shape[-1])[:, None, :]
    return torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))


def _uniform(lo: float, hi: float, n: int, device) -> Tensor:
    """Float[n] uniform in [lo, hi]."""
    return lo + (hi - lo) * torch.rand(n, device=device)


def _log_uniform(lo: float, hi: float, n: int, device) -> Tensor:
    """Float[n] log-uniform in [lo, hi] (both > 0)."""
    return torch.exp(_uniform(math.log(lo), math.log(hi), n, device))


def _ms_to_samples(ms: float, sample_rate_hz: int) -> int:
    return round(ms * 1e-3 * sample_rate_hz)


class ItemAugmentation(nn.Module):
    """Base: picks items with probability p and hands them to ``augment``.

    Subclasses implement ``augment(x, lengths)`` on the chosen items only
    (x: [b, 2, N], lengths: [b]) and return (x, lengths) of the same shapes.
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Tensor, lengths: Tensor, exempt: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """exempt: Bool[B], items never chosen (the choice is drawn for every item either way)."""
        if not self.training or self.p == 0.0 or x.shape[0] == 0:
            return x, lengths
        chosen = torch.rand(x.shape[0], device=x.device) < self.p
        if exempt is not None:
            chosen &= ~exempt
        if not bool(chosen.any()):
            return x, lengths
        # Only the chosen items are cut to their lengths (the others keep the invariant
        # already), and with every item chosen there is no gather and scatter: each
        # [B, 2, N] pass costs ~5-20 ms at B = 64, N = 1 s, a share of a small budget.
        if bool(chosen.all()):
            y, new_lengths = self.augment(x, lengths)
            new_lengths = new_lengths.to(lengths.dtype)
            return zero_beyond_length(y.to(x.dtype), new_lengths), new_lengths
        idx = chosen.nonzero().squeeze(1)
        y, new_lengths = self.augment(x[idx], lengths[idx])
        new_lengths = new_lengths.to(lengths.dtype)
        x, lengths = x.clone(), lengths.clone()  # never write into the caller's batch
        x[idx] = zero_beyond_length(y.to(x.dtype), new_lengths)
        lengths[idx] = new_lengths
        return x, lengths

    def augment(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"p={self.p}"


# --------------------------------------------------------------------------- level and tone

class Gain(ItemAugmentation):
    """Random gain, uniform in dB: x * 10**(g/20), g in ``gain_db``."""

    def __init__(self, p: float, gain_db: tuple[float, float]):
        super().__init__(p)
        self.gain_db = tuple(gain_db)

    def augment(self, x, lengths):
        g_db = _uniform(*self.gain_db, x.shape[0], x.device)
        return x * (10.0 ** (g_db / 20.0))[:, None, None], lengths


def _biquad_peaking(f0_hz: Tensor, gain_db: Tensor, q: Tensor, sample_rate_hz: int):
    """RBJ audio-EQ-cookbook peaking filter. Inputs Float[b]. Returns (b, a) coefficients [b, 3]."""
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2 * math.pi * f0_hz / sample_rate_hz
    alpha = torch.sin(w0) / (2 * q)
    cos = torch.cos(w0)
    b = torch.stack([1 + alpha * a, -2 * cos, 1 - alpha * a], -1)
    a_ = torch.stack([1 + alpha / a, -2 * cos, 1 - alpha / a], -1)
    return b, a_


def _biquad_shelf(f0_hz: Tensor, gain_db: Tensor, sample_rate_hz: int, high: bool):
    """RBJ cookbook low/high shelf with slope S=1. Inputs Float[b]. Returns (b, a) [b, 3]."""
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2 * math.pi * f0_hz / sample_rate_hz
    cos = torch.cos(w0)
    two_sqrt_a_alpha = 2 * torch.sqrt(a) * torch.sin(w0) / 2 * math.sqrt(2.0)  # S = 1
    s = 1.0 if high else -1.0  # the high shelf is the low shelf with cos's sign flipped
    b = torch.stack([
        a * ((a + 1) + s * (a - 1) * cos + two_sqrt_a_alpha),
        -2 * s * a * ((a - 1) + s * (a + 1) * cos),
        a * ((a + 1) + s * (a - 1) * cos - two_sqrt_a_alpha),
    ], -1)
    a_ = torch.stack([
        (a + 1) - s * (a - 1) * cos + two_sqrt_a_alpha,
        2 * s * ((a - 1) - s * (a + 1) * cos),
        (a + 1) - s * (a - 1) * cos - two_sqrt_a_alpha,
    ], -1)
    return b, a_


def _fast_fft_len(n: int) -> int:
    """Smallest 2**a * 3**b * 5**c >= n: FFTs of such sizes are fast (a prime size is not)."""
    best = 1 << max(0, n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


class RandomEQ(ItemAugmentation):
    """Random spectral tilt plus peaking bumps, as causal biquads (like a real EQ).

    Tilt: a low shelf at ``tilt_low_hz`` with -t/2 dB and a high shelf at ``tilt_high_hz``
    with +t/2 dB, t uniform in ``tilt_db``: highs end up t dB louder than lows.
    Bumps: ``num_bumps`` peaking filters, centre log-uniform in ``bump_freq_hz``, gain
    uniform in ``bump_gain_db``, Q log-uniform in ``bump_q``.
    The cascade is applied by FFT convolution with its impulse response, which is the
    inverse FFT of the exact complex response (phase included, so causal like a real EQ)
    sampled at ``ir_samples`` points: long enough for the slowest resonance allowed by
    the ranges to decay by 120 dB, so the time aliasing is negligible. This is batched
    and far faster than running IIR loops sample by sample. The ringing past an item's
    length is cut, as the live path would cut it.
    """

    def __init__(self, p: float, sample_rate_hz: int, tilt_db=(-12.0, 12.0),
                 tilt_low_hz: float = 200.0, tilt_high_hz: float = 5000.0, num_bumps: int = 2,
                 bump_gain_db=(-9.0, 9.0), bump_freq_hz=(60.0, 12000.0), bump_q=(0.5, 3.0)):
        super().__init__(p)
        self.sample_rate_hz = sample_rate_hz
        self.tilt_db = tuple(tilt_db)
        self.tilt_low_hz, self.tilt_high_hz = tilt_low_hz, tilt_high_hz
        self.num_bumps = num_bumps
        self.bump_gain_db, self.bump_freq_hz, self.bump_q = (
            tuple(bump_gain_db), tuple(bump_freq_hz), tuple(bump_q))
        self.ir_samples = _biquad_ir_samples(
            min(bump_freq_hz[0], tilt_low_hz), bump_q[1],
            max(map(abs, (*bump_gain_db, *tilt_db))), sample_rate_hz)

    def augment(self, x, lengths):
        b, dev, sr = x.shape[0], x.device, self.sample_rate_hz
        ones = torch.ones(b, device=dev, dtype=torch.float64)  # biquad design in float64
        tilt = _uniform(*self.tilt_db, b, dev).double()
        filters = [_biquad_shelf(self.tilt_low_hz * ones, -tilt / 2, sr, high=False),
                   _biquad_shelf(self.tilt_high_hz * ones, tilt / 2, sr, high=True)]
        for _ in range(self.num_bumps):
            filters.append(_biquad_peaking(_log_uniform(*self.bump_freq_hz, b, dev).double(),
                                           _uniform(*self.bump_gain_db, b, dev).double(),
                                           _log_uniform(*self.bump_q, b, dev).double(), sr))
        ir = _biquads_impulse_response(filters, self.ir_samples).to(x.dtype)
        return fft_convolve(x, ir), lengths


def _biquads_impulse_response(filters: list[tuple[Tensor, Tensor]], m: int) -> Tensor:
    """Impulse response [b, m] of a cascade of biquads, each (b, a) coefficients [b, 3] float64.

    The inverse FFT of the exact complex response (phase included, so causal like the
    recursive filter) sampled at the rfft bins of an m-point FFT: exact when m is long
    enough for the slowest pole to decay (callers size m for 120 dB).
    """
    b, dev = filters[0][0].shape[0], filters[0][0].device
    # Per biquad, B(z)/A(z) with z = e^{-jw}; multiplying both by e^{jw} gives
    # b1 + (b0 + b2) cos w + j (b0 - b2) sin w, which keeps float64 precision near sharp
    # low resonances.
    w = torch.arange(m // 2 + 1, device=dev, dtype=torch.float64) * (2 * math.pi / m)
    cos, sin = torch.cos(w), torch.sin(w)

    def on_circle(c):  # c: [b, 3] -> complex [b, F]
        c0, c1, c2 = c[:, 0:1], c[:, 1:2], c[:, 2:3]
        return torch.complex(c1 + (c0 + c2) * cos, (c0 - c2) * sin)

    response = torch.ones(b, w.shape[0], device=dev, dtype=torch.complex128)
    for b_coeffs, a_coeffs in filters:
        response = response * on_circle(b_coeffs) / on_circle(a_coeffs)
    return torch.fft.irfft(response, n=m)


def _biquad_ir_samples(f_min_hz: float, q_max: float, gain_max_db: float,
                       sample_rate_hz: int) -> int:
    """FFT length for a biquad cascade's impulse response to decay by 120 dB.

    A biquad's poles decay by w0 / (2 Q A) per sample (A = 10**(dB/40) for a boost),
    so the slowest allowed one has the time constant tau below; 14 tau = 120 dB.
    """
    w0_min = 2 * math.pi * f_min_hz / sample_rate_hz
    tau = 2 * max(q_max, 1.0) * 10.0 ** (gain_max_db / 40.0) / w0_min
    return _fast_fft_len(max(1024, math.ceil(14 * tau)))


def fft_convolve(x: Tensor, ir: Tensor) -> Tensor:
    """Linear (causal) convolution of x [b, C, N] with ir [b, m] or [b, C, m]; first N samples.

    The FFT is long enough that nothing wraps into the first N samples, so the output
    at sample t depends only on x[..., :t+1]: an onset stays at its sample.
    """
    n = x.shape[-1]
    if ir.dim() == 2:
        ir = ir[:, None, :]
    n_fft = _fast_fft_len(n + ir.shape[-1] - 1)
    spec = torch.fft.rfft(x, n=n_fft) * torch.fft.rfft(ir.to(x.dtype), n=n_fft)
    return torch.fft.irfft(spec, n=n_fft)[..., :n]


# --------------------------------------------------------------------------- pitch and timing

class PitchShift(ItemAugmentation):
    """Pitch shift by resampling (tape-style): up by s semitones plays 2**(s/12) faster.

    This changes the duration too, which is realistic for drums (a smaller drum is
    both higher and shorter). s is drawn uniformly from a grid of ``step_semitones``
    over ``semitones`` (0 excluded), so each ratio has a precomputed sinc resampler.
    New length = ceil(length / ratio), capped at N; N stays fixed (cut or zero-padded).
    """

    def __init__(self, p: float, semitones=(-5.0, 5.0), step_semitones: float = 0.25):
        super().__init__(p)
        lo, hi = semitones
        n_steps = math.floor((hi - lo) / step_semitones + 1e-9)
        grid = [lo + k * step_semitones for k in range(n_steps + 1)]
        grid = [s for s in grid if abs(s) > 1e-9] or [0.0]
        self.semitones = grid
        self.ratios = [2.0 ** (s / 12.0) for s in grid]
        # resample(orig, new) turns n samples into n*new/orig; pitch up by r needs new/orig = 1/r.
        # A denominator of at most 200 keeps kernels small (<= 200 phases); the ratio error
        # is below 0.06 % (1 cent).
        fracs = [Fraction(r).limit_denominator(200) for r in self.ratios]
        self.resamplers = nn.ModuleList(
            [AT.Resample(orig_freq=f.numerator, new_freq=f.denominator) for f in fracs])
        self.exact_ratios = [float(f) for f in fracs]

    def augment(self, x, lengths):
        b, n = x.shape[0], x.shape[-1]
        which = torch.randint(len(self.resamplers), (b,), device=x.device)
        y = torch.zeros_like(x)
        new_lengths = lengths.clone()
        for k in which.unique().tolist():  # one resampler call per distinct ratio
            sel = (which == k).nonzero().squeeze(1)
            out = self.resamplers[k](x[sel])[..., :n]
            y[sel, :, :out.shape[-1]] = out
            new_lengths[sel] = torch.ceil(lengths[sel] / self.exact_ratios[k]).long().clamp(max=n)
        return y, new_lengths


class RoomReverb(ItemAugmentation):
    """Convolution with a synthesised room impulse response: direct sound + decaying noise.

    Each batch draws ``num_rooms`` rooms (fewer for a smaller batch) and each item gets one
    of them. A room: RT60 log-uniform in ``rt60_s``
    (s for the tail to fall 60 dB) and air/wall damping, a causal one-pole low-pass on the
    tail with its cutoff log-uniform in ``damping_hz``. IR h [2, m], m = RT60 samples
    (capped at N): h[0] = 1 (the direct sound, so the onset stays at its sample and
    keeps its level), h[1:] = Gaussian noise times exp(-6.91 t / RT60), independent per
    channel (a stereo room: decorrelated tails), low-passed, scaled so its energy is DRR
    dB below the direct sound's (per channel; DRR uniform in ``drr_db``).
    The tail rings past the item's end: lengths grow by the IR length (capped at N).
    Cost: two FFTs of length N + m over the chosen items (the longest RT60 drawn sets m)
    and one product; rooms are shared so that their noise and FFT are paid once per room.
    """

    num_rooms = 8

    def __init__(self, p: float, sample_rate_hz: int, rt60_s=(0.1, 1.2), drr_db=(-3.0, 12.0),
                 damping_hz=(2000.0, 12000.0)):
        super().__init__(p)
        if rt60_s[0] <= 0 or damping_hz[0] <= 0:
            raise ConfigError(f"RoomReverb: rt60_s and damping_hz must be > 0, got {rt60_s}, "
                              f"{damping_hz}")
        self.sample_rate_hz = sample_rate_hz
        self.rt60_s, self.drr_db, self.damping_hz = tuple(rt60_s), tuple(drr_db), tuple(damping_hz)

    def room_tails(self, k: int, c: int, n: int, device) -> tuple[Tensor, Tensor, int]:
        """k rooms' reverberant tails (h[1:] above, unit energy per channel), as rfft spectra.

        Returns (spectra complex [k, c, n_fft // 2 + 1], ir_len [k] samples, n_fft), n_fft
        long enough that convolving N samples with any of them does not wrap.
        """
        sr = self.sample_rate_hz
        rt60 = _log_uniform(*self.rt60_s, k, device)  # [k] s
        ir_len = (rt60 * sr).ceil().long().clamp(2, n)  # [k] samples to -60 dB
        m = int(ir_len.max())
        t = torch.arange(m, device=device)
        env = torch.exp(-math.log(1000.0) * t[None, :] / (rt60[:, None] * sr))  # [k, m], 60 dB
        env = env * (t[None, :] >= 1) * (t[None, :] < ir_len[:, None])  # h[0] is the direct sound
        n_fft = _fast_fft_len(n + m - 1)  # linear convolution: nothing wraps into [0, N)
        spec = torch.fft.rfft(torch.randn(k, c, m, device=device) * env[:, None, :], n=n_fft)
        # causal one-pole low-pass (1 - a) / (1 - a e^{-jw}), a = exp(-2 pi fc / sr)
        a = torch.exp(-2 * math.pi * _log_uniform(*self.damping_hz, k, device) / sr)[:, None, None]
        w = torch.arange(spec.shape[-1], device=device) * (2 * math.pi / n_fft)
        spec = spec * (1 - a) / (1 - a * torch.exp(-1j * w))
        # energy by Parseval (rfft bins other than DC and Nyquist stand for two)
        weight = torch.full((spec.shape[-1],), 2.0, device=device)
        weight[0] = 1.0
        if n_fft % 2 == 0:
            weight[-1] = 1.0
        energy = (spec.abs().square() * weight).sum(-1, keepdim=True) / n_fft  # [k, c, 1]
        return spec / energy.clamp(min=1e-20).sqrt(), ir_len, n_fft

    def augment(self, x, lengths):
        b, c, n = x.shape
        k = min(b, self.num_rooms)
        tails, ir_len, n_fft = self.room_tails(k, c, n, x.device)
        tail_gain = 10.0 ** (-_uniform(*self.drr_db, k, x.device) / 20.0)  # [k] tail amplitude
        spec_ir = tails.mul_(tail_gain[:, None, None]).add_(1.0)  # [k, C, F]: direct + tail
        # the items come in random order, so contiguous groups are a random assignment of
        # rooms; multiplying slice by slice in place avoids a [B, C, F] gather per batch
        spec = torch.fft.rfft(x, n=n_fft)  # [b, C, F]
        bounds = [round(j * b / k) for j in range(k + 1)]
        room_of = torch.empty(b, dtype=torch.long, device=x.device)
        for j in range(k):
            spec[bounds[j]:bounds[j + 1]].mul_(spec_ir[j])
            room_of[bounds[j]:bounds[j + 1]] = j
        y = torch.fft.irfft(spec, n=n_fft)[..., :n]
        return y, (lengths + ir_len[room_of]).clamp(max=n)


class TimeShift(ItemAugmentation):
    """Onset jitter: shift each item by a non-zero integer number of samples, uniform in
    [-max_advance_ms, +max_delay_ms].

    Delay (shift right) inserts zeros before the onset, as a slicer that triggers early;
    advance (shift left) cuts the first samples, as one that triggers late. Content
    pushed past N is dropped; lengths move with the shift (at least 1 sample remains).
    """

    def __init__(self, p: float, sample_rate_hz: int, max_delay_ms: float = 10.0,
                 max_advance_ms: float = 2.0):
        super().__init__(p)
        self.max_delay = _ms_to_samples(max_delay_ms, sample_rate_hz)
        self.max_advance = _ms_to_samples(max_advance_ms, sample_rate_hz)
        if self.max_delay + self.max_advance == 0:
            self.p = 0.0  # nothing to draw from: identity

    def augment(self, x, lengths):
        b, n = x.shape[0], x.shape[-1]
        # uniform over the non-zero shifts -max_advance..-1, 1..max_delay (p = chance of a change)
        k = torch.randint(self.max_advance + self.max_delay, (b,), device=x.device)
        shift = torch.where(k < self.max_advance, k - self.max_advance, k - self.max_advance + 1)
        shift = torch.maximum(shift, 1 - lengths.clamp(min=1))  # never advance past the end
        src = torch.arange(n, device=x.device)[None, :] - shift[:, None]  # [b, N] source index
        inside = (src >= 0) & (src < lengths[:, None])
        y = x.gather(2, src.clamp(0, n - 1)[:, None, :].expand_as(x))
        y = y * inside[:, None, :]
        return y, (lengths + shift).clamp(0, n)


# --------------------------------------------------------------------------- saturation and codec

class Distortion(ItemAugmentation):
    """Saturation with drive g (dB, uniform in ``drive_db``) relative to the item's peak.

    Soft clip: y = tanh(g * x / peak) / tanh(g) * min(peak, 1). Driving relative to the
    peak makes the amount of distortion independent of the input level; the output
    peak is min(peak, 1), so |y| <= 1 as from a real device clipping at full scale.
    With probability ``hard_clip_p`` a hard clip, clamp(g * x / peak, -1, 1), replaces tanh.
    Both are odd functions, so they add odd harmonics.
    """

    def __init__(self, p: float, drive_db=(0.0, 24.0), hard_clip_p: float = 0.2):
        super().__init__(p)
        self.drive_db, self.hard_clip_p = tuple(drive_db), hard_clip_p

    def augment(self, x, lengths):
        b = x.shape[0]
        g = (10.0 ** (_uniform(*self.drive_db, b, x.device) / 20.0))[:, None, None]
        peak = x.abs().amax(dim=(1, 2), keepdim=True)
        u = g * x / peak.clamp(min=1e-8)
        soft = torch.tanh(u) / torch.tanh(g)
        hard = u.clamp(-1.0, 1.0)
        use_hard = (torch.rand(b, device=x.device) < self.hard_clip_p)[:, None, None]
        return torch.where(use_hard, hard, soft) * peak.clamp(max=1.0), lengths


class Mp3Compression(ItemAugmentation):
    """MP3 round trip through soundfile's (libsndfile + LAME) encoder, in memory.

    ``compression_level`` uniform in the range: 0 = best (about 320 kbit/s CBR),
    0.5 about 160, 0.9 about 56, 0.99 about 32 kbit/s; libsndfile rejects 1.0.
    Only the valid part of each item is encoded; the round trip keeps the length with
    0 samples of lag (checked in tests). Runs on CPU, item by item (about a
    millisecond per 100 ms of audio), so keep p modest.
    """

    def __init__(self, p: float, sample_rate_hz: int, compression_level=(0.0, 0.9)):
        super().__init__(p)
        lo, hi = compression_level
        if not 0.0 <= lo <= hi < 1.0:
            raise ConfigError("Mp3Compression: compression_level must be within [0, 1), "
                              f"got {compression_level}")
        self.sample_rate_hz, self.compression_level = sample_rate_hz, (lo, hi)

    def augment(self, x, lengths):
        import soundfile as sf  # lazily: only training with MP3 needs it

        levels = _uniform(*self.compression_level, x.shape[0], "cpu").tolist()
        y = torch.zeros_like(x)
        for i, (n, level) in enumerate(zip(lengths.tolist(), levels)):
            if n == 0:
                continue
            item = x[i, :, :n].detach().cpu().T.contiguous().numpy()  # [n, 2] frames x channels
            buf = io.BytesIO()
            sf.write(buf, item, self.sample_rate_hz, format="MP3", compression_level=level)
            buf.seek(0)
            decoded, _ = sf.read(buf, dtype="float32", always_2d=True)
            decoded = torch.from_numpy(decoded[:n].T.copy()).to(x.device)
            y[i, :, :decoded.shape[-1]] = decoded
        return y, lengths


# --------------------------------------------------------------------------- stereo and sign

class StereoImage(ItemAugmentation):
    """Mid/side width change: mid = (L+R)/2, side = (L-R)/2, side *= w; L = mid+side, R = mid-side.

    w uniform in ``width`` (0 = mono, 1 = unchanged, >1 = wider); with probability
    ``mono_p`` w = 0, since many sources and live inputs are mono. The mid is unchanged.
    """

    def __init__(self, p: float, width=(0.0, 2.0), mono_p: float = 0.25):
        super().__init__(p)
        self.width, self.mono_p = tuple(width), mono_p

    def augment(self, x, lengths):
        b = x.shape[0]
        w = _uniform(*self.width, b, x.device)
        w = torch.where(torch.rand(b, device=x.device) < self.mono_p, torch.zeros_like(w), w)
        mid = (x[:, 0] + x[:, 1]) / 2
        side = (x[:, 0] - x[:, 1]) / 2 * w[:, None]
        return torch.stack([mid + side, mid - side], 1), lengths


class ChannelSwap(ItemAugmentation):
    """Swap left and right."""

    def augment(self, x, lengths):
        return x.flip(1), lengths


class Polarity(ItemAugmentation):
    """Polarity reversal: y = -x."""

    def augment(self, x, lengths):
        return -x, lengths


# --------------------------------------------------------------------------- context and noise

class RandomTruncate(ItemAugmentation):
    """Cut each item hard at a random post-onset length, log-uniform in [min_ms, length].

    Log-uniform so that short contexts (a few ms, what the live path sees first) are
    as well represented as long ones. No fade-out: the live path cuts hard too.
    Items already shorter than min_ms are left as they are.
    lead_in: samples of pre-onset audio at the start of every item (a model's lead-in,
    ModelConfig.lead_in_samples): the cut is drawn over what follows them, so they stay.
    """

    def __init__(self, p: float, sample_rate_hz: int, min_ms: float = 3.0, lead_in: int = 0):
        super().__init__(p)
        self.min_samples = max(1, _ms_to_samples(min_ms, sample_rate_hz))
        self.lead_in = lead_in

    def augment(self, x, lengths):
        post = (lengths - self.lead_in).clamp(min=1)           # [b] samples from the onset on
        lo = torch.full_like(post, self.min_samples).minimum(post).double()
        hi = post.double()
        u = torch.rand(x.shape[0], device=x.device, dtype=torch.float64)
        cut = torch.exp(torch.log(lo) + u * (torch.log(hi) - torch.log(lo))).round().long()
        # the base class zeroes beyond the new length
        return x, torch.minimum(cut + self.lead_in, lengths)


def pink_from_white(white: Tensor, sample_rate_hz: int) -> Tensor:
    """White noise [..., n] -> pink (1/f power) along the last axis, flat below 20 Hz, no DC
    (not rescaled)."""
    n = white.shape[-1]
    spec = torch.fft.rfft(white, dim=-1)
    f_hz = torch.fft.rfftfreq(n, d=1.0 / sample_rate_hz).to(white.device)
    # amplitude 1/sqrt(f) gives 1/f power
    scale = 1.0 / torch.sqrt(f_hz.clamp(min=20.0))
    scale[0] = 0.0
    return torch.fft.irfft(spec * scale, n=n, dim=-1)


class AddNoise(ItemAugmentation):
    """White or pink (1/f power) noise at an SNR uniform in ``snr_db``, inside the length only.

    SNR is relative to the item's RMS over both channels within its length; the noise
    RMS is measured over the same samples, so the realised SNR equals the drawn one.
    Pink with probability ``pink_p``; channels get independent noise.
    """

    def __init__(self, p: float, sample_rate_hz: int, snr_db=(20.0, 60.0), pink_p: float = 0.5):
        super().__init__(p)
        self.sample_rate_hz, self.snr_db, self.pink_p = sample_rate_hz, tuple(snr_db), pink_p

    def _pink(self, shape, device) -> Tensor:
        return pink_from_white(torch.randn(shape, device=device), self.sample_rate_hz)

    def augment(self, x, lengths):
        b, n = x.shape[0], x.shape[-1]
        mask = valid_mask(lengths, n)[:, None, :]  # [b, 1, N]
        count = (lengths.clamp(min=1) * x.shape[1]).to(x.dtype)
        rms_signal = torch.sqrt((x.square() * mask).sum(dim=(1, 2)) / count)
        noise = torch.randn_like(x)
        pink = torch.rand(b, device=x.device) < self.pink_p
        if bool(pink.any()):
            noise[pink] = self._pink(noise[pink].shape, x.device).to(x.dtype)
        noise = noise * mask
        rms_noise = torch.sqrt(noise.square().sum(dim=(1, 2)) / count).clamp(min=1e-12)
        snr = _uniform(*self.snr_db, b, x.device)
        scale = rms_signal / rms_noise / (10.0 ** (snr / 20.0))  # silent items get no noise
        return x + noise * scale[:, None, None], lengths


# --------------------------------------------------------------------------- config schema

# augment keys of stages measured and removed (docs/experiments.md) -> their "off" value
# (config.drop_removed; ...: a setting, dropped whatever it holds)
REMOVED_AUGMENT_KEYS = {f"{stage}.{key}": 0.0 if key == "p" else ...
                        for stage, keys in (("decay", ("p", "decay_factor", "max_boost_db")),
                                            ("lowpass", ("p", "cutoff_hz", "order")),
                                            ("bitcrush", ("p", "bits", "rate_hz")))
                        for key in keys}

@dataclass
class GainConfig:
    p: float = 0.5
    gain_db: list[float] = field(default_factory=lambda: [-20.0, 6.0])


@dataclass
class EQConfig:
    p: float = 0.8
    tilt_db: list[float] = field(default_factory=lambda: [-12.0, 12.0])
    tilt_low_hz: float = 200.0
    tilt_high_hz: float = 5000.0
    num_bumps: int = 2
    bump_gain_db: list[float] = field(default_factory=lambda: [-9.0, 9.0])
    bump_freq_hz: list[float] = field(default_factory=lambda: [60.0, 12000.0])
    bump_q: list[float] = field(default_factory=lambda: [0.5, 3.0])


@dataclass
class PitchShiftConfig:
    p: float = 0.5
    semitones: list[float] = field(default_factory=lambda: [-5.0, 5.0])
    step_semitones: float = 0.25


@dataclass
class RoomConfig:
    p: float = 0.0
    rt60_s: list[float] = field(default_factory=lambda: [0.1, 1.2])
    drr_db: list[float] = field(default_factory=lambda: [-3.0, 12.0])
    damping_hz: list[float] = field(default_factory=lambda: [2000.0, 12000.0])


@dataclass
class TimeShiftConfig:
    p: float = 0.7
    max_delay_ms: float = 10.0
    max_advance_ms: float = 2.0


@dataclass
class DistortionConfig:
    p: float = 0.2
    drive_db: list[float] = field(default_factory=lambda: [0.0, 24.0])
    hard_clip_p: float = 0.2


@dataclass
class Mp3Config:
    p: float = 0.1
    compression_level: list[float] = field(default_factory=lambda: [0.0, 0.9])


@dataclass
class StereoImageConfig:
    p: float = 0.5
    width: list[float] = field(default_factory=lambda: [0.0, 2.0])
    mono_p: float = 0.25


@dataclass
class ProbabilityConfig:
    p: float = 0.5


@dataclass
class TruncateConfig:
    p: float = 0.5
    min_ms: float = 3.0


@dataclass
class NoiseConfig:
    p: float = 0.3
    snr_db: list[float] = field(default_factory=lambda: [20.0, 60.0])
    pink_p: float = 0.5


@dataclass
class AugmentConfig:
    gain: GainConfig = field(default_factory=GainConfig)
    eq: EQConfig = field(default_factory=EQConfig)
    pitch_shift: PitchShiftConfig = field(default_factory=PitchShiftConfig)
    room: RoomConfig = field(default_factory=RoomConfig)
    time_shift: TimeShiftConfig = field(default_factory=TimeShiftConfig)
    distortion: DistortionConfig = field(default_factory=DistortionConfig)
    mp3: Mp3Config = field(default_factory=Mp3Config)
    stereo_image: StereoImageConfig = field(default_factory=StereoImageConfig)
    channel_swap: ProbabilityConfig = field(default_factory=ProbabilityConfig)
    polarity: ProbabilityConfig = field(default_factory=ProbabilityConfig)
    truncate: TruncateConfig = field(default_factory=TruncateConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)


def _check_ranges(cfg: AugmentConfig) -> None:
    """Every list-valued field is a [low, high] range with low <= high."""
    for name in cfg.__dataclass_fields__:
        section = getattr(cfg, name)
        for key in section.__dataclass_fields__:
            value = getattr(section, key)
            if isinstance(value, list) and (len(value) != 2 or value[0] > value[1]):
                raise ConfigError(f"augment.{name}.{key} must be [low, high] with low <= high, "
                                  f"got {value}")
            if (key == "p" or key.endswith("_p")) and not 0.0 <= value <= 1.0:
                raise ConfigError(f"augment.{name}.{key} is a probability, got {value}")
    for key, value in (("room.rt60_s", cfg.room.rt60_s), ("room.damping_hz", cfg.room.damping_hz)):
        if value[0] <= 0:
            raise ConfigError(f"augment.{key} must be > 0 (log-uniform), got {value}")
    level = cfg.mp3.compression_level
    if not (0.0 <= level[0] and level[1] < 1.0):
        raise ConfigError(f"augment.mp3.compression_level must be within [0, 1), got {level}")


def load_augment_config(src: dict | DictConfig | AugmentConfig | None = None) -> AugmentConfig:
    """The ``augment:`` section (dict or DictConfig; None = defaults) onto the typed schema.

    Raises ConfigError on an unknown key (a typo), a wrong type or a bad range.
    """
    if isinstance(src, AugmentConfig):
        cfg = src
    else:
        cfg = merge_structured(AugmentConfig, src or {}, source="augment",
                               removed=REMOVED_AUGMENT_KEYS)
    _check_ranges(cfg)
    return cfg


# --------------------------------------------------------------------------- the chain

class Augmenter(nn.Module):
    """All augmentations in signal-chain order; identity in eval mode.

    forward(x: [B, 2, N], lengths: [B]) -> (x, lengths), zero beyond each length.
    """

    def __init__(self, stages: list[nn.Module]):
        super().__init__()
        self.stages = nn.ModuleList(stages)

    @classmethod
    def from_config(cls, cfg: dict | DictConfig | AugmentConfig | None,
                    sample_rate_hz: int, lead_in: int = 0) -> Augmenter:
        """lead_in: samples of pre-onset audio leading every item (RandomTruncate keeps
        them). Pitch shift and time shift move the onset within the item by up to a frame
        or two, as onset jitter does."""
        c = load_augment_config(cfg)
        sr = sample_rate_hz
        return cls([
            Gain(c.gain.p, c.gain.gain_db),
            RandomEQ(c.eq.p, sr, c.eq.tilt_db, c.eq.tilt_low_hz, c.eq.tilt_high_hz, c.eq.num_bumps,
                     c.eq.bump_gain_db, c.eq.bump_freq_hz, c.eq.bump_q),
            PitchShift(c.pitch_shift.p, c.pitch_shift.semitones, c.pitch_shift.step_semitones),
            RoomReverb(c.room.p, sr, c.room.rt60_s, c.room.drr_db, c.room.damping_hz),
            TimeShift(c.time_shift.p, sr, c.time_shift.max_delay_ms, c.time_shift.max_advance_ms),
            Distortion(c.distortion.p, c.distortion.drive_db, c.distortion.hard_clip_p),
            Mp3Compression(c.mp3.p, sr, c.mp3.compression_level),
            StereoImage(c.stereo_image.p, c.stereo_image.width, c.stereo_image.mono_p),
            ChannelSwap(c.channel_swap.p),
            Polarity(c.polarity.p),
            RandomTruncate(c.truncate.p, sr, c.truncate.min_ms, lead_in),
            AddNoise(c.noise.p, sr, c.noise.snr_db, c.noise.pink_p),
        ])

    def forward(self, x: Tensor, lengths: Tensor, keep_length: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """keep_length: Bool[B], items the random truncation leaves whole (groove onsets
        already cut at a live context, train.groove_truncate=false)."""
        for stage in self.stages:
            if isinstance(stage, RandomTruncate):
                x, lengths = stage(x, lengths, keep_length)
            else:
                x, lengths = stage(x, lengths)
        return x, lengths


__all__ = [
    "AddNoise", "AugmentConfig", "Augmenter", "ChannelSwap", "Distortion", "Gain",
    "ItemAugmentation", "Mp3Compression", "PitchShift", "Polarity", "RandomEQ", "RoomReverb",
    "RandomTruncate", "StereoImage", "TimeShift", "load_augment_config", "valid_mask",
    "fft_convolve", "zero_beyond_length",
]
