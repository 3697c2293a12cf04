"""Sinks: where events go. Each has open(), emit(events) (called from the worker thread,
with every event of one model batch) and close() (flushes; MIDI sends all notes off).

Events of one hit share `hit_index`; sinks that print one line per hit group on it.
"""
from __future__ import annotations

import csv
import heapq
import sys
import threading
import time
from itertools import groupby
from pathlib import Path

from drumclassifier.errors import DrumClassifierError

from .config import MidiConfig

CSV_COLUMNS = ["time_s", "label", "confidence", "velocity", "latency_ms", "wall_latency_ms",
               "context_ms"]   # context_ms: audio after the onset the decision used
KIT_COLUMNS = ["piece", "note"]     # appended with a kit profile (--kit)


def open_exclusive(path: str | Path, force: bool, mode: str = "w", **kw):
    """Open for writing; an existing file is refused unless force (nothing is overwritten)."""
    path = Path(path)
    if path.exists() and not force:
        raise DrumClassifierError(f"{path} exists; use --force to overwrite")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:    # a file where a folder should be, permission denied...
        raise DrumClassifierError(f"{path}: cannot create its folder "
                                  f"({e.strerror or e})") from None
    try:
        return open(path, mode if force else mode.replace("w", "x"), **kw)
    except FileExistsError:
        raise DrumClassifierError(f"{path} exists; use --force to overwrite") from None
    except OSError as e:    # permission denied, read-only disk, a folder in the way...
        raise DrumClassifierError(f"{path}: cannot open for writing "
                                  f"({e.strerror or e})") from None


def event_note(e, midi: MidiConfig) -> int | None:
    """The event's own note (a kit profile's piece) if it has one, else its class's."""
    note = getattr(e, "note", None)
    return note if note is not None else midi.notes.get(e.label)


class Sink:
    def open(self) -> None: ...
    def emit(self, events) -> None: ...
    def close(self) -> None: ...


class ListSink(Sink):
    """Keeps every event in `events` (benchmarks and tests read them after the run)."""

    def __init__(self):
        self.events, self.opened, self.closed = [], False, False

    def open(self) -> None:
        self.opened = True

    def emit(self, events) -> None:
        self.events += events

    def close(self) -> None:
        self.closed = True


class AudioSink(Sink):
    """A sink that also receives the audio: audio(block, start_frame) is called from the
    analysis thread with each block read from the ring buffer ([n, channels] float32,
    reused after the call: copy it; must not block). start_frame jumps after an overflow."""

    def audio(self, block, start_frame: int) -> None: ...


def _name(e) -> str:
    """'toms (floor tom)' for a kit piece named otherwise than its class, else the class."""
    piece = getattr(e, "piece", "")
    return f"{e.label} ({piece})" if piece and piece != e.label else e.label


