"""Checkpoints: plain dicts of tensors, numbers and strings, loaded without executing code.

Layout (format version 1):
    {"format": "drumclassifier", "version": 1,
     "config": <ModelConfig as a plain dict: features, net sizes, labels, thresholds>,
     "state_dict": {name: tensor}, "meta": {training facts and metrics}}
"""
from __future__ import annotations

import pickle
from pathlib import Path

import torch

from .config import ModelConfig, config_to_dict, diff_configs, load_model_config
from .errors import CheckpointError, ConfigError

FORMAT, VERSION = "drumclassifier", 1


def save_checkpoint(path: str | Path, state_dict: dict, cfg: ModelConfig, meta: dict | None = None,
                    overwrite: bool = True) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise CheckpointError(f"{path}: exists; refusing to overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {"format": FORMAT, "version": VERSION, "config": config_to_dict(cfg),
            "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
            "meta": meta or {}}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)  # atomic: a crash never leaves a half-written checkpoint
    return path


def ensemble_checkpoint(paths, path: str | Path, meta: dict | None = None,
                        thresholds: list[float] | None = None,
                        temperature: float | None = None) -> Path:
    """Checkpoints of one config (seeds) -> one ensemble checkpoint (net.members = len(paths)).

    The members' weights go under "members.<i>." (the state_dict of model.Ensemble).
    thresholds: the ensemble's own per-class thresholds (its outputs are averaged, so the
    members' thresholds do not carry over); None = 0.5. temperature: see ModelConfig.
    """
    from dataclasses import replace

    states, cfg = {}, None
    for i, p in enumerate(paths):
        ckpt = read_checkpoint(p)
        own = load_model_config(ckpt["config"])
        own.thresholds, own.temperature = None, None
        if own.net.members != 1:
            raise CheckpointError(f"{p}: already an ensemble; combine single models")
        if cfg is not None and diff_configs(config_to_dict(cfg), config_to_dict(own)):
            raise CheckpointError(f"{p}: its config differs from {paths[0]}'s: "
                                  + "; ".join(diff_configs(config_to_dict(cfg), config_to_dict(own))[:4]))
        cfg = own
        prefix = f"members.{i}." if len(paths) > 1 else ""  # one member: a plain CRNN
        states.update({prefix + k: v for k, v in ckpt["state_dict"].items()})
    if cfg is None:
        raise CheckpointError("no checkpoints to combine")
    cfg.net = replace(cfg.net, members=len(paths))
    cfg.thresholds, cfg.temperature = thresholds, temperature
    return save_checkpoint(path, states, cfg, meta, overwrite=False)


def read_checkpoint(path: str | Path) -> dict:
    """Load the dict with weights_only=True: a file with pickled code in it is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0][:200]
        raise CheckpointError(
            f"{path}: refused: not a plain weights file (it holds Python objects that could "
            f"run code; {first})") from None
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CheckpointError(f"{path}: corrupt or truncated weights file ({first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a DrumClassifier checkpoint (no 'format: {FORMAT}')")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')} is not "
                              f"supported (this release reads version {VERSION})")
    for key in ("config", "state_dict"):
        if not isinstance(ckpt.get(key), dict):
            raise CheckpointError(f"{path}: checkpoint has no '{key}' dict")
    return ckpt


def resolve_config(ckpt: dict, path: str | Path, cfg_path: str | Path | None) -> ModelConfig:
    """The checkpoint's own config; a config file given too must agree with it.

    Only the decision thresholds and the temperature may differ (calibration a user may
    tune); anything that changes the features or the network is refused with the keys
    that differ.
    """
    try:
        own = load_model_config(ckpt["config"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: its stored config is invalid ({e})") from None
    if cfg_path is None:
        return own
    given = load_model_config(cfg_path)
    a, b = config_to_dict(own), config_to_dict(given)
    for k in ("thresholds", "temperature"):
        a.pop(k), b.pop(k)
    diffs = diff_configs(a, b)
    if diffs:
        raise CheckpointError(
            f"{path} does not fit {cfg_path}: " + "; ".join(f"{d} (weights vs config)"
                                                             for d in diffs[:6]))
    if given.thresholds is not None:
        own.thresholds = given.thresholds
    if given.temperature is not None:
        own.temperature = given.temperature
    return own
