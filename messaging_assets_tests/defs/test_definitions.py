"""The code location as Dagster's UI and CLI see it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey

from messaging_assets.definitions import defs
from messaging_assets.sandbox import Sandbox
from messaging_assets_tests.conftest import REPO_ROOT, Warehouse, materialize_cli

NAMES = (
    "sms",
    "messages",
    "contacts",
    "phones",
    "registrations",
    "delivery_reports",
    "inbound_messages",
    "opt_outs",
)
SUMMARY = AssetKey(["messaging", "delivery_summary"])


def test_dlt_assets_keyed_grouped_and_kinded():
    graph = defs.resolve_asset_graph()

    assert graph.get_all_asset_keys() == {AssetKey(["messaging", n]) for n in NAMES} | {SUMMARY}
    for name in NAMES:
        node = graph.get(AssetKey(["messaging", name]))
        assert node.group_name == "messaging"
        assert node.kinds == {"dlt", "duckdb"}
        assert node.description


def test_messages_follow_sms_and_reports_opt_outs_follow_inbound_nothing_else_hangs():
    graph = defs.resolve_asset_graph()

    parents = {name: graph.get(AssetKey(["messaging", name])).parent_keys for name in NAMES}
    upstream = {AssetKey(["messaging", "sms"]), AssetKey(["messaging", "delivery_reports"])}
    assert parents == {n: set() for n in NAMES} | {
        "messages": upstream,
        "opt_outs": {AssetKey(["messaging", "inbound_messages"])},
    }
    assert graph.get(SUMMARY).parent_keys == {
        AssetKey(["messaging", "messages"]),
        AssetKey(["messaging", "opt_outs"]),
    }


@pytest.mark.e2e
def test_definitions_validate_with_the_dagster_cli():
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr


@pytest.mark.e2e
def test_loading_the_definitions_writes_nothing_where_runs_keep_their_files(tmp_path: Path):
    pipelines = tmp_path / "pipelines"
    completed = subprocess.run(
        [sys.executable, "-c", "import messaging_assets.definitions"],
        cwd=REPO_ROOT,
        env={**os.environ, "PIPELINES_DIR": str(pipelines)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    assert not pipelines.exists()


def dg(*args: str) -> subprocess.CompletedProcess:
    """`dg` as a user runs it: from the repo root, in the project's activated virtual environment
    (the one running these tests)."""
    venv = Path(sys.prefix)
    env = {
        **os.environ,
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    return subprocess.run(
        ["dg", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.e2e
def test_dg_check_defs_loads_the_project_without_an_api_key():
    completed = dg("check", "defs")

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "All definitions loaded successfully." in completed.stdout


@pytest.mark.e2e
def test_dg_list_defs_lists_the_messaging_assets():
    completed = dg("list", "defs", "--json")

    assert completed.returncode == 0, completed.stderr[-3000:]
    listed = {asset["asset_key"] for asset in json.loads(completed.stdout)["assets"]}
    assert listed == {f"messaging/{name}" for name in (*NAMES, "delivery_summary")}


@pytest.mark.e2e
def test_cli_materialize_loads_contacts_into_duckdb(sandbox: Sandbox, duckdb_path: Path):
    completed = materialize_cli("messaging/contacts", env=os.environ)

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert Warehouse(duckdb_path).scalar("SELECT count(*) FROM messaging.contacts") == 120
    assert sandbox.count("contacts") == 1
    assert sandbox.count("sms") == 0
