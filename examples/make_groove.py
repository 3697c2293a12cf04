"""Generate examples/groove.flac (and groove_truth.csv) from the CC0 one-shots in this folder.

Two bars of a rock beat at 100 BPM: crash + kick on the first beat, closed hihat eighths,
kick on 1 and 3, snare on 2 and 4, three sixteenth-note toms after the last snare. Each hit is mixed
sample-accurately at its note time, so groove_truth.csv (time_s,label,velocity) is exact.

    .venv/bin/python examples/make_groove.py
"""
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).parent
SR = 44100
BPM = 100


def main() -> None:
    shots = {p.name.split("_")[0]: sf.read(p, dtype="float32")[0] for p in (HERE / "one-shots").glob("*.flac")}
    beat_s = 60 / BPM
    notes = []  # (time_s, label, velocity 1-127)
    for bar in range(2):
        t0 = bar * 4 * beat_s
        for k in range(8):
            if not (bar == 1 and k >= 6):  # leave room for the fill
                notes.append((t0 + k * beat_s / 2, "hihat", 70 + 20 * (k % 2 == 0)))
        notes += [(t0, "kick", 120), (t0 + 2 * beat_s, "kick", 110), (t0 + 2.5 * beat_s, "kick", 90),
                  (t0 + beat_s, "snare", 115), (t0 + 3 * beat_s, "snare", 120)]
    notes.append((0.0, "cymbals", 120))
    # a fill: three sixteenth-note toms after the last snare
    notes += [(7 * beat_s + i * beat_s / 4, "toms", 100) for i in (1, 2, 3)]
    end_s = 8 * beat_s + 1.0
    mix = np.zeros(int(end_s * SR), np.float32)
    for t, label, vel in notes:
        x = shots[label] * (vel / 127)
        i = int(round(t * SR))
        n = min(len(x), len(mix) - i)
        mix[i:i + n] += x[:n]
    mix *= 0.9 / np.abs(mix).max()
    sf.write(HERE / "groove.flac", mix, SR, subtype="PCM_16")
    with open(HERE / "groove_truth.csv", "w") as f:
        f.write("time_s,label,velocity\n")
        for t, label, vel in sorted(notes):
            f.write(f"{round(t * SR) / SR:.6f},{label},{vel}\n")
    print(f"wrote groove.flac ({end_s:.1f} s, {len(notes)} hits) and groove_truth.csv")


if __name__ == "__main__":
    main()
