"""Session report: what a drummer wants to see after practice, from a session's events.csv.

    drumclassifier report DIR [--force] [-o OUT]

Reads DIR/events.csv (time_s,label,confidence,velocity[,latency_ms,...]) and, if present,
DIR/session.json (duration, source, counters), and writes into DIR (or OUT):
  report.html   self-contained page: tables + figures as base64 PNG, no external assets
  timeline.png  hits by instrument over time, velocity as marker size and shade
  report.json   the numbers of the page, for scripts

Method (docs/tables say the same on the page):
  hits          the distinct onset times (events closer than MERGE_MS merged: one hit
                 may carry kick + hihat); counts per instrument count events.
  tempo curve   sliding windows (WINDOW_S long, every HOP_S): the hits as a pulse train
                 (weight = events at the hit, 5 ms frames, Gaussian-smoothed, sigma 10 ms),
                 its autocorrelation over 40-240 BPM weighted by a log-normal tempo prior
                 (centre 120 BPM, sigma one octave, as librosa's beat tracker), parabolic
                 peak interpolation.
  sections      consecutive windows within TEMPO_TOL of their section's median tempo.
  grid          per section a constant-tempo sixteenth-note grid fitted to the hits: the
                 period by maximising the phase coherence |mean exp(2 pi i t / s)| (zoomed
                 search), then least squares of t against the grid index. Its tempo is the
                 section's tempo.
  steadiness    per instrument: the IOI jitter (spread of each inter-onset interval minus
                 the nearest multiple of the sixteenth), the mean offset from the grid
                 (+ = behind / late) and its spread; per section: drift = the running
                 median (DRIFT_HITS hits) of the offsets, i.e. how far the playing wandered
                 ahead of or behind a steady click at the section's tempo.
matplotlib runs with the Agg backend: no display needed.
"""
from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drumclassifier.classes import CLASSES
from drumclassifier.errors import DrumClassifierError

