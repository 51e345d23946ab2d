"""`python -m messaging_assets.report`, the demo's last step, on DuckDB and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest

from messaging_assets.sandbox import Sandbox
from messaging_assets_tests.conftest import REPO_ROOT, Destination, both_destinations


def first_line(destination: Destination) -> str:
    """Where the report read: the DuckDB file, or the server and database, never the password."""
    if destination.name == "duckdb":
        return f"{destination.location}:"
    server_and_database = str(destination.location).split("@", 1)[1]
    return f"postgres {server_and_database}, dataset messaging:"


@pytest.mark.e2e
@both_destinations
def test_report_prints_current_and_all_rows_per_table(
    sandbox: Sandbox, run, destination: Destination
):
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

    assert printed.splitlines()[0] == first_line(destination)
    (line,) = [line.split() for line in printed.splitlines() if line.split()[:1] == ["contacts"]]
    assert line == ["contacts", "119", "120"]
