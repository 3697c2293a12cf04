"""Kit groups and splits: by group, never by file.

A group is a set of kits that share recordings (velocity layers or copies of one recording). Kits that
no configured group names are their own group, named "<source>/<kit>". Whole
groups go to `test` (held out: never used for training or model selection),
`val` or `train`.
"""
from __future__ import annotations

import re


def first_match(source: str, kit: str, table: dict) -> str | None:
    """The first name of `table` ({name: [patterns]}) one of whose patterns
    fully matches "<source>/<kit>" (case-insensitive), else None."""
    key = f"{source}/{kit}"
    for name, patterns in (table or {}).items():
        for pat in patterns:
            if re.fullmatch(pat, key, flags=re.IGNORECASE):
                return name
    return None


def group_of(source: str, kit: str, cfg: dict) -> str:
    """The group of a kit: the first configured group matching "<source>/<kit>",
    else "<source>/<kit>" itself."""
    return first_match(source, kit, cfg.get("groups")) or f"{source}/{kit}"


def assign_splits(rows: list[dict], cfg: dict) -> list[dict]:
    """Set `group` (if empty) and `split` on each row, in place; returns rows.

    cfg["splits"] = {"test": [groups], "val": [groups]}; everything else is
    train. User data (source "user") goes to cfg["user_split"] (default train)
    unless its group is listed. A group listed in two splits is an error.
    """
    splits = cfg.get("splits") or {}
    test, val = set(splits.get("test") or []), set(splits.get("val") or [])
    both = test & val
    if both:
        raise ValueError(f"groups listed in both test and val: {sorted(both)}")
    for r in rows:
        if not r.get("group"):
            r["group"] = group_of(r["source"], r["kit"], cfg)
        g = r["group"]
        if g in test:
            r["split"] = "test"
        elif g in val:
            r["split"] = "val"
        elif r["source"] == "user":
            r["split"] = cfg.get("user_split", "train")
        else:
            r["split"] = "train"
    return rows


def check_no_leak(rows: list[dict]) -> None:
    """Raise if any group appears in more than one split."""
    where: dict[str, set] = {}
    for r in rows:
        where.setdefault(r["group"], set()).add(r["split"])
    bad = {g: s for g, s in where.items() if len(s) > 1}
    if bad:
        raise AssertionError(f"groups in several splits: {bad}")