LABEL_ORDER = list(CLASSES)   # others follow, sorted
COLORS = dict(zip(CLASSES, ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")))
DPI = 100
TIMELINE_SIZE_PX = (1500, 450)      # width, height of timeline.png
FIG_WIDTH_PX = 1100                 # the other figures (embedded in the page only)
MERGE_MS = 15.0                     # events closer than this are one hit
WINDOW_S, HOP_S = 8.0, 1.0          # tempo curve: sliding window and step
BPM_RANGE = (40.0, 240.0)
FRAME_S, SMOOTH_S = 0.005, 0.010    # pulse train frame and Gaussian smoothing sigma
PRIOR_BPM, PRIOR_OCTAVES = 120.0, 1.0
TEMPO_TOL = 0.04                    # relative: windows closer than 4 % form one section
MIN_SECTION_WINDOWS = 3
SUBDIVISION = 4                     # grid lines per beat (sixteenths)
MAX_IOI_BEATS = 4.0                 # longer gaps (over a 4/4 bar) are pauses, not a rhythm
DRIFT_HITS = 16                     # running median length for the drift curve
REPORT_FILES = ("report.html", "timeline.png", "report.json")


# ---- reading ----------------------------------------------------------------------------
@dataclass
class Events:
    time_s: np.ndarray              # [n] onset time in the stream (s)
    label: np.ndarray               # [n] str
    confidence: np.ndarray          # [n]
    velocity: np.ndarray            # [n] MIDI 1-127
    latency_ms: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.time_s)


def read_events(path: str | Path) -> Events:
    """events.csv -> Events sorted by time; a missing column or a bad row is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise DrumClassifierError(f"{path}: no events file (a session directory holds "
                                  "events.csv)")
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        need = {"time_s", "label", "velocity"}
        missing = need - set(r.fieldnames or [])
        if missing:
            raise DrumClassifierError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        rows = list(r)
    try:
        t = np.array([float(x["time_s"]) for x in rows], float)
        vel = np.array([float(x["velocity"]) for x in rows], float)
        conf = np.array([float(x.get("confidence") or "nan") for x in rows], float)
        lat = (np.array([float(x["latency_ms"] or "nan") for x in rows], float)
               if rows and "latency_ms" in rows[0] else None)
    except ValueError as e:
        raise DrumClassifierError(f"{path}: bad number ({e})") from None
    label = np.array([x["label"] for x in rows], dtype=object)
    order = np.argsort(t, kind="stable")
    return Events(t[order], label[order], conf[order], vel[order],
                  None if lat is None else lat[order])


def instruments(ev: Events) -> list[str]:
    present = set(ev.label.tolist())
    return [x for x in LABEL_ORDER if x in present] + sorted(present - set(LABEL_ORDER))


def distinct_hits(ev: Events, merge_ms: float = MERGE_MS) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """(hit times [h], events per hit [h], hit index of each event [n])."""
    if len(ev) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, int)
    new = np.r_[True, np.diff(ev.time_s) > merge_ms / 1000]
    idx = np.cumsum(new) - 1
    times = ev.time_s[new]
    weights = np.bincount(idx).astype(float)
    return times, weights, idx


# ---- tempo ------------------------------------------------------------------------------
def window_tempo(times: np.ndarray, weights: np.ndarray) -> float:
    """Tempo (BPM) of one window of hits by autocorrelation of the pulse train; nan if < 4."""
    if len(times) < 4:
        return math.nan
    t = times - times.min()
    n = int(t.max() / FRAME_S) + 1
    max_lag = int(60 / BPM_RANGE[0] / FRAME_S) + 2
    n_fft = 1 << int(np.ceil(np.log2(2 * (n + max_lag) + 64)))
    x = np.zeros(n_fft)
    np.add.at(x, np.round(t / FRAME_S).astype(int), weights)
    k = np.arange(-4, 5) * FRAME_S                      # Gaussian smoothing kernel
    x = np.convolve(x, np.exp(-0.5 * (k / SMOOTH_S) ** 2), mode="same")
    spec = np.fft.rfft(x)
    acf = np.fft.irfft(spec * np.conj(spec), n_fft)
    lags = np.arange(int(60 / BPM_RANGE[1] / FRAME_S), min(max_lag, n))
    if len(lags) < 3:
        return math.nan
    bpm = 60 / (lags * FRAME_S)
    prior = np.exp(-0.5 * (np.log2(bpm / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
    score = acf[lags] * prior
    i = int(np.argmax(score))
    if score[i] <= 0:
        return math.nan
    lag = float(lags[i])
    if 0 < i < len(lags) - 1:                           # parabolic peak interpolation
        a, b, c = acf[lags[i] - 1], acf[lags[i]], acf[lags[i] + 1]
        den = a - 2 * b + c
        if den < 0:
            lag += 0.5 * (a - c) / den
    return 60 / (lag * FRAME_S)


def tempo_curve(times: np.ndarray, weights: np.ndarray, duration_s: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """(window centres [w] s, tempo [w] BPM, nan where too few hits)."""
    if duration_s <= WINDOW_S:
        centres = np.array([duration_s / 2])
    else:
        centres = np.arange(WINDOW_S / 2, duration_s - WINDOW_S / 2 + 1e-9, HOP_S)
    bpm = np.full(len(centres), math.nan)
    for j, c in enumerate(centres):
        sel = (times >= c - WINDOW_S / 2) & (times < c + WINDOW_S / 2)
        bpm[j] = window_tempo(times[sel], weights[sel])
    return centres, bpm


@dataclass
class Section:
    start_s: float
    end_s: float
    bpm: float                      # grid tempo (fitted); nan if too few hits
    window_bpm: float               # median of the windowed estimates
    hits: int = 0
    offset_rms_ms: float = math.nan  # spread of the hits around the grid
    drift_max_ms: float = math.nan   # largest |running median offset|: ahead(-)/behind(+)
    drift_range_ms: float = math.nan
    grid_t0_s: float = math.nan      # the grid: t0 + k * 60 / bpm / SUBDIVISION


def find_sections(centres: np.ndarray, bpm: np.ndarray, end_s: float) -> list[Section]:
    """Consecutive windows within TEMPO_TOL of their section median; short runs merged."""
    ok = ~np.isnan(bpm)
    c, b = centres[ok], bpm[ok]
    if len(b) == 0:
        return [Section(0.0, end_s, math.nan, math.nan)]
    runs: list[list[int]] = [[0]]
    for j in range(1, len(b)):
        med = np.median(b[runs[-1]])
        if abs(math.log(b[j] / med)) < TEMPO_TOL:
            runs[-1].append(j)
        else:
            runs.append([j])
    changed = True                                     # merge short runs into a neighbour
    while changed and len(runs) > 1:
        changed = False
        for k, r in enumerate(runs):
            if len(r) < MIN_SECTION_WINDOWS:
                if k == 0:
                    nb = 1
                elif k == len(runs) - 1:
                    nb = k - 1
                else:
                    m = np.median(b[r])
                    nb = min((k - 1, k + 1), key=lambda q: abs(math.log(np.median(b[runs[q]]) / m)))
                runs[nb] = sorted(runs[nb] + r)
                del runs[k]
                changed = True
                break
    out = []
    for k, r in enumerate(runs):
        start = 0.0 if k == 0 else (c[runs[k - 1][-1]] + c[r[0]]) / 2
        end = end_s if k == len(runs) - 1 else (c[r[-1]] + c[runs[k + 1][0]]) / 2
        out.append(Section(float(start), float(end), math.nan, float(np.median(b[r]))))
    return out


def fit_grid(times: np.ndarray, bpm_guess: float, search: float = 1.5 * TEMPO_TOL
             ) -> tuple[float, float, np.ndarray]:
    """A constant sixteenth grid t0 + k * s fitted to hit times.

    Returns (bpm, t0, residual [h] s). The period maximises the phase coherence
    |mean exp(2 pi i t / s)| within +-search of the guess (zooming in until the step is
    far below the peak width s^2 / duration), then t is regressed on k = round((t - t0) / s).
    """
    s0 = 60 / bpm_guess / SUBDIVISION
    t = times - times[0]
    dur = max(t[-1], s0)
    lo, hi = s0 * (1 - search), s0 * (1 + search)
    for _ in range(12):
        cand = np.linspace(lo, hi, 201)
        coh = np.abs(np.exp(2j * np.pi * t[:, None] / cand[None, :]).mean(0))
        i = int(np.argmax(coh))
        step = cand[1] - cand[0]
        s = cand[i]
        if step < 0.01 * s * s / dur:
            break
        lo, hi = s - 2 * step, s + 2 * step
    phase = np.angle(np.exp(2j * np.pi * t / s).mean())
    t0 = phase / (2 * np.pi) * s
    for _ in range(2):
        k = np.round((t - t0) / s)
        if np.ptp(k) == 0:
            break
        s, t0 = np.polyfit(k, t, 1)
    k = np.round((t - t0) / s)
    return 60 / (s * SUBDIVISION), t0 + times[0], t - (t0 + k * s)


def running_median(x: np.ndarray, n: int) -> np.ndarray:
    if len(x) == 0:
        return x
    h = n // 2
    return np.array([np.median(x[max(0, i - h):i + h + 1]) for i in range(len(x))])


def _grid_offset(t: np.ndarray, sec: Section) -> np.ndarray:
    """Offsets (s) of times t from the section's grid."""
    step = 60 / sec.bpm / SUBDIVISION
    x = t - sec.grid_t0_s
    return x - np.round(x / step) * step


def _fit_sections(times: np.ndarray, sections: list[Section]):
    """Fit each section's grid to its hits: (offset ms [h], section [h], sixteenth s [h])."""
    offset = np.full(len(times), math.nan)
    hit_section = np.zeros(len(times), int)
    sixteenth = np.full(len(times), math.nan)
    for j, sec in enumerate(sections):
        sel = (times >= sec.start_s) & ((times < sec.end_s) | (j == len(sections) - 1))
        hit_section[sel] = j
        sec.hits = int(sel.sum())
        if sec.hits < 8 or math.isnan(sec.window_bpm):
            sec.bpm = math.nan
            continue
        sec.bpm, sec.grid_t0_s, res = fit_grid(times[sel], sec.window_bpm)
        offset[sel] = res * 1000
        sixteenth[sel] = 60 / sec.bpm / SUBDIVISION
    return offset, hit_section, sixteenth


def _refine_boundaries(times: np.ndarray, sections: list[Section]) -> bool:
    """Move each boundary between two gridded sections to the hit split (within a window
    length) that minimises the squared offsets from the two grids; True if any moved."""
    moved = False
    for a, b in itertools.pairwise(sections):
        if not (math.isfinite(a.bpm) and math.isfinite(b.bpm)):
            continue
        near = (times > b.start_s - WINDOW_S / 2) & (times < b.start_s + WINDOW_S / 2)
        t = times[near]
        if len(t) < 2:
            continue
        ea, eb = _grid_offset(t, a) ** 2, _grid_offset(t, b) ** 2
        # cost of splitting before hit i: hits < i on grid a, hits >= i on grid b
        cost = np.r_[0, np.cumsum(ea)] + np.r_[np.cumsum(eb[::-1])[::-1], 0]
        i = int(np.argmin(cost))
        new = float(t[0] - 1e-6 if i == 0 else (t[-1] + 1e-6 if i == len(t)
                                                 else (t[i - 1] + t[i]) / 2))
        if abs(new - b.start_s) > 1e-6:
            moved = True
        a.end_s = b.start_s = new
    return moved


# ---- analysis ---------------------------------------------------------------------------
@dataclass
class Analysis:
    duration_s: float
    instruments: list[str]
    n_events: int
    n_hits: int
    counts: dict                    # label -> events
    per_minute: list                # [{"minute": m, "length_s": .., label: n, ..., "total": n}]
    dynamics: dict                  # label -> {mean, median, std, p10, p90, min, max}
    steadiness: dict                # label -> {ioi_median_ms, ioi_jitter_ms, offset_ms, ...}
    sections: list[Section]
    tempo_centres_s: np.ndarray
    tempo_bpm: np.ndarray
    hit_times: np.ndarray
    hit_offset_ms: np.ndarray       # [h] offset from the section grid (nan: no grid)
    hit_section: np.ndarray         # [h]
    event_offset_ms: np.ndarray     # [n] each event's offset from its section grid
    latency_ms: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        def clean(x):
            if isinstance(x, float) and not math.isfinite(x):
                return None
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, list):
                return [clean(v) for v in x]
            return x
        return clean({
            "duration_s": self.duration_s, "instruments": self.instruments,
            "events": self.n_events, "hits": self.n_hits, "counts": self.counts,
            "hits_per_minute": {k: v * 60 / self.duration_s for k, v in self.counts.items()}
            if self.duration_s > 0 else {},
            "per_minute": self.per_minute, "dynamics": self.dynamics,
            "steadiness": self.steadiness,
            "sections": [vars(s).copy() for s in self.sections],
            "tempo_curve": {"centre_s": [float(x) for x in self.tempo_centres_s],
                            "bpm": [float(x) for x in self.tempo_bpm]},
            "latency_ms": self.latency_ms, "meta": self.meta,
            "method": {"merge_ms": MERGE_MS, "window_s": WINDOW_S, "hop_s": HOP_S,
                       "tempo_tol": TEMPO_TOL, "subdivision": SUBDIVISION,
                       "drift_hits": DRIFT_HITS}})


