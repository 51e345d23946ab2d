"""The writers' pool: taken by the steps that write, and never kept by a run whose process died.

Why the steps take their slot themselves: with pools enforced per step (granularity `op`),
Dagster's in-process executor waits for a slot in a loop that never sleeps and never looks at
SIGTERM or SIGINT (dagster 1.13: `interval_to_next_pending_claim_check` returns at most 0, and
the in-process step loop checks no interrupt), so a run waiting behind another burns a core
until its turn, and only SIGKILL stops it. With granularity `run` (instance/dagster.yaml),
Dagster's queue starts one run of the pool at a time and claims nothing inside a run; each step
that writes claims its slot here, through the instance's concurrency storage, in a wait that
sleeps and ends on a signal like the rest of the step.

Why a dead run's slot is freed here: a CLI run (`dagster asset materialize`) has no run launcher
watching it, so a SIGKILL leaves it STARTED with its slot for ever; run monitoring frees the
slots of finished runs only, and fails only runs whose launcher can check their worker, which
Dagster's default launcher cannot. So each run, for its whole length, holds an exclusive `flock`
on a file of its own and says in its tags on which machine (boot id), in which process and with
which file; the kernel lets go of the lock when the process dies, however it dies. A waiting step
and the sensors free the slots of a run whose lock is free and mark the run failed. A run on
another machine cannot be judged that way: it refreshes a heartbeat tag meanwhile, and one that
holds the pool but has been silent for longer than STALE_SECONDS stops the waiting step with one
line naming it and the command that frees it
(`python -m messaging_assets.defs.writers free <run id>`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dagster import (
    AssetCheckExecutionContext,
    AssetExecutionContext,
    ConfigurableResource,
    DagsterInstance,
    DagsterRunStatus,
    InitResourceContext,
    OpExecutionContext,
    RunRecord,
    RunsFilter,
)
from pydantic import PrivateAttr

from messaging_assets.warehouse.connection import one_writer

# Every step that writes the warehouse is in this pool, limited to one slot (instance/dagster.yaml):
# DuckDB lets one process write a file, and two merges into one table should not interleave.
WRITER_POOL = "messaging_warehouse"
# Which process runs the run: {"run", "machine", "host", "pid", "lock"} as JSON.
WORKER_TAG = "messaging/worker"
# When that process last said it is alive (seconds since the epoch).
SEEN_TAG = "messaging/worker_seen"
POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 60.0
# How often a waiting step says again what it waits for.
WAITING_LOG_SECONDS = 60.0
FREE_COMMAND = "-m messaging_assets.defs.writers free"
# What a step that had to wait logs once it holds the pool.
TOOK = "Took the writers' pool"
# An instance file from before the steps took the pool themselves: Dagster waits first, its way.
MISCONFIGURED = (
    "This instance enforces pools per step (concurrency.pools.granularity is not 'run'): a step "
    f"waiting for the writers' pool {WRITER_POOL} then spins a core in Dagster's own wait and "
    "ignores Ctrl-C and SIGTERM. Set `granularity: run`, as instance/dagster.yaml does."
)
# Processes on one machine share its boot id; a process never outlives its boot.
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

StepContext = AssetExecutionContext | AssetCheckExecutionContext | OpExecutionContext


class WriterSilent(RuntimeError):
    """A run holds the pool and nothing on this machine can tell whether it is alive."""


def this_machine() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        # Not Linux: the host's name stands in for it.
        return socket.gethostname()


def pool_limited(instance: DagsterInstance) -> bool:
    """Whether the instance limits the writers' pool, its slots created as Dagster creates them
    when a run first uses a pool."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return False
    default = instance.global_op_concurrency_default_limit
    limits = {pool.name: pool for pool in storage.get_pool_limits()}
    found = limits.get(WRITER_POOL)
    if (found is None and default is not None) or (
        found is not None and found.from_default and found.limit != default
    ):
        storage.initialize_concurrency_limit_to_default(WRITER_POOL)
    return storage.get_concurrency_info(WRITER_POOL).limit is not None


