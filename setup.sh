#!/usr/bin/env bash
# Set up DrumClassifier on a fresh Debian/Ubuntu machine: system packages, a venv, the package.
#   ./setup.sh            runtime + live path + dev tools
# System packages: libportaudio2 (audio devices for the live path), jackd2 (a JACK server:
# MIDI ports and a dummy audio device for tests on machines with no sound card), chromium +
# chromium-driver (the tests open the practice-session report headless; not needed to use it).
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if command -v apt-get >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libportaudio2 jackd2 chromium chromium-driver >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
# constraints.txt pins the tested torch/torchaudio pair
.venv/bin/pip install -q -c constraints.txt ".[dev]"
# corpus rendering: tinysoundfont declares pyaudio (playback only), which needs PortAudio headers
.venv/bin/pip install -q --no-deps "tinysoundfont==0.3.7"
echo "DrumClassifier installed in .venv"
