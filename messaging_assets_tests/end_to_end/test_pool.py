"""One writer for DuckDB: every step that opens the file shares a pool limited to one slot."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.instance.config import PoolGranularity

from messaging_assets.definitions import defs
from messaging_assets.sandbox import Sandbox
from messaging_assets.warehouse.connection import WRITER_POOL
from messaging_assets_tests.conftest import REPO_ROOT, Warehouse, materialize_command, step_window


def test_every_step_that_opens_duckdb_is_in_the_pool():
    job = defs.resolve_implicit_global_asset_job_def()

    assert {
        node.definition.name: node.definition.pool for node in job.nodes_in_topological_order
    } == {
        "messaging_sms": WRITER_POOL,
        "messaging_messages": WRITER_POOL,
        "messaging_reference": WRITER_POOL,
        "messaging_pushed": WRITER_POOL,
        "messaging_checks": WRITER_POOL,
        "messaging__delivery_summary": WRITER_POOL,
        "messaging__delivery_summary_delivery_rate_is_a_share": WRITER_POOL,
        "messaging__delivery_summary_no_negative_durations": WRITER_POOL,
    }


def test_dagster_yaml_limits_pools_to_one_slot_per_step_and_frees_dead_runs_slots(
    persistent_instance: DagsterInstance,
):
    pools = persistent_instance.get_concurrency_config().pool_config

    assert (pools.default_pool_limit, pools.pool_granularity) == (1, PoolGranularity.OP)
    assert persistent_instance.run_monitoring_enabled
    assert persistent_instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0


def test_two_runs_launched_together_both_succeed_one_after_the_other(
    sandbox: Sandbox, duckdb_path: Path, dagster_home: Path, persistent_instance: DagsterInstance
):
    # The pool as it is once any run has used it. Two processes that use a pool for the very first
    # time at the same moment can each create a slot in SQLite storage (Dagster counts the slots,
    # then inserts, outside one transaction); the lock file next to DuckDB still orders them.
    persistent_instance.event_log_storage.set_concurrency_slots(WRITER_POOL, 1)
    command = materialize_command("messaging/contacts")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    launched = [
        subprocess.Popen(command, cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errors = [process.communicate(timeout=300)[1] for process in launched]

    assert [process.returncode for process in launched] == [0, 0], (
        errors[0][-2000:] + errors[1][-2000:]
    )
    runs = persistent_instance.get_runs()
    assert [run.status for run in runs] == [DagsterRunStatus.SUCCESS] * 2
    windows = sorted(step_window(persistent_instance, run.run_id) for run in runs)
    assert windows[0][1] <= windows[1][0], "the two loads overlapped"
    assert Warehouse(duckdb_path).scalar("SELECT count(*) FROM messaging.contacts") == 120
