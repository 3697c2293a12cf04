"""Labels: the five classes, General MIDI drum keys and name rules.

Names are labelled with ordered regular-expression rules on a normalised name
(lower case, `_`/`-`/`.` turned into spaces, parenthesised details removed).
Ambiguous or out-of-class names are excluded first ("stick", "rim", "clap",
"roll", "cowbell", ...): a hit that is not clearly one of the five classes is
left out rather than guessed.
"""
from __future__ import annotations

import re

from . import CLASSES

# General MIDI percussion keys (channel 10) for the five classes.
GM_KEYS: dict[int, str] = {
    35: "kick", 36: "kick",
    38: "snare", 40: "snare",
    42: "hihat", 44: "hihat", 46: "hihat",
    41: "toms", 43: "toms", 45: "toms", 47: "toms", 48: "toms", 50: "toms",
    49: "cymbals", 51: "cymbals", 52: "cymbals", 53: "cymbals", 55: "cymbals",
    57: "cymbals", 59: "cymbals",
}

# Names containing any of these are left out: not one of the five classes, or
# ambiguous between them ("rim" shots and side sticks, rolls, claps ...).
EXCLUDE = re.compile(
    r"stick|\brim|rimshot|clap|\broll|cowbell|tambourine|shaker|conga|clave|clav\b|"
    r"whistle|\bzap|\bfx\b|click|agogo|maraca|bongo|cajon|woodblock|\bwood|snap|"
    r"djembe|tabla|triangle|\bloop|cabasa|guiro|timbale|vibraslap|\bperc|\bblip|"
    r"\btick|sangban|dununba|kenkeni|\bnasty|\bsample\b|\bbeats?\b|\belec bell"
)

# Ordered (label, pattern): the first match wins. Hihat before cymbals so that
# "hi-hat" and Sonic Pi's drum_cymbal_closed/open/pedal land on hihat.
RULES: list[tuple[str, re.Pattern]] = [
    ("hihat", re.compile(r"hi ?hat|\bhats?\b|(?<![tw])hat\b|\b[oc]?hh\d*\b|cymbal (closed|open|pedal)")),
    ("kick", re.compile(r"\bkick|bass ?drum|\bdrum bass\b|\bbd\b|\bbd\d|\bbassdrum")),
    ("snare", re.compile(r"\bsnare|\bsn\b|\bsn\d")),
    ("toms", re.compile(r"\btom")),
    ("cymbals", re.compile(r"crash|\bride|splash|china|cymbal|\bbell\b|\bcup\b")),
]


def normalise_name(name: str) -> str:
    """Lower-case a name, drop parenthesised details, turn separators into spaces."""
    s = re.sub(r"\([^)]*\)", " ", name.lower())
    s = re.sub(r"[_\-./\\,:]+", " ", s)
    return re.sub(r"\s+", " ", s).strip()


def label_from_name(name: str, overrides: dict[str, str | None] | None = None) -> str | None:
    """Class of a drum from its instrument or file name, or None if excluded/unknown.

    Args:
        name: instrument name ("Hi-Hat Closed (Paiste 14\")") or file stem ("kick_hard01").
        overrides: exact normalised names mapped to a class or None (hand-checked
            exceptions, e.g. rumpf's "f3 bass drum 2" which is a tom).
    """
    n = normalise_name(name)
    if overrides and n in overrides:
        return overrides[n]
    if not n or EXCLUDE.search(n):
        return None
    for label, pattern in RULES:
        if pattern.search(n):
            return label
    return None


def label_from_gm_key(key: int) -> str | None:
    """Class of a General MIDI percussion key, None for the others (side stick, claps ...)."""
    return GM_KEYS.get(int(key))


def check_label(label: str) -> str:
    """Validate a user-given class name (case-insensitive, a few plural/synonym forms)."""
    aliases = {"tom": "toms", "cymbal": "cymbals", "hihats": "hihat", "hi-hat": "hihat",
               "hat": "hihat", "kicks": "kick", "snares": "snare", "bassdrum": "kick"}
    lab = label.strip().lower()
    lab = aliases.get(lab, lab)
    if lab not in CLASSES:
        raise ValueError(f"unknown class {label!r}: expected one of {', '.join(CLASSES)}")
    return lab


# DrumSynth preset names (lmms-common samples/drumsynth/<folder>/<name>.ds): terse
# machine abbreviations. Each (pattern, replacement) runs on the normalised name
# after CamelCase and letter/digit boundaries are split ("JazzSnr" -> "jazz snr",
# "bouncy809bd" -> "bouncy 809 bd").
DRUMSYNTH_WORDS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^k\b"), "kick"), (re.compile(r"^s\b"), "snare"), (re.compile(r"^h\b"), "hat"),
    (re.compile(r"\bkik\b"), "kick"), (re.compile(r"\bsnr\b"), "snare"),
    (re.compile(r"\boh\b"), "open hh"), (re.compile(r"\bhhh\b"), "hh"),
    (re.compile(r"\bsyntom\b"), "tom"), (re.compile(r"cym"), "cymbal "),
    (re.compile(r"(kick|snare|hihat)"), r" \1 "),
]
# Folders of melodic instruments, effects, latin percussion and claps: never one of the five.
DRUMSYNTH_SKIP_FOLDERS = ("effects", "instrument", "magnetboy", "misc_fx", "misc_synth",
                          "misc_claps", "latin")


def drumsynth_name(stem: str) -> str:
    """Normalised DrumSynth preset name with its abbreviations spelled out."""
    s = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", stem)
    s = normalise_name(s)
    for pattern, repl in DRUMSYNTH_WORDS:
        s = pattern.sub(repl, s)
    return re.sub(r"\s+", " ", s).strip()


def label_from_drumsynth(folder: str, stem: str,
                         overrides: dict[str, str | None] | None = None) -> str | None:
    """Class of a DrumSynth preset from its folder and file stem, or None.

    Args:
        folder: the preset's folder under samples/drumsynth ("tr808", "misc_hats").
        stem: the file name without ".ds" ("Hat_o", "JazzSnr").
        overrides: hand-checked exceptions, keyed "folder/stem" in lower case.

    Names with both a snare and a hat ("snare&hat") or no class word are left out.
    """
    key = f"{folder}/{stem}".lower()
    if overrides and key in overrides:
        return overrides[key]
    if folder.lower() in DRUMSYNTH_SKIP_FOLDERS:
        return None
    n = drumsynth_name(stem)
    if EXCLUDE.search(n):
        return None
    found = {label for label, pattern in RULES if pattern.search(n)}
    return found.pop() if len(found) == 1 else None
