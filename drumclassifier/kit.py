"""Kit profiles: what calibration learned about one drummer's own kit.

A profile maps the model's hit embedding (`DrumClassifier.embed`, [B, D]) to the kit's
PIECES (kick, snare, "floor tom", "ride bell"...), each piece belonging to one of the
model's classes and sending its own MIDI note. It holds:

  - a multinomial logistic-regression head over the pieces on the standardised
    embedding: probs = softmax(((emb - mean) / std) @ weight.T + bias), [B, P];
  - per piece: the softest and hardest peak level heard in calibration (dBFS), which set
    its velocity curve, and a gate: hits quieter than `gate_db` are ignored (bleed);
  - the sha256 of the weights file the embedding came from: a profile fitted on other
    weights is meaningless and is refused.

File format (JSON, UTF-8, no pickle; numbers as lists), version 1:

    {"format": "drumclassifier-kit", "version": 1,
     "weights_sha256": "<hex of the model weights file>",
     "labels": ["kick", "snare", "hihat", "toms", "cymbals"],   # the model's classes
     "embedding_dim": D,
     "pieces": [{"name": "floor tom", "label": "toms", "note": 41,
                 "min_db": -30.1, "max_db": -4.2, "gate_db": -42.1,
                 "min_confidence": 0.0, "n_hits": 8, "cv_accuracy": 0.95}, ...],
     "head": {"mean": [D], "std": [D], "weight": [[D] x P], "bias": [P]},
     "fit": {"contexts_ms": [...], "augment": 20, "l2": ..., "seconds": ...,
             "cv_folds": k, "cv_context_ms": ..., "cv_accuracy": ...},
     "created": "ISO time"}

Fitting augments every calibration hit `augment` times (gain, -0.5..+1.5 ms onset
jitter, low noise, truncation to one of the live contexts): without it, the onset
jitter of a live detector breaks short contexts (FINDINGS.md, "Per-kit calibration").
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .anytime import pick_pieces, piece_confidence
from .errors import DrumClassifierError

FORMAT, VERSION = "drumclassifier-kit", 1
# the live contexts, and the full 1 s window (measured in bench/calibration.py: without it
# the full-window recall fell to 0.62 at K=8; short contexts unchanged within the spread)
DEFAULT_CONTEXTS_MS = (5.0, 10.0, 20.0, 30.0, 50.0, 1000.0)

# General MIDI drum notes: class defaults, and a guess from a piece's name
CLASS_NOTES = {"kick": 36, "snare": 38, "hihat": 42, "toms": 45, "cymbals": 49}
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
    return CLASS_NOTES.get(label, 38)


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
def fit_head(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float = 1e-2,
             steps: int = 50) -> dict:
    """Multinomial logistic regression on standardised features, L-BFGS on the CPU.

    Args:
        x: [N, D] embeddings; y: [N] class indices in [0, n_classes).
        l2: weight of 0.5 * ||W||^2 added to the mean cross-entropy.
    Returns {"mean": [D], "std": [D], "weight": [P, D], "bias": [P]} as tensors.
    """
    x = x.float()
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
    z = (x - mean) / std
    w = torch.zeros(n_classes, x.shape[1], dtype=torch.float32, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ w.T + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss
    with torch.enable_grad():
        opt.step(closure)
    return {"mean": mean.float(), "std": std.float(), "weight": w.detach().float(),
            "bias": b.detach().float()}


def head_probs(head: dict, emb: torch.Tensor) -> torch.Tensor:
    """[B, D] embeddings -> [B, P] piece probabilities."""
    z = (emb.float() - head["mean"]) / head["std"]
    return torch.softmax(z @ head["weight"].T + head["bias"], dim=-1)


# ---- augmentation -------------------------------------------------------------------------
def augment_hits(waves: Sequence[torch.Tensor], n_aug: int, sample_rate_hz: int,
                 contexts_ms: Sequence[float], rng: np.random.Generator
                 ) -> tuple[list[torch.Tensor], list[int]]:
    """Each [2, n] hit (onset at sample 0) -> n_aug variants, each cut to a live context.

    Per variant: gain -10..+6 dB (clipped at full scale), onset jitter -0.5..+1.5 ms
    (negative: the detector fired early, zeros before the hit; positive: late, the
    attack's start is lost), white noise 35-60 dB below the hit's peak, and truncation to
    one of `contexts_ms` (cycled, so each context gets its share).
    Returns (variants, index of the source hit of each).
    """
    out, src = [], []
    for i, w in enumerate(waves):
        w = w.float()
        peak = float(w.abs().max()) or 1e-6
        for k in range(n_aug):
            jit = int(round(rng.uniform(-0.5, 1.5) * sample_rate_hz / 1000))
            v = torch.cat([torch.zeros(2, -jit), w], 1) if jit < 0 else w[:, jit:]
            ctx = int(round(contexts_ms[(k + i) % len(contexts_ms)] * sample_rate_hz / 1000))
            v = v[:, :max(ctx, 16)].clone()
            v *= 10 ** (rng.uniform(-10, 6) / 20)
            snr = rng.uniform(35, 60)
            v += torch.from_numpy(rng.standard_normal(v.shape).astype(np.float32)) * (
                peak * 10 ** (-snr / 20))
            out.append(v.clamp(-1, 1))
            src.append(i)
    return out, src


def embed_batched(clf, waves: Sequence[torch.Tensor], batch_size: int = 128) -> torch.Tensor:
    """Embeddings [N, D] of prepared [2, n] waves, batched by similar length."""
    order = sorted(range(len(waves)), key=lambda i: waves[i].shape[-1])
    parts = [clf.embed([waves[i] for i in order[s:s + batch_size]])
             for s in range(0, len(order), batch_size)]
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
    head: dict                  # tensors: mean [D], std [D], weight [P, D], bias [P]
    labels: list[str]
    weights_sha256: str
    fit: dict = field(default_factory=dict)
    created: str = ""

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.pieces]

    def probs(self, emb: torch.Tensor) -> torch.Tensor:
        """[B, D] embeddings -> [B, P] piece probabilities."""
        return head_probs(self.head, emb)

    # ---- file ----
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "weights_sha256": self.weights_sha256,
                "labels": list(self.labels),
                "embedding_dim": int(self.head["mean"].numel()),
                "pieces": [asdict(p) for p in self.pieces],
                "head": {k: v.tolist() for k, v in self.head.items()},
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
        if d.get("version") != VERSION:
            raise KitError(f"{source}: kit profile version {d.get('version')!r} is not "
                           f"supported (this release reads version {VERSION}); re-run "
                           "`drumclassifier calibrate`")
        try:
            pieces = [Piece(**p) for p in d["pieces"]]
            head = {k: torch.tensor(d["head"][k], dtype=torch.float32)
                    for k in ("mean", "std", "weight", "bias")}
            labels = [str(x) for x in d["labels"]]
            sha = str(d["weights_sha256"])
            dim = int(d["embedding_dim"])
        except (KeyError, TypeError, ValueError) as e:
            raise KitError(f"{source}: corrupt kit profile ({type(e).__name__}: {e})") from None
        p = len(pieces)
        shapes_ok = (p >= 1 and head["mean"].shape == (dim,) and head["std"].shape == (dim,)
                     and head["weight"].shape == (p, dim) and head["bias"].shape == (p,))
        if not shapes_ok:
            raise KitError(f"{source}: corrupt kit profile (head shapes do not fit "
                           f"{p} pieces x {dim} dims)")
        if not all(torch.isfinite(v).all() for v in head.values()) or (head["std"] <= 0).any():
            raise KitError(f"{source}: corrupt kit profile (non-finite head values)")
        for pc in pieces:
            if pc.label not in labels or not 0 <= int(pc.note) <= 127:
                raise KitError(f"{source}: corrupt kit profile (piece {pc.name!r}: class "
                               f"{pc.label!r} or note {pc.note!r} invalid)")
        if len({x.name for x in pieces}) != p:
            raise KitError(f"{source}: corrupt kit profile (duplicate piece names)")
        return cls(pieces, head, labels, sha, dict(d.get("fit") or {}), str(d.get("created", "")))

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
    """Stratified fold index per hit (each piece's hits spread over the k folds)."""
    fold = np.zeros(len(y), int)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % k
    return fold


def fit_profile(clf, hits: Sequence[torch.Tensor], piece_of_hit: Sequence[int],
                pieces: list[Piece], *, augment: int = 20,
                contexts_ms: Sequence[float] = DEFAULT_CONTEXTS_MS,
                live_context_ms: float = 20.0, l2: float = 1e-2, cv_folds: int = 5,
                seed: int = 0, weights_sha256: str | None = None) -> KitProfile:
    """Calibration hits -> a KitProfile (head, velocity ranges, gates, CV accuracy).

    Args:
        clf: a DrumClassifier (its embedding, sample rate and weights).
        hits: prepared [2, n] waves at the model rate, each starting at its onset.
        piece_of_hit: index into `pieces` of each hit; every piece needs >= 1 hit.
        pieces: the kit's pieces (name, label, note); levels and CV are filled in here.
        live_context_ms: the context the live path will use: levels and the CV use it.
        cv_folds: k of the stratified k-fold CV (capped by the smallest piece's hit
            count; no CV if a piece has a single hit).
    """
    t0 = time.perf_counter()
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
    variants, src = augment_hits(hits, augment, sr, contexts_ms, rng)
    emb = embed_batched(clf, variants)                       # [N * augment, D]
    src = np.asarray(src)
    ya = torch.from_numpy(y[src]).long()
    # k-fold CV at the live context, grouped by hit (a hit's variants stay together)
    k = int(min(cv_folds, counts.min()))
    cv_per_piece = [None] * len(pieces)
    cv_acc = None
    if k >= 2:
        test_emb = embed_batched(clf, [h[:, :live] for h in hits])
        fold = _folds(y, k, rng)
        pred = np.zeros(len(y), int)
        for f in range(k):
            tr = ~np.isin(src, np.flatnonzero(fold == f))
            head = fit_head(emb[tr], ya[tr], len(pieces), l2)
            te = np.flatnonzero(fold == f)
            pred[te] = head_probs(head, test_emb[te]).argmax(1).numpy()
        cv_per_piece = [float((pred[y == i] == i).mean()) for i in range(len(pieces))]
        cv_acc = float((pred == y).mean())
    head = fit_head(emb, ya, len(pieces), l2)
    for i, pc in enumerate(pieces):
        levels = [peak_db(hits[j], live) for j in np.flatnonzero(y == i)]
        pc.min_db, pc.max_db = round(min(levels), 2), round(max(levels), 2)
        pc.gate_db = round(pc.min_db - 20.0, 2)
        pc.n_hits = int(counts[i])
        pc.cv_accuracy = cv_per_piece[i]
    sha = weights_sha256 or file_sha256(clf.weights_path)
    fit = {"contexts_ms": [float(c) for c in contexts_ms], "augment": augment, "l2": l2,
           "live_context_ms": float(live_context_ms), "cv_folds": k if k >= 2 else 0,
           "cv_accuracy": cv_acc, "seed": seed,
           "seconds": round(time.perf_counter() - t0, 3),
           "weights_file": Path(clf.weights_path).name}
    return KitProfile(pieces, head, list(clf.labels), sha, fit,
                      time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


# ---- the live path ------------------------------------------------------------------------
class KitClassify:
    """Hits -> per hit [(label, probability, extras)] with a kit profile's head.

    The drop-in for realtime.worker.Classify: the embedding of each hit goes through the
    profile's head. Sent (drumclassifier.anytime.pick_pieces): the top piece if its
    probability reaches the piece's min_confidence, and, up to max_pieces in all, any
    other piece with probability >= max(extra_piece_min, its min_confidence); none if
    the hit's peak level is under the top piece's gate_db. Before its last rung
    (anytime), a hit whose top piece is less sure than min_confidence gets None: wait
    for more context. extras = {"piece": name, "note": MIDI note, "velocity": 1-127 from
    the piece's calibrated levels}.

    max_pieces defaults to 1: the head is a softmax over single pieces fitted on single
    hits, and on kick + hihat mixes of held-out kits the runner-up almost never got the
    mass to be sent (none of 100 test-split mixes, 1 of 32 validation mixes), while
    1-2% (test) to 7-16% (validation) of single hits got a false second note
    (bench/calibration.py, "several pieces per onset"); raise it to try. Finding pairs
    needs a head fitted on mixes (one sigmoid per piece), not done yet.
    """

    def __init__(self, clf, profile: KitProfile, stream_rate_hz: int,
                 min_confidence: float = 0.8, max_pieces: int = 1,
                 extra_piece_min: float = 0.35):
        self.clf, self.profile, self.sr = clf, profile, stream_rate_hz
        self.min_confidence, self.max_pieces = min_confidence, max_pieces
        self.extra_piece_min = extra_piece_min

    def __call__(self, hits):
        waves, keep = self.clf.prepare_hits(hits, self.sr)     # [2, n] each, n = its context
        if not waves:
            return [], []
        probs = self.profile.probs(self.clf.embed(waves))       # [B, P]
        sure = (piece_confidence(probs) >= self.min_confidence).tolist()
        floors = [pc.min_confidence for pc in self.profile.pieces]
        out = []
        for h, p, ok in zip(keep, probs, sure):
            if not (ok or h.final):
                out.append(None)
                continue
            picked = pick_pieces(p, floors, self.extra_piece_min, self.max_pieces)
            if not picked or h.peak_db < self.profile.pieces[picked[0]].gate_db:
                out.append([])
                continue
            out.append([(pc.label, float(p[i]), {"piece": pc.name, "note": int(pc.note),
                                                  "velocity": pc.velocity(h.peak_db)})
                        for i, pc in ((i, self.profile.pieces[i]) for i in picked)])
        return keep, out
