"""`dagster dev` with the repo's dagster.yaml: what the UI shows, read back through GraphQL, and
the status sensor ticking by itself for a pending message, a run that died holding the writers'
pool notwithstanding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from messaging_assets.sandbox import Sandbox
from messaging_assets_tests.conftest import (
    REPO_ROOT,
    Warehouse,
    free_port,
    hold_the_pool,
    run_config,
    stop_process_group,
)

SEND = {"to": "+4915112345678", "from": "ACME", "message": "Your code is 1234"}
STARTUP_TIMEOUT = 120

REPOSITORY = """
{
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        schedules { name cronSchedule executionTimezone scheduleState { status } }
        sensors { name sensorState { status } }
      }
    }
  }
  assetNodes {
    assetKey { path }
    internalFreshnessPolicy {
      ... on TimeWindowFreshnessPolicy { warnWindowSeconds failWindowSeconds }
    }
    automationCondition { label }
    assetChecksOrError { ... on AssetChecks { checks { name } } }
  }
}
"""
TICKS = """
{
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes { sensors { name sensorState { ticks(limit: 20) { status runIds skipReason } } } }
    }
  }
}
"""
RUN = """query ($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""
RUNS = """{ runsOrError { ... on Runs { results { runId status } } } }"""


class DagsterDev:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, text: str, **variables: Any) -> dict[str, Any]:
        body = json.dumps({"query": text, "variables": variables}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert "errors" not in answer, answer["errors"]
        return answer["data"]


@pytest.fixture
def dagster_dev(
    sandbox: Sandbox, duckdb_path: Path, dagster_home: Path, tmp_path: Path
) -> Iterator[DagsterDev]:
    port = free_port()
    log = (tmp_path / "dagster_dev.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = DagsterDev(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert process.poll() is None, (tmp_path / "dagster_dev.log").read_text()[-3000:]
            try:
                server.query("{ version }")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "dagster dev did not answer in time"
                time.sleep(1)
        yield server
    finally:
        stop_process_group(process)
        log.close()


def wait_for(predicate, timeout: float, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"gave up after {timeout} s")


def test_dagster_dev_shows_automation_and_its_sensor_requests_a_status_run(
    sandbox: Sandbox,
    run,
    dagster_dev: DagsterDev,
    warehouse: Warehouse,
    dagster_home: Path,
    tmp_path: Path,
):
    # A CLI run killed holding the writers' pool on dagster dev's instance, before the sensors
    # have anything to do: it stays STARTED with its slot until they find its process gone.
    killed = hold_the_pool(sandbox, "contacts", dagster_home, tmp_path / "killed.log")
    killed.kill()
    killed.wait()
    sandbox.set_latency("contacts", 0)
    run("sms", config=run_config(sms=SEND))
    (sent,) = sandbox.sent

    data = dagster_dev.query(REPOSITORY)

    (repository,) = data["repositoriesOrError"]["nodes"]
    assert {
        s["name"]: (s["cronSchedule"], s["scheduleState"]["status"])
        for s in repository["schedules"]
    } == {
        "reference_data_schedule": ("0 2 * * *", "RUNNING"),
        "message_status_schedule": ("*/20 * * * *", "RUNNING"),
        "pushed_data_schedule": ("*/20 * * * *", "RUNNING"),
    }
    assert {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]} == {
        "pending_status_sensor": "RUNNING",
        "sms_sent_sensor": "RUNNING",
        "landed_files_sensor": "RUNNING",
        "messaging_automation_sensor": "RUNNING",
        "dead_writer_sensor": "RUNNING",
    }
    assets = {"/".join(a["assetKey"]["path"]): a for a in data["assetNodes"]}
    assert assets["messaging/contacts"]["internalFreshnessPolicy"] == {
        "warnWindowSeconds": 25 * 3600,
        "failWindowSeconds": 26 * 3600,
    }
    assert assets["messaging/messages"]["internalFreshnessPolicy"] == {
        "warnWindowSeconds": 1800,
        "failWindowSeconds": 3600,
    }
    assert assets["messaging/sms"]["internalFreshnessPolicy"] is None
    assert assets["messaging/phones"]["automationCondition"]["label"] == "refresh when stale"
    assert assets["messaging/sms"]["automationCondition"] is None
    assert {c["name"] for c in assets["messaging/messages"]["assetChecksOrError"]["checks"]} == {
        "primary_key_unique_not_null",
        "values_keep_their_types",
        "status_known",
        "final_within_validity",
    }

    def requesting_tick() -> dict[str, Any] | None:
        (repo,) = dagster_dev.query(TICKS)["repositoriesOrError"]["nodes"]
        (sensor,) = [s for s in repo["sensors"] if s["name"] == "pending_status_sensor"]
        ticks = [t for t in sensor["sensorState"]["ticks"] if t["runIds"]]
        return ticks[0] if ticks else None

    tick = wait_for(requesting_tick, timeout=150)
    print(f"pending_status_sensor tick for {sent['requestId']}: {tick}")
    (run_id,) = tick["runIds"]
    status = wait_for(
        lambda: (
            dagster_dev.query(RUN, id=run_id)["runOrError"]["status"] in ("SUCCESS", "FAILURE")
            and dagster_dev.query(RUN, id=run_id)["runOrError"]["status"]
        ),
        timeout=150,
    )
    assert status == "SUCCESS"
    (dead_run,) = [
        r for r in dagster_dev.query(RUNS)["runsOrError"]["results"] if r["runId"] != run_id
    ]
    assert dead_run["status"] == "FAILURE"
    # Later ticks (or the sms sensor) may have moved it on already: any real status will do.
    ((request_id, status_read),) = warehouse.rows(
        "SELECT request_id, status FROM messaging.messages"
    )
    assert request_id == sent["requestId"]
    assert status_read in (
        "ACCEPTED",
        "BUFFERED",
        "DELIVERED",
        "EXPIRED",
        "UNDELIVERABLE",
        "REJECTED",
    )
