"""Typed model configuration: YAML (omegaconf) onto dataclasses.

A typo in a key is an error, not a silent default: the YAML is merged onto a
structured config, and omegaconf refuses keys the schema does not know.

Options that were measured, did not help, and were removed (docs/experiments.md) may
still be named by an older file or checkpoint: `merge_structured(..., removed=...)` drops
such a key when it holds the option's "off" value and refuses it, naming the key and the
commit that last had the code, when it asks for the option.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .classes import CLASSES
from .errors import ConfigError

# ms of audio after an onset the live path classifies by default (the latency floor);
# realtime's SlicerConfig.context_ms, training's val_context_ms and kit fitting read it
LIVE_CONTEXT_MS = 20.0

# The last commit that holds the code of the removed options (docs/experiments.md).
REMOVED_IN = "9b3c41f"

# model config keys of removed options -> the value that meant "off"; ... (Ellipsis): a
# setting of a removed option, dropped whatever it holds
REMOVED_MODEL_KEYS = {
    "features.norm": "none",                    # per-clip band-mean / PCEN front ends
    "features.band_mean_min_frames": ...,
    "features.pcen": ...,
}


@dataclass
class FeatureConfig:
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 64
    f_min_hz: float = 20.0
    f_max_hz: float = 20000.0
    log_floor: float = 1e-6


@dataclass
class NetConfig:
    conv_channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    freq_rnn_hidden: int = 32
    time_rnn_hidden: int = 64
    linear_hidden: list[int] = field(default_factory=lambda: [64, 32])
    dropout: float = 0.1
    members: int = 1   # >1: an ensemble of that many CRNNs (independently trained seeds)


@dataclass
class ModelConfig:
    sample_rate_hz: int = 44100
    window_s: float = 4.0
    analysis_s: float = 1.0
    features: FeatureConfig = field(default_factory=FeatureConfig)
    net: NetConfig = field(default_factory=NetConfig)
    labels: list[str] = field(default_factory=lambda: list(CLASSES))
    thresholds: list[float] | None = None
    temperature: float | None = None   # probabilities = sigmoid(logits / T); None = 1
    # trained on groove onsets with no drum note near them (a bass note, a ringing tail),
    # all-zero targets: an onset with no class at its threshold is then not a drum, and
    # the live path sends nothing for it. False (older models): the top class is sent.
    rejects_non_drums: bool = False
    # frames (of features.hop_length samples) of audio from just BEFORE the onset that lead
    # each item in: what was already ringing when the hit came (a groove's tails), so the
    # model can tell a new hit from the tails under it. A sample file or one-shot has
    # silence there (zeros). 0 (older models): the input starts at the onset.
    lead_in_frames: int = 0

    @property
    def window_samples(self) -> int:
        return round(self.window_s * self.sample_rate_hz)

    @property
    def analysis_samples(self) -> int:
        return round(self.analysis_s * self.sample_rate_hz)

    @property
    def lead_in_samples(self) -> int:
        """Samples of pre-onset audio before each item (a whole number of frames, so the
        onset's frames line up as without a lead-in)."""
        return self.lead_in_frames * self.features.hop_length


def read_yaml(path: str | Path) -> DictConfig:
    """A YAML file as a DictConfig; a missing or unparsable file is one clear ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        return OmegaConf.load(path)
    except Exception as e:  # noqa: BLE001 (YAML syntax errors come in many types)
        raise ConfigError(f"{path}: cannot parse YAML ({str(e).splitlines()[0]})") from None


def drop_removed(layer, removed: dict, source: str = "config"):
    """A config layer (dict or DictConfig) without the keys of removed options.

    removed: dotted key -> the value that meant "off" (...: dropped whatever it holds).
    A key holding another value asks for code that is gone: ConfigError naming it. A
    section left empty (a removed augmentation's) goes too.
    """
    if not removed:
        return layer
    d = OmegaConf.to_container(layer) if isinstance(layer, DictConfig) else copy.deepcopy(layer)
    for key, off in removed.items():
        path = key.split(".")
        nodes = [d]                     # the dicts from the root down to the key's parent
        for k in path[:-1]:
            nodes.append(nodes[-1].get(k) if isinstance(nodes[-1], dict) else None)
        if not isinstance(nodes[-1], dict) or path[-1] not in nodes[-1]:
            continue
        value = nodes[-1].pop(path[-1])
        if off is not ... and value != off:
            raise ConfigError(
                f"{source}: {key}: {value!r}: this option was removed after it was measured "
                f"not to help (docs/experiments.md); use {off!r}, or the code of commit "
                f"{REMOVED_IN}")
        for parent, k, node in reversed(list(zip(nodes[:-1], path[:-1], nodes[1:]))):
            if node:
                break
            del parent[k]
    return d


def merge_structured(schema, *layers, source: str = "config", removed: dict | None = None):
    """Merge layers (dicts, DictConfigs) onto a dataclass schema and return the dataclass.

    The one place every config of the project (model, augment, train, realtime) meets
    omegaconf: an unknown key or a wrong type raises ConfigError naming the key.
    removed: keys of removed options, dropped from every layer (drop_removed).
    """
    layers = [drop_removed(layer, removed, source) for layer in layers]
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), *layers)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        # omegaconf's message names the key and the problem; keep it on one line
        msg = str(e).strip().splitlines()[0]
        key = getattr(e, "full_key", None)
        raise ConfigError(f"{source}: {key + ': ' if key else ''}{msg}") from None


def load_model_config(src: str | Path | dict | DictConfig | None = None) -> ModelConfig:
    """Load a model config from a YAML path, a dict, or None (the defaults)."""
    if src is None:
        cfg = ModelConfig()
    elif isinstance(src, (str, Path)):
        cfg = merge_structured(ModelConfig, read_yaml(src), source=str(src),
                               removed=REMOVED_MODEL_KEYS)
    else:
        cfg = merge_structured(ModelConfig, src, removed=REMOVED_MODEL_KEYS)
    validate_model_config(cfg)
    return cfg


def validate_model_config(cfg: ModelConfig) -> None:
    f = cfg.features
    if cfg.sample_rate_hz <= 0 or cfg.window_s <= 0:
        raise ConfigError("sample_rate_hz and window_s must be positive")
    if not 0 < cfg.analysis_s <= cfg.window_s:
        raise ConfigError("analysis_s must be in (0, window_s]")
    if f.n_fft <= 0 or f.hop_length <= 0 or f.n_mels <= 0 or f.log_floor <= 0:
        raise ConfigError("features.n_fft, hop_length, n_mels and log_floor must be positive")
    if not 0 <= f.f_min_hz < f.f_max_hz:
        raise ConfigError("features: need 0 <= f_min_hz < f_max_hz")
    if cfg.temperature is not None and not cfg.temperature > 0:
        raise ConfigError(f"temperature must be positive, got {cfg.temperature}")
    if cfg.net.members < 1:
        raise ConfigError(f"net.members must be >= 1, got {cfg.net.members}")
    n = len(cfg.labels)
    if len(set(cfg.labels)) != n or n == 0:
        raise ConfigError(f"labels must be unique and non-empty, got {cfg.labels}")
    for lab in cfg.labels:   # a label names a folder of --sort-into: it must stay inside
        if (not lab or lab in (".", "..") or any(c in lab for c in "/\\\0")
                or lab != lab.strip()):
            raise ConfigError(f"label {lab!r} is not a plain name (no path separators, "
                              "'.' or '..', or surrounding spaces)")
    if cfg.thresholds is not None and len(cfg.thresholds) != n:
        raise ConfigError(f"thresholds has {len(cfg.thresholds)} values for {n} labels")
    if len(cfg.net.conv_channels) != 3:
        raise ConfigError("net.conv_channels must list the 3 conv layers' channel counts")
    if len(cfg.net.linear_hidden) != 2:
        raise ConfigError("net.linear_hidden must list the 2 hidden sizes of the 3 linear layers")
    if cfg.features.n_mels % 8:
        raise ConfigError("features.n_mels must be divisible by 8 (3 pooling layers halve it)")


def defaults_with(schema, **given):
    """The schema's defaults with the given values that are not None.

    How a function whose arguments default to None reads the config dataclass instead of
    repeating its values: `defaults_with(DecisionConfig, min_confidence=min_confidence)`.
    """
    return replace(schema(), **{k: v for k, v in given.items() if v is not None})


def config_to_dict(cfg: ModelConfig) -> dict:
    """A plain dict (ints, floats, strings, lists) safe to store in a checkpoint."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)


def diff_configs(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Keys whose values differ between two config dicts, as 'key: a != b'."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += diff_configs(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} != {vb!r}")
    return out
