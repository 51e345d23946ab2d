"""Dagster on PostgreSQL: instance/dagster-postgres.yaml (storage in a database of Dagster's own,
the run queue, the writers' pool) with the real `dagster-daemon run`, runs launched with the
`dagster` CLI, and the warehouse on PostgreSQL too."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from messaging_assets.defs.jobs import reference_data_job
from messaging_assets.sandbox import Sandbox
from messaging_assets_tests.conftest import (
    REPO_ROOT,
    Destination,
    Warehouse,
    make_dagster_home,
    on_postgres,
    step_window,
    stop_process_group,
)

pytestmark = on_postgres

RUNS = 3
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
DAGSTER_BIN = Path(sys.executable).parent


@pytest.fixture
def dagster_database(destination: Destination, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database of Dagster's own on the test server, named in the variables the instance file
    reads; dropped afterwards."""
    server = urlsplit(str(destination.location))
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    with closing(psycopg2.connect(str(destination.location))) as connection:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
    monkeypatch.setenv("DAGSTER_POSTGRES_USER", server.username or "")
    monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", server.password or "")
    monkeypatch.setenv("DAGSTER_POSTGRES_HOST", server.hostname or "")
    monkeypatch.setenv("DAGSTER_POSTGRES_PORT", str(server.port or 5432))
    monkeypatch.setenv("DAGSTER_POSTGRES_DB", name)
    yield name
    with closing(psycopg2.connect(str(destination.location))) as connection:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def postgres_home(tmp_path: Path, dagster_database: str) -> Path:
    """A DAGSTER_HOME holding instance/dagster-postgres.yaml, its tables created by `dagster
    instance migrate`, as docs/outgrowing-one-machine.md sets it up: processes that each found an
    empty database would race to create them."""
    home = make_dagster_home(tmp_path, "dagster-postgres.yaml")
    subprocess.run(
        [DAGSTER_BIN / "dagster", "instance", "migrate"],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        check=True,
        capture_output=True,
    )
    return home


@pytest.fixture
def daemon(postgres_home: Path, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run` with the repo's workspace.yaml, stopped at the end."""
    log = (tmp_path / "daemon.log").open("w")
    process = subprocess.Popen(
        [DAGSTER_BIN / "dagster-daemon", "run", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        env={**os.environ, "DAGSTER_HOME": str(postgres_home)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        stop_process_group(process)
        log.close()


def test_three_reference_runs_launched_together_are_queued_and_load_one_after_the_other(
    sandbox: Sandbox,
    destination: Destination,
    postgres_home: Path,
    daemon: subprocess.Popen,
    tmp_path: Path,
):
    # Loads long enough that runs started together would overlap without the pool.
    sandbox.set_latency("contacts", 5)
    launch = [
        DAGSTER_BIN / "dagster", "job", "launch", "-w", "workspace.yaml",
        "--job", reference_data_job.name,
    ]  # fmt: skip
    env = {**os.environ, "DAGSTER_HOME": str(postgres_home)}
    launched = [
        subprocess.Popen(launch, cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(RUNS)
    ]
    errors = [process.communicate(timeout=300)[1] for process in launched]
    assert [process.returncode for process in launched] == [0] * RUNS, errors

    with DagsterInstance.from_config(str(postgres_home)) as instance:
        reference_runs = RunsFilter(job_name=reference_data_job.name)
        deadline = time.monotonic() + 300
        while True:
            runs = instance.get_runs(reference_runs)
            if len(runs) == RUNS and all(run.status in FINISHED for run in runs):
                break
            assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
            assert time.monotonic() < deadline, [run.status for run in runs]
            time.sleep(1)
        enqueued = {
            run.run_id
            for run in runs
            if instance.get_records_for_run(
                run.run_id, of_type=DagsterEventType.RUN_ENQUEUED
            ).records
        }
        windows = sorted(step_window(instance, run.run_id) for run in runs)

    assert [run.status for run in runs] == [DagsterRunStatus.SUCCESS] * RUNS
    assert enqueued == {run.run_id for run in runs}, "the runs did not go through the queue"
    overlapping = [(a, b) for a, b in pairwise(windows) if a[1] > b[0]]
    assert not overlapping, f"loads overlapped: {overlapping}"
    warehouse = Warehouse(destination.location)
    current = "FROM messaging.{} WHERE _dlt_valid_to IS NULL"
    for table, key, served in [
        ("contacts", "contact_id", 120),
        ("phones", "phone_number", 30),
        ("registrations", "request_id", 15),
    ]:
        found = warehouse.rows(f"SELECT count(*), count(DISTINCT {key}) {current.format(table)}")
        assert found == [(served, served)], table
    assert sandbox.count("contacts") == RUNS
