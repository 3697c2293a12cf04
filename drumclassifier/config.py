"""Typed model configuration: YAML (omegaconf) onto dataclasses.

A typo in a key is an error, not a silent default: the YAML is merged onto a
structured config, and omegaconf refuses keys the schema does not know.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .classes import CLASSES
from .errors import ConfigError

NORMS = ("none", "band_mean", "pcen")


@dataclass
class PCENConfig:
    """Per-channel energy normalisation (features.norm = pcen); see features.PCEN."""
    time_constant_s: float = 0.4     # s, the causal smoother's time constant
    alpha: float = 0.98              # gain-normalisation exponent, in [0, 1]
    delta: float = 2.0               # bias before the root compression (> 0)
    r: float = 0.5                   # root-compression exponent, in (0, 1]
    eps: float = 1e-6                # floor of the smoothed energy
    learnable: bool = False          # learn alpha, delta, r and the smoother per mel band


@dataclass
class FeatureConfig:
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 64
    f_min_hz: float = 20.0
    f_max_hz: float = 20000.0
    log_floor: float = 1e-6
    norm: str = "none"               # none | band_mean | pcen: per-clip channel normalisation
    band_mean_min_frames: int = 1    # band_mean divides the sum by max(frames, this)
    pcen: PCENConfig = field(default_factory=PCENConfig)


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

    @property
    def window_samples(self) -> int:
        return round(self.window_s * self.sample_rate_hz)

    @property
    def analysis_samples(self) -> int:
        return round(self.analysis_s * self.sample_rate_hz)


def read_yaml(path: str | Path) -> DictConfig:
    """A YAML file as a DictConfig; a missing or unparsable file is one clear ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        return OmegaConf.load(path)
    except Exception as e:  # noqa: BLE001 (YAML syntax errors come in many types)
        raise ConfigError(f"{path}: cannot parse YAML ({str(e).splitlines()[0]})") from None


def merge_structured(schema, *layers, source: str = "config"):
    """Merge layers (dicts, DictConfigs) onto a dataclass schema and return the dataclass.

    The one place every config of the project (model, augment, train, realtime) meets
    omegaconf: an unknown key or a wrong type raises ConfigError naming the key.
    """
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
        cfg = merge_structured(ModelConfig, read_yaml(src), source=str(src))
    else:
        cfg = merge_structured(ModelConfig, src)
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
    if f.norm not in NORMS:
        raise ConfigError(f"features.norm must be one of {', '.join(NORMS)}, got {f.norm!r}")
    if f.band_mean_min_frames < 1:
        raise ConfigError(f"features.band_mean_min_frames must be >= 1, got {f.band_mean_min_frames}")
    pc = f.pcen
    if (pc.time_constant_s <= 0 or not 0 <= pc.alpha <= 1 or pc.delta <= 0 or not 0 < pc.r <= 1
            or pc.eps <= 0):
        raise ConfigError("features.pcen: need time_constant_s > 0, 0 <= alpha <= 1, delta > 0, "
                          "0 < r <= 1 and eps > 0")
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
