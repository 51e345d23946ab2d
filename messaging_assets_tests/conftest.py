"""One sandbox API per test on a free port, a fresh warehouse per test (a DuckDB file, or the
PostgreSQL database in MESSAGING_TEST_POSTGRES with the project's schemas dropped), and runs
through Dagster."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
import duckdb
import psycopg2
import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    ExecuteInProcessResult,
    materialize,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation

from messaging_assets.defs.writers import TOOK
from messaging_assets.receiver import landing
from messaging_assets.receiver.readability import problem
from messaging_assets.receiver.storage import open_storage
from messaging_assets.sandbox import SHAPES, Sandbox
from messaging_assets.warehouse import sql

API_KEY = "test-key-5f1c0a"
# Longer than any test keeps a run that holds the writers' pool alive.
HOLD_SECONDS = 60
REPO_ROOT = Path(__file__).resolve().parents[1]
# Tests that start processes live here; others that do are marked `e2e` where they stand.
END_TO_END = Path(__file__).resolve().parent / "end_to_end"
# The PostgreSQL database the `postgres` tests use (a DSN); .ci/run starts a throw-away server
# with .ci/postgres and sets it. Without it those tests are skipped; with it they never are.
POSTGRES_DSN = "MESSAGING_TEST_POSTGRES"
NO_POSTGRES = f"no PostgreSQL: set {POSTGRES_DSN}, as .ci/run does (.ci/postgres make test)"
# The S3-compatible server the `s3` tests use (an endpoint URL); .ci/run starts moto's with .ci/s3
# and sets it. Without it those tests are skipped, except in CI (CI=true), where they fail.
S3_ENDPOINT = "MESSAGING_TEST_S3"
NO_S3 = f"no S3-compatible server: set {S3_ENDPOINT}, as .ci/run does (.ci/s3 make test)"
# Everything the project writes to PostgreSQL: the dataset (send journal and dlt's state
# included) and dlt's staging copy of it.
POSTGRES_SCHEMAS = ("messaging", "messaging_staging")
# The receiver's token in tests that start it.
TOKEN = secrets.token_urlsafe(32)


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


def start_materialize(*selection: str, dagster_home: Path, log: Path) -> subprocess.Popen:
    """The documented CLI in the background, on a Dagster home of the test's, its stderr (where
    Dagster logs) in `log`."""
    with open(log, "w") as stderr:
        return subprocess.Popen(
            materialize_command(*selection),
            cwd=REPO_ROOT,
            env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def hold_the_pool(sandbox: Sandbox, name: str, dagster_home: Path, log: Path) -> subprocess.Popen:
    """A CLI run of `messaging/<name>` holding the writers' pool for HOLD_SECONDS at least: its
    load step waits that long for the API's answer."""
    sandbox.set_latency(name, HOLD_SECONDS)
    asked = sandbox.count(name)
    holder = start_materialize(f"messaging/{name}", dagster_home=dagster_home, log=log)
    wait_until(
        lambda: sandbox.count(name) > asked or holder.poll() is not None, 120, f"asked for {name}"
    )
    assert holder.poll() is None, log.read_text()[-3000:]
    return holder


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a server started in its own process group (dagster dev: webserver, daemon, code
    servers) politely, then for good."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def shell_env(**settings: str) -> dict[str, str]:
    """The environment of a command typed in a shell, plus `settings`: `make` run from it is not
    a sub-make of `make test`."""
    ours = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return {**ours, **settings}


