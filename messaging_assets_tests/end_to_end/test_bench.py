"""`make bench` in a tiny mode: it runs end to end and writes the figures it promises.

No timing is asserted here: performance is judged by the benchmark's own output, not by tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from messaging_assets_tests.conftest import POSTGRES_DSN, REPO_ROOT


def smoke(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """`python -m bench.run --smoke --no-cli ARGS`: the figures it wrote and what it printed."""
    out = tmp_path / "bench.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--no-cli", "--out", str(out), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(out.read_text()), completed.stdout


def test_bench_smoke_writes_the_figures(tmp_path: Path):
    figures, stdout = smoke(tmp_path, "--scenarios", "contacts,refresh")

    assert {"machine", "config", "contacts", "refresh", "table"} <= figures.keys()
    for phase in ("first", "rerun"):
        entry = figures["contacts"][phase]
        assert entry["floor"]["runs"][0]["rows"] == 500
        assert entry["in_process"]["runs"][0]["rows"] == 500
        assert {"median", "min", "max"} <= entry["in_process"]["ratio"].keys()
        assert entry["in_process"]["rss_mb"]["median"] > 0
    assert figures["refresh"]["in_process"]["lookups_per_s"]["median"] > 0
    assert "| contacts first load |" in stdout


@pytest.mark.postgres
def test_bench_loads_the_contacts_on_postgres_next_to_duckdb(tmp_path: Path):
    figures, stdout = smoke(
        tmp_path, "--scenarios", "postgres", "--postgres", os.environ[POSTGRES_DSN]
    )

    for phase in ("first", "rerun"):
        entry = figures["postgres"][phase]
        assert entry["duckdb"]["runs"][0]["rows"] == 500
        assert entry["postgres"]["runs"][0]["rows"] == 500
        assert entry["postgres"]["ratio"]["median"] > 0
    assert "| contacts re-run |" in stdout
    assert figures["postgres"]["server"].startswith("PostgreSQL ")


def test_bench_without_postgres_says_it_skipped_that_scenario(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(POSTGRES_DSN, raising=False)

    figures, stdout = smoke(tmp_path, "--scenarios", "postgres")

    assert "PostgreSQL: skipped (no database: pass --postgres or MESSAGING_TEST_POSTGRES)" in stdout
    assert "duckdb" not in figures["postgres"]
