"""ADTOF (offline drum transcriber, bench-only peer) from our .venv.

`run_adtof(files)` runs bench/streams/adtof_peer.py inside .venv-adtof (bash
bench/setup_adtof.sh) in a subprocess and returns its OUT.json. ADTOF's weights are
CC BY-NC-SA: they stay in that venv, and nothing here imports the port.

`python -m bench.stream_eval STREAMS --adtof` scores its events with the same matcher as
ours. ADTOF sees the whole file (bidirectional GRU): an offline ceiling, not a live system.

Imports only the standard library.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "bench" / "streams" / "adtof_peer.py"


def run_adtof(files: list[str], python: Path = ROOT / ".venv-adtof" / "bin" / "python"
              ) -> dict | None:
    """{"version", "events": {path: [[time_s, label], ...]}, "seconds", "errors"}, or None
    (and one line on stderr) when the ADTOF venv is missing."""
    python = Path(python)
    if not python.exists():
        print(f"ADTOF skipped: {python} not found (bash bench/setup_adtof.sh)", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as d:
        jobs, out = Path(d) / "jobs.json", Path(d) / "out.json"
        jobs.write_text(json.dumps({"files": [str(f) for f in files]}))
        subprocess.run([str(python), str(PEER), str(jobs), str(out)], check=True)
        return json.loads(out.read_text())