def run_to_its_end(
    command: Sequence[str], env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess:
    """Run a command from the repo root that must end by itself within `timeout` seconds: if it
    does not, stop it and all it started (its process group), and fail."""
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process_group(process)
        stdout, stderr = process.communicate()
        pytest.fail(f"{command} still ran after {timeout} s:\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def pytest_configure(config: pytest.Config) -> None:
    # dlt keeps pipeline working state under DLT_DATA_DIR (default ~/.dlt): keep tests out of it.
    os.environ["DLT_DATA_DIR"] = str(Path(config.rootpath, ".pytest_cache", "dlt").resolve())
    prefixes = (
        "SOURCES__MESSAGING__", "DESTINATION__", "RUNTIME__", "EXTRACT__", "PIPELINES_DIR",
        "MESSAGING__",
    )  # fmt: skip
    for name in [n for n in os.environ if n.startswith(prefixes) or n == "DESTINATION_TYPE"]:
        del os.environ[name]


# A test that takes one of these runs Dagster in-process: seconds each, not milliseconds.
DAGSTER_FIXTURES = frozenset({"instance", "persistent_instance"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if END_TO_END in item.path.parents:
            item.add_marker(pytest.mark.e2e)
        if DAGSTER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.dagster)
        if "postgres" in item.keywords and not os.environ.get(POSTGRES_DSN):
            item.add_marker(pytest.mark.skip(reason=NO_POSTGRES))
        if "s3" in item.keywords and not os.environ.get(S3_ENDPOINT) and not in_ci():
            item.add_marker(pytest.mark.skip(reason=NO_S3))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


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


@dataclass(frozen=True)
class Destination:
    """Where a test's runs load: `name` as DESTINATION_TYPE says it, and the DuckDB file or the
    PostgreSQL DSN."""

    name: str
    location: Path | str


DESTINATIONS = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
# Tests that prove the project on each destination it is tested on take `destination` and carry
# this mark; without it they run on DuckDB alone.
both_destinations = pytest.mark.parametrize("destination", DESTINATIONS, indirect=True)
# Tests of what only PostgreSQL has.
on_postgres = pytest.mark.parametrize("destination", DESTINATIONS[1:], indirect=True)


def drop_postgres_dataset(dsn: str) -> None:
    with closing(psycopg2.connect(dsn)) as connection, connection.cursor() as cursor:
        for schema in POSTGRES_SCHEMAS:
            cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        connection.commit()


@pytest.fixture
def destination(
    request: pytest.FixtureRequest, duckdb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Destination:
    """The project pointed at a fresh warehouse the dlt way: a DuckDB file of its own, or
    DESTINATION_TYPE=postgres with DESTINATION__POSTGRES__CREDENTIALS and the project's schemas
    dropped first."""
    name = getattr(request, "param", "duckdb")
    if name == "duckdb":
        return Destination(name, duckdb_path)
    dsn = os.environ[POSTGRES_DSN]
    drop_postgres_dataset(dsn)
    monkeypatch.setenv("DESTINATION_TYPE", "postgres")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", dsn)
    return Destination(name, dsn)


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as dagster_instance:
        yield dagster_instance


def make_dagster_home(tmp_path: Path, instance_file: str) -> Path:
    """A DAGSTER_HOME whose dagster.yaml is the repo's instance/<instance_file>, telemetry off."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "instance" / instance_file, home / "dagster.yaml")
    with open(home / "dagster.yaml", "a") as config:
        config.write("telemetry:\n  enabled: false\n")
    return home


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME holding instance/dagster.yaml, as `make dev` sets it up."""
    return make_dagster_home(tmp_path, "dagster.yaml")


@pytest.fixture
def persistent_instance(dagster_home: Path) -> Iterator[DagsterInstance]:
    """The instance `dagster dev` would use (SQLite, pools): sensors need one that persists."""
    with DagsterInstance.from_config(str(dagster_home)) as dagster_instance:
        yield dagster_instance


@pytest.fixture
def reports_pushed(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a code location loaded with SOURCES__MESSAGING__RECEIVER__PUBLIC_URL set: its
    sensors and schedules read whether reports are pushed once, when it loads."""
    from messaging_assets.defs import status_plan

    monkeypatch.setattr(status_plan, "REPORTS_PUSHED", True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def request(
    port: int,
    path: str,
    body: bytes | Iterable[bytes] = b"",
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request on a connection of its own (an iterable body goes chunked)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        connection.close()


class Receiver:
    """`python -m messaging_assets.receiver` on a free port, landing in `landing`."""

    def __init__(self, landing_dir: Path, logs: Path, **settings: str) -> None:
        self.landing = landing_dir
        self.port = free_port()
        self.logs = logs
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SOURCES__MESSAGING__")},
            "SOURCES__MESSAGING__RECEIVER__TOKEN": TOKEN,
            "SOURCES__MESSAGING__RECEIVER__LANDING_URL": str(landing_dir),
            **{f"SOURCES__MESSAGING__RECEIVER__{k.upper()}": v for k, v in settings.items()},
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> Receiver:
        logs = open(self.logs, "ab")  # noqa: SIM115 - the process writes it; closed by the OS
        self.process = subprocess.Popen(
            [sys.executable, "-m", "messaging_assets.receiver", "--port", str(self.port)],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=logs,
            stderr=logs,
        )
        logs.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.logs.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the receiver did not listen within 60 s: {self.logs.read_text()}")

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def post(self, endpoint: str, body: bytes | Iterable[bytes], token: str = TOKEN) -> Answer:
        return request(self.port, f"/{token}/{endpoint}", body)

    def events(self, endpoint: landing.Endpoint) -> list[landing.LandedEvent]:
        return list(landing.read(self.landing, endpoint))

    def stored(self) -> int:
        """Events landed so far, both endpoints."""
        return sum(len(self.events(endpoint)) for endpoint in landing.ENDPOINTS)


# PostgreSQL's names of the types dlt creates, spelled as DuckDB spells them, so that a test
# compares column types one way on either destination (numeric(p,s) becomes DECIMAL(p,s)).
POSTGRES_TYPES = {
    "character varying": "VARCHAR",
    "text": "VARCHAR",
    "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
    "timestamp without time zone": "TIMESTAMP",
    "bigint": "BIGINT",
    "double precision": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "json": "JSON",
    "jsonb": "JSON",
}


class Warehouse:
    """Reads the warehouse the way a user would, after runs have finished: the DuckDB file
    read-only (a Path), or PostgreSQL over a connection of its own (a DSN). Statements are
    written in DuckDB's dialect and translated for PostgreSQL as the project translates its own."""

    def __init__(self, location: Path | str) -> None:
        self.location = location

    @property
    def on_duckdb(self) -> bool:
        return isinstance(self.location, Path)

    def rows(self, statement: str) -> list[tuple[Any, ...]]:
        if self.on_duckdb:
            with duckdb.connect(str(self.location), read_only=True) as con:
                return con.sql(statement).fetchall()
        return self._postgres(sql.translate(statement, "postgres"))

    def _postgres(self, statement: str, write: bool = False) -> list[tuple[Any, ...]]:
        with closing(psycopg2.connect(self.location)) as con, con.cursor() as cursor:
            cursor.execute(statement)
            if write:
                con.commit()
                return []
            return cursor.fetchall()

    def execute(self, statement: str) -> None:
        """Writes by hand, as a manual fix would (a test's bad data)."""
        if self.on_duckdb:
            with duckdb.connect(str(self.location)) as con:
                con.execute(statement)
        else:
            self._postgres(sql.translate(statement, "postgres"), write=True)

    def scalar(self, statement: str) -> Any:
        return self.rows(statement)[0][0]

    def column_types(self, table: str) -> dict[str, str]:
        """Each column's type in DuckDB's spelling, in the table's column order."""
        if self.on_duckdb:
            return dict(
                self.rows(f"SELECT column_name, column_type FROM (DESCRIBE messaging.{table})")
            )
        found = self._postgres(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            f"WHERE attrelid = 'messaging.{table}'::regclass AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum"
        )
        return {name: _duckdb_spelling(kind) for name, kind in found}

    def tables(self) -> set[str]:
        statement = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'messaging'"
        )
        return {row[0] for row in self.rows(statement)}


def _duckdb_spelling(postgres_type: str) -> str:
    if postgres_type.startswith("numeric("):
        return "DECIMAL" + postgres_type.removeprefix("numeric")
    return POSTGRES_TYPES.get(postgres_type, postgres_type.upper())


@pytest.fixture
def warehouse(destination: Destination) -> Warehouse:
    return Warehouse(destination.location)


@dataclass
class Landing:
    """The receiver's landing zone in a test: files written as the receiver writes them, with
    its own helpers (names, lines, the atomic write or PUT) and its own judgement of each body.
    `root` is a folder, or a bucket URL (a PurePosixPath of the object is returned then)."""

    root: Path | str
    receiver: str = field(default_factory=landing.receiver_id)
    sequence: int = 0

    def land(
        self,
        endpoint: landing.Endpoint,
        *bodies: bytes | str | Mapping[str, Any],
        received_at: datetime | None = None,
    ) -> Path:
        """One landed file holding `bodies` (objects as JSON), received at `received_at`."""
        when = received_at or datetime.now(timezone.utc)
        lines = b""
        for body in bodies:
            if isinstance(body, Mapping):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode("utf-8")
            lines += landing.event_line(when, endpoint, body, problem(endpoint, body))
        return self.write(endpoint, lines, when)

    def write(self, endpoint: landing.Endpoint, data: bytes, when: datetime) -> Path:
        """A landed file holding `data` as it is, whatever it holds."""
        self.sequence += 1
        name = landing.file_name(when, self.receiver, self.sequence)
        open_storage(str(self.root), landing.ENDPOINTS).write(endpoint, name, data)
        if isinstance(self.root, str):
            return PurePosixPath(endpoint, name)
        return self.root / endpoint / name


@pytest.fixture
def landed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Landing:
    """A landing zone of its own, where the project reads it: the receiver's setting."""
    root = tmp_path / "landing"
    monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__LANDING_URL", str(root))
    return Landing(root)


@dataclass(frozen=True)
class Bucket:
    """A bucket of its own on the test's S3-compatible server, versioned, with the project
    pointed at it the dlt way (LANDING_URL, and the filesystem credentials with ENDPOINT_URL)."""

    name: str
    endpoint: str
    secret: str  # the test's secret access key: it must show up nowhere

    @property
    def url(self) -> str:
        return f"s3://{self.name}/landing"

    def env(self) -> dict[str, str]:
        credentials = "SOURCES__MESSAGING__FILESYSTEM__CREDENTIALS__"
        return {
            "SOURCES__MESSAGING__RECEIVER__LANDING_URL": self.url,
            f"{credentials}AWS_ACCESS_KEY_ID": "testing",
            f"{credentials}AWS_SECRET_ACCESS_KEY": self.secret,
            f"{credentials}ENDPOINT_URL": self.endpoint,
            f"{credentials}REGION_NAME": "us-east-1",
        }

    def client(self) -> Any:
        """boto3's client, for what the project never does: versions, delete markers."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key=self.secret,
            region_name="us-east-1",
        )

    def objects(self, endpoint: str) -> dict[str, datetime]:
        """Every object under the endpoint's prefix (its name) and its LastModified."""
        listed = self.client().list_objects_v2(Bucket=self.name, Prefix=f"landing/{endpoint}/")
        return {o["Key"].rsplit("/", 1)[1]: o["LastModified"] for o in listed.get("Contents", [])}

    def read(self, endpoint: landing.Endpoint) -> list[landing.LandedEvent]:
        """Every landed event of the endpoint, object by object in name order."""
        client = self.client()
        events = []
        for name in sorted(self.objects(endpoint)):
            data = client.get_object(Bucket=self.name, Key=f"landing/{endpoint}/{name}")
            lines = data["Body"].read().split(b"\n")[:-1]
            events += [landing.parse_line(line, name, n) for n, line in enumerate(lines, 1)]
        return events


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    endpoint = os.environ.get(S3_ENDPOINT)
    if not endpoint:
        pytest.fail(f"{NO_S3}; CI=true, so the s3 tests must not be skipped")
    return endpoint


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A fresh versioned bucket, the project's landing zone and credentials pointed at it."""
    made = Bucket(f"landing-{secrets.token_hex(6)}", s3_endpoint, secrets.token_urlsafe(24))
    client = made.client()
    client.create_bucket(Bucket=made.name)
    client.put_bucket_versioning(Bucket=made.name, VersioningConfiguration={"Status": "Enabled"})
    for name, value in made.env().items():
        monkeypatch.setenv(name, value)
    return made


@pytest.fixture
def bucket_landed(bucket: Bucket) -> Landing:
    """A landing zone in a bucket of its own, written as the receiver writes it there."""
    return Landing(bucket.url)


@pytest.fixture
def receiver_process(landed: Landing, tmp_path: Path) -> Iterator[Receiver]:
    """The receiver in its own process, landing where the project reads (`landed`)."""
    started = Receiver(landed.root, tmp_path / "receiver.log").start()
    yield started
    if started.process is not None and started.process.poll() is None:
        started.stop()


def run_config(sms: Mapping[str, str] | None = None, request_ids: Sequence[str] = ()) -> dict:
    ops: dict[str, Any] = {}
    if sms is not None:
        ops["messaging_sms"] = {"config": dict(sms)}
    if request_ids:
        ops["messaging_messages"] = {"config": {"request_ids": list(request_ids)}}
    return {"ops": ops}


@pytest.fixture
def run(sandbox: Sandbox, destination: Destination, instance: DagsterInstance):
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


def step_window(instance: DagsterInstance, run_id: str) -> tuple[float, float]:
    """When the run's load step held the writers' pool: from its start, or from when it took the
    pool after waiting for it, to its success."""
    records = [
        record
        for record in instance.get_records_for_run(run_id).records
        if record.event_log_entry.step_key == "messaging_reference"
    ]
    times = {
        record.event_log_entry.dagster_event_type: record.timestamp
        for record in records
        if record.event_log_entry.dagster_event_type
        in {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS}
    }
    took = [r.timestamp for r in records if r.event_log_entry.user_message.startswith(TOOK)]
    return max([times[DagsterEventType.STEP_START], *took]), times[DagsterEventType.STEP_SUCCESS]


def check(result: ExecuteInProcessResult, table: str, name: str) -> AssetCheckEvaluation:
    """The evaluation of check `name` of `messaging/<table>` in this run."""
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key == AssetKey(["messaging", table]) and e.check_name == name
    ]
    return evaluation


def check_metadata(evaluation: AssetCheckEvaluation) -> dict:
    return {key: value.value for key, value in evaluation.metadata.items()}
