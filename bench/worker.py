"""One measured run, in its own process: ``python -m bench.worker <task> ...``.

Each run is a fresh process so that its peak resident memory (read by the parent with
``os.wait4``) is its own. The last line on stdout is a JSON object with the timings; imports are
not timed here (start-up is measured separately, through the CLI).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _ids(path: Path | None) -> list[str]:
    return json.loads(path.read_text()) if path else []


def floor_contacts(args: argparse.Namespace) -> dict[str, Any]:
    from bench.floor import load_contacts

    start = time.perf_counter()
    rows = load_contacts(args.url, args.api_key, args.db, args.shape)
    return {"seconds": time.perf_counter() - start, "rows": rows}


def floor_messages(args: argparse.Namespace) -> dict[str, Any]:
    from bench.floor import load_messages

    ids = _ids(args.ids_file)
    start = time.perf_counter()
    rows = load_messages(args.url, args.api_key, args.db, ids, args.workers)
    return {"seconds": time.perf_counter() - start, "rows": rows}


def asset(args: argparse.Namespace) -> dict[str, Any]:
    """`dagster.materialize` of one asset, as the tests and the UI's in-process runs do."""
    from dagster import AssetKey, DagsterEventType, DagsterInstance, materialize

    from messaging_assets.definitions import defs

    run_config: dict[str, Any] = {}
    ids = _ids(args.ids_file)
    if ids:
        run_config = {"ops": {"messaging_messages": {"config": {"request_ids": ids}}}}
    with DagsterInstance.ephemeral() as instance:
        start = time.perf_counter()
        result = materialize(
            list(defs.assets or ()),
            selection=[AssetKey(["messaging", args.select])],
            resources=dict(defs.resources or {}),
            instance=instance,
            run_config=run_config,
        )
        wall = time.perf_counter() - start
    (step,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_SUCCESS]
    materializations = result.asset_materializations_for_node(step.step_key or "")
    rows = sum(
        m.metadata["dagster/row_count"].value
        for m in materializations
        if "dagster/row_count" in m.metadata
    )
    phases = {
        phase: max(m.metadata[f"dlt_{phase}_seconds"].value for m in materializations)
        for phase in ("extract", "normalize", "load")
    }
    return {
        # The step: what the asset costs once the run has started (the brief's "asset step time").
        "seconds": step.event_specific_data.duration_ms / 1000,  # type: ignore[union-attr]
        "wall": wall,
        "phases": phases,
        "rows": rows,
    }


def floor_pushed(args: argparse.Namespace) -> dict[str, Any]:
    from bench.floor import load_pushed

    start = time.perf_counter()
    rows = load_pushed(args.landing, args.db)
    return {"seconds": time.perf_counter() - start, "rows": rows}


def pushed_job(args: argparse.Namespace) -> dict[str, Any]:
    """`pushed_data_job` in-process, as the landed-files sensor's run executes it: the delivery
    reports and inbound messages loaded, the reports merged into messages, the asset checks."""
    from dagster import DagsterEventType, DagsterInstance

    from messaging_assets.definitions import defs

    with DagsterInstance.ephemeral() as instance:
        start = time.perf_counter()
        result = defs.get_job_def("pushed_data_job").execute_in_process(instance=instance)
        wall = time.perf_counter() - start
    steps = {
        str(event.step_key): event.event_specific_data.duration_ms / 1000  # type: ignore[union-attr]
        for event in result.all_events
        if event.event_type == DagsterEventType.STEP_SUCCESS
    }
    rows, phases = {}, dict.fromkeys(("extract", "normalize", "load"), 0.0)
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        if "dagster/row_count" in metadata:
            rows[event.materialization.asset_key.path[-1]] = metadata["dagster/row_count"].value
    # dlt's phases, per dlt run (each step's assets share theirs), summed over the steps.
    for step in steps:
        for phase in phases:
            phases[phase] += max(
                (
                    event.materialization.metadata[f"dlt_{phase}_seconds"].value
                    for event in result.get_asset_materialization_events()
                    if event.step_key == step
                    and f"dlt_{phase}_seconds" in event.materialization.metadata
                ),
                default=0.0,
            )
    # The steps run one after another in-process: their sum is the run's work.
    return {
        "seconds": sum(steps.values()),
        "wall": wall,
        "steps": steps,
        "phases": phases,
        "rows": rows,
    }


TASKS = {
    "floor-contacts": floor_contacts,
    "floor-messages": floor_messages,
    "floor-pushed": floor_pushed,
    "asset": asset,
    "pushed-job": pushed_job,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--url", default=os.environ.get("SOURCES__MESSAGING__BASE_URL", ""))
    parser.add_argument("--api-key", default=os.environ.get("SOURCES__MESSAGING__API_KEY", ""))
    parser.add_argument("--db", default=os.environ.get("DESTINATION__DUCKDB__CREDENTIALS", ""))
    parser.add_argument("--ids-file", type=Path)
    parser.add_argument("--landing", type=Path)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--select", default="contacts")
    parser.add_argument("--shape", default=os.environ.get("SOURCES__MESSAGING__API_SHAPE", "data"))
    args = parser.parse_args(argv)
    result = TASKS[args.task](args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
