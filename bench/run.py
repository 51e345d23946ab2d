"""`make bench`: the project's asset materializations against the floor, on this machine.

    python -m bench.run [--contacts 200000] [--messages 100000] [--repeats 3] [--quick|--smoke]
                        [--postgres DSN]

Everything talks to a sandbox on 127.0.0.1 in its own process, and every measured run is its own
process too (its peak RSS comes from ``os.wait4``). Within one repeat the floor, the in-process
materialization and the CLI run back to back, and ratios are taken pair by pair within a repeat
before taking medians: these machines are noisy, and a slow minute then slows both sides of a
ratio. Prints a table and writes every figure to a JSON file (default bench/results/latest.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit  # a dlt dependency; tomllib is Python 3.11+ only

from bench import bucket_load, day, pushed, receiver
from bench.processes import stop
from bench.stats import ratio_text, stats
from messaging_assets.registry import SOURCE
from messaging_assets.settings import AutomationSettings

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
API_KEY = "bench-key"
# Every child gets a wall-clock bound, so a hung run fails the bench instead of stalling it.
RUN_TIMEOUT = 1800
POSTGRES_DSN = "MESSAGING_TEST_POSTGRES"
STEP_LINE = re.compile(r'Finished execution of step "[^"]+" in ([0-9.]+)(ms|s|m)')


@dataclass
class Run:
    seconds: float  # the measured time (floor: the work; asset: the Dagster step; CLI: the process)
    rss_mb: float  # peak resident memory of the process
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ processes


def _env(**overrides: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOURCES__MESSAGING__", "DESTINATION", "EXTRACT__"))
    }
    env["PYTHONPATH"] = str(REPO)
    env.update(overrides)
    return env


def _measure(cmd: Sequence[str], env: dict[str, str]) -> tuple[float, float, str, str]:
    """Runs a command; wall seconds, peak RSS in MiB (os.wait4), stdout and stderr."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=err)
        deadline = start + RUN_TIMEOUT
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                raise SystemExit(f"timed out after {RUN_TIMEOUT}s: {' '.join(cmd)}")
            time.sleep(0.01)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"failed ({process.returncode}): {' '.join(cmd)}\n{stderr[-4000:]}")
    # ru_maxrss is in KiB on Linux.
    return wall, usage.ru_maxrss / 1024, stdout, stderr


@dataclass(frozen=True)
class Variant:
    """How the sandbox serves the contacts of a load scenario."""

    shape: str = "data"
    tags: bool = False


# The contacts as a user meets them: the neutral shape, a nested object in every record, and the
# provider's envelope arrays.
CONTACT_VARIANTS = {
    "contacts": Variant(),
    "contacts_nested": Variant(tags=True),
    "contacts_provider": Variant(shape="provider"),
}