class RunLife:
    """The run's process saying it is alive, from the run's start to its end: a lock that dies
    with it, for this machine, and a heartbeat in the run's tags, for the others."""

    # Dagster sets the pool up once for each resource that holds it (the steps' own `writers` and
    # the one inside the dlt resource): the run's setups share one life, since a second lock of
    # the same file from this process would wait for ever.
    _shared: ClassVar[dict[str, RunLife]] = {}
    _sharing: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def share(cls, instance: DagsterInstance, run_id: str) -> RunLife:
        with cls._sharing:
            life = cls._shared.get(run_id)
            if life is None:
                life = cls._shared[run_id] = cls(instance, run_id)
            life._holders += 1
            return life

    def release(self) -> None:
        """Stops the life once every setup that shared it is torn down."""
        with self._sharing:
            self._holders -= 1
            if self._holders:
                return
            del self._shared[self._run_id]
        self.stop()

    def __init__(self, instance: DagsterInstance, run_id: str) -> None:
        self._holders = 0
        self._instance = instance
        self._run_id = run_id
        directory = Path(instance.root_directory) / "messaging_runs"
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{run_id}.lock"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        worker = {
            "run": run_id,
            "machine": this_machine(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "lock": str(self.path),
        }
        instance.add_run_tags(run_id, {WORKER_TAG: json.dumps(worker), SEEN_TAG: _now()})
        self._stopped = threading.Event()
        self._beating = threading.Thread(target=self._beat, name="messaging-heartbeat", daemon=True)
        self._beating.start()

    def _beat(self) -> None:
        while not self._stopped.wait(HEARTBEAT_SECONDS):
            try:
                self._instance.add_run_tags(self._run_id, {SEEN_TAG: _now()})
            except Exception:
                # A beat missed (storage busy) is made up by the next; only a minute of them
                # missed in a row makes another machine call this run silent.
                continue

    def stop(self) -> None:
        self._stopped.set()
        self._beating.join()
        # Removed while still locked: whoever opened the file meanwhile finds, once it gets the
        # lock, that the path no longer leads to it, and does not take this run for dead.
        self.path.unlink(missing_ok=True)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


class WritersPool(ConfigurableResource):
    """The writers' pool, for the steps of a run: `turn(context)` waits for the pool's slot
    (sleeping, freeing the slots of runs that died) and then for DuckDB's writer lock. For the
    run's length its process says that it is alive (see the module's docstring)."""

    _life: RunLife | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        instance, run = context.instance, context.dagster_run
        if instance is None or run is None or not pool_limited(instance):
            return
        self._life = RunLife.share(instance, run.run_id)
        granularity = instance.get_concurrency_config().pool_config.pool_granularity
        if granularity is None or granularity.value != "run":
            context.log.warning(MISCONFIGURED)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._life is not None:
            self._life.release()
            self._life = None

    @contextmanager
    def turn(self, context: StepContext) -> Iterator[None]:
        """The step holds the pool's slot, and on DuckDB the file's writer lock, meanwhile."""
        step = context.op_execution_context
        instance, run_id = step.instance, step.run.run_id
        if not pool_limited(instance):
            with one_writer():
                yield
            return
        storage = instance.event_log_storage
        step_key = str(step.op_handle)
        said_at: float | None = None
        waiting_since = time.monotonic()
        try:
            while not storage.claim_concurrency_slot(WRITER_POOL, run_id, step_key).is_claimed:
                survey = free_dead_writers(instance, but=run_id)
                for note in survey.freed:
                    step.log.warning(note)
                if survey.freed:
                    continue
                silent = [writer for writer in survey.blocking if writer.silent]
                if silent:
                    raise WriterSilent(silent[0].line())
                if said_at is None or time.monotonic() - said_at > WAITING_LOG_SECONDS:
                    said_at = time.monotonic()
                    ahead = [writer.describe() for writer in survey.blocking]
                    holders = "; ".join(ahead) or "runs ahead of this one"
                    step.log.info(f"Waiting for the writers' pool {WRITER_POOL}: {holders}.")
                time.sleep(POLL_SECONDS)
            if said_at is not None:
                waited = time.monotonic() - waiting_since
                step.log.info(f"{TOOK} {WRITER_POOL} after waiting {waited:.0f} s.")
            with one_writer():
                yield
        finally:
            storage.free_concurrency_slot_for_step(run_id, step_key)