class ConsoleSink(Sink):
    """One flushed line per hit: time, label(s) with confidence, velocity, latency."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def emit(self, events) -> None:
        for _, group in groupby(events, key=lambda e: e.hit_index):
            g = list(group)
            e = g[0]
            labels = " + ".join(f"{_name(x)} {x.confidence:.2f}" for x in g)
            print(f"{e.time_s:9.3f} s  {labels:<32s} vel {e.velocity:3d}  "
                  f"latency {e.latency_ms:5.1f} ms", file=self.stream, flush=True)


class EventsCsvSink(Sink):
    """time_s,label,confidence,velocity,latency_ms,wall_latency_ms,context_ms (+ piece,note
    with kit_columns, i.e. a kit profile); flushed after each batch. Rows are in the order
    the notes went out: with anytime decisions a quick hit can overtake a slower one."""

    def __init__(self, path: str | Path, force: bool = False, kit_columns: bool = False):
        self.path, self.force, self.kit_columns = Path(path), force, kit_columns
        self._f = None

    def open(self) -> None:
        self._f = open_exclusive(self.path, self.force, "w", newline="", encoding="utf-8")
        self._w = csv.writer(self._f)
        try:
            self._w.writerow(CSV_COLUMNS + (KIT_COLUMNS if self.kit_columns else []))
            self._f.flush()
        except OSError as e:     # a full disk refuses the header already (/dev/full)
            try:
                self.close()
            except OSError:
                pass             # closed all the same; the error is the one below
            raise DrumClassifierError(f"{self.path}: cannot write events "
                                      f"({e.strerror or e})") from None

    def emit(self, events) -> None:
        for e in events:
            row = [f"{e.time_s:.6f}", e.label, f"{e.confidence:.4f}", e.velocity,
                   f"{e.latency_ms:.2f}", f"{e.wall_latency_ms:.2f}",
                   f"{getattr(e, 'context_ms', float('nan')):.2f}"]
            if self.kit_columns:
                note = getattr(e, "note", None)
                row += [getattr(e, "piece", ""), "" if note is None else note]
            self._w.writerow(row)
        self._f.flush()

    def close(self) -> None:
        if self._f:
            f, self._f = self._f, None
            f.close()     # a failed final flush still closes the file, then raises


class MidiFileSink(Sink):
    """A type-0 .mid of the session (mido): notes at their onset times in the stream.

    120 bpm, 480 ticks per beat (1 tick = 1.04 ms). Written at close; the file is
    reserved at open, so an existing file is refused before the session starts.
    """

    def __init__(self, path: str | Path, midi: MidiConfig, force: bool = False):
        self.path, self.midi, self.force = Path(path), midi, force
        self._notes: list[tuple[float, int, int]] = []   # (time_s, note, velocity)
        self._f = None

    def open(self) -> None:
        self._f = open_exclusive(self.path, self.force, "wb")

    def emit(self, events) -> None:
        for e in events:
            note = event_note(e, self.midi)
            if note is not None:
                self._notes.append((e.time_s, note, e.velocity))

    def close(self) -> None:
        if self._f is None:
            return
        import mido
        tpb, tempo = 480, 500000
        ch = self.midi.channel - 1
        length_s = self.midi.note_length_ms / 1000
        msgs = []   # (abs_tick, order, message): note-offs first at equal ticks
        for t, note, vel in sorted(self._notes):
            on = int(round(mido.second2tick(t, tpb, tempo)))
            off = int(round(mido.second2tick(t + length_s, tpb, tempo)))
            msgs.append((on, 1, mido.Message("note_on", channel=ch, note=note, velocity=vel)))
            msgs.append((max(off, on + 1), 0, mido.Message("note_off", channel=ch, note=note,
                                                           velocity=0)))
        msgs.sort(key=lambda m: (m[0], m[1]))
        track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo, time=0),
                                mido.MetaMessage("track_name", name="drumclassifier", time=0)])
        last = 0
        for tick, _, m in msgs:
            track.append(m.copy(time=tick - last))
            last = tick
        track.append(mido.MetaMessage("end_of_track", time=0))
        mid = mido.MidiFile(type=0, ticks_per_beat=tpb)
        mid.tracks.append(track)
        try:
            mid.save(file=self._f)
        finally:
            self._f.close()
            self._f = None


# ---- live MIDI ----------------------------------------------------------------------
MIDI_HELP = ("no MIDI system is available ({why}). On Linux, MIDI ports need the ALSA "
             "sequencer (/dev/snd/seq: `sudo modprobe snd-seq`) or a running JACK server "
             "(`sudo apt-get install jackd2`, then e.g. `jackd -d alsa` or, with no sound card, "
             "`jackd --no-realtime -d dummy`); or write a file with --midi-file OUT.mid")


def _apis(api: str):
    import rtmidi
    names = {"alsa": rtmidi.API_LINUX_ALSA, "jack": rtmidi.API_UNIX_JACK,
             "coremidi": rtmidi.API_MACOSX_CORE, "winmm": rtmidi.API_WINDOWS_MM}
    if api == "auto":
        return list(rtmidi.get_compiled_api())
    if api not in names:
        raise DrumClassifierError(f"unknown MIDI API {api!r}; use auto, {', '.join(names)}")
    return [names[api]]


def open_midi_out(midi: MidiConfig, port: str | None = None, virtual: str | None = None):
    """An rtmidi.MidiOut with an open port: an existing one whose name contains `port`,
    or a new virtual port `virtual`. Tries each compiled API in turn (api: auto)."""
    try:
        import rtmidi
    except ImportError:
        raise DrumClassifierError("python-rtmidi is not installed: pip install "
                                  "'drumclassifier[live]'") from None
    errors, seen_ports, opened_any = [], [], False
    for api in _apis(midi.api):
        api_name = rtmidi.get_api_name(api)
        try:
            out = rtmidi.MidiOut(api, name=midi.client_name)
        except (rtmidi.SystemError, rtmidi.RtMidiError) as e:
            errors.append(f"{api_name}: {str(e).strip()}")
            continue
        opened_any = True
        try:
            if virtual is not None:
                out.open_virtual_port(virtual)
                return out
            ports = out.get_ports()
            seen_ports += [f"{p} ({api_name})" for p in ports]
            hits = [i for i, p in enumerate(ports) if port.lower() in p.lower()]
            if len(hits) == 1 or (hits and port in ports):
                out.open_port(ports.index(port) if port in ports else hits[0])
                return out
            if len(hits) > 1:
                raise DrumClassifierError(f"MIDI port name {port!r} is ambiguous: "
                                          + ", ".join(ports[i] for i in hits))
        except (rtmidi.SystemError, rtmidi.RtMidiError, NotImplementedError) as e:
            errors.append(f"{api_name}: {str(e).strip()}")
        out.delete()
    if virtual is None and opened_any:
        raise DrumClassifierError(
            f"no MIDI output port matches {port!r}; available: "
            + (", ".join(seen_ports) or "none") + " (or use --virtual-port NAME)")
    raise DrumClassifierError(MIDI_HELP.format(why="; ".join(errors) or "no MIDI API compiled in"))


class MidiPortSink(Sink):
    """Note-on per event on a live port (python-rtmidi), note-off note_length_ms later.

    A note retriggered while still on gets its note-off first. close() sends the pending
    note-offs, then All Notes Off (CC 123) and All Sound Off (CC 120) on the channel.
    `out` may be any object with send_message(list) (tests pass a fake).
    """

    def __init__(self, midi: MidiConfig, port: str | None = None, virtual: str | None = None,
                 out=None):
        if (port is None) == (virtual is None) and out is None:
            raise ValueError("give exactly one of port and virtual")
        self.midi, self.port, self.virtual, self.out = midi, port, virtual, out
        self._status_on = 0x90 | (midi.channel - 1)
        self._status_off = 0x80 | (midi.channel - 1)
        self._cc = 0xB0 | (midi.channel - 1)
        self._due: list[tuple[float, int]] = []    # heap of (perf_counter due, note)
        self._on: dict[int, float] = {}            # note -> due time of its note-off
        self._cv = threading.Condition()
        self._closing = False
        self._thread = None
        self.sent_on = self.sent_off = 0
        self.error = None                          # the port's first failure, if any

    @property
    def port_name(self) -> str:
        return f"{self.midi.client_name}:{self.virtual}" if self.virtual else str(self.port)

    def open(self) -> None:
        """Open the port (idempotent: a caller may open it early to connect it first)."""
        if self._thread is not None:
            return
        if self.out is None:
            self.out = open_midi_out(self.midi, self.port, self.virtual)
        self._thread = threading.Thread(target=self._note_offs, name="midi-note-offs",
                                        daemon=True)
        self._thread.start()

    def emit(self, events) -> None:
        if self.error:
            raise DrumClassifierError(f"MIDI port {self.port_name}: {self.error}")
        now = time.perf_counter()
        due = now + self.midi.note_length_ms / 1000
        with self._cv:
            for e in events:
                note = event_note(e, self.midi)
                if note is None:
                    continue
                if note in self._on:          # retrigger: end the previous one first
                    self.out.send_message([self._status_off, note, 0])
                    self.sent_off += 1
                self.out.send_message([self._status_on, note, max(1, min(127, e.velocity))])
                self.sent_on += 1
                self._on[note] = due
                heapq.heappush(self._due, (due, note))
            self._cv.notify()

    def _note_offs(self) -> None:
        with self._cv:
            while not self._closing:
                now = time.perf_counter()
                while self._due and self._due[0][0] <= now:
                    t, note = heapq.heappop(self._due)
                    if self._on.get(note) == t:   # not superseded by a retrigger
                        del self._on[note]
                        try:
                            self.out.send_message([self._status_off, note, 0])
                        except Exception as e:   # the port vanished: the next emit says so
                            self.error = f"{type(e).__name__}: {e}"
                            return
                        self.sent_off += 1
                self._cv.wait(self._due[0][0] - now if self._due else 0.5)

    def close(self) -> None:
        if self.out is None:
            return
        with self._cv:
            self._closing = True
            self._cv.notify()
        if self._thread:
            self._thread.join()
        out, self.out = self.out, None
        try:                 # best effort on a failed port; the port is released either way
            for note in sorted(self._on):
                out.send_message([self._status_off, note, 0])
                self.sent_off += 1
            out.send_message([self._cc, 123, 0])   # All Notes Off
            out.send_message([self._cc, 120, 0])   # All Sound Off
        finally:
            self._on.clear()
            self._due.clear()
            if hasattr(out, "close_port"):
                time.sleep(0.02)   # let the MIDI system deliver before the port disappears
                out.close_port()
                out.delete()
