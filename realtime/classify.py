"""Per-hit classification on the live path: the worker's `classify` function.

A classify function takes a batch of live Hits and returns (the hits it kept, per kept
hit: None = not sure yet, wait for the hit's next rung; else [(label, probability)] or
[(label, probability, extras)] to send). Two of them, side by side:

  Classify     the generic model: every class at or above its threshold;
  KitClassify  a kit profile from `drumclassifier calibrate` (drumclassifier/kit.py):
               the profile's head over the kit's pieces, with their notes and velocities.

kit_classify() builds the one a command asks for (--kit). Both decide as the benchmark
measures (drumclassifier/anytime.py). torch is imported here: the engine imports this
module only when it builds its default Classify, so `import realtime` stays light.
"""
from __future__ import annotations

import sys

import numpy as np
import torch

from drumclassifier.anytime import (
    class_confidence,
    class_sure,
    pick_pieces,
    piece_confidence,
    piece_decisions,
)
from drumclassifier.config import defaults_with
from drumclassifier.errors import ConfigError
from drumclassifier.kit import KitProfile, file_sha256

from .config import DecisionConfig, SlicerConfig
from .slicer import RISE_BANDS_HZ, Hit, band_rises_db
from .worker import More


class RiseCheck:
    """decision.rise_classes / min_rise_db: which classes of a hit did not rise at its
    onset (realtime.slicer.band_rises_db over the hit's slice and the audio before it)."""

    def __init__(self, labels, stream_rate_hz: int, rise_classes=None,
                 min_rise_db: float | None = None):
        d = defaults_with(DecisionConfig, rise_classes=rise_classes, min_rise_db=min_rise_db)
        unknown = [c for c in d.rise_classes if c not in RISE_BANDS_HZ or c not in labels]
        if unknown:
            raise ConfigError(f"decision.rise_classes: {', '.join(unknown)} (the classes with "
                              f"a band: {', '.join(RISE_BANDS_HZ)})")
        self.bands = {c: RISE_BANDS_HZ[c] for c in d.rise_classes}
        self.min_db, self.sr = d.min_rise_db, stream_rate_hz

    def keep(self, h: Hit, idx: list[int], label_of) -> list[int]:
        """The indices in `idx` (classes or pieces; label_of(i) -> its class) to send: those
        of a checked class whose band rose less than min_rise_db at h's onset are left out."""
        checked = {c: self.bands[c] for c in {label_of(i) for i in idx} if c in self.bands}
        if not checked:
            return idx
        rise = band_rises_db(h.audio, h.before, self.sr, checked)   # 0.2 ms of numpy
        return [i for i in idx if rise.get(label_of(i), np.inf) >= self.min_db]


def first_rung_samples(first_ms: float | None, stream_rate_hz: int) -> int:
    """The late look's first rung in stream-rate samples (None: the config's context_ms):
    a slice longer than it is the late look."""
    first_ms = defaults_with(SlicerConfig, context_ms=first_ms).context_ms
    return int(round(first_ms * stream_rate_hz / 1000))


def late_look_rung(h: Hit, first_n: int) -> str:
    """With a late look (two rungs): "first" (send all but the late classes, keep going),
    "late" (send only the late classes) or "all" (the stream ended before the first rung
    was complete: send everything now)."""
    if not h.final:
        return "first"
    return "late" if len(h.audio) > first_n else "all"


