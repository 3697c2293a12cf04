"""DrumClassifier: classify drum hits (kick, snare, hihat, toms, cymbals), offline and live.

`from drumclassifier import DrumClassifier` works as always, but the names that need torch
(DrumClassifier, Result, default_weights_path, select_device) load on first use: importing
a light module of the package (errors, config, the command line's --help) never pulls in
torch.
"""
from .errors import AudioError, CheckpointError, ConfigError, DrumClassifierError

__version__ = "0.1.0"
__all__ = ["DrumClassifier", "Result", "default_weights_path", "select_device", "AudioError",
           "CheckpointError", "ConfigError", "DrumClassifierError", "__version__"]

_FROM_CLASSIFIER = ("DrumClassifier", "Result", "default_weights_path", "select_device")


def __getattr__(name: str):
    if name in _FROM_CLASSIFIER:
        from . import classifier
        return getattr(classifier, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_FROM_CLASSIFIER))
