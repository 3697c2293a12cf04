"""The trained weights that ship inside the package: present, packaged, and sensible."""
from __future__ import annotations

import subprocess
import sys
import zipfile

from drumclassifier import DrumClassifier, default_weights_path

from .conftest import SR, hihat_like, kick_like


def test_shipped_weights_load_with_their_config():
    path = default_weights_path()
    assert path.is_file(), f"{path} missing: the package must ship trained weights"
    clf = DrumClassifier(device="cpu")
    assert clf.labels == ["kick", "snare", "hihat", "toms", "cymbals"]
    assert clf.cfg.thresholds is not None  # chosen on validation by `drumclassifier train`
    assert clf.meta.get("trained_steps", 0) > 0 or clf.meta.get("epoch", 0) > 0


def test_shipped_model_hears_kick_and_hihat():
    # generated sounds (a low pitch-swept sine burst, a high-passed noise burst): not from
    # the corpus, so this checks the model learned the broad cues, not memorised files
    clf = DrumClassifier(device="cpu")
    assert clf.classify(kick_like(), SR).label == "kick"
    assert clf.classify(hihat_like(), SR).label == "hihat"


def test_wheel_contains_the_weights(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path)], check=True)
    (wheel,) = tmp_path.glob("drumclassifier-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "drumclassifier/weights/default.pt" in names
    assert "realtime/engine.py" in names and "drumclassifier/data/build.py" in names
