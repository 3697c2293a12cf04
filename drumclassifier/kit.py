"""Kit profiles: what calibration learned about one drummer's own kit.

A profile maps the model's hit embedding (`DrumClassifier.embed`, [B, D]), by default
with the hit's log-mel band profile appended ([B, D + n_mels], features.band_profile),
to the kit's PIECES (kick, snare, "floor tom", "ride bell"...), each piece belonging to
one of the model's classes and sending its own MIDI note. It holds:

  - one linear head over the pieces on those standardised features, for every context:
    logits = (((x - mean) / std) @ weight.T + bias) / T, [B, P]; since version 4 one
    sigmoid per piece (probs = sigmoid(logits): kick and hihat struck together are both
    present), before it a softmax (one piece per hit);
  - per piece: the softest and hardest peak level heard in calibration (dBFS), which set
    its velocity curve, and a gate: hits quieter than `gate_db` are ignored (bleed);
  - the sha256 of the weights file the embedding came from: a profile fitted on other
    weights is meaningless and is refused.

File format (JSON, UTF-8, no pickle; numbers as lists), version 4 (versions 1, with a
single "head" and no temperature, 2, without the band profile, and 3, a softmax head,
are still read; a profile with one head per context, an option measured and removed, is
refused):

    {"format": "drumclassifier-kit", "version": 4,
     "weights_sha256": "<hex of the model weights file>",
     "labels": ["kick", "snare", "hihat", "toms", "cymbals"],   # the model's classes
     "embedding_dim": D,                  # the head's input: members * 64 for a seed
                                          # ensemble, + n_mels with the band profile
     "pieces": [{"name": "floor tom", "label": "toms", "note": 41,
                 "min_db": -30.1, "max_db": -4.2, "gate_db": -42.1,
                 "min_confidence": 0.0, "n_hits": 8, "cv_accuracy": 0.95}, ...],
     "heads": [{"temperature": 1.0, "normalise": true,      # one head
                "multi_label": true,                     # sigmoids (version 4)
                "spectrum_dims": 64 (the band profile's, the input's last; 0 = none),
                "mean": [D], "std": [D], "weight": [[D] x P], "bias": [P]}],
     "fit": {"contexts_ms": [...], "augment": 120, "l2": ..., "temperature": ...,
             "seconds": ..., "cv_folds": k, "cv_accuracy": ...},
     "created": "ISO time"}

Fitting augments every calibration hit `augment` times (gain, -0.5..+1.5 ms onset
jitter, low noise, truncation to one of the live contexts): without it, the onset
jitter of a live detector breaks short contexts (measured on a first baseline). Since
version 4 the variants are what a groove makes of the hits (groove_variants): pieces
struck together, hits over the tails of earlier ones, some heard through a room mic,
with the audio before the onset the model reads; the drummer still only plays each piece.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .classes import GM_NOTES
from .config import LIVE_CONTEXT_MS
from .errors import DrumClassifierError
from .features import frames_for

FORMAT, VERSION = "drumclassifier-kit", 4
# version 1: one head, no temperature; 2: no band profile; 3: a softmax head (4: one
# sigmoid per piece, Head.multi_label)
READS = (1, 2, 3, 4)
# the live contexts, and the full 1 s window (measured in bench/calibration.py: without it
# the full-window recall fell to 0.62 at K=8; short contexts unchanged within the spread)
DEFAULT_CONTEXTS_MS = (5.0, 10.0, 20.0, 30.0, 50.0, 1000.0)

# General MIDI drum notes: a guess from a piece's name (else its class's, classes.GM_NOTES)
NAME_NOTES = [("pedal", 44), ("open", 46), ("bell", 53), ("ride", 51), ("china", 52),
              ("splash", 55), ("crash", 49), ("floor", 41), ("rim", 37), ("high", 48),
              ("low", 45), ("mid", 47), ("rack", 48)]


class KitError(DrumClassifierError):
    """A kit profile is missing, corrupt, foreign, of another version or other weights."""


def guess_note(name: str, label: str) -> int:
    """A General MIDI note for a piece: from words in its name, else its class's note."""
    low = name.lower()
    if low != label:
        for word, note in NAME_NOTES:
            if word in low:
                return note
    return GM_NOTES.get(label, GM_NOTES["snare"])


def parse_piece(spec: str, labels: Sequence[str]) -> tuple[str, str]:
    """'toms--floor tom' -> ('floor tom', 'toms'); 'kick' -> ('kick', 'kick')."""
    spec = spec.strip()
    label, _, name = spec.partition("--")
    label, name = label.strip().lower(), (name.strip() or label.strip().lower())
    if label not in labels:
        raise DrumClassifierError(
            f"piece {spec!r}: its class must be one of {', '.join(labels)} "
            "(write CLASS or CLASS--piece name, e.g. toms--floor tom)")
    return name, label


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- the head -----------------------------------------------------------------------------
@dataclass
class Head:
    """One linear head over the pieces: logits = (z @ weight.T + bias) / temperature, with
    z the standardised input: the embedding (optionally first L2-normalised), then, when
    spectrum_dims > 0, that many columns of band profile (never normalised with it).
    """
    mean: torch.Tensor          # [D]
    std: torch.Tensor           # [D]
    weight: torch.Tensor        # [P, D]
    bias: torch.Tensor          # [P]
    temperature: float = 1.0
    normalise: bool = False
    spectrum_dims: int = 0
    # True (version 4): one sigmoid per piece, each piece present or not on its own (kick
    # + hihat both near 1); False (versions 1-3): a softmax, one piece per hit
    multi_label: bool = False

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        """[B, D] embeddings -> [B, P] logits before the temperature."""
        x = head_input(emb, self.normalise, self.spectrum_dims)
        return ((x - self.mean) / self.std) @ self.weight.T + self.bias

    def probs(self, emb: torch.Tensor) -> torch.Tensor:
        """[B, D] embeddings -> [B, P] piece probabilities (multi_label: each piece's
        presence; else a distribution over the pieces)."""
        return logits_to_probs(self.logits(emb) / self.temperature, self.multi_label)

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, "multi_label": self.multi_label,
                "normalise": self.normalise, "spectrum_dims": self.spectrum_dims,
                **{k: getattr(self, k).tolist() for k in HEAD_TENSORS}}

    @classmethod
    def from_dict(cls, d: dict) -> Head:
        # (a "context_ms" written by releases that fitted one head per context is not read)
        return cls(*(torch.tensor(d[k], dtype=torch.float32) for k in HEAD_TENSORS),
                   temperature=float(d.get("temperature", 1.0)),
                   normalise=bool(d.get("normalise", False)),
                   spectrum_dims=int(d.get("spectrum_dims", 0)),
                   multi_label=bool(d.get("multi_label", False)))


