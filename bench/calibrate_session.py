"""The drummer's time budget of the guided calibration (target: calibration plus
fitting under two minutes for a 5-piece kit at 8 hits each, a profile loading in under a
second).

`drumclassifier calibrate --device` runs on a generated 5-piece kit (kick, snare, hihat,
floor tom, crash: bench/sounds.py's generated hits), 8 hits per piece from soft to hard
at 2 hits a second, played into the REAL PortAudio callback by the ALSA `file` plugin
(unpaced, so the wall time below is the computer's; the playing time is the audio's
length), with scripted answers for the keyboard (bench/drummer.py, as the tests use it).
Prints the command's own figures and the drummer's total:
playing + the computer's time (model load, takes' analysis, fitting, saving) + keypresses.

    .venv/bin/python -m bench.calibrate_session [--keypress-s 1.5] [--play-along 100]

With --play-along BPM the drummer also plays the play-along groove after the fit (`g`,
Enter, the 8 bars: bench/drummer.groove_file), and the profile is fitted again with it.

Needs libportaudio2 and ALSA (no sound card). CPU only, under a minute.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .drummer import alsa_file_env, groove_file, run_session, take_file

KIT = [("kick", "kick"), ("snare", "snare"), ("hihat", "hihat"), ("toms--floor tom", "tom"),
       ("cymbals--crash", "cymbal")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hits", type=int, default=8)
    ap.add_argument("--keypress-s", type=float, default=1.5,
                    help="the drummer's time per answer (Enter, r, s), a guess (default 1.5)")
    ap.add_argument("--play-along", type=float, default=0.0, metavar="BPM",
                    help="also play the play-along groove at BPM after the fit (0: not)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        gains = np.linspace(-24, -4, args.hits)
        answers = []
        for i, (_, kind) in enumerate(KIT):
            answers += [("", take_file(d / f"{kind}.raw", kind, gains, i)), ("", None)]
        if args.play_along:        # after the fit: g, Enter = start, the groove; refit
            answers += [("g", None), ("", groove_file(d / "groove.raw", args.play_along, 9))]
        answers.append(("", None))                                  # after the fit: save
        np.zeros(44100, "<i2").tofile(d / "in.raw")
        (d / "rt.yaml").write_text("audio:\n  dtype: int16\n")
        argv = ["-d", "injected", "--out", d / "my.kit", "--pieces", ",".join(p for p, _ in KIT),
                "--hits-per-piece", args.hits, "--rt-config", d / "rt.yaml",
                "--groove-bpm", args.play_along or 100,
                "--model-device", "cpu"]
        t0 = time.perf_counter()
        res = run_session(alsa_file_env(d, d / "in.raw"), d, argv, answers)
        wall = time.perf_counter() - t0
    said = res["transcript"]
    print("\n".join(s for s in said if not s.endswith(": ")))
    m = re.search(r"\(([\d.]+) s of playing", said[-1])
    playing = float(m.group(1))
    keys = len(answers) * args.keypress_s
    print(f"\ndrummer's time: {playing:.1f} s playing + {wall:.1f} s computer (the whole "
          f"command, unpaced input: model load, analysis, fitting, saving) + {len(answers)} "
          f"answers x {args.keypress_s:g} s = {playing + wall + keys:.0f} s")
    return 0 if res["rc"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
