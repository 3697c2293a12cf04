"""The project's own error types: each message is one line a user can act on."""


class DrumClassifierError(Exception):
    """Base class: anything the project reports to users as one clear line."""


class AudioError(DrumClassifierError):
    """A file or waveform cannot be used (unreadable, empty, silent, NaN/inf...)."""


class ConfigError(DrumClassifierError):
    """A configuration file or value is wrong."""


class CheckpointError(DrumClassifierError):
    """A weights file is missing, corrupt, unsafe or does not fit its config."""
