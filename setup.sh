#!/usr/bin/env bash
# Set up DrumClassifier on a fresh Debian/Ubuntu machine: system packages, a venv, the package.
#   ./setup.sh            runtime + live path + dev tools
# System packages: libportaudio2 (audio devices for the live path), jackd2 (a JACK server:
# MIDI ports and a dummy audio device for tests on machines with no sound card), chromium +
# chromium-driver (the tests open the practice-session report headless; not needed to use it).
# Each step says what it does; the long one (torch) shows pip's own progress.
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
step() { echo "[$1/5] $2" >&2; }
if command -v apt-get >/dev/null; then
  step 1 "system packages: PortAudio, JACK, Chromium (apt-get; a minute or two)..."
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libportaudio2 jackd2 chromium chromium-driver >/dev/null
  # mma: the groove library `drumclassifier grooves --mma` plays (training material only)
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mma >/dev/null
else
  step 1 "system packages: no apt-get here, skipped (install PortAudio yourself for the live path)"
fi
step 2 "a virtual environment in .venv..."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
# constraints.txt pins the tested torch/torchaudio pair
step 3 "installing DrumClassifier with torch and its dev tools (several minutes, a few GB: pip shows its progress)..."
.venv/bin/pip install -c constraints.txt ".[dev]"
# corpus rendering: tinysoundfont declares pyaudio (playback only), which needs PortAudio headers
step 4 "corpus rendering: tinysoundfont..."
.venv/bin/pip install -q --no-deps "tinysoundfont==0.3.7"
step 5 "checking the install..."
.venv/bin/python -m drumclassifier.cli --help >/dev/null
echo "DrumClassifier installed in .venv (try: .venv/bin/drumclassifier --help)"