@contextmanager
def sandbox(
    contacts: int,
    messages: int,
    latency_ms: float = 0.0,
    pending: bool = False,
    variant: Variant = Variant(),
) -> Iterator[tuple[str, Path]]:
    """A sandbox process; yields its URL and the file holding the pre-created requestIds."""
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        ids_file = Path(tmp) / "ids.json"
        cmd = [PYTHON, "-m", "bench.sandbox_proc", "--contacts", str(contacts)]
        cmd += ["--messages", str(messages), "--latency-ms", str(latency_ms)]
        cmd += ["--ids-file", str(ids_file), *(["--pending"] if pending else [])]
        cmd += ["--shape", variant.shape, *(["--contact-tags"] if variant.tags else [])]
        process = subprocess.Popen(
            cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith("READY "):
                raise SystemExit(f"sandbox did not start: {line!r}")
            yield line.split()[1], ids_file
        finally:
            stop(process, timeout=10)


def _requests_so_far(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=5) as response:
        return sum(json.load(response)["requests"].values())


# ------------------------------------------------------------------------------------ the runs


@dataclass
class Target:
    """Where one repeat's runs write: a fresh DuckDB file, or the PostgreSQL database at `postgres`
    with the project's schemas dropped, and a fresh dlt working directory."""

    url: str
    root: Path
    workers: int
    shape: str = "data"
    postgres: str | None = None
    landing: Path | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True)
        if self.postgres:
            drop_postgres_dataset(self.postgres)

    @property
    def db(self) -> Path:
        return self.root / "warehouse.duckdb"

    def env(self) -> dict[str, str]:
        destination = {"DESTINATION__DUCKDB__CREDENTIALS": str(self.db)}
        if self.postgres:
            destination = {
                "DESTINATION_TYPE": "postgres",
                "DESTINATION__POSTGRES__CREDENTIALS": self.postgres,
            }
        return _env(
            SOURCES__MESSAGING__BASE_URL=self.url,
            SOURCES__MESSAGING__API_KEY=API_KEY,
            SOURCES__MESSAGING__API_SHAPE=self.shape,
            DLT_DATA_DIR=str(self.root / "dlt"),
            DAGSTER_HOME=str(self.root / "dagster_home"),
            EXTRACT__WORKERS=str(self.workers),
            **destination,
            **(
                {"SOURCES__MESSAGING__RECEIVER__LANDING_URL": str(self.landing)}
                if self.landing
                else {}
            ),
        )


def _postgres(dsn: str, *statements: str) -> Any:
    """Runs the statements, committed; the last one's first row, if it returns rows."""
    import psycopg2  # the postgres extra's

    with closing(psycopg2.connect(dsn)) as connection, connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        connection.commit()
        return cursor.fetchone() if cursor.description else None


def drop_postgres_dataset(dsn: str) -> None:
    """The dataset and dlt's staging dataset for merges, so that a first load is a first load."""
    _postgres(dsn, *(f"DROP SCHEMA IF EXISTS {s} CASCADE" for s in (SOURCE, f"{SOURCE}_staging")))


def _worker(target: Target, *args: str) -> Run:
    wall, rss, stdout, _ = _measure([PYTHON, "-m", "bench.worker", *args], target.env())
    result = json.loads(stdout.strip().splitlines()[-1])
    return Run(result.pop("seconds"), rss, {"process_wall": wall, **result})


def floor(target: Target, resource: str, ids_file: Path | None) -> Run:
    if resource == "contacts":
        return _worker(target, "floor-contacts", "--db", str(target.db))
    return _worker(
        target,
        "floor-messages",
        "--db",
        str(target.db),
        "--ids-file",
        str(ids_file),
        "--workers",
        str(target.workers),
    )


def in_process(target: Target, resource: str, ids_file: Path | None) -> Run:
    ids = ["--ids-file", str(ids_file)] if resource == "messages" else []
    return _worker(target, "asset", "--select", resource, *ids)


def cli(target: Target, resource: str, ids_file: Path | None) -> Run:
    """`dagster asset materialize` as a user runs it: the whole process, start-up included."""
    (target.root / "dagster_home").mkdir(exist_ok=True)
    cmd = [PYTHON, "-m", "dagster", "asset", "materialize", "-m", "messaging_assets.definitions"]
    cmd += ["--select", f"messaging/{resource}"]
    if resource == "messages" and ids_file:
        # 100,000 ids exceed what an environment variable may hold: pass them as run config.
        config = target.root / "run_config.json"
        ids = json.loads(ids_file.read_text())
        ops = {"messaging_messages": {"config": {"request_ids": ids}}}
        config.write_text(json.dumps({"ops": ops}))
        cmd += ["-c", str(config)]
    wall, rss, _, stderr = _measure(cmd, target.env())
    step = None
    if match := STEP_LINE.search(stderr):
        step = _seconds(match)
    return Run(wall, rss, {"step": step})


def _seconds(step_line: re.Match[str]) -> float:
    value, unit = float(step_line.group(1)), step_line.group(2)
    return value / 1000 if unit == "ms" else value * 60 if unit == "m" else value


