"""Labelled hits for training and evaluation: the manifest, decoded audio in memory, mixtures.

Manifest (written by `drumclassifier corpus build`): a CSV with at least the columns
`path` (relative to the manifest's folder), `label` and `split`; `kit`, `group` and
`source` are used when present (mixtures are drawn from one kit; intervals cluster by
kit and drum). Audio is 44.1 kHz with the onset at sample 0.

Audio is decoded once (threads; soundfile releases the GIL) into one packed tensor,
trailing digital silence cut, exactly as `audio.load` gives it to the classifier.
"""
from __future__ import annotations

import csv
import ctypes
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import audio
from .errors import ConfigError, DrumClassifierError


@dataclass
class Item:
    path: Path
    label: str
    kit: str = ""
    group: str = ""
    source: str = ""
    split: str = ""


def read_manifest(path: str | Path, splits: Sequence[str] | None, labels: Sequence[str]
                  ) -> tuple[list[Item], int]:
    """Rows of `splits` (None = all) whose label is one of `labels`.

    Returns (items, n_skipped): rows with other labels (negatives, not-yet-used classes)
    are skipped and counted, not an error.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: manifest not found (build it with `drumclassifier corpus build`)")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"path", "label", "split"} - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(f"{path}: manifest lacks column(s) {sorted(missing)}")
        rows = list(reader)
    items, skipped = [], 0
    for r in rows:
        if splits is not None and r["split"] not in splits:
            continue
        if r["label"] not in labels:
            skipped += 1
            continue
        kit = r.get("kit") or r.get("group") or r.get("source") or ""
        items.append(Item(path.parent / r["path"], r["label"], kit, r.get("group") or kit,
                          r.get("source") or "", r["split"]))
    return items, skipped


def items_from_folder(folder: str | Path, labels: Sequence[str]) -> list[Item]:
    """A folder with one sub-folder per class (named as the labels); files found recursively.

    The folder counts as one kit, so mixtures combine any of its hits.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder")
    subs = {p.name: p for p in folder.iterdir() if p.is_dir()}
    unknown = sorted(set(subs) - set(labels))
    if not set(subs) & set(labels):
        raise ConfigError(f"{folder}: no sub-folder named after a class ({', '.join(labels)})")
    items = []
    for label in labels:
        if label in subs:
            items += [Item(p, label, kit=folder.name, group=folder.name, source="folder")
                      for p in audio.find_audio_files([subs[label]], recursive=True)]
    if unknown:
        print(f"note: ignoring sub-folders that are not classes: {', '.join(unknown)}")
    return items


class ClipBank:
    """Decoded hits, packed in one [2, total] tensor (float16 or float32).

    Args:
        items: the hits; those that cannot be decoded are dropped (see `.failed`).
        sample_rate_hz: the model rate (files at other rates are resampled).
        max_s: seconds kept per hit.
        dtype: torch.float16 halves memory and keeps ~-66 dB relative precision at every
            level (int16 would bury the quiet tails of soft velocity layers).
    """

    def __init__(self, items: Sequence[Item], sample_rate_hz: int, max_s: float,
                 dtype: torch.dtype = torch.float16, jobs: int = 4, progress: bool = True,
                 desc: str = "decoding"):
        from tqdm import tqdm

        def load(item):
            try:
                return audio.load(item.path, sample_rate_hz, max_s), None
            except DrumClassifierError as e:
                return None, str(e)

        waves, kept, self.failed = [], [], []
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for item, (w, err) in tqdm(zip(items, pool.map(load, items)), total=len(items),
                                       desc=desc, unit="file", disable=not progress,
                                       dynamic_ncols=True):
                if err:
                    self.failed.append((item, err))
                else:
                    waves.append(w.to(dtype))
                    kept.append(item)
        if not kept:
            raise DrumClassifierError("no usable audio: " + (self.failed[0][1] if self.failed
                                                              else "no items"))
        self.items = kept
        self.sample_rate_hz = sample_rate_hz
        self.lengths = torch.tensor([w.shape[-1] for w in waves], dtype=torch.long)
        self.offsets = torch.zeros(len(waves) + 1, dtype=torch.long)
        self.offsets[1:] = torch.cumsum(self.lengths, 0)
        self.data = torch.cat(waves, dim=1)  # [2, total]
        self.labels = [it.label for it in kept]
        self.kits = [it.kit for it in kept]

    def __len__(self) -> int:
        return len(self.items)

    def get(self, i: int) -> torch.Tensor:
        """Hit i as float32 [2, n]."""
        return self.data[:, int(self.offsets[i]):int(self.offsets[i + 1])].float()

    @property
    def nbytes(self) -> int:
        return self.data.numel() * self.data.element_size()