@dataclass(frozen=True)
class Writer:
    """A run that holds or waits for the pool, or is in progress with a step in it, as judged
    from here."""

    run_id: str
    blocking: bool
    worker: dict | None
    # None while the run's lock on this machine is held: its process is alive, whatever its tags
    # say. Otherwise the age of its last heartbeat, or of its start when it has none.
    seen_seconds_ago: float | None

    @property
    def silent(self) -> bool:
        return self.seen_seconds_ago is not None and self.seen_seconds_ago > STALE_SECONDS

    def describe(self) -> str:
        """`run <id> (process <pid> on <host>, alive)`, or when it was last heard from."""
        if self.worker is None:
            where = "no process recorded"
        else:
            where = f"process {self.worker['pid']} on {self.worker['host']}"
        if self.seen_seconds_ago is None:
            return f"run {self.run_id} ({where}, alive)"
        return f"run {self.run_id} ({where}, last heard from {self.seen_seconds_ago:.0f} s ago)"

    def line(self) -> str:
        """What to do about a silent writer, in one line."""
        holds = "holds" if self.blocking else "is in progress with steps in"
        return (
            f"The {self.describe()} {holds} the writers' pool {WRITER_POOL}, and this machine "
            f"cannot tell whether it is alive. If its process is gone, free the pool with: "
            f"{free_command(self.run_id)}"
        )


@dataclass(frozen=True)
class Survey:
    freed: list[str]
    writers: list[Writer]

    @property
    def blocking(self) -> list[Writer]:
        return [writer for writer in self.writers if writer.blocking]


def free_command(run_id: str) -> str:
    home = os.environ.get("DAGSTER_HOME")
    prefix = f"DAGSTER_HOME={shlex.quote(home)} " if home else ""
    return f"{prefix}{shlex.quote(sys.executable)} {FREE_COMMAND} {run_id}"


def free_dead_writers(instance: DagsterInstance, but: str | None = None) -> Survey:
    """Frees the slots of every run that died holding or waiting for the pool, or in progress
    with a step in it, and marks it failed; says so, and judges the others."""
    if not instance.event_log_storage.supports_global_concurrency_limits:
        return Survey(freed=[], writers=[])
    info = instance.event_log_storage.get_concurrency_info(WRITER_POOL)
    blocking = {slot.run_id for slot in info.claimed_slots} | {
        step.run_id for step in info.pending_steps if step.assigned_timestamp is not None
    }
    waiting = {step.run_id for step in info.pending_steps}
    started = {
        record.dagster_run.run_id: record
        for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        if WRITER_POOL in _pools(record)
    }
    freed, writers = [], []
    for run_id in sorted((blocking | waiting | set(started)) - {but}):
        record = started.get(run_id) or instance.get_run_record_by_id(run_id)
        found = _examine(instance, run_id, record, run_id in blocking)
        if isinstance(found, Writer):
            writers.append(found)
        else:
            freed.append(found)
    return Survey(freed, writers)


def free_run(instance: DagsterInstance, run_id: str, why: str) -> bool:
    """Frees the run's slots and marks it failed unless it has finished (then True)."""
    record = instance.get_run_record_by_id(run_id)
    failed = record is not None and not record.dagster_run.is_finished
    if failed:
        instance.report_run_failed(record.dagster_run, why)
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    return failed


def _pools(record: RunRecord) -> set[str]:
    concurrency = record.dagster_run.run_op_concurrency
    return set(concurrency.all_pools or ()) if concurrency else set()


