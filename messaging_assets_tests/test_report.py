"""`python -m messaging_assets.report`, the demo's last step."""

from __future__ import annotations

import subprocess
import sys

from messaging_assets.sandbox import Sandbox
from messaging_assets_tests.conftest import REPO_ROOT


def test_report_prints_current_and_all_rows_per_table(sandbox: Sandbox, run, duckdb_path):
    run("contacts")
    sandbox.remove_contact("c-000001")
    run("contacts")

    printed = subprocess.run(
        [sys.executable, "-m", "messaging_assets.report"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert str(duckdb_path) in printed
    assert "contacts" in printed
    (line,) = [line.split() for line in printed.splitlines() if line.split()[:1] == ["contacts"]]
    assert line == ["contacts", "119", "120"]
