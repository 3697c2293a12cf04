"""Velocity layers of a SoundFont 2 file, read from its preset and instrument zones.

A drum key of a kit preset may play different recorded samples at different
velocities (layers). Rendering one velocity per layer covers every recording;
velocities within one layer play the same sample at another gain, which the
corpus de-duplication would drop anyway.

Only the `pdta` (preset data) chunk is read, with the SoundFont 2.04 record
layouts: phdr 38 bytes, pbag/ibag 4, pgen/igen 4, inst 22. Generators used:
41 instrument, 43 keyRange, 44 velRange, 53 sampleID. A zone without its
terminal generator (instrument / sampleID) is the global zone of its preset or
instrument; its ranges are the defaults of the other zones.
"""
from __future__ import annotations

import struct
from pathlib import Path

GEN_INSTRUMENT, GEN_KEY_RANGE, GEN_VEL_RANGE, GEN_SAMPLE_ID = 41, 43, 44, 53


def _chunks(data: bytes, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        cid = data[pos:pos + 4].decode("latin-1")
        size = struct.unpack_from("<I", data, pos + 4)[0]
        yield cid, pos + 8, size
        pos += 8 + size + (size & 1)


def _pdta(path: Path) -> dict[str, bytes]:
    data = Path(path).read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise ValueError(f"{path}: not a SoundFont 2 file")
    for cid, off, size in _chunks(data, 12, len(data)):
        if cid == "LIST" and data[off:off + 4] == b"pdta":
            return {c: data[o:o + s] for c, o, s in _chunks(data, off + 4, off + size)}
    raise ValueError(f"{path}: no pdta chunk")


def _zones(bags: bytes, gens: bytes, first: int, last: int, terminal: int) -> list[dict]:
    """Zones bags[first:last] as {generator: amount bytes}; global zone defaults merged in."""
    zones, default = [], {}
    for b in range(first, last):
        g0 = struct.unpack_from("<H", bags, 4 * b)[0]
        g1 = struct.unpack_from("<H", bags, 4 * (b + 1))[0]
        z = {}
        for g in range(g0, g1):
            oper = struct.unpack_from("<H", gens, 4 * g)[0]
            z[oper] = gens[4 * g + 2:4 * g + 4]
        if terminal not in z:
            if b == first:
                default = z
            continue
        zones.append({**default, **z})
    return zones


def _range(z: dict, gen: int) -> tuple[int, int]:
    r = z.get(gen)
    return (r[0], r[1]) if r is not None else (0, 127)


def velocity_layers(font: str | Path) -> dict[tuple[int, int], dict[int, list[tuple[int, int]]]]:
    """{(bank, preset): {key: [(lowest, highest velocity) of each layer]}} for every preset.

    A velocity layer is a maximal velocity range (1-127) over which the key
    plays the same non-empty set of samples. Keys that play nothing are absent.
    """
    p = _pdta(Path(font))
    phdr, inst = p["phdr"], p["inst"]
    n_presets, n_inst = len(phdr) // 38 - 1, len(inst) // 22 - 1
    inst_zones = []
    for i in range(n_inst):
        b0 = struct.unpack_from("<H", inst, 22 * i + 20)[0]
        b1 = struct.unpack_from("<H", inst, 22 * (i + 1) + 20)[0]
        inst_zones.append(_zones(p["ibag"], p["igen"], b0, b1, GEN_SAMPLE_ID))
    out: dict[tuple[int, int], dict[int, list[int]]] = {}
    for i in range(n_presets):
        preset, bank, b0 = struct.unpack_from("<HHH", phdr, 38 * i + 20)
        b1 = struct.unpack_from("<H", phdr, 38 * (i + 1) + 24)[0]
        # (key lo, key hi, vel lo, vel hi, sample id) of every preset x instrument zone pair
        spans = []
        for pz in _zones(p["pbag"], p["pgen"], b0, b1, GEN_INSTRUMENT):
            pk, pv = _range(pz, GEN_KEY_RANGE), _range(pz, GEN_VEL_RANGE)
            idx = struct.unpack_from("<H", pz[GEN_INSTRUMENT])[0]
            for iz in inst_zones[idx] if idx < n_inst else []:
                ik, iv = _range(iz, GEN_KEY_RANGE), _range(iz, GEN_VEL_RANGE)
                k = (max(pk[0], ik[0]), min(pk[1], ik[1]))
                v = (max(pv[0], iv[0], 1), min(pv[1], iv[1]))
                if k[0] <= k[1] and v[0] <= v[1]:
                    spans.append((*k, *v, struct.unpack_from("<H", iz[GEN_SAMPLE_ID])[0]))
        keys: dict[int, list[tuple[int, int]]] = {}
        for key in range(128):
            on = [s for s in spans if s[0] <= key <= s[1]]
            if not on:
                continue
            cuts = sorted({1, 128} | {s[2] for s in on} | {s[3] + 1 for s in on})
            layers: list[tuple[frozenset, int, int]] = []   # (samples, vel lo, vel hi)
            for lo, hi in zip(cuts[:-1], cuts[1:]):
                samples = frozenset(s[4] for s in on if s[2] <= lo and hi - 1 <= s[3])
                if layers and layers[-1][0] == samples:
                    layers[-1] = (samples, layers[-1][1], hi - 1)
                else:
                    layers.append((samples, lo, hi - 1))
            ranges = [(lo, hi) for s, lo, hi in layers if s]
            if ranges:
                keys[key] = ranges
        out[(bank, preset)] = keys
    return out


def cover_layers(velocities: list[int], layers: list[tuple[int, int]]) -> list[int]:
    """The given velocities plus the midpoint of every layer none of them falls in."""
    extra = [(lo + hi) // 2 for lo, hi in layers if not any(lo <= v <= hi for v in velocities)]
    return sorted(set(velocities) | set(extra))