class Classify:
    """Hits -> per-hit probabilities with a DrumClassifier (resampling/channel policy applied).

    Per hit: every class at or above its threshold. If none is: nothing is sent when the
    model was trained to reject onsets that are not drums (ModelConfig.rejects_non_drums:
    a bass note, a ringing tail), else the top class. A class of rise_classes is sent
    only where its band (RISE_BANDS_HZ) rose at least min_rise_db at the onset
    (RiseCheck): not a kick still ringing under the hihat struck over it, nor a hihat for
    a chord; a model that cannot reject still sends its top class. A hit before its last
    rung (anytime) whose decision is less sure than min_confidence
    (drumclassifier.anytime.class_confidence) gets None: wait for more context.

    With late_classes (slicer.late_look_ms: two rungs, first_ms and the late look): the
    first rung sends every other class present and keeps the hit going (More); the late
    rung sends the late classes present. A hit whose stream ends before its first rung
    is complete sends every class at once.
    """

    def __init__(self, clf, stream_rate_hz: int, min_confidence: float | None = None,
                 late_classes=(), first_ms: float | None = None,
                 rise_classes=None, min_rise_db: float | None = None):
        self.clf, self.sr = clf, stream_rate_hz
        self.min_confidence = defaults_with(DecisionConfig, min_confidence=min_confidence).min_confidence
        self.rise = RiseCheck(clf.labels, stream_rate_hz, rise_classes, min_rise_db)
        unknown = [c for c in late_classes if c not in clf.labels]
        if unknown:
            raise ConfigError(f"decision.late_classes: {', '.join(unknown)} not among the "
                              f"model's classes ({', '.join(clf.labels)})")
        self.late = {clf.labels.index(c) for c in late_classes}
        self.first_n = first_rung_samples(first_ms, stream_rate_hz)

    def __call__(self, hits: list[Hit]):
        waves, keep, lead = self.clf.prepare_hits(hits, self.sr)   # [2, n] each, n = its context
        if not waves:
            return [], []
        probs = self.clf.predict(waves, before=lead)   # [B, n_labels] on the CPU
        th = self.clf.thresholds
        sure = (class_confidence(probs, th) >= self.min_confidence).tolist()   # [B]
        out = []
        for h, p, ok in zip(keep, probs, sure):
            if not (ok or h.final or self.late):
                out.append(None)
                continue
            idx = [int(i) for i in torch.nonzero(p >= th).flatten()]
            idx = self.rise.keep(h, idx, self.clf.labels.__getitem__)
            if not idx and not self.clf.cfg.rejects_non_drums:
                idx = [int(p.argmax())]
            idx.sort(key=lambda i: -float(p[i]))
            items = [(self.clf.labels[i], float(p[i])) for i in idx]
            rung = late_look_rung(h, self.first_n) if self.late else "all"
            if rung == "first":
                items = More(x for i, x in zip(idx, items) if i not in self.late)
            elif rung == "late":
                items = [x for i, x in zip(idx, items) if i in self.late]
            out.append(items)
        return keep, out


class KitClassify:
    """Hits -> per hit [(label, probability, extras)] with a kit profile's head.

    The drop-in for Classify: the embedding of each hit goes through the
    profile's head. Sent (drumclassifier.anytime.pick_pieces): the top piece if its
    probability reaches the piece's min_confidence, and, up to max_pieces in all, any
    other piece with probability >= max(extra_piece_min, its min_confidence); none if
    the hit's peak level is under the top piece's gate_db. Before its last rung
    (anytime), a hit whose top piece is less sure than min_confidence gets None: wait
    for more context. With sure_of="class" the test is on the top class instead (the
    summed probability of its pieces), and the piece sent first is that class's most
    probable one (anytime.class_sure): earlier decisions, more wrong pieces of the right
    class (a ride sent as the crash). extras = {"piece": name, "note": MIDI note,
    "velocity": 1-127 from the piece's calibrated levels}.

    max_pieces (default 3, configs/realtime.yaml): a profile with a sigmoid per piece
    (version 4, fitted on synthesised grooves of the taught hits) sends every piece
    present, up to that many (docs/calibration.md, "In grooves"). An older softmax profile
    (version 1-3, fitted on single hits) sends a runner-up only at extra_piece_min: on
    kick + hihat mixes it almost never got the mass (bench/calibration.py, "several
    pieces per onset").

    late_classes (slicer.late_look_ms; sigmoid profiles only): as in Classify, the pieces
    of those classes are sent from the late look, every other piece at the first rung.
    rise_classes, min_rise_db: as in Classify, a piece of those classes is sent only where
    its class's band rose at the onset.
    """

    def __init__(self, clf, profile: KitProfile, stream_rate_hz: int,
                 min_confidence: float | None = None, max_pieces: int | None = None,
                 extra_piece_min: float | None = None, sure_of: str | None = None,
                 late_classes=(), first_ms: float | None = None, rise_classes=None,
                 min_rise_db: float | None = None):
        # None: the real-time config's default
        d = defaults_with(DecisionConfig, min_confidence=min_confidence, max_pieces=max_pieces,
                          extra_piece_min=extra_piece_min, sure_of=sure_of)
        if d.sure_of not in ("piece", "class"):
            raise ValueError(f"sure_of must be piece or class, got {d.sure_of!r}")
        self.clf, self.profile, self.sr = clf, profile, stream_rate_hz
        self.min_confidence, self.max_pieces = d.min_confidence, d.max_pieces
        self.extra_piece_min, self.sure_of = d.extra_piece_min, d.sure_of
        self.piece_classes = [profile.labels.index(pc.label) for pc in profile.pieces]
        # sigmoid profiles: a piece is present at 0.5, or at its own min_confidence if set
        self.piece_thresholds = torch.tensor([pc.min_confidence or 0.5 for pc in profile.pieces])
        # a late look (its mode even when the kit has no piece of those classes: 2 rungs):
        # the pieces each rung may send
        self.late_look = bool(late_classes)
        every = set(range(len(profile.pieces)))
        late = {i for i in every if profile.pieces[i].label in late_classes}
        self.rung_pieces = {"first": every - late, "late": late, "all": every}
        if late_classes and not profile.head.multi_label:
            raise ConfigError("slicer.late_look_ms needs a kit profile with a sigmoid per "
                              "piece (version 4): re-run `drumclassifier calibrate`")
        self.first_n = first_rung_samples(first_ms, stream_rate_hz)
        # pieces of these classes are sent only where their class's band rose (RiseCheck)
        self.rise = RiseCheck(profile.labels, stream_rate_hz, rise_classes, min_rise_db)

    def __call__(self, hits):
        waves, keep, lead = self.clf.prepare_hits(hits, self.sr)   # [2, n] each, n = its context
        if not waves:
            return [], []
        emb = self.clf.embed(waves, spectrum=self.profile.spectrum, before=lead)  # [B, D]
        probs = self.profile.probs(emb)                                # [B, P]
        if self.profile.head.multi_label:
            return keep, self._per_piece(keep, probs)
        if self.sure_of == "class":
            conf, first = class_sure(probs, self.piece_classes, len(self.profile.labels))
        else:
            conf, first = piece_confidence(probs), probs.argmax(-1)   # [B] each
        sure = (conf >= self.min_confidence).tolist()
        floors = [pc.min_confidence for pc in self.profile.pieces]
        out = []
        for h, p, ok, top in zip(keep, probs, sure, first.tolist()):
            if not (ok or h.final):
                out.append(None)
                continue
            picked = pick_pieces(p, floors, self.extra_piece_min, self.max_pieces, top)
            picked = self.rise.keep(h, picked, lambda i: self.profile.pieces[i].label)
            if not picked or h.peak_db < self.profile.pieces[picked[0]].gate_db:
                out.append([])
                continue
            out.append([self._item(p, i, h) for i in picked])
        return keep, out

    def _item(self, p: torch.Tensor, i: int, h: Hit) -> tuple:
        pc = self.profile.pieces[i]
        return (pc.label, float(p[i]), {"piece": pc.name, "note": int(pc.note),
                                        "velocity": pc.velocity(h.peak_db)})

    def _per_piece(self, keep: list[Hit], probs: torch.Tensor) -> list:
        """A sigmoid per piece (profile version 4): each piece sent at its own rung
        (drumclassifier.anytime.piece_decisions), once per hit (Track.sent), most probable
        first, at most max_pieces per hit; a piece under its gate_db is not sent (bleed)."""
        pieces = self.profile.pieces
        # a late look: every rung decides (its own pieces), the first one all but the late
        final = torch.tensor([h.final or self.late_look for h in keep])
        send, done = piece_decisions(probs, self.piece_thresholds, self.min_confidence, final)
        out = []
        for h, p, s, d in zip(keep, probs, send, done.tolist()):
            sent = h.track.sent if h.track is not None else set()
            if self.late_look:      # this rung's own pieces; the hit goes on to the last
                ok = self.rung_pieces[late_look_rung(h, self.first_n)]
                s, d = [bool(x) and i in ok for i, x in enumerate(s.tolist())], h.final
            new = [i for i in torch.argsort(p, descending=True).tolist()
                   if s[i] and i not in sent and h.peak_db >= pieces[i].gate_db]
            new = self.rise.keep(h, new, lambda i: pieces[i].label)
            new = new[:max(0, self.max_pieces - len(sent))]
            sent.update(new)
            items = [self._item(p, i, h) for i in new]
            out.append(items if d else (More(items) if items else None))
        return out


