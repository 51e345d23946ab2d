"""Loading landed delivery reports from a bucket next to from a local folder, in one run.

    python -m bench.bucket_load [--reports 100000] [--per-file 100] [--repeats 3]

The same landed files (`--per-file` reports each, as the receiver's group commit writes them)
are put in a local folder and in a bucket of moto's S3 server (started here on 127.0.0.1, in
memory); each repeat then materializes `messaging/delivery_reports` from each, back to back, in a
process of its own (`bench.worker asset`) into a fresh DuckDB file. The figure is the asset's
step time; the ratio bucket / folder is taken pair by pair and the figures are medians. moto is a
Python test server, not S3: the ratio is what listing and reading through s3fs costs against a
local disk, with a slow store.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.receiver import PYTHON, REPO, RUN_TIMEOUT, Bucket, _env, _free_port, report, server
from bench.stats import paired_ratio, ratio_text, stats
from messaging_assets.receiver import landing
from messaging_assets.receiver.storage import LocalFolder

# PUTs in flight while the bucket is filled (not measured).
FILLERS = 8


def landed_files(reports: int, per_file: int) -> dict[str, bytes]:
    """Landed delivery-report files, by name, `per_file` distinct reports each."""
    run, receiver, now = secrets.token_hex(4), landing.receiver_id(), datetime.now(timezone.utc)
    files = {}
    for sequence, first in enumerate(range(0, reports, per_file), start=1):
        lines = b"".join(
            landing.event_line(now, landing.DELIVERY_REPORTS, report(run, 0, n), None)
            for n in range(first, min(first + per_file, reports))
        )
        files[landing.file_name(now, receiver, sequence)] = lines
    return files


def load(env: dict[str, str], work: Path) -> dict[str, Any]:
    """`messaging/delivery_reports` materialized in a process of its own, into a fresh file."""
    work.mkdir()
    env = {
        **env,
        "DESTINATION__DUCKDB__CREDENTIALS": str(work / "warehouse.duckdb"),
        "DLT_DATA_DIR": str(work / "dlt"),
        "DAGSTER_HOME": str(work),
        # Required by the source; never asked, only landed files are read.
        "SOURCES__MESSAGING__BASE_URL": "http://127.0.0.1:9",
    }
    cmd = [PYTHON, "-m", "bench.worker", "asset", "--select", "delivery_reports"]
    done = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    if done.returncode != 0:
        raise SystemExit(f"load failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def scenario(reports: int, per_file: int, repeats: int) -> dict[str, Any]:
    files = landed_files(reports, per_file)
    runs: dict[str, list[dict[str, Any]]] = {"folder": [], "bucket": []}
    with tempfile.TemporaryDirectory(prefix="bench-bucket-load-") as tmp:
        root = Path(tmp)
        folder = LocalFolder(root / "landing", landing.ENDPOINTS)
        for name, data in files.items():
            folder.write(landing.DELIVERY_REPORTS, name, data)
        port = _free_port()
        moto = [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        with server(moto, port, _env(), root / "moto.log"):
            bucket = Bucket(f"http://127.0.0.1:{port}", f"bench-{secrets.token_hex(4)}")
            key = f"landing/{landing.DELIVERY_REPORTS}/"
            with ThreadPoolExecutor(FILLERS) as fillers:
                list(
                    fillers.map(
                        lambda item: bucket.client.put_object(
                            Bucket=bucket.name, Key=key + item[0], Body=item[1]
                        ),
                        files.items(),
                    )
                )
            where = {
                "folder": _env(SOURCES__MESSAGING__RECEIVER__LANDING_URL=str(root / "landing")),
                "bucket": _env(**bucket.settings()),
            }
            for repeat in range(repeats):
                for kind, env in where.items():
                    figures = load(env, root / f"{kind}-{repeat}")
                    if figures["rows"] < reports:
                        raise SystemExit(f"{kind}: {figures['rows']} rows of {reports}")
                    runs[kind].append(figures)
                    print(
                        f"  load from a {kind} #{repeat + 1}: {figures['seconds']:.1f} s",
                        file=sys.stderr,
                        flush=True,
                    )
    summary: dict[str, Any] = {"reports": reports, "files": len(files), "repeats": repeats}
    for kind, figures in runs.items():
        summary[kind] = {"seconds": stats([f["seconds"] for f in figures])}
    summary["bucket"]["ratio"] = paired_ratio(runs["bucket"], runs["folder"], "seconds")
    return summary


def table(results: dict[str, Any]) -> list[str]:
    ratio = results["bucket"]["ratio"]
    lines = [
        "",
        f"Loading {results['reports']:,} landed delivery reports ({results['files']:,} files) "
        f"into DuckDB, {results['repeats']} repeat(s): the step of messaging/delivery_reports",
        "",
        "| landing zone | seconds | ratio to folder |",
        "| --- | ---: | ---: |",
    ]
    for label, kind, versus in (
        ("local folder", "folder", ""),
        (
            "bucket (S3, moto)",
            "bucket",
            ratio_text(ratio),
        ),
    ):
        seconds = results[kind]["seconds"]
        lines.append(
            f"| {label} | {seconds['median']:.1f} ({seconds['min']:.1f}-{seconds['max']:.1f}) "
            f"| {versus} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bucket_load")
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--per-file", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print("\n".join(table(scenario(args.reports, args.per_file, args.repeats))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