HEAD_TENSORS = ("mean", "std", "weight", "bias")


def logits_to_probs(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """[..., P] logits -> per-piece sigmoids (multi_label) or a softmax over the pieces."""
    return torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)


def head_input(x: torch.Tensor, normalise: bool, spectrum_dims: int) -> torch.Tensor:
    """[B, D] features -> [B, D] as the head reads them: with normalise, the embedding
    part (all but the last spectrum_dims columns) L2-normalised."""
    x = x.float()
    if not normalise:
        return x
    d = x.shape[1] - spectrum_dims
    return torch.cat([torch.nn.functional.normalize(x[:, :d], dim=-1), x[:, d:]], 1)


def fit_head(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float = 1e-2,
             steps: int = 50, normalise: bool = False, spectrum_dims: int = 0,
             balance: float = 0.0) -> Head:
    """A logistic regression head on standardised features (L-BFGS, on the CPU).

    Args:
        x: [N, D] embeddings.
        y: [N] class indices in [0, n_classes), each present: a multinomial head
            (softmax); or [N, n_classes] multi-hot targets: one sigmoid per class
            (multi_label; a row of zeros is an onset with no piece).
        l2: weighs 0.5 * ||W||^2, added to the mean cross-entropy (multi-label: the
            binary cross-entropy summed over classes, averaged over rows).
        balance: multi-label only: each class's positives weigh (negatives / positives)
            ** balance (0: as they come; 1: a class's positives weigh as much as its
            negatives: a kit of 20 pieces has each piece absent in most rows).
        normalise: L2-normalise each embedding before standardising.
        spectrum_dims: x's last columns that are band profile, not embedding.
    """
    x = head_input(x, normalise, spectrum_dims)
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
    z = (x - mean) / std
    w = torch.zeros(n_classes, x.shape[1], dtype=torch.float32, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    multi = y.ndim == 2
    F = torch.nn.functional
    if multi:
        pos = y.float().sum(0).clamp_min(1)                         # [n_classes]
        pos_weight = ((len(y) - pos) / pos).clamp_min(1) ** balance

    def closure():
        opt.zero_grad()
        logits = z @ w.T + b
        data = (F.binary_cross_entropy_with_logits(logits, y.float(), reduction="sum",
                                                   pos_weight=pos_weight)
                / len(y)) if multi else F.cross_entropy(logits, y)
        loss = data + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss
    with torch.enable_grad():
        opt.step(closure)
    return Head(mean, std, w.detach().float(), b.detach().float(), normalise=normalise,
                spectrum_dims=spectrum_dims, multi_label=multi)


def fit_temperature(logits: torch.Tensor, y: torch.Tensor) -> float:
    """The temperature T minimising the cross-entropy of softmax(logits / T) on held-out
    predictions ([N, P] logits, [N] targets): a grid over T in 0.25..32 (log-spaced),
    so that a probability of 0.8 is right about 80% of the time on hits the head did not
    see. Over-confident heads (fitted on 20 near-copies of a few hits) get T > 1."""
    grid = torch.logspace(math.log10(0.25), math.log10(32), 49)
    nll = torch.stack([torch.nn.functional.cross_entropy(logits / t, y) for t in grid])
    return float(grid[int(nll.argmin())])


# ---- augmentation -------------------------------------------------------------------------
def augment_hits(waves: Sequence[torch.Tensor], n_aug: int, sample_rate_hz: int,
                 contexts_ms: Sequence[float], rng: np.random.Generator,
                 jitter_ms: tuple[float, float] = (-0.5, 1.5), eq_db: float = 0.0
                 ) -> tuple[list[torch.Tensor], list[int], list[float]]:
    """Each [2, n] hit (onset at sample 0) -> n_aug variants, each cut to a live context.

    Per variant: gain -10..+6 dB (clipped at full scale), onset jitter in jitter_ms
    (negative: the detector fired early, zeros before the hit; positive: late, the
    attack's start is lost), with eq_db > 0 one peaking EQ band of +-eq_db at 60 Hz-10 kHz
    (log-uniform, Q 0.7-2: another mic position or room), white noise 35-60 dB below the
    hit's peak, and truncation to one of `contexts_ms` (cycled, so each context gets its
    share). Returns (variants, index of the source hit of each, context of each in ms).
    """
    import torchaudio.functional as AF
    out, src, ctx_ms = [], [], []
    for i, w in enumerate(waves):
        w = w.float()
        peak = float(w.abs().max()) or 1e-6
        for k in range(n_aug):
            jit = int(round(rng.uniform(*jitter_ms) * sample_rate_hz / 1000))
            v = torch.cat([torch.zeros(2, -jit), w], 1) if jit < 0 else w[:, jit:]
            c_ms = float(contexts_ms[(k + i) % len(contexts_ms)])
            v = v[:, :max(int(round(c_ms * sample_rate_hz / 1000)), 16)].clone()
            if eq_db > 0:      # causal, so filtering after the cut changes nothing kept
                v = AF.equalizer_biquad(v, sample_rate_hz, float(np.exp(rng.uniform(
                    np.log(60), np.log(10000)))), rng.uniform(-eq_db, eq_db),
                    rng.uniform(0.7, 2.0))
            v *= 10 ** (rng.uniform(-10, 6) / 20)
            snr = rng.uniform(35, 60)
            v += torch.from_numpy(rng.standard_normal(v.shape).astype(np.float32)) * (
                peak * 10 ** (-snr / 20))
            out.append(v.clamp(-1, 1))
            src.append(i)
            ctx_ms.append(c_ms)
    return out, src, ctx_ms


@dataclass
class GrooveMix:
    """How groove_variants makes a groove out of calibration hits (probabilities per
    variant; levels in dB against the hit's own; times in ms)."""
    p_together: float = 0.5            # another piece struck with the hit (kick + hihat)
    p_three: float = 0.15              # of those, two others (crash + kick + hihat)
    together_ms: tuple[float, float] = (0.0, 4.0)    # their onsets after the hit's
    p_tails: float = 0.7               # earlier hits still ringing under the onset
    tails: tuple[int, int] = (1, 3)    # how many
    tail_ms: tuple[float, float] = (25.0, 800.0)     # how long before (log-uniform)
    p_empty: float = 0.05              # no new hit, tails only: an onset with no piece
    level_db: tuple[float, float] = (-12.0, 0.0)     # each struck or ringing hit's level
    # Heard through one room mic: mono, the room's reverberant tail (augment.RoomReverb).
    # p_room 0.3 with p_pink 0.5 and take_too, against none (bench/kit_grooves.py
    # --play-along 100, paired by stream, two takes, docs/calibration.md "Heard through a
    # room mic"): held-out toms +0.080 (the room: +0.20, TR808's kick no longer a tom
    # there), cymbals +0.035, validation hihat +0.05-0.06, snare +0.01-0.02; 0.5 lost
    # validation kicks (-0.064), noise 25-60 dB lost held-out toms in noise (-0.035)
    p_room: float = 0.3
    room_rt60_s: tuple[float, float] = (0.2, 0.8)
    room_drr_db: tuple[float, float] = (0.0, 15.0)   # direct over tail energy
    rooms: int = 3                     # room versions of each hit (drawn once per fit)
    p_pink: float = 0.5                # the noise floor pink (1/f, hum and fans) not white
    noise_db: tuple[float, float] = (35.0, 60.0)     # the noise floor under the hit's peak
    take_too: bool = True              # room and pink noise for a play-along take's variants


def room_versions(hits: Sequence[torch.Tensor], n_rooms: int, sample_rate_hz: int,
                  mix: GrooveMix, rng: np.random.Generator) -> list[list[torch.Tensor]]:
    """Each [2, n] hit as one room mic hears it, n_rooms times: mono, convolved with a
    synthesised room (augment.RoomReverb: direct sound + decaying noise tail, RT60 and
    direct-to-tail ratio from mix), the tail ringing past the hit's end.
    Returns [room][hit] -> [2, n + the room's IR length]."""
    from .augment import RoomReverb, zero_beyond_length
    rr = RoomReverb(1.0, sample_rate_hz, rt60_s=mix.room_rt60_s, drr_db=mix.room_drr_db)
    lengths = torch.tensor([h.shape[-1] for h in hits])
    n = int(lengths.max()) + int(mix.room_rt60_s[1] * sample_rate_hz)
    x = torch.zeros(len(hits), 1, n)                  # [H, 1, N], each hit at sample 0
    for i, h in enumerate(hits):
        x[i, 0, :h.shape[-1]] = h.float().mean(0)     # one mic: mono
    out = []
    # RoomReverb draws from torch's generator: seeded from rng so that a fit repeats,
    # without touching the caller's torch random state
    with torch.random.fork_rng():
        torch.manual_seed(int(rng.integers(2 ** 31)))
        for _ in range(n_rooms):
            perm = torch.randperm(len(hits))          # rooms go to contiguous groups
            y, ln = rr.augment(x[perm], lengths[perm])
            y = zero_beyond_length(y, ln)
            room = [torch.empty(0)] * len(hits)
            for k, i in enumerate(perm.tolist()):
                room[i] = y[k, :, :int(ln[k])].expand(2, -1)   # [2, n]: both channels
            out.append(room)
    return out


def noise_floor(shape: tuple[int, ...], pink: bool, sample_rate_hz: int,
                rng: np.random.Generator) -> torch.Tensor:
    """Unit-variance noise [.., n]: white, or pink (1/f power, flat below 20 Hz, no DC)."""
    w = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
    if not pink:
        return w
    from .augment import pink_from_white
    y = pink_from_white(w, sample_rate_hz)
    return y / y.std().clamp(min=1e-12)


def groove_variants(hits: Sequence[torch.Tensor], piece_of_hit: Sequence[int], n_pieces: int,
                    n_aug: int, sample_rate_hz: int, contexts_ms: Sequence[float],
                    lead_samples: int, rng: np.random.Generator,
                    jitter_ms: tuple[float, float] = (-0.5, 1.5), mix: GrooveMix | None = None
                    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, list[int]]:
    """Calibration hits -> what a groove makes of them, as the live path cuts it.

    Each [2, n] hit (onset at sample 0, the model rate) gets n_aug variants: sometimes
    struck with one or two other pieces (onsets 0-4 ms apart), often over the tails of
    1-3 earlier hits of the kit (25-800 ms before), each hit at its own level; the
    detector's onset jitter; with p_room all of a variant's hits heard through one room
    mic (room_versions); one global gain (-10..+6 dB), noise noise_db (35-60) dB below
    the peak (pink with p_pink, else white); cut to one of contexts_ms (cycled) after the onset,
    or where the last hit ends if that is sooner (as a sample file ends), with the
    lead_samples before it (what the model reads as already ringing). A few variants (p_empty) have
    no new hit: tails only, the target empty.

    Returns (waves [2, context] each, leads [V, 2, lead_samples], multi-hot targets
    [V, n_pieces] (the pieces whose hits start at the onset), the calibration hit each
    variant was made from).
    """
    mix = mix or GrooveMix()
    rooms = (room_versions(hits, mix.rooms, sample_rate_hz, mix, rng)
             if mix.p_room > 0 else [])
    y = np.asarray(piece_of_hit, int)
    by_piece = [np.flatnonzero(y == p) for p in range(n_pieces)]
    ms = sample_rate_hz / 1000
    waves, leads, targets, src = [], [], [], []
    for i, w in enumerate(hits):
        peak_i = float(w.abs().max()) or 1e-6
        for k in range(n_aug):
            ctx = max(int(round(contexts_ms[(k + i) % len(contexts_ms)] * ms)), 16)
            struck = [] if rng.random() < mix.p_empty else [(i, 0)]
            if struck and rng.random() < mix.p_together:
                others = [p for p in range(n_pieces) if p != y[i] and len(by_piece[p])]
                n = 2 if rng.random() < mix.p_three else 1
                for p in rng.permutation(others)[:n]:
                    struck.append((int(rng.choice(by_piece[p])),
                                   int(rng.uniform(*mix.together_ms) * ms)))
            ringing = []
            if rng.random() < mix.p_tails or not struck:
                lo, hi = np.log(mix.tail_ms[0]), np.log(mix.tail_ms[1])
                for _ in range(int(rng.integers(mix.tails[0], mix.tails[1] + 1))):
                    ringing.append((int(rng.integers(len(hits))),
                                    -int(np.exp(rng.uniform(lo, hi)) * ms)))
            # the detector's onset: late (positive jitter) cuts the attack's start
            jit = int(round(rng.uniform(*jitter_ms) * ms))
            buf = torch.zeros(2, lead_samples + ctx)     # sample lead_samples = the onset
            end = lead_samples + 16                      # the last sounding sample
            src_hits = (rooms[int(rng.integers(len(rooms)))]
                        if rooms and rng.random() < mix.p_room else hits)
            for j, start in struck + ringing:
                gain = 10 ** (rng.uniform(*mix.level_db) / 20)
                a = lead_samples + start - jit           # where the hit starts in buf
                lo_h = max(0, -a)
                m = min(src_hits[j].shape[-1] - lo_h, buf.shape[-1] - max(a, 0))
                if m > 0:    # only the part of the hit inside buf is scaled and added
                    buf[:, max(a, 0):max(a, 0) + m] += gain * src_hits[j][:, lo_h:lo_h + m]
                    end = max(end, max(a, 0) + m)
            # hits shorter than the context end there, as a sample file does (and the
            # embedding of the 1 s context costs what the hit holds, not 1 s)
            buf = buf[:, :end]
            buf *= 10 ** (rng.uniform(-10, 6) / 20)
            snr = rng.uniform(*mix.noise_db)
            pink = mix.p_pink > 0 and rng.random() < mix.p_pink   # (no draw when off)
            buf += noise_floor(tuple(buf.shape), pink, sample_rate_hz, rng) * (
                peak_i * 10 ** (-snr / 20))
            buf = buf.clamp(-1, 1)
            waves.append(buf[:, lead_samples:].clone())
            leads.append(buf[:, :lead_samples])
            t = torch.zeros(n_pieces)
            t[[int(y[j]) for j, _ in struck]] = 1.0
            targets.append(t)
            src.append(i)
    return waves, torch.stack(leads), torch.stack(targets), src


@dataclass
class PlayedTake:
    """A play-along take (realtime/playalong.py) at the model rate, for fit_profile."""
    audio: torch.Tensor      # [2, n] the whole take
    onsets: np.ndarray       # [G] onset samples of every onset the live detector found
    targets: torch.Tensor    # [G, P] multi-hot: the pieces the pattern puts at each onset


def played_variants(take: PlayedTake, n_aug: int, sample_rate_hz: int,
                    contexts_ms: Sequence[float], lead_samples: int, rng: np.random.Generator,
                    jitter_ms: tuple[float, float] = (-0.5, 1.5), mix: GrooveMix | None = None
                    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Each onset of a played take -> n_aug variants as the live path cuts it: the
    detector's onset jitter, one of contexts_ms (cycled) after the onset with the
    lead_samples before it (the real tails of the take), one gain (-10..+6 dB) and noise
    35-60 dB below the peak, as groove_variants does with synthesised grooves (with
    mix.take_too, also its room mic, pink noise and noise_db).
    Returns (waves [2, context] each, leads [V, 2, lead_samples], targets [V, P])."""
    mix = mix or GrooveMix()
    ms = sample_rate_hz / 1000
    pad = lead_samples + int(abs(jitter_ms[0]) * ms) + 1
    tail = int(max(contexts_ms) * ms) + 16

    def padded(a: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(a.float(), (pad, tail))
    x = padded(take.audio)
    p_room, p_pink, noise_db = ((mix.p_room, mix.p_pink, mix.noise_db) if mix.take_too
                                else (0.0, 0.0, GrooveMix.noise_db))
    rooms = ([padded(r[0]) for r in room_versions([take.audio], mix.rooms, sample_rate_hz,
                                                   mix, rng)] if p_room > 0 else [])
    waves, leads, targets = [], [], []
    for i, o in enumerate(np.asarray(take.onsets, int)):
        for k in range(n_aug):
            s = pad + int(o) + int(round(rng.uniform(*jitter_ms) * ms))   # the cut's onset
            ctx = max(int(round(contexts_ms[(k + i) % len(contexts_ms)] * ms)), 16)
            heard = rooms[int(rng.integers(len(rooms)))] if rooms and rng.random() < p_room else x
            seg = heard[:, s - lead_samples:s + ctx] * 10 ** (rng.uniform(-10, 6) / 20)
            peak = float(seg.abs().max()) or 1e-6
            pink = p_pink > 0 and rng.random() < p_pink       # (no draw when off)
            seg = seg + noise_floor(tuple(seg.shape), pink, sample_rate_hz, rng) * (
                peak * 10 ** (-rng.uniform(*noise_db) / 20))
            seg = seg.clamp(-1, 1)
            waves.append(seg[:, lead_samples:].clone())
            leads.append(seg[:, :lead_samples])
            targets.append(take.targets[i])
    return waves, torch.stack(leads), torch.stack(targets).float()


def frame_batches(clf, waves: Sequence[torch.Tensor], batch_size: int = 128) -> list[list[int]]:
    """Indices of prepared [2, n] waves in batches of one frame count (lead-in included),
    at most batch_size each: an equal-length batch runs through ONNX Runtime on the CPU
    (drumclassifier/onnx_cpu.py, several times torch's masked path on short items), and
    the model's frames do not depend on the batch (features.LogMel), so the embeddings
    are those of any other batching within float rounding."""
    hop, lead = clf.cfg.features.hop_length, clf.cfg.lead_in_samples
    frames = [frames_for(lead + w.shape[-1], hop) for w in waves]
    order = sorted(range(len(waves)), key=lambda i: frames[i])
    out = []
    for _, run in itertools.groupby(order, key=lambda i: frames[i]):
        run = list(run)
        out += [run[s:s + batch_size] for s in range(0, len(run), batch_size)]
    return out


def embed_batched(clf, waves: Sequence[torch.Tensor], batch_size: int = 128,
                  spectrum: bool = False, tick: Callable[[], None] | None = None,
                  before: torch.Tensor | None = None) -> torch.Tensor:
    """Embeddings [N, D] (with spectrum: + the band profile) of prepared [2, n] waves, in
    frame_batches, model_threads(clf) batches at once (on the CPU one per core, each on one
    torch thread); before: [N, 2, lead] the audio before each onset (None: silence);
    tick() after each batch (progress). Measured on Millo ML2's 5,280 groove variants:
    42-46 s on one thread in batches of similar length, 14-15 s so."""
    from concurrent.futures import ThreadPoolExecutor

    from .classifier import model_threads
    batches = frame_batches(clf, waves, batch_size)

    def run(idx: list[int]) -> torch.Tensor:
        return clf.embed([waves[i] for i in idx], spectrum=spectrum,
                         before=None if before is None else before[idx])
    threads, parts = model_threads(clf), []
    torch_threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for part in pool.map(run, batches):      # in order: ticks from this thread
                parts.append(part)
                if tick is not None:
                    tick()
    finally:
        torch.set_num_threads(torch_threads)
    order = [i for b in batches for i in b]
    out = torch.empty_like(torch.cat(parts))
    out[order] = torch.cat(parts)
    return out


# ---- the profile --------------------------------------------------------------------------
@dataclass
class Piece:
    name: str
    label: str                  # one of the model's classes
    note: int                   # MIDI note it sends
    min_db: float = -40.0       # softest peak level heard in calibration (dBFS)
    max_db: float = -6.0        # hardest
    gate_db: float = -60.0      # quieter hits are ignored for this piece (bleed, ghosts)
    min_confidence: float = 0.0  # below this probability the hit is not sent
    n_hits: int = 0
    cv_accuracy: float | None = None

    def velocity(self, peak_db: float) -> int:
        """MIDI velocity 1-127: linear in dB from 6 dB under the softest hit heard (1)
        to the hardest (127), with at least a 12 dB range."""
        hi = self.max_db
        lo = min(self.min_db - 6.0, hi - 12.0)
        x = min(1.0, max(0.0, (peak_db - lo) / (hi - lo)))
        return int(round(1 + 126 * x))


@dataclass
class KitProfile:
    pieces: list[Piece]
    head: Head
    labels: list[str]
    weights_sha256: str
    fit: dict = field(default_factory=dict)
    created: str = ""

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.pieces]

    @property
    def embedding_dim(self) -> int:
        """The head's input width (embedding + band profile)."""
        return int(self.head.mean.numel())

    @property
    def spectrum(self) -> bool:
        """Whether the head reads the band profile after the embedding."""
        return self.head.spectrum_dims > 0

    def probs(self, emb: torch.Tensor) -> torch.Tensor:
        """[B, D] embeddings -> [B, P] piece probabilities."""
        return self.head.probs(emb)

    # ---- file ----
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "weights_sha256": self.weights_sha256,
                "labels": list(self.labels), "embedding_dim": self.embedding_dim,
                "pieces": [asdict(p) for p in self.pieces],
                "heads": [self.head.to_dict()],
                "fit": self.fit, "created": self.created}

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        path = Path(path)
        if path.exists() and not overwrite:
            raise KitError(f"{path} exists; use --force to overwrite")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, d, source: str = "kit profile") -> KitProfile:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise KitError(f"{source}: not a DrumClassifier kit profile (no "
                           f"'format: {FORMAT}'); make one with `drumclassifier calibrate`")
        if d.get("version") not in READS:
            raise KitError(f"{source}: kit profile version {d.get('version')!r} is not "
                           f"supported (this release reads versions "
                           f"{', '.join(map(str, READS))}); re-run `drumclassifier calibrate`")
        try:
            pieces = [Piece(**p) for p in d["pieces"]]
            # version 1: a single head for every context, no temperature
            raw_heads = [d["head"]] if d["version"] == 1 else list(d["heads"])
            if len(raw_heads) > 1:
                raise KitError(
                    f"{source}: this kit profile has {len(raw_heads)} heads, one per context "
                    "(FitOptions.per_context), an option removed after it was measured not to "
                    "help (docs/experiments.md); re-run `drumclassifier calibrate`")
            h = Head.from_dict(raw_heads[0]) if raw_heads else None
            labels = [str(x) for x in d["labels"]]
            sha = str(d["weights_sha256"])
            dim = int(d["embedding_dim"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise KitError(f"{source}: corrupt kit profile ({type(e).__name__}: {e})") from None
        p = len(pieces)
        shapes_ok = p >= 1 and h is not None and (
            h.mean.shape == (dim,) and h.std.shape == (dim,) and h.weight.shape == (p, dim)
            and h.bias.shape == (p,) and 0 <= h.spectrum_dims < dim)
        if not shapes_ok:
            raise KitError(f"{source}: corrupt kit profile (head shapes do not fit "
                           f"{p} pieces x {dim} dims)")
        finite = all(torch.isfinite(getattr(h, k)).all() for k in HEAD_TENSORS)
        if (not finite or (h.std <= 0).any()
                or not (math.isfinite(h.temperature) and h.temperature > 0)):
            raise KitError(f"{source}: corrupt kit profile (non-finite head values)")
        for pc in pieces:
            if pc.label not in labels or not 0 <= int(pc.note) <= 127:
                raise KitError(f"{source}: corrupt kit profile (piece {pc.name!r}: class "
                               f"{pc.label!r} or note {pc.note!r} invalid)")
        if len({x.name for x in pieces}) != p:
            raise KitError(f"{source}: corrupt kit profile (duplicate piece names)")
        return cls(pieces, h, labels, sha, dict(d.get("fit") or {}), str(d.get("created", "")))

    @classmethod
    def load(cls, path: str | Path, weights_sha256: str | None = None,
             labels: Sequence[str] | None = None) -> KitProfile:
        """Read and check a profile; with weights_sha256/labels, refuse one fitted on
        other weights (the embedding would mean something else)."""
        path = Path(path)
        if not path.is_file():
            raise KitError(f"{path}: kit profile not found")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise KitError(f"{path}: corrupt kit profile (not valid JSON: {e})") from None
        prof = cls.from_dict(d, str(path))
        if weights_sha256 is not None and prof.weights_sha256 != weights_sha256:
            raise KitError(
                f"{path}: this kit profile was fitted on other model weights (sha256 "
                f"{prof.weights_sha256[:12]}..., these are {weights_sha256[:12]}...); "
                "re-run `drumclassifier calibrate` with these weights, or pass the weights "
                "it was made with (-w)")
        if labels is not None and list(labels) != prof.labels:
            raise KitError(f"{path}: kit profile classes {prof.labels} differ from the "
                           f"model's {list(labels)}")
        return prof


# ---- fitting -------------------------------------------------------------------------------
def peak_db(wave: torch.Tensor, context_samples: int) -> float:
    """Peak level (dBFS) over the first context_samples, as the live slicer measures it."""
    a = float(wave[..., :context_samples].abs().max()) if wave.numel() else 0.0
    return 20 * math.log10(max(a, 1e-10))


def _folds(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified fold index per hit (each piece's hits spread over the k folds); a piece
    with a single hit gets -1: never held out (a head must know every piece)."""
    fold = np.full(len(y), -1)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) >= 2:
            rng.shuffle(idx)
            fold[idx] = np.arange(len(idx)) % k
    return fold


@dataclass
class FitOptions:
    """How a profile is fitted (bench/calibration.py measures the alternatives).

    contexts_ms: the contexts calibration variants are cut to (ms after the onset).
        augment: variants per calibration hit (in all, shared over the contexts).
        temperature: fit the head's temperature on the cross-validation's held-out
        predictions. normalise, l2: see fit_head. spectrum: the head also reads the
        hit's log-mel band profile. grooves: one sigmoid per piece, fitted on what a
        groove makes of the hits (groove_variants: pieces struck together, tails, the
        lead-in), instead of a softmax fitted on single hits (augment_hits).
    """
    contexts_ms: tuple[float, ...] = DEFAULT_CONTEXTS_MS
    # 120 variants per hit, not 20: K=8, anytime, paired on the same draws (README, "Drum
    # by drum"): validation kits +0.03 taught per drum, level per class; on the test and
    # black_pearl kits -0.01..+0.04. A small gain, not a certain one; fitting takes ~2.5x
    # longer (4 pieces x 8 hits: 8.0 s against 3.1 s)
    augment: int = 120
    temperature: bool = False
    # L2-normalised embeddings: the best mean recall at anytime confidence 0.8 on
    # the validation kits (0.87 vs 0.84 at the same 20 ms median; test 0.85 vs 0.80),
    # within the draws' spread (bench/calibration.py --variants v1 shipped)
    normalise: bool = True
    l2: float = 1e-2
    jitter_ms: tuple[float, float] = (-0.5, 1.5)
    eq_db: float = 0.0
    # The band profile next to the embedding: K=8, anytime at 0.95, 5 draws
    # (bench/calibration.py --variants shipped v2): validation kits 0.93 at a 10 ms median
    # against 0.89 at 20 ms; test kits 0.91 against 0.86, both at 10 ms
    spectrum: bool = True
    grooves: bool = True
    mix: GrooveMix = field(default_factory=GrooveMix)
    # variants per onset of a play-along take (fit_profile's `played`)
    played_augment: int = 30
    # fit_head's, for the sigmoid head. 0.5: held-out kits in grooves at 20 ms
    # (bench/kit_grooves.py, docs/calibration.md; measured before groove copies ended with
    # their last hit): class F kick/snare/hihat/toms/cymbals 0.85/0.92/0.89/0.65/0.61
    # against 0.79/0.91/0.76/0.85/0.56 at 0 (misses: precision 0.92-0.99, recall
    # 0.41-0.84) and 0.83/0.90/0.88/0.44/0.63 at 1 (tom precision 0.29)
    balance: float = 0.5


def cv_k(y: np.ndarray, n_pieces: int, cv_folds: int) -> int:
    """k of the k-fold CV over hits: cv_folds, capped by the largest piece's hit count."""
    return int(min(cv_folds, np.bincount(y, minlength=n_pieces).max()))


def fit_head_cv(emb: torch.Tensor, var_hit: np.ndarray, y: np.ndarray, n_pieces: int,
                hit_emb: dict[float, torch.Tensor], opts: FitOptions, cv_folds: int,
                rng: np.random.Generator, spectrum_dims: int = 0,
                tick: Callable[[], None] | None = None, targets: torch.Tensor | None = None
                ) -> tuple[Head, dict[float, torch.Tensor], np.ndarray]:
    """The head of a profile, and its cross-validated predictions.

    Args:
        emb: [V, D] embeddings of the calibration hits' augmented variants; var_hit: [V]
            the calibration hit each came from.
        y: [H] piece index of each calibration hit.
        hit_emb: context (ms) -> [H, D] embeddings of the calibration hits themselves cut
            to that context (unaugmented): where the CV tests.
        cv_folds: k of the k-fold CV over hits (a hit's variants stay together; capped by
            the largest piece's hit count; no CV under 2).
        spectrum_dims: how many of the inputs' last columns are band profile (0: none).
        tick: called after each head fitted (progress).
        targets: [V, P] multi-hot target of each variant (groove_variants): a head with
            one sigmoid per piece; None: each variant is its hit's piece (a softmax head).
    Returns (head, context -> [H, P] held-out probabilities (NaN where a hit was never
    held out; empty without CV), fold of each hit (-1: never held out)).
    """
    def fit(keep: np.ndarray) -> Head:
        yk = (targets[torch.from_numpy(keep)] if targets is not None
              else torch.from_numpy(y[var_hit[keep]]).long())
        head = fit_head(emb[keep], yk, n_pieces, opts.l2, normalise=opts.normalise,
                        spectrum_dims=spectrum_dims, balance=opts.balance)
        if tick is not None:
            tick()
        return head

    k = cv_k(y, n_pieces, cv_folds)
    fold = _folds(y, k, rng) if k >= 2 else np.full(len(y), -1)
    logits = {c: torch.full((len(y), n_pieces), float("nan")) for c in hit_emb}  # [H, P]
    for f in range(k if k >= 2 else 0):
        out = np.flatnonzero(fold == f)
        held_out = fit(~np.isin(var_hit, out))
        for c, e in hit_emb.items():
            logits[c][out] = held_out.logits(e[out])
    head = fit(np.ones(len(var_hit), bool))
    held = fold >= 0
    if opts.temperature and held.any() and not head.multi_label:     # on the held-out predictions at every context
        head.temperature = fit_temperature(
            torch.cat([v[held] for v in logits.values()]),
            torch.from_numpy(np.tile(y[held], len(logits))).long())
    probs = {c: logits_to_probs(v / head.temperature, head.multi_label)
             for c, v in logits.items()} if k >= 2 else {}
    return head, probs, fold


@dataclass
class FitCache:
    """The taught hits' part of a groove fit, kept between the fits of one calibration
    session. The refit after the play-along take synthesises the same groove variants of
    the same hits (same seed, options and weights) and embeds them again; with a cache it
    takes them from here (the same profile, half the refit's time) and only the take's
    variants are new. It holds the last fit's part."""
    key: str = ""
    emb: torch.Tensor | None = None         # [V, D] the hits' groove variants' embeddings
    targets: torch.Tensor | None = None     # [V, P] their multi-hot targets
    src: list[int] = field(default_factory=list)   # [V] the hit each came from
    rng_state: dict | None = None           # the fit's generator after synthesising them
    hit_emb: dict = field(default_factory=dict)    # CV context (ms) -> [H, D]


def fit_key(clf, hits: Sequence[torch.Tensor], y: np.ndarray, n_pieces: int,
            opts: FitOptions, seed: int, cv_ctx: Sequence[float]) -> str:
    """What the hits' part of a fit depends on: the weights, the hits' audio, their
    pieces, the options, the seed and the CV contexts."""
    h = hashlib.sha256(repr((clf.model_id, seed, n_pieces, y.tolist(), list(cv_ctx),
                             asdict(opts))).encode())
    for w in hits:
        h.update(w.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def fit_profile(clf, hits: Sequence[torch.Tensor], piece_of_hit: Sequence[int],
                pieces: list[Piece], *, augment: int | None = None,
                contexts_ms: Sequence[float] | None = None,
                live_context_ms: float | None = None, l2: float | None = None, cv_folds: int = 5,
                seed: int = 0, weights_sha256: str | None = None,
                options: FitOptions | None = None,
                progress: Callable[[int, int], None] | None = None,
                played: PlayedTake | None = None, cache: FitCache | None = None) -> KitProfile:
    """Calibration hits -> a KitProfile (head, velocity ranges, gates, CV accuracy).

    Args:
        clf: a DrumClassifier (its embedding, sample rate and weights).
        hits: prepared [2, n] waves at the model rate, each starting at its onset.
        piece_of_hit: index into `pieces` of each hit; every piece needs >= 1 hit.
        pieces: the kit's pieces (name, label, note); levels and CV are filled in here.
        live_context_ms: the context the live path will use: levels and the CV use it
            (None: the real-time config's default, slicer.context_ms).
        augment, contexts_ms, l2: override those of `options` (default FitOptions()).
        cv_folds: k of the stratified k-fold CV; per-piece CV accuracy is reported only
            when every piece has >= 2 hits.
        progress: called as progress(steps done, steps in all) as the fit goes (embedding
            batches, then heads): the fit takes seconds to a minute.
        played: a labelled play-along take of the same kit (realtime/playalong.py): its
            onsets, real overlaps over real tails, join the synthesised groove variants
            (options.played_augment copies each; always in the fit, never held out).
        cache: a FitCache of this session: the hits' groove variants and embeddings are
            taken from it when nothing they depend on changed, and stored in it.
    """
    t0 = time.perf_counter()
    if live_context_ms is None:
        live_context_ms = LIVE_CONTEXT_MS
    opts = replace(options or FitOptions(), **{k: v for k, v in (
        ("augment", augment), ("l2", l2),
        ("contexts_ms", None if contexts_ms is None else tuple(map(float, contexts_ms))))
        if v is not None})
    sr = clf.cfg.sample_rate_hz
    y = np.asarray(piece_of_hit, int)
    counts = np.bincount(y, minlength=len(pieces))
    if (counts == 0).any():
        missing = [pieces[i].name for i in np.flatnonzero(counts == 0)]
        raise DrumClassifierError(f"no calibration hits for: {', '.join(missing)} (every "
                                  "piece of the kit must be taught)")
    if len(pieces) < 2:
        raise DrumClassifierError("a kit profile needs at least two pieces")
    rng = np.random.default_rng(seed)
    live = max(1, int(round(live_context_ms * sr / 1000)))
    cv_ctx = sorted(set(opts.contexts_ms) | {float(live_context_ms)})
    key = (fit_key(clf, hits, y, len(pieces), opts, seed, cv_ctx)
           if cache is not None and opts.grooves else None)
    reuse = key is not None and cache.key == key
    # the hits' variants (unless the cache has them), then the take's (take_w, take_l);
    # leads, targets: None for the softmax fit
    variants, leads, targets, src, take_w, take_l = [], None, None, [], [], None
    if opts.grooves:
        if reuse:     # the generator where synthesising the hits' variants left it
            rng.bit_generator.state = copy.deepcopy(cache.rng_state)
            targets, src = cache.targets, list(cache.src)
        else:
            variants, leads, targets, src = groove_variants(
                hits, y, len(pieces), opts.augment, sr, opts.contexts_ms,
                clf.cfg.lead_in_samples, rng, opts.jitter_ms, opts.mix)
            rng_after_hits = copy.deepcopy(rng.bit_generator.state)
        if played is not None and len(played.onsets):
            take_w, take_l, pt = played_variants(played, opts.played_augment, sr,
                                                 opts.contexts_ms, clf.cfg.lead_in_samples,
                                                 rng, opts.jitter_ms, opts.mix)
            targets = torch.cat([targets, pt])
            src = list(src) + [-1] * len(take_w)   # no calibration hit: never held out
    else:
        if played is not None:
            raise DrumClassifierError("a play-along take needs the groove fit (a sigmoid per piece)")
        variants, src, _ = augment_hits(hits, opts.augment, sr, opts.contexts_ms, rng,
                                        opts.jitter_ms, opts.eq_db)
    batch = 128
    k = cv_k(y, len(pieces), cv_folds)
    # progress steps: embedding batches (variants, the take's, then the hits at each CV
    # context), heads
    cv_waves = {} if reuse else {c: [h[:, :max(1, int(round(c * sr / 1000)))] for h in hits]
                                 for c in cv_ctx}
    total = (len(frame_batches(clf, variants, batch)) + len(frame_batches(clf, take_w, batch))
             + sum(len(frame_batches(clf, w, batch)) for w in cv_waves.values())
             + (k if k >= 2 else 0) + 1)
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)
    if reuse:
        emb, hit_emb = cache.emb, cache.hit_emb
    else:
        emb = embed_batched(clf, variants, batch, opts.spectrum, tick, leads)    # [V, D]
        hit_emb = {c: embed_batched(clf, w, batch, opts.spectrum, tick)
                   for c, w in cv_waves.items()}                  # context -> [H, D]
        if key is not None:
            n = len(variants)
            cache.key, cache.emb, cache.targets, cache.src = key, emb, targets[:n], src[:n]
            cache.rng_state, cache.hit_emb = rng_after_hits, hit_emb
    if take_w:
        emb = torch.cat([emb, embed_batched(clf, take_w, batch, opts.spectrum, tick, take_l)])
    head, cv_probs, fold = fit_head_cv(emb, np.asarray(src), y, len(pieces), hit_emb, opts,
                                       cv_folds, rng,
                                       clf.cfg.features.n_mels if opts.spectrum else 0, tick,
                                       targets)
    # CV accuracy at the live context, reported when every piece was held out somewhere
    cv_ok = bool(cv_probs) and counts.min() >= 2
    pred = cv_probs[float(live_context_ms)].argmax(1).numpy() if cv_ok else None
    for i, pc in enumerate(pieces):
        levels = [peak_db(hits[j], live) for j in np.flatnonzero(y == i)]
        pc.min_db, pc.max_db = round(min(levels), 2), round(max(levels), 2)
        pc.gate_db = round(pc.min_db - 20.0, 2)
        pc.n_hits = int(counts[i])
        pc.cv_accuracy = float((pred[y == i] == i).mean()) if cv_ok else None
    sha = weights_sha256 or file_sha256(clf.weights_path)
    fit = {"contexts_ms": [float(c) for c in opts.contexts_ms], "augment": opts.augment,
           "l2": opts.l2, "temperature": opts.temperature,
           "normalise": opts.normalise, "spectrum": opts.spectrum,
           "jitter_ms": list(opts.jitter_ms), "eq_db": opts.eq_db,
           "grooves": asdict(opts.mix) if opts.grooves else None, "balance": opts.balance,
           "played": None if played is None else {"onsets": len(played.onsets),
                                                   "augment": opts.played_augment},
           "live_context_ms": float(live_context_ms),
           "cv_folds": int(fold.max()) + 1 if cv_ok else 0,
           "cv_accuracy": float((pred == y).mean()) if cv_ok else None, "seed": seed,
           "seconds": round(time.perf_counter() - t0, 3),
           "weights_file": Path(clf.weights_path).name}
    return KitProfile(pieces, head, list(clf.labels), sha, fit,
                      time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
