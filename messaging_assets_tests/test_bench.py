"""`make bench` in a tiny mode: it runs end to end and writes the figures it promises.

No timing is asserted here: performance is judged by the benchmark's own output, not by tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from messaging_assets_tests.conftest import REPO_ROOT


def test_bench_smoke_writes_the_figures(tmp_path: Path):
    out = tmp_path / "bench.json"
    args = ["--smoke", "--no-cli", "--scenarios", "contacts,refresh", "--out", str(out)]
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert {"machine", "config", "contacts", "refresh", "table"} <= figures.keys()
    for phase in ("first", "rerun"):
        entry = figures["contacts"][phase]
        assert entry["floor"]["runs"][0]["rows"] == 500
        assert entry["in_process"]["runs"][0]["rows"] == 500
        assert {"median", "min", "max"} <= entry["in_process"]["ratio"].keys()
        assert entry["in_process"]["rss_mb"]["median"] > 0
    assert figures["refresh"]["in_process"]["lookups_per_s"]["median"] > 0
    assert "| contacts first load |" in completed.stdout