KINDS: dict[str, Callable[[Target, str, Path | None], Run]] = {
    "floor": floor,
    "in_process": in_process,
    "cli": cli,
}


def load_scenario(
    url: str,
    ids_file: Path | None,
    resource: str,
    repeats: int,
    workers: int,
    work: Path,
    kinds: Sequence[str] = tuple(KINDS),
    shape: str = "data",
) -> dict[str, Any]:
    """First load and an unchanged re-run, for the floor, in-process and the CLI, per repeat."""
    runs: dict[str, dict[str, list[Run]]] = {
        phase: {kind: [] for kind in kinds} for phase in ("first", "rerun")
    }
    for repeat in range(repeats):
        for kind in kinds:
            measure = KINDS[kind]
            target = Target(url, work / f"{resource}-{shape}-{kind}-{repeat}", workers, shape)
            for phase in ("first", "rerun"):
                run = measure(target, resource, ids_file)
                runs[phase][kind].append(run)
                _progress(f"{resource} {phase} {kind} #{repeat + 1}", run)
            shutil.rmtree(target.root, ignore_errors=True)
    return {phase: _summarize(by_kind) for phase, by_kind in runs.items()}


def refresh_scenario(
    url: str, ids_file: Path, n: int, latency_ms: float, repeats: int, workers: int, work: Path
) -> dict[str, Any]:
    """N pending look-ups with L ms of latency each: look-ups per second, floor and asset."""
    runs: dict[str, list[Run]] = {"floor": [], "in_process": []}
    for repeat in range(repeats):
        for kind in runs:
            target = Target(url, work / f"refresh-{kind}-{repeat}", workers)
            run = KINDS[kind](target, "messages", ids_file)
            lookups = n / run.seconds
            # The asset's look-ups happen in dlt's extract; the step adds the merge of N rows.
            extract = run.extra.get("phases", {}).get("extract")
            run.extra["lookups_per_s"] = lookups
            run.extra["extract_lookups_per_s"] = n / extract if extract else lookups
            runs[kind].append(run)
            _progress(f"refresh {kind} #{repeat + 1} {lookups:.0f}/s", run)
            shutil.rmtree(target.root, ignore_errors=True)
    summary = _summarize(runs)
    for kind, values in runs.items():
        summary[kind]["lookups_per_s"] = stats([r.extra["lookups_per_s"] for r in values])
        summary[kind]["extract_lookups_per_s"] = stats(
            [r.extra["extract_lookups_per_s"] for r in values]
        )
    summary["n"] = n
    summary["latency_ms"] = latency_ms
    summary["workers"] = workers
    summary["sequential_bound_s"] = n * latency_ms / 1000
    summary["sequential_bound_per_s"] = 1000 / latency_ms if latency_ms else None
    return summary


def postgres_scenario(url: str, dsn: str, repeats: int, workers: int, work: Path) -> dict[str, Any]:
    """The contacts' first load and unchanged re-run on PostgreSQL against the same on DuckDB,
    one after the other within each repeat (the asset step, in-process)."""
    runs: dict[str, dict[str, list[Run]]] = {
        phase: {"duckdb": [], "postgres": []} for phase in ("first", "rerun")
    }
    try:
        for repeat in range(repeats):
            for name in ("duckdb", "postgres"):
                root = work / f"postgres-scenario-{name}-{repeat}"
                target = Target(url, root, workers, postgres=dsn if name == "postgres" else None)
                for phase in ("first", "rerun"):
                    run = in_process(target, "contacts", None)
                    runs[phase][name].append(run)
                    _progress(f"contacts {phase} on {name} #{repeat + 1}", run)
                    if target.postgres and phase == "first":
                        # As autovacuum leaves a large load within about a minute: with
                        # statistics, the planner sizes the scd2 retirement's hash by work_mem.
                        _postgres(dsn, "ANALYZE")
                shutil.rmtree(target.root, ignore_errors=True)
    finally:
        # The database may be the user's own (--postgres): leave nothing of the bench in it.
        drop_postgres_dataset(dsn)
    return {phase: _summarize(by_name, base="duckdb") for phase, by_name in runs.items()}


