"""Drop exact and near-exact duplicates: aligned normalised cross-correlation.

Two one-shots are duplicates when the maximum over lags (|lag| <= max_lag) of
their normalised cross-correlation, over the first `window` samples in mono,
exceeds `threshold` (0.99): gain changes, polarity and small offsets do not
hide a copy. Comparison is within a label only. Two different recorded files of
one kit (velocity layers, takes) may correlate 0.99-0.999 and are kept; they
count as duplicates only above `same_kit_threshold` (a file copied at another
gain correlates above 0.9999). A cheap shift- and
gain-invariant prefilter (cosine of pooled magnitude spectra) picks the pairs
worth the exact FFT correlation.
"""
from __future__ import annotations

import numpy as np


def _pooled_spectrum(x, bands: int = 512):
    import torch

    mag = torch.fft.rfft(x, dim=-1).abs()                      # (n, window//2+1)
    mag = mag[:, : (mag.shape[1] // bands) * bands].reshape(len(x), bands, -1).sum(-1)
    return torch.nn.functional.normalize(mag, dim=1)


def find_duplicates(snippets: list[np.ndarray], order: list[int], threshold: float = 0.99,
                    max_lag: int = 2205, prefilter: float = 0.9, batch: int = 256,
                    same_kit: list | None = None,
                    same_kit_threshold: float = 0.999) -> dict[int, tuple[int, float]]:
    """Duplicates among snippets of one label.

    Args:
        snippets: mono float arrays (any length; zero-padded/cut to the longest, at most window).
        order: indices in keep-priority order: an earlier index is kept over a later one.
        threshold: correlation above which two snippets are duplicates.
        max_lag: largest alignment shift tried, in samples.
        same_kit: per snippet, a kit id for recorded files (None for renders):
            a pair with equal ids is a duplicate only above `same_kit_threshold`.

    Returns:
        {dropped index: (kept index, correlation)}.
    """
    import torch

    n = len(snippets)
    if n < 2:
        return {}
    L = max(len(s) for s in snippets)
    x = torch.zeros(n, L)
    for i, s in enumerate(snippets):
        x[i, : len(s)] = torch.from_numpy(np.asarray(s, dtype=np.float32))
    norms = x.norm(dim=1).clamp_min(1e-9)
    spec = _pooled_spectrum(x)
    cos = spec @ spec.T
    F = torch.fft.rfft(x, n=2 * L, dim=-1)
    rank = torch.empty(n, dtype=torch.long)
    rank[torch.tensor(order)] = torch.arange(n)
    cand = torch.nonzero(torch.triu(cos > prefilter, diagonal=1))
    # corr[i, j] at lag k = sum_t x_i[t] x_j[t + k]; lags -max_lag..max_lag
    pairs: list[tuple[int, int, float]] = []
    for b in range(0, len(cand), batch):
        c = cand[b:b + batch]
        cc = torch.fft.irfft(F[c[:, 0]].conj() * F[c[:, 1]], n=2 * L, dim=-1)
        win = torch.cat([cc[:, : max_lag + 1], cc[:, -max_lag:]], dim=1).abs().amax(dim=1)
        corr = win / (norms[c[:, 0]] * norms[c[:, 1]])
        for (i, j), v in zip(c.tolist(), corr.tolist()):
            strict = same_kit is not None and same_kit[i] is not None and same_kit[i] == same_kit[j]
            if v > (same_kit_threshold if strict else threshold):
                pairs.append((i, j, v))
    dropped: dict[int, tuple[int, float]] = {}
    # greedy in priority order: the better-ranked of each duplicate pair is kept
    for i, j, v in sorted(pairs, key=lambda p: min(rank[p[0]], rank[p[1]])):
        keep, drop = (i, j) if rank[i] < rank[j] else (j, i)
        if keep in dropped or drop in dropped:
            continue
        dropped[drop] = (keep, v)
    return dropped
