"""DrumClassifier: weights + config -> labels and per-class probabilities."""
from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from . import audio, onnx_cpu
from .checkpoint import read_checkpoint, resolve_config
from .errors import AudioError, CheckpointError, DrumClassifierError
from .features import LogMel, band_profile
from .model import build_model, fold_for_inference

DEFAULT_WEIGHTS = "default.pt"


def default_weights_path() -> Path:
    """The checkpoint shipped inside the package (drumclassifier/weights/default.pt)."""
    return Path(str(resources.files("drumclassifier.weights") / DEFAULT_WEIGHTS))


MODEL_DEVICE_TYPES = ("cpu", "cuda", "mps")


def select_device(device: str | torch.device | None = None) -> torch.device:
    """The one place a device is chosen: CUDA when available, else CPU, unless overridden.

    A device that is not a torch device the model can run on (a typo, an audio device's
    index or name given where the model's device is asked for) is one DrumClassifierError
    naming it, not torch's RuntimeError.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in MODEL_DEVICE_TYPES:
        raise DrumClassifierError(f"model device {str(device)!r}: not a torch device (use cpu, "
                                  "cuda or cuda:N)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DrumClassifierError(f"model device '{device}' requested but CUDA is not "
                                  "available here (use cpu)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DrumClassifierError(f"model device '{device}': there are "
                                  f"{torch.cuda.device_count()} CUDA device(s) (cuda:0...)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise DrumClassifierError(f"model device '{device}' requested but MPS is not "
                                  "available here (use cpu)")
    return dev


def model_threads(clf) -> int:
    """Model calls run at once: on the CPU one per core, each on one torch thread (two such
    calls label 1.3x the files of one call on two threads: the GRUs' many small per-step
    ops parallelise poorly inside a call); on a GPU one."""
    return (os.cpu_count() or 1) if clf.device.type == "cpu" else 1


@dataclass
class Result:
    """One classified item.

    label/confidence: the most likely class and its probability (the one-shot answer).
    probs: every class's presence probability (sigmoid outputs; they need not sum to 1).
    present: the classes at or above their thresholds (several for kick + hihat).
    """
    label: str
    confidence: float
    probs: dict[str, float]
    present: list[str] = field(default_factory=list)
    path: str | None = None


class DrumClassifier:
    """Classify drum hits as kick, snare, hihat, toms or cymbals.

    Args:
        weights_path: a checkpoint; None = the weights shipped with the package.
        cfg_path: a model config YAML; None = the checkpoint's own config. If given,
            it must describe the same features and network (thresholds may differ).
        device: "cpu", "cuda", "cuda:1"...; None = CUDA when available, else CPU.
        runtime: on the CPU, "onnx" runs batches whose items have one length (a live
            hit, a batch of 1 s files) through ONNX Runtime (drumclassifier/onnx_cpu.py:
            the same numbers, a live hit 6-10x faster), "torch" never; None = "onnx" on
            the CPU when onnxruntime is installed. Other batches, and CUDA, use torch.
    """

    def __init__(self, weights_path: str | Path | None = None, cfg_path: str | Path | None = None,
                 device: str | torch.device | None = None, runtime: str | None = None):
        if weights_path is None:
            weights_path = default_weights_path()
            if not weights_path.is_file():
                raise CheckpointError(
                    "no trained weights are installed with this package "
                    f"({weights_path} is missing); pass weights_path= / -w WEIGHTS")
        self.weights_path = Path(weights_path)
        ckpt = read_checkpoint(self.weights_path)
        self.cfg = resolve_config(ckpt, self.weights_path, cfg_path)
        self.meta = ckpt.get("meta", {})
        self.labels = list(self.cfg.labels)
        self.device = select_device(device)
        self.features = LogMel(self.cfg)
        self.model = build_model(self.cfg)
        try:
            self.model.load_state_dict(ckpt["state_dict"], strict=True)
        except RuntimeError as e:
            detail = " ".join(str(e).split())[:300]
            raise CheckpointError(
                f"{self.weights_path}: weights do not fit the network its config describes "
                f"({detail})") from None
        self.features.to(self.device).eval()
        # batch norms folded into the convs: inference only (this object never trains)
        self.model = fold_for_inference(self.model.to(self.device))
        if runtime not in (None, "torch", "onnx"):
            raise DrumClassifierError(f"runtime {runtime!r}: use torch or onnx")
        if runtime == "onnx" and (self.device.type != "cpu" or not onnx_cpu.available()):
            raise DrumClassifierError("runtime onnx needs the CPU and onnxruntime installed")
        self.runtime = runtime or ("onnx" if self.device.type == "cpu"
                                   and onnx_cpu.available() else "torch")
        self._onnx_runner = None          # exported at the first equal-length call
        self._onnx_lock = threading.Lock()  # one export even if two model threads ask
        t = self.cfg.thresholds
        self.thresholds = torch.tensor(t if t is not None else [0.5] * len(self.labels))

    @property
    def model_id(self) -> str:
        """12 hex digits naming these weights and this config (sha256 of both): results
        with the same id came from the same model (classify --resume compares it)."""
        if not hasattr(self, "_model_id"):
            h = hashlib.sha256(self.weights_path.read_bytes())
            h.update(repr(self.cfg).encode())
            self._model_id = h.hexdigest()[:12]
        return self._model_id

    # ---- core: prepared waveforms -> probabilities -------------------------------------
    def prepare(self, waveform, sample_rate_hz: int, name: str = "waveform") -> torch.Tensor:
        """Any waveform -> [2, n] at the model rate, cut to analysis_s (see audio.prepare)."""
        return audio.prepare(waveform, sample_rate_hz, self.cfg.sample_rate_hz,
                             self.cfg.analysis_samples, name)

    def prepare_hits(self, hits, sample_rate_hz: int
                     ) -> tuple[list[torch.Tensor], list, list[torch.Tensor] | None]:
        """Live hits (objects with .audio [n, channels], .index and optionally .before
        [m, channels], the audio just before the onset) -> prepared waves, the hits they
        belong to, and for a model with a lead-in (cfg.lead_in_frames) each hit's lead-in
        [2, lead_in_samples] (else None). A hit that cannot be classified (e.g. digital
        silence after a gap) is left out rather than failing the batch."""
        waves, keep, lead = [], [], []
        n_lead = self.cfg.lead_in_samples
        for h in hits:
            try:
                waves.append(self.prepare(torch.from_numpy(np.ascontiguousarray(h.audio.T)),
                                          sample_rate_hz, f"hit {h.index}"))
            except AudioError:
                continue
            keep.append(h)
            if n_lead:
                lead.append(audio.lead_in(getattr(h, "before", None), sample_rate_hz,
                                          self.cfg.sample_rate_hz, n_lead))
        return waves, keep, (lead if n_lead else None)

    def load(self, path: str | Path) -> torch.Tensor:
        return audio.load(path, self.cfg.sample_rate_hz, self.cfg.analysis_s)

    @torch.inference_mode()
    def predict(self, waves: Sequence[torch.Tensor], lengths: torch.Tensor | None = None,
                before: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """Prepared items -> presence probabilities [B, n_labels] (on the CPU).

        waves: a list of [2, n_i] tensors from the onset (zero-padded together here), or a
            [B, 2, N] tensor with `lengths` [B] giving each item's valid samples.
        before: for a model with a lead-in, each item's [2, lead_in_samples] of audio
            before its onset; None = silence (a sample file, a one-shot).
        """
        logits, _, _ = self._run(waves, lengths, before)
        return torch.sigmoid(logits / (self.cfg.temperature or 1.0)).float().cpu()

    @torch.inference_mode()
    def embed(self, waves: Sequence[torch.Tensor], lengths: torch.Tensor | None = None,
              spectrum: bool = False, before: Sequence[torch.Tensor] | None = None
              ) -> torch.Tensor:
        """Prepared items -> hit embeddings [B, D] (the time RNN's final state; D =
        members x time_rnn_hidden); with spectrum, [B, D + n_mels]: the log-mel band
        profile (features.band_profile) appended, for kit profiles. before: as in predict."""
        _, emb, (feats, frames) = self._run(waves, lengths, before)
        if spectrum:
            emb = torch.cat([emb, band_profile(feats, frames)], 1)
        return emb.float().cpu()

    def _run(self, waves, lengths, before):
        """-> logits [B, n_labels], embeddings [B, D] and (feats, frames): through ONNX
        Runtime when every item has one length (see runtime), else torch's masked path."""
        x, lengths = self._batch(waves, lengths, before)
        feats, frames = self.features(x, lengths)
        if self.runtime == "onnx" and bool((frames == feats.shape[-1]).all()):
            logits, emb = self._onnx()(feats)
        else:
            emb = self.model.embed(feats, frames)
            logits = self.model.logits(emb)
        return logits, emb, (feats, frames)

    def _onnx(self) -> onnx_cpu.OnnxRunner:
        with self._onnx_lock:
            if self._onnx_runner is None:
                self._onnx_runner = onnx_cpu.OnnxRunner(self.model, self.cfg.features.n_mels)
            return self._onnx_runner

    def warm_up(self, contexts_ms=(20.0,)) -> None:
        """Pay the one-off costs before a live stream's first hit: the ONNX export (about
        1 s) and a first call at each context (ms after the onset) the stream will use."""
        for ms in contexts_ms:
            n = max(1, int(round(ms * self.cfg.sample_rate_hz / 1000)))
            self.predict([torch.full((2, n), 1e-3)])

    def _batch(self, waves, lengths, before=None):
        """-> x [B, 2, P + N] on the device and lengths [B] (lead-in included), where
        P = cfg.lead_in_samples: each item's lead-in (`before`, else zeros) then its audio."""
        p = self.cfg.lead_in_samples
        if isinstance(waves, torch.Tensor) and waves.ndim == 3:
            if lengths is None:
                lengths = torch.full((waves.shape[0],), waves.shape[-1], dtype=torch.long)
            if p:
                waves = torch.nn.functional.pad(waves, (p, 0))
                lengths = lengths + p
                if before is not None:      # [B, 2, p] tensor or B tensors [2, p]
                    waves[:, :, :p] = torch.as_tensor(before if isinstance(before, torch.Tensor)
                                                      else torch.stack(list(before)))
            return waves.to(self.device), lengths.to(self.device)
        n = max(w.shape[-1] for w in waves)
        x = torch.zeros(len(waves), 2, p + n)
        for i, w in enumerate(waves):
            x[i, :, p:p + w.shape[-1]] = w
            if p and before is not None:
                x[i, :, :p] = before[i]
        lengths = torch.tensor([p + w.shape[-1] for w in waves], dtype=torch.long)
        return x.to(self.device), lengths.to(self.device)

    def results(self, probs: torch.Tensor, paths: Sequence | None = None) -> list[Result]:
        """Probabilities [B, n_labels] -> one Result per row."""
        out = []
        for i, p in enumerate(probs):
            k = int(p.argmax())
            present = [lab for lab, pi, th in zip(self.labels, p, self.thresholds) if pi >= th]
            out.append(Result(self.labels[k], float(p[k]),
                              {lab: float(v) for lab, v in zip(self.labels, p)}, present,
                              str(paths[i]) if paths is not None else None))
        return out

    # ---- the public API ----------------------------------------------------------------
    def classify(self, waveform, sample_rate: int):
        """Classify one waveform or a batch.

        waveform: [n] mono, [channels, n], or a batch: [B, channels, n] / a list of those.
            numpy arrays or tensors, float, any rate (resampled), any length (first 4 s used).
        Returns one Result, or a list for a batch.
        """
        if isinstance(waveform, (list, tuple)):
            waves = [self.prepare(w, sample_rate, f"item {i}") for i, w in enumerate(waveform)]
            return self.results(self.predict(waves))
        w = torch.as_tensor(np.asarray(waveform) if not isinstance(waveform, torch.Tensor)
                            else waveform, dtype=torch.float32)
        if w.ndim == 3:
            return self.classify(list(w), sample_rate)
        return self.results(self.predict([self.prepare(w, sample_rate)]))[0]

    def classify_from_path(self, path):
        """Classify a file, or a list of files (one Result each, in order).

        Raises AudioError naming the file if one cannot be used; `drumclassifier classify`
        goes on past bad files instead.
        """
        if isinstance(path, (list, tuple)):
            waves = [self.load(p) for p in path]
            return self.results(self.predict(waves), paths=path)
        return self.results(self.predict([self.load(path)]), paths=[path])[0]