# The pushed-data run asks the API nothing: a request would find nothing listening and fail it.
NO_API = "http://127.0.0.1:9"


def pushed_scenario(reports: int, per_file: int, repeats: int, work: Path) -> dict[str, Any]:
    """Landed delivery reports into a fresh DuckDB file: the floor, then `pushed_data_job`, in
    each repeat, both reading the same files (landed once, as the receiver lands them)."""
    folder = work / "landing"
    landed = pushed.land(folder, reports, per_file)
    runs: dict[str, list[Run]] = {"floor": [], "job": []}
    for repeat in range(repeats):
        target = Target(NO_API, work / f"pushed-{repeat}", workers=1, landing=folder)
        runs["floor"].append(
            _worker(target, "floor-pushed", "--landing", str(folder), "--db", str(target.db))
        )
        _progress(f"pushed floor #{repeat + 1}", runs["floor"][-1])
        target.db.unlink()
        runs["job"].append(_worker(target, "pushed-job"))
        _progress(f"pushed job #{repeat + 1}", runs["job"][-1])
        shutil.rmtree(target.root, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    summary = _summarize(runs)
    summary["landed"] = landed
    summary["per_file"] = per_file
    summary["job"]["steps"] = {
        step: statistics.median(r.extra["steps"][step] for r in runs["job"])
        for step in runs["job"][0].extra["steps"]
    }
    return summary


def pushed_run_seconds(reports_per_run: int, repeats: int, work: Path) -> dict[str, Any]:
    """A run as the landed-files sensor gets one: `dagster job execute` of `pushed_data_job`, the
    whole process (the run launcher starts one per run, which loads the code location), over
    `reports_per_run` newly landed reports, one a file (a trickle), in a warehouse that already
    holds earlier ones. The first run, which creates the tables, is not counted."""
    folder = work / "landing"
    target = Target(NO_API, work / "pushed-run", workers=1, landing=folder)
    (target.root / "dagster_home").mkdir()
    cmd = [PYTHON, "-m", "dagster", "job", "execute", "-m", "messaging_assets.definitions"]
    cmd += ["-j", "pushed_data_job"]
    runs = []
    for repeat in range(repeats + 1):
        pushed.land(folder, reports_per_run, per_file=1, seed=repeat, prefix=f"run{repeat}")
        wall, rss, _, stderr = _measure(cmd, target.env())
        if repeat:
            steps = sum(_seconds(match) for match in STEP_LINE.finditer(stderr))
            runs.append(Run(wall, rss, {"steps": steps}))
            _progress(f"pushed_data_job run #{repeat}", runs[-1])
    return {
        "reports": reports_per_run,
        "seconds": stats([r.seconds for r in runs]),
        "steps": stats([r.extra["steps"] for r in runs]),
    }


def postgres_server(dsn: str) -> str:
    (version,) = _postgres(dsn, "SHOW server_version")
    (fsync,) = _postgres(dsn, "SHOW fsync")
    return f"PostgreSQL {version.split()[0]} (fsync {fsync})"


def startup_scenario(url: str, repeats: int, work: Path) -> dict[str, Any]:
    """`dagster definitions validate` of the project against an empty location importing dlt."""
    locations = {"empty": "bench.empty_location", "project": "messaging_assets.definitions"}
    runs: dict[str, list[Run]] = {name: [] for name in locations}
    target = Target(url, work / "startup", 5)
    (target.root / "dagster_home").mkdir()
    before = _requests_so_far(url)
    for repeat in range(repeats):
        for name, module in locations.items():
            cmd = [PYTHON, "-m", "dagster", "definitions", "validate", "-m", module]
            wall, rss, _, _ = _measure(cmd, target.env())
            runs[name].append(Run(wall, rss))
            _progress(f"startup {name} #{repeat + 1}", runs[name][-1])
    summary = _summarize(runs, base="empty")
    # Loading the code location must neither call the API nor create or write the DuckDB file.
    summary["api_requests_at_load"] = _requests_so_far(url) - before
    summary["duckdb_written_at_load"] = target.db.exists()
    shutil.rmtree(target.root, ignore_errors=True)
    return summary


# ------------------------------------------------------------------------------------ summaries


def _summarize(runs: dict[str, list[Run]], base: str = "floor") -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for kind, values in runs.items():
        summary[kind] = {
            "seconds": stats([r.seconds for r in values]),
            "rss_mb": stats([r.rss_mb for r in values]),
            "runs": [{"seconds": r.seconds, "rss_mb": r.rss_mb, **r.extra} for r in values],
        }
        if kind != base:
            # Pair by pair, within the same repeat, then the median of the ratios.
            ratios = [r.seconds / b.seconds for r, b in zip(values, runs[base], strict=True)]
            summary[kind]["ratio"] = stats(ratios)
        phases = [r.extra["phases"] for r in values if "phases" in r.extra]
        if phases:
            summary[kind]["phases"] = {
                name: statistics.median(p[name] for p in phases) for name in phases[0]
            }
        steps = [r.extra["step"] for r in values if r.extra.get("step") is not None]
        if steps:
            summary[kind]["step"] = stats(steps)
    return summary


def _progress(label: str, run: Run) -> None:
    print(f"  {label:<40} {run.seconds:8.2f}s  {run.rss_mb:7.0f} MiB", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    memory = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        memory = int(meminfo.read_text().split()[1]) // 1024**2
    import dagster
    import dlt
    import duckdb
    import pyarrow

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "dagster": dagster.__version__,
            "dlt": dlt.__version__,
            "duckdb": duckdb.__version__,
            "pyarrow": pyarrow.__version__,
        },
    }


