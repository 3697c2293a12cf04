"""`--live-view`: a live terminal view while playing.

On a terminal: a rich Live panel redrawn in place (no flicker, REFRESH_HZ) with, per
instrument, the hit count, the hits in the last RATE_WINDOW_S, the last velocity as a bar,
and the last LAST_N hits. Not a terminal (a pipe, a log file): the plain one-line-per-hit
ConsoleSink instead. emit() (worker thread) only updates counters under a lock; rich's
own refresh thread draws.
"""
from __future__ import annotations

import sys
import threading
from collections import Counter, deque

from drumclassifier.errors import DrumClassifierError

from .report import LABEL_ORDER
from .sinks import ConsoleSink, Sink

REFRESH_HZ = 10
LAST_N = 8
RATE_WINDOW_S = 10.0


class LiveView(Sink):
    def __init__(self, stream=None, labels=None, force_terminal: bool | None = None):
        self.stream = stream or sys.stdout
        self.labels = list(labels or LABEL_ORDER)
        self.tty = self.stream.isatty() if force_terminal is None else force_terminal
        self._lock = threading.Lock()
        self.counts: Counter = Counter()
        self.last_velocity: dict = {}
        self.recent: deque = deque()           # (time_s, label) within RATE_WINDOW_S
        self.last_hits: deque = deque(maxlen=LAST_N)
        self.now_s = 0.0
        self.n_hits = 0
        self._live = self._plain = None

    def open(self) -> None:
        if not self.tty:
            self._plain = ConsoleSink(self.stream)
            return
        try:
            from rich.console import Console
            from rich.live import Live
        except ImportError:
            raise DrumClassifierError("--live-view needs the rich package: pip install rich "
                                      "(or leave --live-view out for plain lines)") from None
        console = Console(file=self.stream, force_terminal=True)
        self._live = Live(get_renderable=self.render, console=console,
                          refresh_per_second=REFRESH_HZ, transient=False)
        self._live.start()

    def emit(self, events) -> None:
        if self._plain is not None:
            self._plain.emit(events)
            return
        with self._lock:
            by_hit: dict = {}
            for e in events:
                self.counts[e.label] += 1
                self.last_velocity[e.label] = e.velocity
                self.recent.append((e.time_s, e.label))
                by_hit.setdefault(e.hit_index, []).append(e)
                if e.label not in self.labels:
                    self.labels.append(e.label)
                self.now_s = max(self.now_s, e.time_s)
            for g in by_hit.values():
                self.n_hits += 1
                self.last_hits.append((g[0].time_s, " + ".join(x.label for x in g),
                                       g[0].velocity, g[0].latency_ms))
            while self.recent and self.recent[0][0] < self.now_s - RATE_WINDOW_S:
                self.recent.popleft()

    def render(self):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text
        with self._lock:
            recent = Counter(lab for _, lab in self.recent)
            t = Table(title=f"drumclassifier  {self.now_s:7.1f} s  {self.n_hits} hits",
                      title_justify="left", expand=False)
            t.add_column("instrument")
            t.add_column("hits", justify="right")
            t.add_column(f"last {RATE_WINDOW_S:g} s", justify="right")
            t.add_column("last velocity")
            for lab in self.labels:
                v = self.last_velocity.get(lab)
                bar = "" if v is None else "█" * max(1, round(v / 127 * 20)) + f" {v}"
                t.add_row(lab, str(self.counts[lab]), str(recent[lab]), bar)
            last = Table(title="last hits", title_justify="left", expand=False)
            for c in ("time (s)", "instrument(s)", "velocity", "latency (ms)"):
                last.add_column(c, justify="left" if c == "instrument(s)" else "right")
            for ts, labs, vel, lat in reversed(self.last_hits):
                last.add_row(f"{ts:.3f}", labs, str(vel), f"{lat:.1f}")
            return Group(t, last, Text("Ctrl-C to stop", style="dim"))

    def close(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None
