"""ADTOF drum transcription as a bench peer, run inside .venv-adtof (bench/setup_adtof.sh),
never in .venv.

    .venv-adtof/bin/python bench/streams/adtof_peer.py JOBS.json OUT.json

JOBS.json: {"files": [path, ...]}
OUT.json:  {"version": str, "events": {path: [[time_s, label], ...]}, "seconds": float,
            "errors": {path: message}}

ADTOF-pytorch (xavriley/ADTOF-pytorch) is a PyTorch port of ADTOF's Frame_RNN model
(Zehren et al. 2021, 2023). Its weights are CC BY-NC-SA: this file only calls the port
installed in .venv-adtof; the port's code and weights are never part of this repository.
It is an OFFLINE transcriber: a bidirectional GRU over the whole file, so each decision
sees the future, unlike our live engine.

Run as users call it (its README, cli.py and transcribe_to_midi): the port's own audio
loading (librosa.load at 44.1 kHz, mono = mean of the channels), its 100 fps log-filtered
spectrogram, its bundled weights, and its PeakPicker with the default per-class thresholds
FRAME_RNN_THRESHOLDS. Only the MIDI export is skipped: events are read off the picked peaks.
ADTOF's five outputs (General MIDI 35, 38, 47, 42, 49) map to our labels: bass drum ->
kick, snare -> snare, toms -> toms, hihat -> hihat, cymbals + ride -> cymbals.

"seconds" is the wall time of the whole run, Python imports and model loading included.
Standalone on purpose: imports only numpy, soundfile, torch and the port.
"""
from __future__ import annotations

import time

_T0 = time.perf_counter()

import contextlib  # noqa: E402 - after the clock starts
import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

# GM pitch of each ADTOF output -> our label
LABELS = {35: "kick", 38: "snare", 47: "toms", 42: "hihat", 49: "cymbals"}


def load_model():
    """The port's model with its bundled weights; refuses weights that do not fit (the
    port's own loader would fall back to random initialisation with a printed warning)."""
    import torch
    from adtof_pytorch import calculate_n_bins, create_frame_rnn_model, get_default_weights_path

    w = get_default_weights_path()
    if not w or not Path(w).is_file():
        raise FileNotFoundError(f"ADTOF weights not found ({w}): rerun bench/setup_adtof.sh")
    model = create_frame_rnn_model(calculate_n_bins())
    ckpt = torch.load(w, map_location="cpu")
    res = model.load_state_dict(ckpt.get("model_weights", ckpt), strict=False)
    missing = [k for k in res.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or res.unexpected_keys:
        raise RuntimeError(f"weights do not fit: missing {missing}, "
                           f"unexpected {res.unexpected_keys}")
    model.eval()
    return model, w


def version(weights: str | None) -> str:
    import importlib.metadata as md
    parts = []
    for p in ("adtof-pytorch", "torch", "librosa"):
        try:
            parts.append(f"{p} {md.version(p)}")
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            parts.append(f"{p} ?({type(e).__name__})")
    commit = Path(sys.prefix, "adtof-source-commit")
    if commit.is_file():
        parts.append(f"source {commit.read_text().strip()[:12]}")
    if weights and Path(weights).is_file():
        parts.append(f"weights sha256 {hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:12]}")
    return ", ".join(parts)


def transcribe(model, picker, path: str) -> list[list]:
    import numpy as np
    import soundfile as sf
    import torch
    from adtof_pytorch import LABELS_5, load_audio_for_model

    sf.info(path)                                # a clear error for unreadable files
    x = load_audio_for_model(path)               # [1, frames, bins, 1], 100 fps
    with torch.no_grad():
        pred = model(x).cpu().numpy()            # [1, frames, 5] sigmoid activations
    peaks = picker.pick(pred, labels=LABELS_5, label_offset=0)[0]
    ev = [[float(t), LABELS[int(p)]] for p, ts in peaks.items() for t in ts]
    ev.sort(key=lambda e: (e[0], e[1]))
    assert all(np.isfinite(t) for t, _ in ev)
    return ev


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    files = json.loads(Path(argv[0]).read_text())["files"]
    res = {"version": "", "events": {}, "seconds": 0.0, "errors": {}}
    weights = None
    try:
        import torch
        torch.set_num_threads(1)                 # modest CPU: a training job may be running
        from adtof_pytorch import FRAME_RNN_THRESHOLDS, LABELS_5, PeakPicker
        if [int(v) for v in LABELS_5] != list(LABELS):
            raise RuntimeError(f"the port's outputs changed: LABELS_5 = {LABELS_5}")
        with contextlib.redirect_stdout(sys.stderr):     # the port prints as it loads
            model, weights = load_model()
        picker = PeakPicker(thresholds=FRAME_RNN_THRESHOLDS, fps=100)
    except Exception as e:  # noqa: BLE001 - every file gets the reason, OUT.json is still written
        res["errors"] = {f: f"{type(e).__name__}: {e}" for f in files}
        model = None
    res["version"] = version(weights)
    if model is not None:
        for f in files:
            try:
                res["events"][f] = transcribe(model, picker, f)
            except Exception as e:  # noqa: BLE001 - a failing file is reported, the others go on
                res["errors"][f] = f"{type(e).__name__}: {e}"
    res["seconds"] = time.perf_counter() - _T0
    Path(argv[1]).write_text(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
