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

from bench import day
from messaging_assets.settings import AutomationSettings
from messaging_assets_tests.conftest import POSTGRES_DSN, REPO_ROOT


def smoke(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """`python -m bench.run --smoke --no-cli ARGS`: the figures it wrote and what it printed."""
    out = tmp_path / "bench.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--no-cli", "--out", str(out), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
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


def test_bench_loads_the_landed_reports_into_the_same_rows_as_its_floor(tmp_path: Path):
    figures, stdout = smoke(tmp_path, "--scenarios", "pushed")

    pushed = figures["pushed"]
    (floor,), (job,) = pushed["floor"]["runs"], pushed["job"]["runs"]
    # 200 landed, a few of them twice: each distinct report is stored once, by both.
    assert pushed["landed"]["reports"] == 200
    assert 180 < floor["rows"] < 200
    assert job["rows"]["delivery_reports"] == floor["rows"]
    assert job["rows"]["messages"] == pushed["landed"]["messages"]
    assert "| 200 reports into delivery_reports and messages |" in stdout


def test_bench_day_times_a_pushed_data_run_and_adds_it_to_each_reports_delay(tmp_path: Path):
    figures, stdout = smoke(tmp_path, "--scenarios", "day")

    pushed = figures["day"]["pushed"]
    run = pushed["run"]["seconds"]["median"]
    assert pushed["run_seconds"] == run > 0
    assert run <= pushed["delay_s"]["p50"] <= pushed["delay_s"]["p99"]
    assert "From a report's landing to its row in the warehouse: p50" in stdout


@pytest.mark.parametrize("run_seconds", [0.0, 12.0])
def test_a_pushed_report_is_in_the_warehouse_within_a_tick_the_queue_and_its_run(
    run_seconds: float,
):
    pushed = day.simulate_pushed(300, 7, AutomationSettings(), 0.01, run_seconds)

    bound = (day.TICK + day.DEQUEUE).total_seconds() + run_seconds
    assert run_seconds <= pushed["delay_s"]["p50"]
    assert pushed["delay_s"]["max"] <= bound
