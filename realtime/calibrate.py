"""Calibration on the live path: the hits of a take, and the guided session.

`drumclassifier calibrate --device D --out my.kit` (realtime/calibrate_cli.py): for each
piece of the kit in turn the terminal says what to play ("hit the kick 8 times, softly to
hard"), records a take from the input device through the live path (DeviceSource ->
RingBuffer -> the engine's analysis loop, realtime/analysis.py) and shows what it heard:
the count, each hit's level, warnings for clipped, too-quiet or too few hits. The drummer
keeps the take, re-takes it or skips the piece. A take ends when the hits asked for are
heard, when Enter is pressed, or after --take-seconds.

Then the profile is fitted and its cross-validated accuracy per piece shown before
anything is saved; the drummer can still re-take a piece or add one (CLASS--name[=note],
the --pieces/--notes syntax) and refit.

`calibrate --from-file` hears a recording's hits with the same code (hits_in, the
HitCollector fed block by block as a device would feed it). A calibration hit is longer
than a live slice: up to `max_hit_s` (the model's 1 s analysis window, which fit_profile
also fits) from its onset, cut short at the next onset so it never holds the start of
another hit.

Every prompt goes through a Prompter, so tests (and scripts) drive the session with a
scripted answer list instead of a human.
"""
from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from drumclassifier.calibrate import check_hits
from drumclassifier.errors import DrumClassifierError

from .analysis import Analysis, analyse, stall_message
from .config import OnsetConfig
from .onset import Onset
from .ringbuffer import RingBuffer


# ---- the hits of a take --------------------------------------------------------------------
@dataclass
class TakeHit:
    onset_sample: int     # stream position of the onset (samples since the take started)
    audio: np.ndarray     # [n, channels] float32 at the stream rate, from the onset


class HitCollector:
    """Blocks of one stream -> calibration hits, as the live engine finds them.

    push(block, start) as audio arrives, gap(start) after lost audio, flush() at the end;
    `hits` holds the finished hits in order, `onsets` every onset detected.
    """

    def __init__(self, sample_rate_hz: int, channels: int, onset_cfg: OnsetConfig | None = None,
                 max_hit_s: float = 1.0, start_silent: bool = True):
        self.sr = sample_rate_hz
        # the live analysis with one context, the whole hit; 2 s more history than that
        # covers the delay between an onset and the moment its slice is complete
        self.analysis = Analysis(sample_rate_hz, channels, onset_cfg, max_hit_s * 1000,
                                 max_hit_s + 2.0, start_silent)
        # a later onset is known at most one frame + one hop after its attack: a finished
        # slice waits that long for it before it is final
        det = self.analysis.detector
        self._settle = det.latency_samples + det.hop
        self.onsets: list[Onset] = []
        self.hits: list[TakeHit] = []
        self._waiting: deque = deque()     # Slices cut, the next onset still unknown

    @property
    def end(self) -> int:
        """Stream position after the last sample pushed."""
        return self.analysis.end

    def push(self, block: np.ndarray, start: int) -> None:
        """[n, channels] float32 audio starting at stream position `start`."""
        onsets, slices = self.analysis.push(block, start)
        self.onsets += onsets
        self._waiting.extend(slices)
        self._finish(final=False)

    def gap(self, start: int) -> None:
        """Audio was lost before `start`: the hits pending end at the gap."""
        self._waiting.extend(self.analysis.gap(start))
        self._finish(final=True)

    def flush(self) -> None:
        """End of the take: pending hits keep the audio there is."""
        self._waiting.extend(self.analysis.flush())
        self._finish(final=True)

    def _finish(self, final: bool) -> None:
        while self._waiting:
            onset, audio = self._waiting[0].track.onset, self._waiting[0].audio
            later = [o.sample for o in self.onsets if o.sample > onset.sample]
            if not later and not final and self.end < onset.sample + len(audio) + self._settle:
                break
            self._waiting.popleft()
            if later:
                audio = audio[:max(1, later[0] - onset.sample)]
            self.hits.append(TakeHit(onset.sample, np.array(audio, np.float32)))


