"""One writer at a time: every step that writes the warehouse takes the one slot of the writers'
pool, waits for it asleep, and never waits for a run whose process died."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml
from dagster import AssetKey, DagsterInstance, DagsterRun, DagsterRunStatus, materialize
from dagster._core.instance.config import PoolGranularity

from messaging_assets.definitions import defs
from messaging_assets.defs.writers import (
    MISCONFIGURED,
    SEEN_TAG,
    WORKER_TAG,
    WRITER_POOL,
    pool_limited,
)
from messaging_assets.sandbox import Sandbox
from messaging_assets_tests.conftest import (
    REPO_ROOT,
    Warehouse,
    cpu_seconds,
    hold_the_pool,
    make_dagster_home,
    materialize_command,
    start_materialize,
    step_window,
    wait_until,
)

# From a kill to the next CLI run's end, start-up and a 120-contact load included (7 s when idle).
NEXT_RUN_SECONDS = 60


def test_every_step_that_opens_duckdb_is_in_the_pool():
    job = defs.resolve_implicit_global_asset_job_def()
    steps = {node.definition.name: node.definition for node in job.nodes_in_topological_order}

    assert {name: step.pool for name, step in steps.items()} == {
        "messaging_sms": WRITER_POOL,
        "messaging_messages": WRITER_POOL,
        "messaging_reference": WRITER_POOL,
        "messaging_pushed": WRITER_POOL,
        "messaging_opt_outs": WRITER_POOL,
        "messaging_checks": WRITER_POOL,
        "messaging__delivery_summary": WRITER_POOL,
        "messaging__delivery_summary_delivery_rate_is_a_share": WRITER_POOL,
        "messaging__delivery_summary_no_negative_durations": WRITER_POOL,
    }
    # The resource through which each takes the pool's slot itself: `writers`, or the dlt
    # resource, which holds the same pool.
    assert all({"writers", "dlt"} & step.required_resource_keys for step in steps.values())
    assert defs.resources["dlt"].writers is defs.resources["writers"]


def test_instance_files_limit_the_pool_to_one_slot_per_run_and_free_dead_runs_slots(
    persistent_instance: DagsterInstance,
):
    pools = persistent_instance.get_concurrency_config().pool_config
    on_postgres = yaml.safe_load((REPO_ROOT / "instance" / "dagster-postgres.yaml").read_text())

    assert (pools.default_pool_limit, pools.pool_granularity) == (1, PoolGranularity.RUN)
    assert on_postgres["concurrency"] == {"pools": {"granularity": "run", "default_limit": 1}}
    assert persistent_instance.run_monitoring_enabled
    assert persistent_instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0


def test_an_instance_that_enforces_pools_per_step_is_named_in_a_warning(
    sandbox: Sandbox, duckdb_path: Path, tmp_path: Path
):
    home = make_dagster_home(tmp_path, "dagster.yaml")
    config = home / "dagster.yaml"
    config.write_text(config.read_text().replace("granularity: run", "granularity: op"))

    with DagsterInstance.from_config(str(home)) as instance:
        result = materialize(
            [*(defs.assets or ()), *(defs.asset_checks or ())],
            selection=[AssetKey(["messaging", "phones"])],
            resources=dict(defs.resources or {}),
            instance=instance,
        )
        said = [entry.user_message for entry in instance.all_logs(result.run_id)]

    assert result.success
    assert MISCONFIGURED in said


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


def test_the_next_run_proceeds_after_a_run_killed_holding_the_pool(
    sandbox: Sandbox,
    duckdb_path: Path,
    dagster_home: Path,
    persistent_instance: DagsterInstance,
    tmp_path: Path,
):
    holder = hold_the_pool(sandbox, "contacts", dagster_home, tmp_path / "killed.log")
    holder.kill()
    holder.wait()
    killed = time.monotonic()
    sandbox.set_latency("contacts", 0)

    after = subprocess.run(
        materialize_command("messaging/contacts"),
        cwd=REPO_ROOT,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
        capture_output=True,
        text=True,
        timeout=NEXT_RUN_SECONDS,
    )

    took = time.monotonic() - killed
    assert after.returncode == 0, after.stderr[-3000:]
    latest, dead = persistent_instance.get_runs()
    assert (latest.status, dead.status) == (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)
    assert f"Run {dead.run_id}: its process {holder.pid} on" in after.stderr
    assert "freed its writers' pool slot and marked it failed" in after.stderr
    assert not persistent_instance.event_log_storage.get_concurrency_info(WRITER_POOL).claimed_slots
    assert Warehouse(duckdb_path).scalar("SELECT count(*) FROM messaging.contacts") == 120
    assert took < NEXT_RUN_SECONDS


def test_a_step_waiting_for_a_live_run_sleeps_stops_on_sigterm_and_sigint_and_cannot_free_it(
    sandbox: Sandbox,
    duckdb_path: Path,
    dagster_home: Path,
    persistent_instance: DagsterInstance,
    tmp_path: Path,
):
    holder = hold_the_pool(sandbox, "contacts", dagster_home, tmp_path / "holder.log")
    logs = {sig: tmp_path / f"waiting-{sig.name}.log" for sig in (signal.SIGTERM, signal.SIGINT)}
    waiting = {
        sig: start_materialize("messaging/contacts", dagster_home=dagster_home, log=log)
        for sig, log in logs.items()
    }
    try:
        for log in logs.values():
            # Dagster's own wait says "blocked by limit"; this project's step says it waits.
            wait_until(
                lambda log=log: any(
                    said in log.read_text()
                    for said in ("Waiting for the writers' pool", "blocked by limit")
                ),
                60,
                f"{log.name} waits for the pool",
            )
        before = {sig: cpu_seconds(process.pid) for sig, process in waiting.items()}
        time.sleep(3)
        used = {sig: cpu_seconds(process.pid) - before[sig] for sig, process in waiting.items()}
        stopped = {}
        for sig, process in waiting.items():
            sent = time.monotonic()
            process.send_signal(sig)
            try:
                process.wait(timeout=10)
                stopped[sig] = time.monotonic() - sent
            except subprocess.TimeoutExpired:
                stopped[sig] = None
        held = persistent_instance.get_runs()[-1].run_id
        refused = subprocess.run(
            [sys.executable, "-m", "messaging_assets.defs.writers", "free", held],
            env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        for process in [*waiting.values(), holder]:
            process.kill()
            process.wait()

    assert all(seconds < 0.3 for seconds in used.values()), used
    assert all(seconds is not None and seconds < 5 for seconds in stopped.values()), stopped
    assert all(process.returncode != 0 for process in waiting.values())
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"Not freed: the run {held} (process {holder.pid} on ")
    # They left the queue: only the holder, killed at the end, is still in the pool.
    pool = persistent_instance.event_log_storage.get_concurrency_info(WRITER_POOL)
    assert {slot.run_id for slot in pool.claimed_slots} | pool.pending_run_ids == {held}
    worker = json.loads(persistent_instance.get_run_by_id(held).tags[WORKER_TAG])
    assert worker["pid"] == holder.pid


def test_a_run_silent_on_another_machine_fails_the_next_run_with_one_line_that_frees_it(
    sandbox: Sandbox, duckdb_path: Path, dagster_home: Path, persistent_instance: DagsterInstance
):
    # What a run on another machine leaves when that machine is lost: its worker and heartbeat
    # tags, older than a minute, and the pool's slot.
    silent = str(uuid.uuid4())
    worker = {"run": silent, "machine": "another-boot-id", "host": "lost-box", "pid": 4242}
    persistent_instance.add_run(
        DagsterRun(
            job_name="__ASSET_JOB",
            run_id=silent,
            status=DagsterRunStatus.STARTED,
            tags={WORKER_TAG: json.dumps(worker), SEEN_TAG: str(time.time() - 120)},
        )
    )
    assert pool_limited(persistent_instance)
    storage = persistent_instance.event_log_storage
    assert storage.claim_concurrency_slot(WRITER_POOL, silent, "messaging_reference").is_claimed
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    command = materialize_command("messaging/contacts")

    failed = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=NEXT_RUN_SECONDS
    )

    assert failed.returncode != 0
    said = {
        line for line in failed.stderr.splitlines() if "cannot tell whether it is alive" in line
    }
    (line,) = {line[line.index("The run") :] for line in said}
    assert re.match(
        rf"The run {silent} \(process 4242 on lost-box, last heard from \d+ s ago\)", line
    )
    free = line.split("free the pool with: ")[1]
    assert free == (
        f"DAGSTER_HOME={dagster_home} {sys.executable} "
        f"-m messaging_assets.defs.writers free {silent}"
    )
    assert sandbox.count("contacts") == 0

    freed = subprocess.run(free, shell=True, capture_output=True, text=True, timeout=60)
    assert freed.returncode == 0, freed.stderr
    assert persistent_instance.get_run_by_id(silent).status == DagsterRunStatus.FAILURE
    pool = storage.get_concurrency_info(WRITER_POOL)
    assert (pool.claimed_slots, pool.pending_steps) == ([], [])
