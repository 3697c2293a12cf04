"""Shared fixtures: generated drum-like sounds, a tiny checkpoint (tests only, never shipped),
a private JACK dummy server."""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
import soundfile as sf
import torch

from bench.sounds import SR, hihat_like, kick_like  # generated sounds, shared with bench/

__all__ = ["SR", "hihat_like", "kick_like"]


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


# ---- the JACK dummy server: a paced PortAudio device (input: silence) and MIDI ports ----
@pytest.fixture(scope="module")
def jack_server(tmp_path_factory):
    """A private JACK dummy server (44.1 kHz, 256-frame periods); yields its env."""
    jackd = shutil.which("jackd")
    if jackd is None:
        pytest.fail("jackd is not installed: the device and MIDI tests need a JACK server "
                    "(sudo apt-get install jackd2; setup.sh does it)")
    name = f"drumclassifier-test-{os.getpid()}"
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    log = tmp_path_factory.mktemp("jack") / "jackd.log"
    with open(log, "w") as logf:
        proc = subprocess.Popen([jackd, "--no-realtime", "-n", name, "-d", "dummy", "-r", "44100",
                                 "-p", "256"], env=env, stdout=logf, stderr=subprocess.STDOUT)
    try:
        lsp = shutil.which("jack_lsp")
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jackd exited with {proc.returncode}: {log.read_text()[-2000:]}")
            ok = lsp and subprocess.run([lsp], env=env, capture_output=True).returncode == 0
            if ok or (not lsp and time.monotonic() > deadline - 17):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"jackd did not come up: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
        os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")  # in-process MIDI
        yield env
    finally:
        for k, v in locals().get("saved", {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
