"""A preallocated single-producer single-consumer ring buffer of audio frames.

The writer is the audio callback (or a file reader standing in for one). It never
allocates buffers, never takes a lock and never waits: it copies into preallocated
memory and then publishes the new write count. Under CPython every attribute store
is atomic and ordered, so the reader sees the samples before it sees the count.

When the buffer is full the writer keeps what fits and drops the rest of its block;
that is an overflow, counted in frames and in events, and the gap is recorded (in
preallocated arrays) so the reader learns exactly where stream time jumped.

The writer also stamps each block with its end position in the stream and the
wall-clock time it arrived; latency is measured from these stamps.
"""
from __future__ import annotations

import time

import numpy as np


class RingBuffer:
    """Frames [capacity, channels] float32.

    Writer side: write(block). Reader side: read_into(out), arrival_time(), block_end().
    Counters (writer-owned, read anywhere): overflow_frames, overflow_events, frames_written.
    """

    def __init__(self, capacity_frames: int, channels: int, n_stamps: int = 8192,
                 n_gaps: int = 1024):
        self.capacity = int(capacity_frames)
        self.channels = int(channels)
        self._buf = np.zeros((self.capacity, self.channels), np.float32)
        # writer-owned
        self._w = 0                    # frames stored, ever
        self._stream_w = 0             # frames delivered, ever (stored + dropped): the stream clock
        self.overflow_frames = 0
        self.overflow_events = 0
        self._gap_at = np.zeros(n_gaps, np.int64)    # ring position (frames stored before the gap)
        self._gap_len = np.zeros(n_gaps, np.int64)
        self._n_gaps = 0
        self._stamp_end = np.zeros(n_stamps, np.int64)   # stream position after each block
        self._stamp_t = np.zeros(n_stamps, np.float64)   # time.perf_counter() when it arrived
        self._n_stamps = 0
        # reader-owned
        self._r = 0                    # frames read, ever
        self._stream_r = 0             # stream position of the next frame to read
        self._gaps_seen = 0

    # ---- writer ----------------------------------------------------------------------
    def write(self, block: np.ndarray, now: float | None = None) -> int:
        """Copy a [frames, channels] block in (float32, or int16 scaled by 1/32768).

        Returns the frames stored; the rest (if the buffer was full) is counted as overflow.
        """
        n_in = block.shape[0]
        free = self.capacity - (self._w - self._r)
        n = min(n_in, free)
        if n:
            start = self._w % self.capacity
            first = min(n, self.capacity - start)
            self._copy(block[:first], self._buf[start:start + first])
            if n > first:
                self._copy(block[first:n], self._buf[:n - first])
        if n < n_in:
            k = self._n_gaps % len(self._gap_at)
            self._gap_at[k] = self._w + n
            self._gap_len[k] = n_in - n
            self._n_gaps += 1
            self.overflow_frames += n_in - n
            self.overflow_events += 1
        self._stream_w += n_in
        k = self._n_stamps % len(self._stamp_end)
        self._stamp_end[k] = self._stream_w
        self._stamp_t[k] = time.perf_counter() if now is None else now
        self._n_stamps += 1
        self._w += n  # publish last
        return n

    @staticmethod
    def _copy(src: np.ndarray, dst: np.ndarray) -> None:
        if src.dtype == np.int16:
            np.multiply(src, np.float32(1 / 32768), out=dst, casting="unsafe")
        else:
            np.copyto(dst, src, casting="unsafe")

    # ---- reader ----------------------------------------------------------------------
    @property
    def available(self) -> int:
        return self._w - self._r

    @property
    def free(self) -> int:
        return self.capacity - (self._w - self._r)

    @property
    def frames_written(self) -> int:
        return self._stream_w

    def read_into(self, out: np.ndarray) -> tuple[int, int, int]:
        """Copy up to len(out) contiguous frames into out [n, channels].

        Returns (n, stream_start, gap): n frames read, the stream position of out[0], and
        the frames lost to overflow just before out[0] (0 normally). A read never spans
        a gap, so out[:n] is always contiguous stream audio.
        """
        gap = 0
        w = self._w
        n = min(len(out), w - self._r)
        while self._gaps_seen < self._n_gaps:
            k = self._gaps_seen % len(self._gap_at)
            at = int(self._gap_at[k])
            if at > self._r:
                n = min(n, at - self._r)
                break
            gap += int(self._gap_len[k])
            self._gaps_seen += 1
        self._stream_r += gap
        stream_start = self._stream_r
        if n > 0:
            start = self._r % self.capacity
            first = min(n, self.capacity - start)
            out[:first] = self._buf[start:start + first]
            if n > first:
                out[first:n] = self._buf[:n - first]
            self._r += n
            self._stream_r += n
        return max(n, 0), stream_start, gap

    def _stamp_index(self, sample: int) -> int | None:
        """Index (ever) of the first block whose end is past `sample`, among kept stamps."""
        hi = self._n_stamps
        lo = max(0, hi - len(self._stamp_end) + 1)   # the oldest may be being overwritten
        if hi <= lo:
            return None
        m = len(self._stamp_end)
        if self._stamp_end[(hi - 1) % m] <= sample:
            return None
        while lo < hi:                               # binary search on the monotone ends
            mid = (lo + hi) // 2
            if self._stamp_end[mid % m] > sample:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def block_end(self, sample: int) -> int:
        """Stream position at the end of the block that delivered `sample`."""
        i = self._stamp_index(sample)
        return int(self._stamp_end[i % len(self._stamp_end)]) if i is not None else sample + 1

    def arrival_time(self, sample: int) -> float | None:
        """Wall time (perf_counter) at which `sample` was at the input, from its block's stamp.

        The block arrived when complete, so its samples were captured earlier by
        (block end - sample) / rate; the caller applies that, as only it knows the rate.
        """
        i = self._stamp_index(sample)
        return float(self._stamp_t[i % len(self._stamp_t)]) if i is not None else None