def _worker(record: RunRecord) -> dict | None:
    try:
        worker = json.loads(record.dagster_run.tags[WORKER_TAG])
    except (KeyError, ValueError):
        return None
    # A re-executed run starts with its parent's tags until its own process writes them.
    return worker if worker.get("run") == record.dagster_run.run_id else None


def _examine(
    instance: DagsterInstance, run_id: str, record: RunRecord | None, blocking: bool
) -> Writer | str:
    """Frees a run that is dead for certain and says so, or judges it."""
    if record is None:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        return f"Freed the writers' pool of run {run_id}, which is no longer in the run history."
    worker = _worker(record)
    if worker is not None and worker["machine"] == this_machine():
        # Held while freeing, so that no other process frees the run and fails it too.
        with _lock_if_free(worker["lock"]) as lock:
            if lock == "held":
                return Writer(run_id, blocking, worker, None)
            if lock == "free":
                died = (
                    f"its process {worker['pid']} on {worker['host']} died (its lock "
                    f"{worker['lock']} was free)"
                )
                by = f"process {os.getpid()} on {socket.gethostname()}"
                failed = free_run(instance, run_id, f"Marked failed by {by}: {died}.")
                Path(worker["lock"]).unlink(missing_ok=True)
                done = "freed its writers' pool slot" + (" and marked it failed" if failed else "")
                return f"Run {run_id}: {died}; {done}."
    if record.dagster_run.is_finished and record.end_time is not None:
        # What run monitoring does for a run that ended, without waiting for its next poll.
        after = instance.run_monitoring_settings.get("free_slots_after_run_end_seconds")
        if after and time.time() - record.end_time > after:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
            return (
                f"Freed the writers' pool of run {run_id}, {record.dagster_run.status.value} "
                f"for more than {after} s (run_monitoring.free_slots_after_run_end_seconds)."
            )
    seen = float(record.dagster_run.tags.get(SEEN_TAG, 0)) if worker is not None else 0.0
    if not seen:
        seen = record.start_time or record.create_timestamp.timestamp()
    return Writer(run_id, blocking, worker, time.time() - seen)


@contextmanager
def _lock_if_free(path: str) -> Iterator[str]:
    """ "held" while the run's process lives, "free" (and held here meanwhile) once it is gone,
    "missing" when the run has no lock file now (not started, or ended)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        yield "missing"
        return
    with open(fd, "r+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield "held"
            return
        try:
            # Its run may have ended and removed it meanwhile: only the file at the path counts.
            try:
                same = os.path.samestat(os.fstat(lock.fileno()), os.stat(path))
            except FileNotFoundError:
                same = False
            yield "free" if same else "missing"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _now() -> str:
    return f"{time.time():.3f}"


def main(argv: list[str]) -> int:
    """`python -m messaging_assets.defs.writers free <run id>`: frees the writers' pool of a run
    whose process is gone, on the instance in DAGSTER_HOME, and marks the run failed; refuses
    while the run's lock on this machine is held or it was heard from within STALE_SECONDS."""
    if len(argv) != 2 or argv[0] != "free":
        print(f"usage: python {FREE_COMMAND} <run id>", file=sys.stderr)
        return 2
    run_id = argv[1]
    with DagsterInstance.get() as instance:
        record = instance.get_run_record_by_id(run_id)
        if record is None:
            print(f"No run {run_id} in the instance at {instance.root_directory}.", file=sys.stderr)
            return 1
        found = _examine(instance, run_id, record, blocking=True)
        if isinstance(found, str):
            print(found)
        elif not found.silent:
            print(
                f"Not freed: the {found.describe()} may still be writing: stop its process, or "
                f"free it once it has been silent for {STALE_SECONDS:.0f} s.",
                file=sys.stderr,
            )
            return 1
        else:
            free_run(instance, run_id, f"Marked failed by hand ({FREE_COMMAND} {run_id}).")
            print(f"Freed the writers' pool {WRITER_POOL} of run {run_id}, marked failed by hand.")
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