def hits_in(data: np.ndarray, sample_rate_hz: int, onset_cfg: OnsetConfig | None = None,
            max_hit_s: float = 1.0, block: int = 4096) -> list[TakeHit]:
    """A whole [n, channels] recording -> its hits, fed block by block as a device would."""
    c = HitCollector(sample_rate_hz, data.shape[1], onset_cfg, max_hit_s)
    for s in range(0, len(data), block):
        c.push(np.ascontiguousarray(data[s:s + block], np.float32), s)
    c.flush()
    return c.hits


# ---- terminal I/O -------------------------------------------------------------------------
def _enter_pressed_terminal() -> bool:
    """A line typed on the terminal since the last call (non-blocking); False when stdin
    is not a terminal (piped answers must not end takes)."""
    try:
        if not sys.stdin.isatty():
            return False
        if sys.platform == "win32":
            import msvcrt
            hit = False
            while msvcrt.kbhit():
                hit = msvcrt.getwch() in "\r\n" or hit
            return hit
        import select
        if select.select([sys.stdin], [], [], 0)[0]:
            sys.stdin.readline()
            return True
    except (OSError, ValueError):
        pass
    return False


def _ask_terminal(prompt: str) -> str:
    print(prompt, end="", file=sys.stderr, flush=True)
    return input()


class Prompter:
    """The session's terminal: say(text), ask(prompt) -> the line typed, enter_pressed().

    ask raises EOFError when there is no more input (the session then quits unsaved);
    enter_pressed is polled during a take and must not block.
    """

    def __init__(self, ask: Callable[[str], str] | None = None,
                 enter_pressed: Callable[[], bool] | None = None,
                 say: Callable[[str], None] | None = None):
        self._ask = ask or _ask_terminal
        self.enter_pressed = enter_pressed or _enter_pressed_terminal
        self._say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.transcript: list[str] = []      # everything said and asked, in order

    @classmethod
    def scripted(cls, answers: Sequence[str], enter_pressed: Callable[[], bool] | None = None,
                 echo: bool = True) -> Prompter:
        """Answers given in order (then EOF); takes end only by hits heard or time."""
        left = list(answers)

        def ask(prompt: str) -> str:
            if not left:
                raise EOFError
            return left.pop(0)
        return cls(ask, enter_pressed or (lambda: False),
                   None if echo else (lambda text: None))

    def say(self, text: str) -> None:
        self.transcript.append(text)
        self._say(text)

    def ask(self, prompt: str) -> str:
        self.transcript.append(prompt)
        return self._ask(prompt).strip()


# ---- one take ------------------------------------------------------------------------------
@dataclass
class Take:
    hits: list[TakeHit]
    seconds: float                 # audio analysed: the drummer's playing time for the take
    ended_by: str                  # "hits" | "enter" | "time"
    lost_frames: int = 0           # audio lost to ring-buffer overflows


def record_take(open_source: Callable[[float], object], ring_channels: int,
                sample_rate_hz: int, onset_cfg, n_hits: int, max_s: float,
                enter_pressed: Callable[[], bool], stall_s: float = 2.0,
                poll_s: float = 0.005) -> Take:
    """Record from a freshly opened source until n_hits are heard, Enter, or max_s.

    open_source(max_s) returns an unstarted Source (a DeviceSource live) that stops by
    itself after max_s of audio; the ring buffer holds the whole take, so an input that
    delivers faster than real time (a file plugin) loses nothing. The audio is read by
    the engine's analysis loop (realtime/analysis.py).
    """
    src = open_source(max_s)
    ring = RingBuffer(int((max_s + 1.0) * sample_rate_hz), ring_channels)
    coll = HitCollector(sample_rate_hz, ring_channels, onset_cfg,
                        start_silent=getattr(src, "starts_silent", False))

    def until() -> str | None:
        if len(coll.hits) >= n_hits:
            return "hits"
        if src.error:
            raise DrumClassifierError(f"audio input: {src.error}")
        return "enter" if enter_pressed() else None
    src.start(ring)
    try:
        why = analyse(ring, src, coll.push, coll.gap, until=until, stall_s=stall_s,
                      poll_s=poll_s)
    finally:
        src.stop()
    if why == "stall":
        raise DrumClassifierError(stall_message(stall_s))
    coll.flush()
    return Take(coll.hits, coll.end / sample_rate_hz, "time" if why == "end" else why,
                ring.overflow_frames)


