"""The simulated drummer of the live tests and benchmarks: generated takes played into the
REAL sounddevice/PortAudio input callback, and a scripted `drumclassifier calibrate` session.

- alsa_file_env: an ALSA `file` plugin device ("injected") that plays a raw file into the
  callback, unpaced (exact with int16 samples). A stream reads the file from its start
  each time it opens; PortAudio reads the ALSA configuration once, when it initialises,
  so whatever uses it runs in a subprocess with that environment;
- take_file: one take of a piece, hits from bench.sounds.burst at given levels;
- groove_file: the play-along groove (realtime/playalong.py) played on generated hits;
- run_session: `calibrate` in a subprocess with a scripted prompter (SESSION_SCRIPT): a
  list of answers stands in for the keyboard (no human can run here), and an answer may
  swap in the file the drummer "plays" next.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from .sounds import SR, burst

REPO = Path(__file__).resolve().parents[1]
TAKE_S = 4.0          # the --take-seconds the sessions use

# Runs `calibrate` with a scripted prompter. plan.json: {"argv": [...], "infile": the ALSA
# plugin's file, "answers": [[answer, raw file to play from now or null], ...],
# "enter_after_s": null or seconds after each answer at which Enter is "pressed"}.
SESSION_SCRIPT = r"""
import json, os, shutil, sys, time
from drumclassifier.cli import get_parser
from realtime.calibrate import Prompter
from realtime.calibrate_cli import run
plan = json.load(open(sys.argv[1]))
answered = [time.monotonic()]
def ask(prompt):
    answer, play = plan["answers"].pop(0)
    if play:   # the drummer plays this take: the next stream reads it
        shutil.copyfile(play, plan["infile"] + ".new")
        os.replace(plan["infile"] + ".new", plan["infile"])
    answered[0] = time.monotonic()
    return answer
after = plan["enter_after_s"]
enter = (lambda: False) if after is None else (lambda: time.monotonic() > answered[0] + after)
prompter = Prompter(ask, enter)
rc = run(get_parser().parse_args(plan["argv"]), prompter)
print(json.dumps({"rc": rc, "transcript": prompter.transcript, "left": plan["answers"]}))
"""


def alsa_file_env(tmp_path: Path, raw: Path) -> dict:
    """An environment whose ALSA device "injected" plays the raw file `raw` (S16_LE mono,
    44.1 kHz) into the real PortAudio callback, unpaced: a temporary HOME with an .asoundrc
    (ALSA `file` plugin; exact with dtype int16, see ENV.md). The device reads `raw` from
    its start each time a stream opens. Use it in a subprocess: PortAudio reads the
    configuration once, when it initialises."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / ".asoundrc").write_text(
        'pcm.nullpcm { type null }\n'
        f'pcm.filein {{ type file; slave.pcm "nullpcm"; file "/dev/null"; infile "{raw}"; '
        'format "raw" }\n'
        'pcm.injected { type plug; slave { pcm "filein"; format S16_LE; rate 44100; '
        'channels 1 } }\n')
    return dict(os.environ, HOME=str(home), JACK_NO_START_SERVER="1",
                JACK_DEFAULT_SERVER="drumclassifier-test-none")


def take_file(path: Path, kind: str, gains_db, seed: int) -> Path:
    """A take: 0.3 s of silence, one hit every 0.5 s at gains_db (dBFS peaks), then more
    silence than a take lasts (past the file's end the plugin repeats stale audio)."""
    rng = np.random.default_rng(seed)
    parts = [np.zeros(int(0.3 * SR), np.float32)]
    for g in gains_db:
        h = burst(kind, rng, 10 ** (g / 20))
        parts += [h, np.zeros(int(0.5 * SR) - len(h), np.float32)]
    parts.append(np.zeros(int((TAKE_S + 1) * SR), np.float32))
    x = np.concatenate(parts)
    np.clip(np.round(x * 32768), -32768, 32767).astype("<i2").tofile(path)
    return path


# the kind of generated hit (bench.sounds.burst) that plays each part of the play-along groove
GROOVE_KIND = {"kick": "kick", "snare": "snare", "hihat": "hihat", "open hihat": "hihat",
               "ride": "cymbal", "crash": "cymbal", "high tom": "tom", "mid tom": "tom",
               "floor tom": "tom"}


def groove_file(path: Path, bpm: float, seed: int, dynamics: bool = True) -> Path:
    """The play-along groove on generated hits at bpm (+-4 ms) after 0.5 s of silence,
    then silence past the end of its take (raw int16, as take_file). Peaks follow the
    tab's velocities (-3 dBFS + 40 log10(velocity / 127), +-1.5 dB: 105 -> -6.3, 70 ->
    -13.4, 45 -> -21 dBFS), or with dynamics=False all at -9..-3 dBFS."""
    from realtime.playalong import BARS, BEATS_PER_BAR, GROOVE
    rng = np.random.default_rng(seed)
    length = BARS * BEATS_PER_BAR * 60 / bpm
    x = np.zeros(int((0.5 + length * 1.1 + 6) * SR), np.float32)
    for beat, role, vel in GROOVE:
        i = int((0.5 + beat * 60 / bpm + rng.uniform(-0.004, 0.004)) * SR)
        db = (-3 + 40 * np.log10(vel / 127) + rng.uniform(-1.5, 1.5) if dynamics
              else rng.uniform(-9, -3))
        h = burst(GROOVE_KIND[role], rng, 10 ** (db / 20))
        x[i:i + len(h)] += h
    np.clip(np.round(x * 32768), -32768, 32767).astype("<i2").tofile(path)
    return path


def run_session(env, d: Path, argv, answers, enter_after_s=None) -> dict:
    """`drumclassifier calibrate *argv` with scripted answers [(answer, raw file to play
    from then on or None), ...] in a subprocess with `env`; -> {"rc", "transcript", "left"}."""
    plan = d / "plan.json"
    plan.write_text(json.dumps({"argv": ["calibrate", *map(str, argv)],
                                "infile": str(d / "in.raw"), "enter_after_s": enter_after_s,
                                "answers": [[a, None if p is None else str(p)]
                                            for a, p in answers]}))
    r = subprocess.run([sys.executable, "-c", SESSION_SCRIPT, str(plan)], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"the calibrate session failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])