def configured_workers() -> int:
    """The look-up bound the asset uses: EXTRACT__WORKERS, else .dlt/config.toml, else dlt's 5."""
    if os.environ.get("EXTRACT__WORKERS"):
        return int(os.environ["EXTRACT__WORKERS"])
    config = tomlkit.parse((REPO / ".dlt" / "config.toml").read_text()).unwrap()
    return int(config.get("extract", {}).get("workers", 5))


# ------------------------------------------------------------------------------------ the table


def table(results: dict[str, Any]) -> str:
    cfg = results["config"]
    lines = [
        f"messaging-assets bench: {cfg['contacts']:,} contacts, {cfg['messages']:,} messages, "
        f"repeats {cfg['repeats']} (messages {cfg['long_repeats']}), look-up workers "
        f"{cfg['workers']}",
        f"machine: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
        f"{results['machine']['memory_gib']} GiB, Python {results['machine']['python']}",
    ]
    loads = [r for r in (*CONTACT_VARIANTS, "messages") if r in results]
    if loads:
        lines += [
            "",
            "| load | floor | asset step (in-process) | ratio | CLI process | ratio "
            "| peak RSS floor / in-process / CLI |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
    for resource in loads:
        for phase in ("first", "rerun"):
            entry = results[resource][phase]
            f, ip, c = entry["floor"], entry["in_process"], entry.get("cli")
            label = (
                f"{LABELS.get(resource, resource)} {'first load' if phase == 'first' else 're-run'}"
            )
            if resource == "messages" and phase == "rerun":
                label += " (all final: 0 look-ups)"
            cli_time = f"{c['seconds']['median']:.2f}s | {ratio_text(c['ratio'])}" if c else "- | -"
            cli_rss = f"{c['rss_mb']['median']:.0f}" if c else "-"
            lines.append(
                f"| {label} | {f['seconds']['median']:.2f}s | {ip['seconds']['median']:.2f}s "
                f"| {ratio_text(ip['ratio'])} | {cli_time} "
                f"| {f['rss_mb']['median']:.0f} / {ip['rss_mb']['median']:.0f} / {cli_rss} MiB |"
            )
    if loads:
        lines += ["", "Where the asset's time goes (in-process, median seconds):", ""]
        lines += ["| load | extract | normalize | load | step | Dagster + rest |"]
        lines += ["| --- | ---: | ---: | ---: | ---: | ---: |"]
    for resource in loads:
        for phase in ("first", "rerun"):
            ip = results[resource][phase]["in_process"]
            p = ip.get("phases", {})
            step = ip["seconds"]["median"]
            rest = step - sum(p.values())
            lines.append(
                f"| {LABELS.get(resource, resource)} {phase} | {p.get('extract', 0):.2f} "
                f"| {p.get('normalize', 0):.2f} "
                f"| {p.get('load', 0):.2f} | {step:.2f} | {rest:.2f} |"
            )
    lines += _postgres_lines(results) + _refresh_lines(results) + _startup_lines(results)
    if "day" in results:
        lines += day.table(results["day"])
    lines += _pushed_lines(results)
    if "receiver" in results:
        lines += receiver.table(results["receiver"])
    if "receiver_bucket" in results:
        lines += receiver.bucket_table(results["receiver_bucket"])
    if "pushed_bucket" in results:
        lines += bucket_load.table(results["pushed_bucket"])
    lines += ["", "Ratios: median of per-repeat ratios (min-max); peak RSS: median."]
    return "\n".join(lines)


def _postgres_lines(results: dict[str, Any]) -> list[str]:
    if "postgres" not in results:
        return []
    p = results["postgres"]
    if "skipped" in p:
        return ["", f"PostgreSQL: skipped ({p['skipped']})"]
    lines = [
        "",
        f"Contacts on {p['server']} against DuckDB, the asset step in-process; the re-run "
        "after ANALYZE, as autovacuum leaves the tables:",
        "",
        "| load | DuckDB | PostgreSQL | ratio | peak RSS DuckDB / PostgreSQL |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for phase in ("first", "rerun"):
        d, pg = p[phase]["duckdb"], p[phase]["postgres"]
        lines.append(
            f"| contacts {'first load' if phase == 'first' else 're-run'} "
            f"| {d['seconds']['median']:.2f}s | {pg['seconds']['median']:.2f}s "
            f"| {ratio_text(pg['ratio'])} "
            f"| {d['rss_mb']['median']:.0f} / {pg['rss_mb']['median']:.0f} MiB |"
        )
    return lines


def _refresh_lines(results: dict[str, Any]) -> list[str]:
    if "refresh" not in results:
        return []
    r = results["refresh"]
    lines = [
        "",
        f"Status refresh: {r['n']:,} pending look-ups, {r['latency_ms']:g} ms latency each, "
        f"{r['workers']} workers; sequential bound {r['sequential_bound_s']:.1f}s "
        f"= {r['sequential_bound_per_s']:.0f}/s",
        "",
        "| | look-ups/s (whole step) | look-ups/s (extract only) | x sequential bound |",
        "| --- | ---: | ---: | ---: |",
    ]
    for kind in ("floor", "in_process"):
        per_s = r[kind]["lookups_per_s"]
        ext = r[kind]["extract_lookups_per_s"]
        lines.append(
            f"| {kind.replace('_', '-')} | {per_s['median']:.0f} ({per_s['min']:.0f}-"
            f"{per_s['max']:.0f}) | {ext['median']:.0f} | "
            f"{per_s['median'] / r['sequential_bound_per_s']:.1f}x |"
        )
    return lines


def _pushed_lines(results: dict[str, Any]) -> list[str]:
    if "pushed" not in results:
        return []
    p = results["pushed"]
    landed, floor, job = p["landed"], p["floor"], p["job"]
    rows = job["runs"][0]["rows"]
    phases = job["phases"]
    steps = ", ".join(f"{step} {seconds:.2f}s" for step, seconds in job["steps"].items())
    return [
        "",
        f"Landed delivery reports into DuckDB: {landed['reports']:,} reports of "
        f"{landed['messages']:,} messages in {landed['files']:,} files ({p['per_file']} a file, "
        f"as the receiver lands them), {rows['delivery_reports']:,} distinct; the floor is DuckDB "
        "reading the same files and merging them itself",
        "",
        "| | floor (DuckDB alone) | pushed_data_job (its steps, in-process) | ratio "
        "| peak RSS floor / job |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| {landed['reports']:,} reports into delivery_reports and messages "
        f"| {floor['seconds']['median']:.2f}s | {job['seconds']['median']:.2f}s "
        f"| {ratio_text(job['ratio'])} "
        f"| {floor['rss_mb']['median']:.0f} / {job['rss_mb']['median']:.0f} "
        "MiB |",
        "",
        f"The job's steps (median): {steps}; dlt's extract {phases['extract']:.2f}s, normalize "
        f"{phases['normalize']:.2f}s, load {phases['load']:.2f}s.",
    ]


def _startup_lines(results: dict[str, Any]) -> list[str]:
    if "startup" not in results:
        return []
    s = results["startup"]
    return [
        "",
        f"Start-up (`dagster definitions validate`): empty location importing dlt "
        f"{s['empty']['seconds']['median']:.2f}s, project {s['project']['seconds']['median']:.2f}s"
        f", ratio {ratio_text(s['project']['ratio'])}; API requests while loading: "
        f"{s['api_requests_at_load']}, DuckDB file written: {s['duckdb_written_at_load']}",
    ]


# ------------------------------------------------------------------------------------ main

SCENARIOS = (
    "startup",
    *CONTACT_VARIANTS,
    "postgres",
    "messages",
    "refresh",
    "day",
    "receiver",
    "pushed",
    # The landing zone in a bucket (moto's S3 server, started by the scenario) next to a folder.
    "receiver_bucket",
    "pushed_bucket",
)
LABELS = {
    "contacts_nested": "contacts (a nested object each)",
    "contacts_provider": "contacts (provider shape)",
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--messages", type=int, default=100_000, help="one look-up each")
    parser.add_argument("--refresh", type=int, default=2_000, help="pending look-ups (N)")
    parser.add_argument("--day", type=int, default=10_000, help="sends in the simulated day")
    parser.add_argument(
        "--receiver-events", type=int, default=6_000, help="delivery reports per receiver run"
    )
    parser.add_argument(
        "--pushed", type=int, default=100_000, help="landed delivery reports to load"
    )
    parser.add_argument(
        "--pushed-per-file", type=int, default=pushed.PER_FILE, help="events per landed file"
    )
    parser.add_argument("--latency-ms", type=float, default=10.0, help="per look-up (L)")
    parser.add_argument("--repeats", type=int, default=3, help="for contacts, refresh, start-up")
    parser.add_argument(
        "--long-repeats", type=int, default=1, help="for the 100,000 look-ups (minutes each)"
    )
    parser.add_argument("--workers", type=int, help="look-ups in flight (default: dlt config)")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    parser.add_argument("--no-cli", action="store_true", help="skip the `dagster` CLI runs")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(POSTGRES_DSN),
        metavar="DSN",
        help=f"a PostgreSQL database whose {SOURCE} schemas the bench may drop (default: "
        f"{POSTGRES_DSN}, which `make bench` sets through .ci/postgres); without one the "
        "postgres scenario is skipped",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest.json")
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes, 1 repeat")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 repeat (for tests)")
    args = parser.parse_args(argv)
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    if unknown := set(args.scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenarios: {sorted(unknown)}")
    if args.quick:
        args.contacts, args.messages, args.refresh, args.day = 20_000, 10_000, 500, 2_000
        args.receiver_events, args.pushed = 2_000, 10_000
        args.repeats = args.long_repeats = 1
    if args.smoke:
        args.contacts, args.messages, args.refresh, args.day = 500, 50, 50, 200
        args.receiver_events, args.pushed = 200, 200
        args.repeats = args.long_repeats = 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workers = args.workers or configured_workers()
    started = time.time()
    results: dict[str, Any] = {
        "machine": machine(),
        "config": {
            "contacts": args.contacts,
            "messages": args.messages,
            "refresh": args.refresh,
            "day": args.day,
            "receiver_events": args.receiver_events,
            "pushed": args.pushed,
            "latency_ms": args.latency_ms,
            "repeats": args.repeats,
            "long_repeats": args.long_repeats,
            "workers": workers,
        },
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        kinds = [kind for kind in KINDS if not (args.no_cli and kind == "cli")]
        chosen = args.scenarios
        print(f"sandbox: {args.contacts:,} contacts, {args.messages:,} messages", file=sys.stderr)
        messages = args.messages if "messages" in chosen else 0
        with sandbox(args.contacts, messages) as (url, ids_file):
            if "startup" in chosen:
                results["startup"] = startup_scenario(url, args.repeats, work)
            if "messages" in chosen:
                results["messages"] = load_scenario(
                    url, ids_file, "messages", args.long_repeats, workers, work, kinds
                )
        for name, variant in CONTACT_VARIANTS.items():
            if name in chosen:
                with sandbox(args.contacts, 0, variant=variant) as (url, _):
                    results[name] = load_scenario(
                        url, None, "contacts", args.repeats, workers, work, kinds, variant.shape
                    )
        if "postgres" in chosen:
            if args.postgres:
                with sandbox(args.contacts, 0) as (url, _):
                    results["postgres"] = postgres_scenario(
                        url, args.postgres, args.repeats, workers, work
                    )
                results["postgres"]["server"] = postgres_server(args.postgres)
            else:
                results["postgres"] = {"skipped": f"no database: pass --postgres or {POSTGRES_DSN}"}
        if "refresh" in chosen:
            with sandbox(0, args.refresh, args.latency_ms, pending=True) as (url, ids_file):
                results["refresh"] = refresh_scenario(
                    url, ids_file, args.refresh, args.latency_ms, args.repeats, workers, work
                )
    if "day" in chosen:
        settings = AutomationSettings()
        with tempfile.TemporaryDirectory(prefix="bench-pushed-run-") as tmp:
            run = pushed_run_seconds(
                day.reports_per_tick(args.day, seed=7, settings=settings), args.repeats, Path(tmp)
            )
        results["day"] = day.simulate(
            args.day, seed=7, settings=settings, run_seconds=run["seconds"]["median"]
        )
        results["day"]["pushed"]["run"] = run
    if "receiver" in chosen:
        results["receiver"] = receiver.scenario(args.receiver_events, args.repeats)
    if "pushed" in chosen:
        with tempfile.TemporaryDirectory(prefix="bench-pushed-") as tmp:
            results["pushed"] = pushed_scenario(
                args.pushed, args.pushed_per_file, args.repeats, Path(tmp)
            )
    if "receiver_bucket" in chosen:
        results["receiver_bucket"] = receiver.bucket_scenario(args.receiver_events, args.repeats)
    if "pushed_bucket" in chosen:
        # Fewer, larger files than the receiver's own, as a busy receiver lands them: a bucket
        # is listed and read a request per file.
        results["pushed_bucket"] = bucket_load.scenario(args.pushed, 100, args.repeats)
    results["elapsed_s"] = time.time() - started
    results["table"] = table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(results["table"])
    print(f"\nfigures: {args.out} ({results['elapsed_s'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
