"""Real time: audio streams in, drum hits classified, console lines or MIDI notes out.

    source (DeviceSource | FileSource) -> RingBuffer -> OnsetDetector -> Slicer
        -> HitQueue -> Worker (classify.py: Classify | KitClassify)
        -> sinks (Console, MIDI port, MIDI file, CSV)

The analysis loop (analysis.py) also serves calibration takes (calibrate.py; the
`drumclassifier calibrate` command is calibrate_cli.py, listen and stream are cli.py).
Only numpy is imported here; torch, sounddevice and rtmidi load when used.
"""
from .config import RealtimeConfig, load_realtime_config
from .engine import Engine, Stats
from .onset import Onset, OnsetDetector
from .ringbuffer import RingBuffer
from .sinks import ConsoleSink, EventsCsvSink, ListSink, MidiFileSink, MidiPortSink
from .slicer import Hit, Slicer
from .sources import DeviceSource, FileSource
from .worker import Event, HitQueue, Worker, velocity_from_db

__all__ = [
           "ConsoleSink",
           "DeviceSource",
           "Engine",
           "Event",
           "EventsCsvSink",
           "FileSource",
           "Hit",
           "HitQueue",
           "ListSink",
           "MidiFileSink",
           "MidiPortSink",
           "Onset",
           "OnsetDetector",
           "RealtimeConfig",
           "RingBuffer",
           "Slicer",
           "Stats",
           "Worker",
           "load_realtime_config",
           "velocity_from_db",
]