def _stats(x: np.ndarray) -> dict:
    if len(x) == 0:
        return {}
    return {"n": len(x), "mean": float(x.mean()), "median": float(np.median(x)),
            "std": float(x.std()), "p10": float(np.percentile(x, 10)),
            "p90": float(np.percentile(x, 90)), "min": float(x.min()), "max": float(x.max())}


def analyse(ev: Events, duration_s: float | None = None, meta: dict | None = None) -> Analysis:
    """Every number of the report from the events (duration: session length, default the
    last event time)."""
    last = float(ev.time_s.max()) if len(ev) else 0.0
    duration = max(duration_s or 0.0, last)
    labels = instruments(ev)
    counts = {lab: int((ev.label == lab).sum()) for lab in labels}

    per_minute = []
    n_min = math.ceil(duration / 60) if duration > 0 else 0
    for m in range(n_min):
        sel = (ev.time_s >= 60 * m) & (ev.time_s < 60 * (m + 1))
        if m == n_min - 1:
            sel |= ev.time_s >= 60 * (m + 1)           # an event exactly at the end
        row = {"minute": m + 1, "length_s": float(min(60.0, duration - 60 * m))}
        row.update({lab: int((sel & (ev.label == lab)).sum()) for lab in labels})
        row["total"] = int(sel.sum())
        per_minute.append(row)

    dynamics = {lab: _stats(ev.velocity[ev.label == lab]) for lab in labels}

    times, weights, idx = distinct_hits(ev)
    centres, bpm = tempo_curve(times, weights, duration)
    sections = find_sections(centres, bpm, duration)
    for _ in range(2):     # fit each section's grid; move the boundaries to the best split
        offset, hit_section, sixteenth = _fit_sections(times, sections)
        if not _refine_boundaries(times, sections):
            break
    for j, sec in enumerate(sections):
        sel = hit_section == j
        if not np.isfinite(offset[sel]).any():
            continue
        sec.offset_rms_ms = float(np.sqrt(np.mean(offset[sel] ** 2)))
        drift = running_median(offset[sel], DRIFT_HITS)
        sec.drift_max_ms = float(drift[np.argmax(np.abs(drift))])
        sec.drift_range_ms = float(np.ptp(drift))

    # per event (its own time: a snare 10 ms behind the hihat is merged into one hit above,
    # but keeps its own offset here)
    ev_section = hit_section[idx] if len(ev) else np.zeros(0, int)
    ev_step = sixteenth[idx] if len(ev) else np.zeros(0)
    ev_offset = np.full(len(ev), math.nan)
    for j, sec in enumerate(sections):
        sel = (ev_section == j) & np.isfinite(ev_step)
        if sel.any():
            x = ev.time_s[sel] - sec.grid_t0_s
            ev_offset[sel] = (x - np.round(x / ev_step[sel]) * ev_step[sel]) * 1000
    steadiness = {}
    for lab in labels:
        mine = ev.label == lab
        t, step, sec_of = ev.time_s[mine], ev_step[mine], ev_section[mine]
        ioi = np.diff(t)
        keep = np.isfinite(step[1:]) & (sec_of[1:] == sec_of[:-1])
        keep &= ioi < (MAX_IOI_BEATS * SUBDIVISION + 0.5) * np.nan_to_num(step[1:], nan=0)
        dev = (ioi - np.round(ioi / step[1:]) * step[1:])[keep] * 1000
        off = ev_offset[mine]
        off = off[np.isfinite(off)]
        steadiness[lab] = {
            "ioi_median_ms": float(np.median(ioi) * 1000) if len(ioi) else math.nan,
            "ioi_std_ms": float(ioi.std() * 1000) if len(ioi) else math.nan,
            "ioi_jitter_ms": float(dev.std()) if len(dev) > 1 else math.nan,
            "offset_mean_ms": float(off.mean()) if len(off) else math.nan,
            "offset_std_ms": float(off.std()) if len(off) > 1 else math.nan,
        }
    latency = {}
    if ev.latency_ms is not None and np.isfinite(ev.latency_ms).any():
        lat = ev.latency_ms[np.isfinite(ev.latency_ms)]
        latency = {"median": float(np.median(lat)), "p95": float(np.percentile(lat, 95)),
                   "max": float(lat.max())}
    return Analysis(duration, labels, len(ev), len(times), counts, per_minute, dynamics,
                    steadiness, sections, centres, bpm, times, offset, hit_section, ev_offset,
                    latency, dict(meta or {}))