def pad_batch(waves: Sequence[torch.Tensor], max_len: int | None = None, lead_in: int = 0
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """[2, n_i] tensors -> zero-padded [B, 2, N] and lengths [B] (each cut to max_len).

    lead_in: samples of silence put before each item (a model's lead-in for hits that
    have nothing before their onset: one-shots); max_len counts from the onset.
    """
    lens = [w.shape[-1] if max_len is None else min(w.shape[-1], max_len) for w in waves]
    x = torch.zeros(len(waves), 2, lead_in + max(lens))
    for i, (w, n) in enumerate(zip(waves, lens)):
        x[i, :, lead_in:lead_in + n] = w[:, :n]
    return x, torch.tensor([lead_in + n for n in lens], dtype=torch.long)


def mix(waves: Sequence[torch.Tensor], gains_db: Sequence[float], offsets: Sequence[int]
        ) -> torch.Tensor:
    """Sum hits [2, n_i], each scaled by its gain (dB) and delayed by its offset (samples)."""
    n = max(o + w.shape[-1] for w, o in zip(waves, offsets))
    out = torch.zeros(2, n)
    for w, g, o in zip(waves, gains_db, offsets):
        out[:, o:o + w.shape[-1]] += w * (10.0 ** (g / 20.0))
    return out


@dataclass
class MixSpec:
    """One mixture: hit indices, gains (dB) and onset offsets (samples); the first at 0."""
    indices: list[int]
    gains_db: list[float]
    offsets: list[int]


class MixtureSampler:
    """Draws mixtures of 2-3 hits of one kit, with distinct labels where the kit allows.

    Distinct labels make every mixture a multi-label example (two snares of one kit
    would only teach 'snare' again); a kit with fewer classes gives fewer hits.
    """

    def __init__(self, labels: Sequence[str], kits: Sequence[str], sample_rate_hz: int,
                 sizes: Sequence[int] = (2, 3), gain_db: Sequence[float] = (-12.0, 0.0),
                 offset_ms: Sequence[float] = (0.0, 10.0)):
        self.labels, self.kits = list(labels), list(kits)
        self.by_kit: dict[str, list[int]] = {}
        for i, k in enumerate(kits):
            self.by_kit.setdefault(k, []).append(i)
        self.sizes, self.gain_db = list(sizes), tuple(gain_db)
        self.offset_samples = tuple(round(ms * 1e-3 * sample_rate_hz) for ms in offset_ms)

    def multi_kit(self) -> list[str]:
        """Kits with at least two distinct labels (the only ones that can mix)."""
        return [k for k, idx in self.by_kit.items() if len({self.labels[i] for i in idx}) > 1]

    def sample(self, rng: np.random.Generator, anchor: int) -> MixSpec:
        size = int(rng.choice(self.sizes))
        chosen, used = [anchor], {self.labels[anchor]}
        pool = list(self.by_kit[self.kits[anchor]])
        rng.shuffle(pool)
        for j in pool:
            if len(chosen) == size:
                break
            if self.labels[j] not in used:
                chosen.append(j)
                used.add(self.labels[j])
        gains = rng.uniform(*self.gain_db, size=len(chosen)).tolist()
        offs = [0] + rng.integers(self.offset_samples[0], self.offset_samples[1] + 1,
                                  size=len(chosen) - 1).tolist()
        return MixSpec(chosen, gains, offs)

    def fixed_set(self, n: int, seed: int) -> list[MixSpec]:
        """n seeded mixtures, anchors spread over the kits that can mix."""
        rng = np.random.default_rng(seed)
        kits = self.multi_kit()
        if not kits:
            return []
        out = []
        for _ in range(n):
            kit = kits[int(rng.integers(len(kits)))]
            anchor = int(rng.choice(self.by_kit[kit]))
            out.append(self.sample(rng, anchor))
        return out


def mixture_target(spec: MixSpec, labels: Sequence[str], all_labels: Sequence[str]) -> np.ndarray:
    t = np.zeros(len(all_labels), np.float32)
    for i in spec.indices:
        t[all_labels.index(labels[i])] = 1.0
    return t


def release_freed_memory() -> None:
    """Hand the heap's freed pages back to the system (glibc's malloc_trim; elsewhere
    nothing). Decoding hundreds of streams leaves their freed buffers in the heap, resident,
    and seeds trained side by side then run out of memory."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


class GrooveBank:
    """Rendered grooves (`drumclassifier grooves`) and their detected onsets, in memory.

    index: OUT/streams.csv; the rows of `split` are read: each stream's audio [2, n]
    (float16, packed like ClipBank) and its onsets file (sample, labels "kick+hihat" or
    "" for an onset with no drum note near it). `targets` [n_onsets, C] multi-hot
    (all zero: a negative), `stream`/`sample` locate each onset.
    """

    def __init__(self, index: str | Path, split: str, labels: Sequence[str],
                 sample_rate_hz: int, dtype: torch.dtype = torch.float16, progress: bool = True):
        from tqdm import tqdm
        index = Path(index)
        if not index.is_file():
            raise ConfigError(f"{index}: groove index not found (render it with "
                              "`drumclassifier grooves`)")
        with index.open(newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r["split"] == split]
        # One buffer sized from the headers, filled stream by stream: concatenating a list
        # of decoded streams held both at once, and with the decoders' freed buffers left in
        # the heap, 900 streams (a 3.2 GB bank) kept 7.8 GB resident per training process.
        paths = [index.parent / r["audio"] for r in rows]
        durations = [audio.duration_s(p) or 0.0 for p in paths]
        capacity = sum(int(np.ceil(d * sample_rate_hz)) + 1 for d in durations)
        self.data = torch.zeros(2, capacity, dtype=dtype)       # [2, capacity]
        lengths, streams, samples, targets, at = [], [], [], [], 0
        for path, d in tqdm(list(zip(paths, durations)), desc=f"grooves {split}",
                            unit="stream", disable=not progress, dynamic_ncols=True):
            w = audio.load(path, sample_rate_hz, d + 1.0)        # [2, n] float32
            ons = path.with_name(path.stem + ".onsets.csv")
            with ons.open(newline="") as f:
                for o in csv.DictReader(f):
                    t = np.zeros(len(labels), np.float32)
                    for lab in filter(None, o["labels"].split("+")):
                        if lab in labels:
                            t[labels.index(lab)] = 1.0
                    streams.append(len(lengths))
                    samples.append(int(o["sample"]))
                    targets.append(t)
            n = w.shape[-1]
            if at + n > self.data.shape[-1]:                    # a header that undercounted
                self.data = torch.nn.functional.pad(self.data[:, :at], (0, n))
            self.data[:, at:at + n] = w                          # cast to the bank's dtype
            lengths.append(n)
            at += n
        if not targets:
            raise ConfigError(f"{index}: no detected onsets in split {split!r}")
        self.lengths = torch.tensor(lengths, dtype=torch.long)
        self.offsets = torch.zeros(len(lengths) + 1, dtype=torch.long)
        self.offsets[1:] = torch.cumsum(self.lengths, 0)
        self.data = self.data[:, :int(self.offsets[-1])]        # [2, total] (a view)
        release_freed_memory()
        self.stream = np.array(streams)
        self.sample = np.array(samples)
        self.targets = np.stack(targets)                         # [n_onsets, C]
        self.sample_rate_hz = sample_rate_hz

    def __len__(self) -> int:
        return len(self.sample)

    def get(self, i: int, n: int, lead_in: int = 0) -> torch.Tensor:
        """Onset i's audio as the worker gets it: float32 [2, lead_in + <= n]: lead_in
        samples from before the onset (zeros before the stream's start), then up to n
        from the onset on."""
        s = int(self.stream[i])
        start = int(self.offsets[s])
        a = start + int(self.sample[i])
        b = min(a + n, int(self.offsets[s + 1]))
        w = self.data[:, max(start, a - lead_in):b].float()
        short = lead_in - (a - max(start, a - lead_in))     # lead-in before the stream
        return torch.nn.functional.pad(w, (short, 0)) if short else w

    @property
    def nbytes(self) -> int:
        return self.data.numel() * self.data.element_size()
