"""DrumClassifier: classify drum hits (kick, snare, hihat, toms, cymbals), offline and live."""
from .classifier import DrumClassifier, Result, default_weights_path, select_device
from .errors import AudioError, CheckpointError, ConfigError, DrumClassifierError

__version__ = "0.1.0"
__all__ = ["DrumClassifier", "Result", "default_weights_path", "select_device", "AudioError",
           "CheckpointError", "ConfigError", "DrumClassifierError", "__version__"]
