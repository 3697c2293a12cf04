"""Shared fixtures: generated drum-like sounds and a tiny checkpoint (tests only, never shipped)."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

SR = 44100


def kick_like(sr: int = SR, dur_s: float = 0.5, seed: int = 0) -> np.ndarray:
    """A pitch-swept low sine burst with exponential decay: [n] float32."""
    t = np.arange(int(sr * dur_s)) / sr
    f = 50 + 100 * np.exp(-t * 30)
    phase = 2 * np.pi * np.cumsum(f) / sr
    return (0.8 * np.sin(phase) * np.exp(-t * 8)).astype(np.float32)


def hihat_like(sr: int = SR, dur_s: float = 0.2, seed: int = 0) -> np.ndarray:
    """High-passed (first-difference, twice) noise burst with a fast decay: [n] float32."""
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(int(sr * dur_s) + 2)
    hp = np.diff(n, 2)
    t = np.arange(len(hp)) / sr
    x = hp * np.exp(-t * 40)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A checkpoint of an UNTRAINED small network, to test loading and plumbing only."""
    from drumclassifier.checkpoint import save_checkpoint
    from drumclassifier.config import load_model_config
    from drumclassifier.model import CRNN
    torch.manual_seed(0)
    cfg = load_model_config({"net": {"conv_channels": [4, 8, 8], "freq_rnn_hidden": 8,
                                     "time_rnn_hidden": 8, "linear_hidden": [8, 8]}})
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, CRNN(cfg).state_dict(), cfg, {"note": "untrained, tests only"})
    return path


@pytest.fixture()
def sound_files(tmp_path):
    """A folder with a kick-like and a hihat-like WAV (and a nested folder)."""
    (tmp_path / "kits" / "sub").mkdir(parents=True)
    sf.write(tmp_path / "kits" / "kick.wav", kick_like(), SR)
    sf.write(tmp_path / "kits" / "sub" / "hat.wav", hihat_like(), SR)
    return tmp_path / "kits"
