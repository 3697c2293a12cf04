"""The ADTOF bench peer's plumbing, without ADTOF (its weights are CC BY-NC-SA
and live only in .venv-adtof, which tests never need)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from bench.adtof import ROOT, run_adtof


def test_missing_venv_is_skipped(capsys):
    assert run_adtof(["x.flac"], python=Path("/nonexistent/bin/python")) is None
    assert "setup_adtof.sh" in capsys.readouterr().err


def test_peer_reports_every_file_when_the_port_is_absent(tmp_path):
    """Our .venv has torch but not the port: OUT.json is still written, one error a file."""
    if importlib.util.find_spec("adtof_pytorch") is not None:
        pytest.skip("the port is installed in this venv")
    files = [str(tmp_path / "a.flac"), str(tmp_path / "b.flac")]
    res = run_adtof(files, python=Path(sys.executable))
    assert set(res) == {"version", "events", "seconds", "errors"}
    assert set(res["errors"]) == set(files) and res["events"] == {}
    assert all("adtof_pytorch" in m for m in res["errors"].values())


def test_nothing_shipped_imports_adtof():
    """Licence guard: ADTOF is a bench peer, never a dependency of what we ship."""
    for d in ("drumclassifier", "realtime"):
        for p in (ROOT / d).rglob("*.py"):
            assert "adtof" not in p.read_text().lower(), p