# ---- figures ----------------------------------------------------------------------------
def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _color(lab: str) -> str:
    return COLORS.get(lab, "#7f7f7f")


def _png(fig, path: Path | None = None) -> bytes:
    """PNG bytes at the figure's exact pixel size (no tight bbox), no metadata."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    _plt().close(fig)
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def timeline_figure(ev: Events, a: Analysis):
    """Hits by instrument (rows) over time; velocity as marker size and shade."""
    plt = _plt()
    w, h = TIMELINE_SIZE_PX
    fig = plt.figure(figsize=(w / DPI, h / DPI), dpi=DPI)
    ax = fig.add_axes([0.07, 0.14, 0.84, 0.74])
    cax = fig.add_axes([0.925, 0.14, 0.012, 0.74])
    rows = {lab: i for i, lab in enumerate(a.instruments)}
    sc = None
    if len(ev):
        y = np.array([rows[x] for x in ev.label])
        v = np.clip(ev.velocity, 1, 127)
        sc = ax.scatter(ev.time_s, y, s=6 + 80 * (v / 127) ** 1.5, c=v, cmap="magma_r",
                        vmin=1, vmax=127, alpha=0.85, linewidths=0)
    for s in a.sections[1:]:
        ax.axvline(s.start_s, color="#888", ls="--", lw=1)
    for s in a.sections:
        if math.isfinite(s.bpm):
            ax.text(s.start_s, 1.01, f" {s.bpm:.1f} BPM", transform=ax.get_xaxis_transform(),
                    fontsize=9, color="#444", va="bottom")
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set_ylim(-0.6, max(len(rows), 1) - 0.4)
    ax.set_xlim(0, max(a.duration_s, 1.0))
    ax.set_xlabel("time (s)")
    ax.grid(axis="x", color="#ddd", lw=0.5)
    ax.set_title("Timeline: hits by instrument (size and shade = velocity)", loc="left",
                 fontsize=11, pad=16)
    if sc is not None:
        fig.colorbar(sc, cax=cax, label="velocity")
    else:
        cax.axis("off")
        ax.text(0.5, 0.5, "no hits", transform=ax.transAxes, ha="center")
    return fig


def counts_figure(a: Analysis):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(FIG_WIDTH_PX / DPI, 3.2), dpi=DPI)
    fig.subplots_adjust(left=0.08, right=0.82, bottom=0.17, top=0.88)
    minutes = [r["minute"] for r in a.per_minute]
    bottom = np.zeros(len(minutes))
    for lab in a.instruments:
        # hits per minute: a partial last minute is scaled to a rate
        rate = np.array([r[lab] * 60 / max(r["length_s"], 1e-9) for r in a.per_minute])
        ax.bar(minutes, rate, bottom=bottom, color=_color(lab), label=lab)
        bottom += rate
    ax.set_xlabel("minute of the session")
    ax.set_ylabel("hits per minute")
    ax.set_title("Hits per minute by instrument (a partial last minute scaled to a rate)",
                 loc="left", fontsize=11)
    if minutes:
        ax.set_xticks(minutes)
    if a.instruments:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return fig


def dynamics_figure(ev: Events, a: Analysis):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(FIG_WIDTH_PX / DPI, 3.4), dpi=DPI)
    fig.subplots_adjust(left=0.08, right=0.97, bottom=0.12, top=0.88)
    data = [ev.velocity[ev.label == lab] for lab in a.instruments]
    if data:
        bp = ax.boxplot(data, orientation="horizontal", widths=0.5, showfliers=False, patch_artist=True)
        ax.set_yticks(range(1, len(data) + 1), a.instruments)
        for patch, lab in zip(bp["boxes"], a.instruments):
            patch.set_facecolor(_color(lab))
            patch.set_alpha(0.35)
        rng = np.random.default_rng(0)
        for i, (d, lab) in enumerate(zip(data, a.instruments)):
            ax.scatter(d, i + 1 + rng.uniform(-0.18, 0.18, len(d)), s=5, color=_color(lab),
                       alpha=0.5, linewidths=0)
    ax.set_xlim(0, 128)
    ax.set_xlabel("velocity (1-127)")
    ax.set_title("Dynamics: velocity per instrument (box = quartiles, whiskers 1.5 IQR)",
                 loc="left", fontsize=11)
    return fig


def tempo_figure(ev: Events, a: Analysis):
    plt = _plt()
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(FIG_WIDTH_PX / DPI, 5.6), dpi=DPI, sharex=True)
    fig.subplots_adjust(left=0.08, right=0.82, bottom=0.09, top=0.93, hspace=0.25)
    ax.plot(a.tempo_centres_s, a.tempo_bpm, "o", ms=3, color="#555",
            label=f"window estimate ({WINDOW_S:g} s)")
    for s in a.sections:
        if math.isfinite(s.bpm):
            ax.hlines(s.bpm, s.start_s, s.end_s, color="#d62728", lw=2)
    ax.plot([], [], color="#d62728", lw=2, label="section grid tempo")
    ax.set_ylabel("tempo (BPM)")
    ax.set_title("Tempo over time", loc="left", fontsize=11)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=9)
    fin = a.tempo_bpm[np.isfinite(a.tempo_bpm)]
    if len(fin):
        ax.set_ylim(fin.min() * 0.9, fin.max() * 1.1)
    ok = np.isfinite(a.hit_offset_ms)
    times = a.hit_times
    for lab in a.instruments:
        sel = (ev.label == lab) & np.isfinite(a.event_offset_ms)
        bx.scatter(ev.time_s[sel], a.event_offset_ms[sel], s=4, color=_color(lab), alpha=0.5,
                   linewidths=0, label=lab)
    for j, s in enumerate(a.sections):
        sel = ok & (a.hit_section == j)
        if sel.sum() > 1:
            bx.plot(times[sel], running_median(a.hit_offset_ms[sel], DRIFT_HITS),
                    color="black", lw=1.5)
    bx.plot([], [], color="black", lw=1.5, label="drift")
    bx.axhline(0, color="#999", lw=0.8)
    bx.set_ylabel("offset from grid (ms)\n+ = behind, - = ahead")
    bx.set_xlabel("time (s)")
    bx.set_title("Timing against the section's steady sixteenth grid", loc="left", fontsize=11)
    bx.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=9,
              markerscale=3)
    bx.set_xlim(0, max(a.duration_s, 1.0))
    return fig


# ---- page -------------------------------------------------------------------------------
CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1200px;color:#222;padding:0 16px}h1{margin-bottom:4px}h2{margin-top:32px;
border-bottom:1px solid #ddd;padding-bottom:4px}table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}img{max-width:100%;height:auto;display:block;
margin:8px 0}.meta{color:#666}.note{color:#555;font-size:0.92em;max-width:900px}
.cards{display:flex;gap:16px;flex-wrap:wrap}.card{background:#f6f6f6;border-radius:8px;
padding:10px 16px}.card b{font-size:1.4em;display:block}"""


