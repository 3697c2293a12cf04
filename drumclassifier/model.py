"""The seed's CRNN: a 3-layer 2D conv block, an RNN along frequency, an RNN along time,
then 3 linear layers giving one logit per class.

Shapes (B batch, C channels, F mel bands, T frames):
    feats  [B, 2, 64, T]
    conv   [B, 64, 8, T]      3 x (conv 3x3 -> batchnorm -> max-pool over frequency / 2 -> ReLU)
    f-RNN  [B, T, 64]         bidirectional GRU over the 8 frequency steps of each frame,
                              final states of both directions concatenated
    t-RNN  [B, 64]            causal GRU over the frames, state at each item's last frame
    head   [B, 5]             linear 64 -> 64 -> 32 -> 5 (logits; sigmoid = presence probability)

`build_model` gives one CRNN, or with `net.members` > 1 an `Ensemble` of that many CRNNs
trained from different seeds (bench/experiment.py measures what the average buys).

Time is never pooled and every conv output is masked beyond each item's frame count,
so an item in a padded batch gives exactly what it gives alone: padding is not computed
into the result (and the time GRU runs packed, so padding costs no recurrent steps).
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .config import ModelConfig
from .features import frame_mask


def halve_frequency(x: torch.Tensor) -> torch.Tensor:
    """[B, C, F, T] -> [B, C, F // 2, T]: the max of each pair of bands (= MaxPool2d((2, 1)),
    an odd last band dropped as it does), as a reshape + amax: several times faster on the
    CPU than max_pool2d, which also computes indices."""
    f = x.shape[2] - x.shape[2] % 2
    return x[:, :, :f].unflatten(2, (f // 2, 2)).amax(3)


class ConvLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # x [B, C, F, T], mask [B, 1, 1, T]: zero beyond each item's frames, as conv padding
        # is (None: every item fills all T frames). Pooling before the ReLU gives the same
        # values (both are monotonic) on half the bands.
        x = torch.relu(halve_frequency(self.norm(self.conv(x))))
        return x if mask is None else x * mask

    @torch.no_grad()
    def fold_norm(self) -> None:
        """For inference: fold the batch norm's running statistics into the conv (weight
        scaled per output channel, a bias added) and drop the norm: the same outputs up to
        float rounding, one pass over the activations fewer. Not for training."""
        bn, w = self.norm, self.conv.weight
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)           # [C_out]
        conv = nn.Conv2d(w.shape[1], w.shape[0], kernel_size=3, padding=1, bias=True)
        conv.weight.copy_(w * scale[:, None, None, None])
        conv.bias.copy_(bn.bias - bn.running_mean * scale)
        self.conv, self.norm = conv.to(w.device), nn.Identity()


class CRNN(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        n = cfg.net
        chans = [2] + list(n.conv_channels)
        self.convs = nn.ModuleList(ConvLayer(a, b) for a, b in zip(chans[:-1], chans[1:]))
        self.freq_rnn = nn.GRU(chans[-1], n.freq_rnn_hidden, batch_first=True, bidirectional=True)
        self.time_rnn = nn.GRU(2 * n.freq_rnn_hidden, n.time_rnn_hidden, batch_first=True)
        h1, h2 = n.linear_hidden
        self.head = nn.Sequential(
            nn.Linear(n.time_rnn_hidden, h1), nn.ReLU(), nn.Dropout(n.dropout),
            nn.Linear(h1, h2), nn.ReLU(),
            nn.Linear(h2, len(cfg.labels)),
        )

    def embed(self, feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """feats [B, 2, F, T], frames [B] -> the hit embedding [B, time_rnn_hidden]."""
        b, t = feats.shape[0], feats.shape[-1]
        if bool((frames == t).all()):
            return self.embed_full(feats)
        mask = frame_mask(frames, t).to(feats.dtype)  # [B, 1, 1, T]
        x = feats
        for conv in self.convs:
            x = conv(x, mask)  # [B, C, F/2^k, T]
        # the frequency GRU runs only on real frames: padding costs no recurrent steps
        valid = mask[:, 0, 0, :].bool()  # [B, T]
        x = rearrange(x, "b c f t -> b t f c")[valid]  # [n_valid, F', C]
        _, h = self.freq_rnn(x)  # h [2, n_valid, H]: final state of each direction
        per_frame = x.new_zeros(b, t, h.shape[0] * h.shape[2])
        per_frame[valid] = rearrange(h, "d n h -> n (d h)")
        x = per_frame  # [B, T, 2H]
        packed = pack_padded_sequence(x, frames.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.time_rnn(packed)  # h [1, B, H]: state at each item's last frame
        return h[0]

    def embed_full(self, feats: torch.Tensor) -> torch.Tensor:
        """embed for a batch whose items all fill their T frames (a live rung, a batch of
        1 s files): the same numbers without masks or packing, faster, and in the form an
        ONNX export takes (drumclassifier/onnx_cpu.py). feats [B, 2, F, T] -> [B, H]."""
        x = feats
        for conv in self.convs:
            x = conv(x)  # [B, C, F/2^k, T]
        c, f = x.shape[1], x.shape[2]
        x = x.permute(0, 3, 2, 1).reshape(-1, f, c)  # [B*T, F', C]: one sequence per frame
        _, h = self.freq_rnn(x, zero_state(x, 2, self.freq_rnn.hidden_size))  # [2, B*T, H]
        x = h.permute(1, 0, 2).reshape(feats.shape[0], -1, 2 * h.shape[2])    # [B, T, 2H]
        _, h = self.time_rnn(x, zero_state(x, 1, self.time_rnn.hidden_size))  # [1, B, H]
        return h[0]

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        """The hit embedding [B, time_rnn_hidden] -> logits [B, n_labels]."""
        return self.head(emb)

    def forward(self, feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """feats [B, 2, F, T], frames [B] -> logits [B, n_labels]."""
        return self.logits(self.embed(feats, frames))


def zero_state(x: torch.Tensor, n: int, hidden: int) -> torch.Tensor:
    """A GRU's zero initial state [n, N, hidden] for input x [N, L, C], built from x so
    that an ONNX export keeps N a variable (nn.GRU's own zeros are traced as a constant
    batch size); the same zeros nn.GRU uses when none is given."""
    return (x[:, 0, :1] * 0).expand(-1, hidden).unsqueeze(0).expand(n, -1, -1).contiguous()


class Ensemble(nn.Module):
    """Several CRNNs of one config; the answer is the mean of their probabilities.

    Seeds of one configuration disagree on the hard boundaries (toms/kick, hihat/cymbals:
    a first baseline showed run-to-run swings of 3-5 points); averaging their sigmoid
    outputs is steadier than any one of them.
    forward returns logit(mean probability), so callers apply sigmoid as for one CRNN.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.members = nn.ModuleList(CRNN(cfg) for _ in range(cfg.net.members))

    def embed(self, feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """[B, 2, F, T], [B] -> the members' embeddings side by side [B, members * H]."""
        return torch.cat([m.embed(feats, frames) for m in self.members], dim=1)

    def embed_full(self, feats: torch.Tensor) -> torch.Tensor:
        """CRNN.embed_full of every member, side by side [B, members * H]."""
        return torch.cat([m.embed_full(feats) for m in self.members], dim=1)

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        """[B, members * H] -> logit of the members' mean probability [B, n_labels]."""
        parts = emb.chunk(len(self.members), dim=1)
        p = torch.stack([torch.sigmoid(m.logits(e)) for m, e in zip(self.members, parts)])
        p = p.mean(0).clamp(1e-7, 1 - 1e-7)  # [B, n_labels]; finite logits
        return torch.log(p) - torch.log1p(-p)

    def forward(self, feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.logits(self.embed(feats, frames))


class FullLength(nn.Module):
    """model.embed_full + model.logits as one forward: feats [B, 2, F, T] (every item
    fills all T frames) -> (logits [B, n_labels], embedding [B, D]). What onnx_cpu exports."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.model.embed_full(feats)
        return self.model.logits(emb), emb


def fold_for_inference(model: nn.Module) -> nn.Module:
    """An eval-mode model with every conv layer's batch norm folded in (ConvLayer.fold_norm).
    Its state_dict no longer matches the config's network: never save or train it."""
    for m in model.modules():
        if isinstance(m, ConvLayer) and not isinstance(m.norm, nn.Identity):
            m.fold_norm()
    return model.eval()


def build_model(cfg: ModelConfig) -> nn.Module:
    """The network a config describes: one CRNN, or an Ensemble when net.members > 1."""
    return Ensemble(cfg) if cfg.net.members > 1 else CRNN(cfg)
