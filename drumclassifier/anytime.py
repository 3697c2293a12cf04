"""Anytime decisions: how sure a hit's decision is, and which classes or pieces to send.

The live path may classify a hit at growing post-onset context (a ladder such as 5, 10,
20, 40, 80 ms) and send its note at the first rung whose decision is sure enough, at
the latest at the last rung. Here are the rules, shared by the live worker
(realtime/classify.py: Classify, KitClassify) and the benchmark
(bench/calibration.py), so what is measured is what runs:

  - generic model (independent sigmoid per class, each with its own threshold): a
    decision is the SET of classes at or above their thresholds; it is as sure as its
    least sure class. Per class q = sigmoid(logit(p) - logit(threshold)), which is 0.5
    at the threshold and moves like p elsewhere; the class's decision is sure with
    max(q, 1 - q); the hit's confidence is the minimum over classes, and at most the top
    class's q: "no class present" is no decision for a hit (at short contexts every
    probability is low, which would otherwise look sure).
  - kit profile with one sigmoid per piece (version 4, piece_decisions): each piece on
    its own. A piece is sent at the first rung where its probability reaches
    min_confidence, or at the last rung if it reaches its threshold; so a kick can go at
    5 ms while the ride struck with it waits for 20. The hit is done once every piece is
    sure, present or absent (probability <= 1 - min_confidence): later rungs are
    skipped.
  - kit profile with a softmax over the pieces (versions 1-3): the top piece's
    probability; or, with `decision.sure_of: class`, the summed probability of the top
    class's pieces, the note then being that class's most probable piece (class_sure).

A hit is sent at its first rung with confidence >= min_confidence.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch


def class_confidence(probs: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Generic model: [B, C] presence probabilities, [C] thresholds -> [B] in [0, 1]."""
    eps = 1e-6
    p = probs.float().clamp(eps, 1 - eps)
    th = thresholds.float().clamp(eps, 1 - eps)
    q = torch.sigmoid(torch.logit(p) - torch.logit(th))       # [B, C], 0.5 at the threshold
    sure = torch.maximum(q, 1 - q).min(dim=-1).values           # [B]
    return torch.minimum(sure, q.max(dim=-1).values)


def class_mass(probs: torch.Tensor, piece_classes: Sequence[int], n_classes: int
               ) -> torch.Tensor:
    """Kit profile: [..., P] piece probabilities -> [..., n_classes], each class the sum of
    its pieces' probabilities (a kit with a crash and a ride is sure of "cymbals" before
    it is sure which one)."""
    idx = torch.as_tensor(list(piece_classes), dtype=torch.long, device=probs.device)
    out = probs.new_zeros(*probs.shape[:-1], n_classes)
    return out.index_add_(-1, idx, probs)


def class_sure(probs: torch.Tensor, piece_classes: Sequence[int], n_classes: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Kit profile, sure of the class: [..., P] piece probabilities -> ([...] the top
    class's summed probability, [...] the most probable piece of that class).

    The decision rule `decision.sure_of: class`: a hit is sent once its class is sure,
    with the note of that class's most probable piece; it waits less than waiting for
    one piece to be sure, and sends the wrong piece of the right class more often
    (bench/calibration.py, variant class-decide)."""
    mass = class_mass(probs, piece_classes, n_classes)                 # [..., C]
    conf, top_class = mass.max(dim=-1)
    cls = torch.as_tensor(list(piece_classes), device=probs.device)   # [P]
    within = probs.masked_fill(cls != top_class[..., None], -1.0)     # other classes out
    return conf, within.argmax(dim=-1)


def piece_confidence(probs: torch.Tensor) -> torch.Tensor:
    """Kit profile: [B, P] softmax probabilities -> [B] the top piece's probability."""
    return probs.max(dim=-1).values


def piece_decisions(probs: torch.Tensor, thresholds: torch.Tensor, min_confidence: float,
                    final: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Kit profile with a sigmoid per piece: [B, P] presence probabilities, [P] thresholds,
    [B] whether each hit is at its last rung -> ([B, P] pieces to send now (those already
    sent at an earlier rung are the caller's to drop), [B] hit done: no later rung needed).
    """
    sure_on = probs >= min_confidence
    sure = sure_on | (probs <= 1 - min_confidence)
    final = final[:, None]
    send = sure_on | (final & (probs >= thresholds))
    return send, final[:, 0] | sure.all(dim=-1)


def first_confident(conf: torch.Tensor, min_confidence: float) -> torch.Tensor:
    """[R, N] confidence of N hits at R rungs (ascending context) -> [N] rung index of
    each hit's decision: its first rung with conf >= min_confidence, else the last."""
    ok = conf >= min_confidence
    ok[-1] = True                      # never confident: decided at the ladder's maximum
    return ok.float().argmax(dim=0)    # argmax returns the first maximal index


def pick_pieces(probs: torch.Tensor, min_prob: Sequence[float], extra_min: float,
                max_pieces: int, top: int | None = None) -> list[int]:
    """Kit profile, one hit: [P] softmax probabilities -> indices of the pieces to send.

    The top piece (the most probable, or `top`: class_sure's choice) if it reaches its
    own min_prob; then, up to max_pieces in all, every
    other piece with probability >= max(extra_min, its min_prob), most probable first.
    Why a second piece at all: a kick + hihat hit is not among the calibration hits, so
    the head splits its mass between the two pieces (say 0.55 / 0.40) instead of
    naming both; a floor on the runner-up's probability recovers the pair. Why a floor
    well above chance: a single hit the head hesitates on (snare 0.6 / tom 0.3) would
    otherwise send a false second note. With extra_min > 1/3 at most two pieces can
    pass (the probabilities sum to 1), whatever max_pieces says.
    """
    order = torch.argsort(probs, descending=True).tolist()
    top = order[0] if top is None else top
    if float(probs[top]) < min_prob[top]:
        return []
    out = [top]
    for i in order:
        if i == top:
            continue
        if len(out) >= max_pieces:
            break
        if float(probs[i]) >= max(extra_min, min_prob[i]):
            out.append(i)
    return out