def _f(x, fmt="{:.1f}") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "&ndash;"
    return fmt.format(x)


def _table(header: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    return (f'<img alt="{html.escape(alt)}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}">')


def _mmss(s: float) -> str:
    return f"{int(s // 60)}:{s % 60:04.1f}"


def render_html(a: Analysis, figures: dict[str, bytes]) -> str:
    m = a.meta
    dur = a.duration_s
    title = "Practice session report"
    fin = [s for s in a.sections if math.isfinite(s.bpm)]
    tempo_txt = (" / ".join(f"{s.bpm:.0f}" for s in fin) + " BPM") if fin else "&ndash;"
    cards = [("duration", _mmss(dur)), ("hits", str(a.n_hits)),
             ("hits per minute", _f(a.n_hits * 60 / dur) if dur > 0 else "&ndash;"),
             ("tempo", tempo_txt)]
    parts = [("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
              "<meta name='viewport' content='width=device-width,initial-scale=1'>"
              f"<title>{title}</title><style>{CSS}</style></head><body>"),
             f"<h1>{title}</h1>"]
    meta_bits = [f"{k}: {html.escape(str(m[k]))}" for k in ("started", "source", "weights",
                                                           "onset_detector", "command")
                 if m.get(k)]
    if meta_bits:
        parts.append("<p class='meta'>" + " &middot; ".join(meta_bits) + "</p>")
    parts.append("<div class='cards'>" + "".join(
        f"<div class='card'>{html.escape(k)}<b>{v}</b></div>" for k, v in cards) + "</div>")
    parts.append("<h2>Timeline</h2>" + _img(figures["timeline"], "timeline"))

    parts.append("<h2>Hits</h2>")
    rows = [[html.escape(lab), str(n), _f(n * 60 / dur if dur > 0 else math.nan),
             _f(100 * n / max(a.n_events, 1))] for lab, n in a.counts.items()]
    rows.append(["<b>all hits</b>", str(a.n_hits), _f(a.n_hits * 60 / dur if dur > 0
                                                       else math.nan), ""])
    parts.append(_table(["instrument", "hits", "per minute", "% of events"], rows))
    parts.append("<p class='note'>A hit with two instruments at once (kick + hihat) counts "
                 "for both; 'all hits' counts distinct onsets.</p>")
    parts.append(_img(figures["counts"], "hits per minute"))
    pm = [[str(r["minute"]) + ("" if r["length_s"] >= 59.999 else f" ({r['length_s']:.0f} s)")]
          + [str(r[lab]) for lab in a.instruments] + [str(r["total"])] for r in a.per_minute]
    parts.append(_table(["minute"] + a.instruments + ["total"], pm))

    parts.append("<h2>Dynamics</h2>" + _img(figures["dynamics"], "dynamics"))
    rows = [[html.escape(lab)] + [_f(d.get(k), "{:.0f}") if k in ("min", "max", "median")
                                  else _f(d.get(k)) for k in ("mean", "median", "std", "p10",
                                                              "p90", "min", "max")]
            for lab, d in a.dynamics.items()]
    parts.append(_table(["instrument", "mean", "median", "std", "10 %", "90 %", "min", "max"],
                        rows))
    parts.append("<p class='note'>Velocity 1-127 from each hit's peak level (the MIDI "
                 "velocity the engine sends): a wide spread on a steady part is uneven "
                 "playing; ghost notes show as a low cluster.</p>")

    parts.append("<h2>Tempo and timing</h2>" + _img(figures["tempo"], "tempo and timing"))
    rows = [[f"{_mmss(s.start_s)} &ndash; {_mmss(s.end_s)}", _f(s.bpm), _f(s.window_bpm),
             str(s.hits), _f(s.offset_rms_ms), _f(s.drift_max_ms, "{:+.1f}"),
             _f(s.drift_range_ms)] for s in a.sections]
    parts.append(_table(["section", "tempo (BPM)", "window median", "hits",
                         "offset r.m.s. (ms)", "max drift (ms)", "drift range (ms)"], rows))
    rows = [[html.escape(lab), _f(st["ioi_median_ms"], "{:.0f}"), _f(st["ioi_jitter_ms"]),
             _f(st["offset_mean_ms"], "{:+.1f}"), _f(st["offset_std_ms"])]
            for lab, st in a.steadiness.items()]
    parts.append(_table(["instrument", "median IOI (ms)", "IOI jitter (ms)",
                         "mean offset (ms)", "offset spread (ms)"], rows))
    parts.append(
        "<p class='note'><b>How these are measured.</b> Tempo: in sliding "
        f"{WINDOW_S:g} s windows (every {HOP_S:g} s) the hits form a pulse train whose "
        "autocorrelation, weighted by a log-normal tempo prior (centre 120 BPM, one octave), "
        f"peaks at the beat period ({BPM_RANGE[0]:.0f}-{BPM_RANGE[1]:.0f} BPM). Windows "
        f"within {100 * TEMPO_TOL:.0f} % of each other form a section; each section gets a "
        "steady sixteenth-note grid fitted to its hits (phase coherence, then least squares), "
        "whose tempo is shown. <i>IOI jitter</i>: the spread of each interval between "
        "consecutive hits of an instrument after removing the nearest whole number of "
        "sixteenths (pauses over two beats left out). <i>Offset</i>: each hit's distance from "
        "the nearest grid line, + behind the beat, - ahead; <i>drift</i>: its running median "
        f"over {DRIFT_HITS} hits, i.e. how far the playing wandered from a steady click. "
        "Triplet and swing feels are not modelled: they show as large offsets.</p>")
    if a.latency_ms:
        L = a.latency_ms
        parts.append(f"<p class='meta'>Engine latency (onset to note): median "
                     f"{L['median']:.1f} ms, 95th percentile {L['p95']:.1f} ms, "
                     f"max {L['max']:.1f} ms.</p>")
    if m.get("stats"):
        parts.append(f"<p class='meta'>Engine counters: {html.escape(str(m['stats']))}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def build_report(session_dir: str | Path, out_dir: str | Path | None = None,
                 force: bool = False) -> Analysis:
    """Read session_dir/events.csv (+ session.json), write report.html, timeline.png and
    report.json into out_dir (default session_dir). Existing report files are refused
    unless force."""
    d = Path(session_dir)
    out = Path(out_dir) if out_dir is not None else d
    targets = [out / f for f in REPORT_FILES]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise DrumClassifierError(f"{existing[0]} exists; use --force to rebuild the report")
    ev = read_events(d / "events.csv")
    meta, duration = {}, None
    sj = d / "session.json"
    if sj.is_file():
        try:
            meta = json.loads(sj.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DrumClassifierError(f"{sj}: not valid JSON ({e})") from None
        duration = meta.get("duration_s")
    a = analyse(ev, duration, meta)
    out.mkdir(parents=True, exist_ok=True)
    figs = {"timeline": _png(timeline_figure(ev, a), out / "timeline.png"),
            "counts": _png(counts_figure(a)), "dynamics": _png(dynamics_figure(ev, a)),
            "tempo": _png(tempo_figure(ev, a))}
    (out / "report.html").write_text(render_html(a, figs), encoding="utf-8")
    (out / "report.json").write_text(json.dumps(a.to_json(), indent=1), encoding="utf-8")
    return a


# ---- CLI: drumclassifier report DIR ------------------------------------------------------
EPILOG = """examples:
  drumclassifier listen --session ~/practice/2024-05-01         # record; report at the end
  drumclassifier report ~/practice/2024-05-01 --force           # rebuild it (new settings)
  drumclassifier report ~/practice/2024-05-01 -o /tmp/rep       # somewhere else

DIR holds events.csv (time_s,label,confidence,velocity,...) and optionally session.json.
Writes report.html (self-contained: open it in any browser), timeline.png, report.json."""


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.add_argument("dir", metavar="DIR", help="session directory (holds events.csv)")
    p.add_argument("-o", "--out", metavar="OUT", help="write the report here (default: DIR)")
    p.add_argument("--force", action="store_true", help="overwrite an existing report")


def run(args) -> int:
    a = build_report(args.dir, args.out, args.force)
    out = Path(args.out or args.dir)
    print(f"{a.n_hits} hits in {a.duration_s:.1f} s; report: {out / 'report.html'}")
    return 0