def kit_classify(clf, kit_path, cfg, stream_rate_hz: int, quiet: bool = False) -> KitClassify:
    """`--kit FILE`: the profile loaded for these weights (a profile fitted on other weights
    is refused), a warning when the live contexts lie outside those it was fitted on, and
    its KitClassify with the real-time config's decision rules."""
    prof = KitProfile.load(kit_path, file_sha256(clf.weights_path), clf.labels)
    ctx = prof.fit.get("contexts_ms") or []
    live = cfg.slicer.contexts_ms
    if ctx and not min(ctx) <= min(live) <= max(live) <= max(ctx):
        span = f"{min(live):g}-{max(live):g}" if len(live) > 1 else f"{live[0]:g}"
        print(f"warning: context {span} ms is outside the contexts the kit profile was "
              f"fitted on ({min(ctx):g}-{max(ctx):g} ms)", file=sys.stderr)
    if not quiet:
        print(f"kit: {kit_path}: " + ", ".join(f"{p.name} ({p.note})" for p in prof.pieces),
              file=sys.stderr, flush=True)
        if prof.head.multi_label and not prof.fit.get("played"):
            print("kit: fitted from single hits only; calibrating with the play-along groove "
                  "(calibrate --groove, or g in the guided session) hears grooves better",
                  file=sys.stderr, flush=True)
    d = cfg.decision
    return KitClassify(clf, prof, stream_rate_hz, d.min_confidence, d.max_pieces,
                       d.extra_piece_min, d.sure_of, cfg.late_look_classes, cfg.slicer.context_ms,
                       d.rise_classes, d.min_rise_db)