# ---- the session ---------------------------------------------------------------------------
@dataclass
class SessionPiece:
    name: str
    label: str
    note: int
    hits: list[np.ndarray] = field(default_factory=list)   # [n, channels] at the stream rate
    skipped: bool = False
    takes: int = 0


@dataclass
class SessionResult:
    pieces: list[SessionPiece]     # the pieces kept (each with its hits), in playing order
    profile: object                # the fitted KitProfile the drummer accepted
    takes: int                     # takes recorded, re-takes included
    playing_s: float               # audio recorded over all takes (s)
    wall_s: float                  # the whole session, prompts and fitting included (s)


class GuidedSession:
    """The prompts, takes and decisions of one calibration; saving is the caller's.

    Args:
        pieces: (name, label, note) in playing order.
        take: n_hits -> Take (record_take on the input device).
        fit: kept SessionPieces -> a fitted KitProfile (reports its CV accuracy itself).
        parse_piece: "CLASS--name[=note]" -> (name, label, note), for pieces added live.
        sample_rate_hz, live_ms: for the levels shown (peak over the live context).
        groove: kept SessionPieces -> the play-along groove's Take, or None if the drummer
            skipped it (the caller keeps the take and fits with it, realtime/playalong.py);
            None: not offered.
    """

    def __init__(self, pieces, hits_per_piece: int, take: Callable[[int], Take],
                 fit: Callable[[list[SessionPiece]], object],
                 parse_piece: Callable[[str], tuple[str, str, int]], prompter: Prompter,
                 sample_rate_hz: int, live_ms: float, out_name: str = "the kit profile",
                 groove: Callable[[list[SessionPiece]], Take | None] | None = None):
        self.pieces = [SessionPiece(n, lab, note) for n, lab, note in pieces]
        self.n, self.take, self.fit, self.parse_piece = hits_per_piece, take, fit, parse_piece
        self.groove = groove
        self.p, self.sr, self.live_ms, self.out_name = prompter, sample_rate_hz, live_ms, out_name
        self.n_takes, self.playing_s = 0, 0.0

    def run(self) -> SessionResult | None:
        """The whole session; None if the drummer quits (nothing is to be saved)."""
        t0 = time.perf_counter()
        p = self.p
        p.say(f"Calibration: {len(self.pieces)} pieces, {self.n} hits each. For each piece: "
              f"press Enter, then hit it {self.n} times from soft to hard, about two hits a "
              "second; the take ends when they are heard (or press Enter)."
              + (" After the fit, `g` plays a 20 s play-along groove: it teaches how your "
                 "pieces sound struck together." if self.groove else ""))
        try:
            i = 0
            while i < len(self.pieces):
                pc = self.pieces[i]
                a = p.ask(f"[{i + 1}/{len(self.pieces)}] {pc.name} ({pc.label}, note "
                          f"{pc.note}): Enter = start, s = skip, d = done (fit what is "
                          "recorded), q = quit: ").lower()
                if a == "q":
                    return None
                if a == "d":
                    for rest in self.pieces[i:]:
                        rest.skipped = not rest.hits
                    break
                if a == "s":
                    pc.skipped = True
                else:
                    self._record(pc)
                i += 1
            return self._fit_loop(t0)
        except EOFError:
            p.say("no more input: quit, nothing saved")
            return None

    def _record(self, pc: SessionPiece) -> None:
        """Takes of one piece until the drummer keeps one or skips the piece."""
        p = self.p
        while True:
            p.say(f"listening: hit the {pc.name} {self.n} times, softly to hard "
                  "(Enter ends the take)")
            take = self.take(self.n)
            self.n_takes += 1
            self.playing_s += take.seconds
            pc.takes += 1
            hits = [h.audio for h in take.hits]
            self._show(pc, take, hits)
            if not hits:
                a = p.ask("no hit heard. Enter = re-take, s = skip this piece: ").lower()
                if a == "s":
                    pc.skipped = True
                    return
                continue
            a = p.ask("Enter = keep, r = re-take, s = skip this piece: ").lower()
            if a == "r":
                continue
            if a == "s":
                pc.skipped, pc.hits = True, []
                return
            pc.hits, pc.skipped = hits, False           # a re-take replaces the piece's hits
            return

    def _show(self, pc: SessionPiece, take: Take, hits: list[np.ndarray]) -> None:
        why = {"hits": "", "enter": " (ended by Enter)", "time": " (time limit)"}[take.ended_by]
        levels, warns = check_hits(hits, self.sr, self.live_ms,
                                   [f"hit {k + 1}" for k in range(len(hits))], self.n)
        self.p.say(f"{pc.name}: heard {len(hits)} of {self.n} hits in {take.seconds:.1f} s"
                   f"{why}")
        if hits:
            self.p.say(f"  levels (peak dBFS, first {self.live_ms:g} ms): "
                       + " ".join(f"{v:.1f}" for v in levels))
        if take.lost_frames:
            warns.append(f"{take.lost_frames} audio frames were lost (the computer fell "
                         "behind): re-take")
        for w in warns:
            self.p.say(f"  warning: {w}")

    def _fit_loop(self, t0: float) -> SessionResult | None:
        p = self.p
        prof, changed = None, True
        while True:
            if changed:                     # refit only when the recorded pieces changed
                kept = [pc for pc in self.pieces if pc.hits and not pc.skipped]
                skipped = [pc.name for pc in self.pieces if not pc.hits or pc.skipped]
                if skipped:
                    p.say(f"not taught: {', '.join(skipped)} (a piece left out is heard as "
                          "another)")
                prof = self.fit(kept) if len(kept) >= 2 else None
                changed = False
            if prof is not None:
                g = ("g = play the play-along groove (about 20 s, recommended), "
                     if self.groove else "")
                a = p.ask(f"Enter = save {self.out_name}, {g}r N = re-take piece N, "
                          "+ CLASS--name[=note] = add a piece, q = quit without saving: ")
            else:
                a = p.ask("a kit profile needs at least two pieces: r N = record piece N, "
                          "+ CLASS--name[=note] = add a piece, q = quit: ")
            low = a.lower()
            if low == "" and prof is not None:
                return SessionResult(kept, prof, self.n_takes, self.playing_s,
                                     time.perf_counter() - t0)
            if low == "q":
                return None
            if low == "g" and self.groove and prof is not None:
                take = self.groove(kept)
                if take is not None:
                    self.n_takes += 1
                    self.playing_s += take.seconds
                    changed = True
            elif low.startswith("r") and low[1:].strip().isdigit():
                k = int(low[1:]) - 1
                if 0 <= k < len(self.pieces):
                    self._record(self.pieces[k])
                    changed = True
                else:
                    p.say(f"  no piece {k + 1}: pieces are numbered 1-{len(self.pieces)}")
            elif a.startswith("+"):
                try:
                    name, label, note = self.parse_piece(a[1:])
                except DrumClassifierError as e:
                    p.say(f"  {e}")
                    continue
                if any(pc.name == name for pc in self.pieces):
                    p.say(f"  a piece named {name!r} exists: re-take it with r N")
                    continue
                self.pieces.append(SessionPiece(name, label, note))
                p.say(f"added piece {len(self.pieces)}: {name} ({label}, note {note})")
                self._record(self.pieces[-1])
                changed = True
            else:
                p.say(f"  not understood: {a!r}")
