"""What a corpus manifest holds: per source, group and split, hits per class, kits, licence.

    drumclassifier corpus stats [--manifest data/corpus/manifest.csv] [--markdown]
"""
from __future__ import annotations

from . import CLASSES
from .splits import first_match

ABBREV = {c: c[0].upper() for c in CLASSES}   # K S H T C: column heads


def licence_of(source: str, kit: str, cfg: dict) -> str:
    """The licence of a kit from cfg["licences"] ({licence: [source/kit patterns]}), or "?"."""
    return first_match(source, kit, cfg.get("licences")) or "?"


def corpus_stats(rows: list[dict], cfg: dict) -> list[dict]:
    """One dict per (source, group, split): class counts, total, kits, licences.

    Rows are ordered by split (train, val, test), then source and group; a
    "total" row per split and an overall "total" row follow.
    """
    order = {"train": 0, "val": 1, "test": 2}
    cells: dict[tuple, dict] = {}
    for r in rows:
        key = (r["split"], r["source"], r["group"])
        c = cells.setdefault(key, {"source": r["source"], "group": r["group"], "split": r["split"],
                                   **{k: 0 for k in CLASSES}, "total": 0, "_kits": set(),
                                   "_lic": set()})
        c[r["label"]] += 1
        c["total"] += 1
        c["_kits"].add(r["kit"])
        c["_lic"].add(licence_of(r["source"], r["kit"], cfg))
    out = []

    def total(sel, split):
        t = {"source": "total", "group": "", "split": split, "total": sum(c["total"] for c in sel),
             **{k: sum(c[k] for c in sel) for k in CLASSES},
             "kits": sum(c["kits"] for c in sel), "licence": ""}
        return t

    for split in sorted({k[0] for k in cells}, key=lambda s: (order.get(s, 3), s)):
        sel = []
        for key in sorted(k for k in cells if k[0] == split):
            c = cells[key]
            c["kits"] = len(c.pop("_kits"))
            c["licence"] = ", ".join(sorted(c.pop("_lic")))
            sel.append(c)
        out += sel + [total(sel, split)]
    out.append(total([c for c in out if c["source"] != "total"], "all"))
    return out


def format_stats(stats: list[dict], markdown: bool = False) -> str:
    """The table as aligned text, or as a Markdown table (totals in bold)."""
    head = ["source", "group", "split", *[ABBREV[c] for c in CLASSES], "total", "kits", "licence"]
    body = [[s["source"], s["group"], s["split"], *[str(s[c]) for c in CLASSES], str(s["total"]),
             str(s["kits"]), s["licence"]] for s in stats]
    if markdown:
        lines = ["| " + " | ".join(head) + " |",
                 "|" + "|".join("---:" if 3 <= i <= 9 else "---" for i in range(len(head))) + "|"]
        for s, row in zip(stats, body):
            cells = [f"**{v}**" if s["source"] == "total" and v else v for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = [f"{{:<{w}}}" if i < 3 or i == len(head) - 1 else f"{{:>{w}}}" for i, w in enumerate(widths)]
    return "\n".join("  ".join(f.format(v) for f, v in zip(fmt, row)).rstrip()
                     for row in [head, *body])
