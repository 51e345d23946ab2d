"""One sandbox API per test on a free port, one DuckDB file per test, and runs through Dagster."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, ExecuteInProcessResult, materialize

from messaging_assets.sandbox import SHAPES, Sandbox

API_KEY = "test-key-5f1c0a"
REPO_ROOT = Path(__file__).resolve().parents[1]


def materialize_command(*selection: str) -> list[str]:
    """The documented CLI, as a user runs it from the repo root."""
    return [
        sys.executable, "-m", "dagster", "asset", "materialize",
        "-m", "messaging_assets.definitions", "--select", ",".join(selection),
    ]  # fmt: skip


def materialize_cli(*selection: str, env: Mapping[str, str]) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as dagster_home:
        return subprocess.run(
            materialize_command(*selection),
            cwd=REPO_ROOT,
            # Without DAGSTER_HOME the CLI leaves a .tmp_dagster_home_* folder in the repo root.
            env={"DAGSTER_HOME": dagster_home, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a server started in its own process group (dagster dev: webserver, daemon, code
    servers) politely, then for good."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def pytest_configure(config: pytest.Config) -> None:
    # dlt keeps pipeline working state under DLT_DATA_DIR (default ~/.dlt): keep tests out of it.
    os.environ["DLT_DATA_DIR"] = str(Path(config.rootpath, ".pytest_cache", "dlt").resolve())
    prefixes = (
        "SOURCES__MESSAGING__", "DESTINATION__", "RUNTIME__", "EXTRACT__", "PIPELINES_DIR",
        "MESSAGING__",
    )  # fmt: skip
    for name in [n for n in os.environ if n.startswith(prefixes)]:
        del os.environ[name]


def point_at(api: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the project at a sandbox, as a user points it at an account."""
    monkeypatch.setenv("SOURCES__MESSAGING__BASE_URL", api.url)
    monkeypatch.setenv("SOURCES__MESSAGING__API_KEY", API_KEY)
    monkeypatch.setenv("SOURCES__MESSAGING__API_SHAPE", api.shape)


# Tests that hold in both API shapes use the sandbox as `both_shapes` marks them.
both_shapes = pytest.mark.parametrize("sandbox", SHAPES, indirect=True)


@pytest.fixture
def sandbox(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """The sandbox in the neutral shape, or in the shape a test is parametrized with, and the
    project pointed at it the way a user would: base URL, key and API shape."""
    shape = getattr(request, "param", "data")
    with Sandbox(api_key=API_KEY, shape=shape, contacts=120, phones=30, registrations=15) as api:
        point_at(api, monkeypatch)
        # Retries as in production, only faster: backoff of 0.1 s, 0.2 s, ...
        monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0.1")
        yield api


@pytest.fixture
def duckdb_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(path))
    # dlt's working state belongs with its DuckDB file: a run interrupted in one test must not
    # be finished into another test's file.
    monkeypatch.setenv("PIPELINES_DIR", str(tmp_path / "pipelines"))
    return path


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as dagster_instance:
        yield dagster_instance


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME holding instance/dagster.yaml, as `make dev` sets it up."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "instance" / "dagster.yaml", home / "dagster.yaml")
    with open(home / "dagster.yaml", "a") as config:
        config.write("telemetry:\n  enabled: false\n")
    return home


@pytest.fixture
def persistent_instance(dagster_home: Path) -> Iterator[DagsterInstance]:
    """The instance `dagster dev` would use (SQLite, pools): sensors need one that persists."""
    with DagsterInstance.from_config(str(dagster_home)) as dagster_instance:
        yield dagster_instance


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Warehouse:
    """Reads the DuckDB file the way a user would, read-only, after runs have finished."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.sql(sql).fetchall()

    def scalar(self, sql: str) -> Any:
        return self.rows(sql)[0][0]

    def column_types(self, table: str) -> dict[str, str]:
        return dict(self.rows(f"SELECT column_name, column_type FROM (DESCRIBE messaging.{table})"))

    def tables(self) -> set[str]:
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'messaging'"
        return {row[0] for row in self.rows(sql)}


@pytest.fixture
def warehouse(duckdb_path: Path) -> Warehouse:
    return Warehouse(duckdb_path)


def run_config(sms: Mapping[str, str] | None = None, request_ids: Sequence[str] = ()) -> dict:
    ops: dict[str, Any] = {}
    if sms is not None:
        ops["messaging_sms"] = {"config": dict(sms)}
    if request_ids:
        ops["messaging_messages"] = {"config": {"request_ids": list(request_ids)}}
    return {"ops": ops}


@pytest.fixture
def run(sandbox: Sandbox, duckdb_path: Path, instance: DagsterInstance):
    """Materializes `messaging/<name>` assets in-process through Dagster, as the UI would, with
    their asset checks."""
    from messaging_assets.definitions import defs

    def _run(
        *names: str, raise_on_error: bool = True, config: Mapping[str, Any] | None = None
    ) -> ExecuteInProcessResult:
        return materialize(
            [*(defs.assets or ()), *(defs.asset_checks or ())],
            selection=[AssetKey(["messaging", name]) for name in names],
            resources=dict(defs.resources or {}),
            instance=instance,
            run_config=dict(config or {}),
            raise_on_error=raise_on_error,
        )

    return _run


def failure_text(result: ExecuteInProcessResult) -> str:
    """The error a failed in-process run shows for its failed step."""
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    return str(failure.step_failure_data.error)


def metadata_of(result: ExecuteInProcessResult, name: str) -> dict[str, Any]:
    """The materialization metadata `messaging/<name>` showed for this run."""
    (event,) = [
        event.materialization
        for event in result.get_asset_materialization_events()
        if event.asset_key == AssetKey(["messaging", name])
    ]
    return {key: value.value for key, value in event.metadata.items()}
