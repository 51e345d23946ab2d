"""The receiver under load: durable acknowledgements per second and their latency with 20
keep-alive clients, next to a floor in the same run.

    python -m bench.receiver [--events 6000] [--clients 20] [--repeats 3] [--commit-window-ms MS]
    python -m bench.receiver bucket [--events 6000] [--clients 20] [--repeats 3]

The floor is a bare Starlette app on uvicorn that writes each body to its own new file, fsyncs it
and its folder, and only then answers: durability one request at a time, with nothing else (no
token, no checks, no log). Each server runs in its own process, the clients in another (threads
with `http.client`, one keep-alive connection each, every event a distinct delivery report).
Within a repeat the floor and the receiver run back to back and the ratio is taken there; the
figures are medians over repeats. After each run the landed files are read back: every
acknowledged event must be there.

`bucket` measures the receiver landing in a bucket of an S3-compatible server (moto's, started
here on 127.0.0.1, in memory) next to the same receiver landing in a local folder, back to back
in each repeat: what a PUT per file costs against a flush and rename per file. moto is a Python
test server, not S3: the ratio bounds the receiver's own overhead on object storage from below.

The two servers are started by this module too: ``python -m bench.receiver floor --port P
--folder D`` and ``python -m bench.receiver load --url URL ...`` (the clients).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.processes import stop
from bench.stats import paired_ratio, ratio_text, stats
from messaging_assets.receiver import landing

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CLIENTS = 20
READY_TIMEOUT = 60
RUN_TIMEOUT = 600


# ------------------------------------------------------------------------------------ the floor


def _floor_write(folder: Path, name: str, body: bytes) -> None:
    descriptor = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(descriptor, body)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def serve_floor(port: int, folder: Path) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    names = itertools.count()

    async def land(request: Request) -> Response:
        body = await request.body()
        # In Starlette's thread pool, as a blocking write belongs: the event loop goes on
        # serving, and concurrent fsyncs share the file system's journal commits.
        await run_in_threadpool(_floor_write, folder, f"{next(names):09d}.json", body)
        return Response(status_code=204)

    app = Starlette(routes=[Route("/{token}/delivery-reports", land, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ------------------------------------------------------------------------------------ the clients


def report(run: str, client: int, number: int) -> bytes:
    """A delivery report as the provider posts it, with a requestId of its own."""
    request_id = f"{run}-{client:03d}-{number:06d}"
    part = {
        "partId": f"{request_id}-1",
        "currency": "EUR",
        "price": "0.005",
        "priceEffective": "2026-01-01T00:00:00+0100",
        "sentDate": "2026-03-01T10:00:01+0100",
        "doneDate": "2026-03-01T10:00:04+0100",
        "deliveryState": "DELIVERED",
        "errorCode": "0",
        "statusText": "Your code is 123456",
    }
    status = {
        "requestId": request_id,
        "status": "DELIVERED",
        "reference": f"order-{number}",
        "from": "MyCompany",
        "to": "+4915112345678",
        "submitDate": "2026-03-01T10:00:00+0100",
        "doneDate": "2026-03-01T10:00:04+0100",
        "errorCode": "0",
        "errorReason": None,
        "overallPrice": "0.005",
        "size": 1,
        "mccmnc": "26201",
        "ttid": "77292",
        "parts": [part],
    }
    return json.dumps(status).encode()


def load(url: str, run: str, events: int, clients: int) -> dict[str, Any]:
    """`clients` threads, one keep-alive connection each, `events` in all; every answer is
    timed. Returns the acknowledgements, their rate and latency percentiles."""
    address = urlsplit(url)
    per_client = [events // clients + (1 if c < events % clients else 0) for c in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[str] = []
    start = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
        headers = {"content-type": "application/json"}

        def post(number: int) -> float:
            body = report(run, index, number)
            began = time.perf_counter()
            connection.request("POST", address.path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status not in (200, 204):
                raise RuntimeError(f"answered {response.status}")
            return time.perf_counter() - began

        try:
            start.wait()
            for number in range(per_client[index]):
                latencies[index].append(post(number))
        except Exception as error:
            failures.append(f"client {index}: {error!r}")
            start.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise SystemExit(f"load failed: {failures[0]}")
    every = sorted(itertools.chain.from_iterable(latencies))
    return {
        "acked": len(every),
        "seconds": elapsed,
        "per_s": len(every) / elapsed,
        "p50_ms": every[len(every) // 2] * 1000,
        "p99_ms": every[min(len(every) - 1, int(len(every) * 0.99))] * 1000,
    }


# ------------------------------------------------------------------------------------ the runs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited ({process.returncode}) before it listened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server did not listen on {port} within {READY_TIMEOUT}s")


@contextmanager
def server(cmd: Sequence[str], port: int, env: dict[str, str], log: Path) -> Iterator[None]:
    with open(log, "wb") as output:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=output, stderr=output)
        try:
            _wait_for_port(port, process)
            yield
        finally:
            stop(process, timeout=30)


def _env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__MESSAGING__")}
    env["PYTHONPATH"] = str(REPO)
    env.update(overrides)
    return env


def _load_process(url: str, run: str, events: int, clients: int) -> dict[str, Any]:
    cmd = [PYTHON, "-m", "bench.receiver", "load", "--url", url, "--run", run]
    cmd += ["--events", str(events), "--clients", str(clients)]
    completed = subprocess.run(
        cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    if completed.returncode != 0:
        raise SystemExit(f"clients failed: {completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_floor(work: Path, run: str, events: int, clients: int) -> dict[str, Any]:
    folder = work / "floor"
    folder.mkdir()
    port = _free_port()
    cmd = [PYTHON, "-m", "bench.receiver", "floor", "--port", str(port), "--folder", str(folder)]
    with server(cmd, port, _env(), work / "floor.log"):
        figures = _load_process(f"http://127.0.0.1:{port}/t/delivery-reports", run, events, clients)
    files = len(os.listdir(folder))
    if files < figures["acked"]:
        raise SystemExit(f"floor: {files} files for {figures['acked']} acknowledgements")
    figures["files"] = files
    return figures


def run_receiver(
    work: Path,
    run: str,
    events: int,
    clients: int,
    window_ms: float | None,
    bucket: Bucket | None = None,
) -> dict[str, Any]:
    """The receiver under load, landing in a folder of `work`, or in `bucket`."""
    folder = work / "landing"
    port = _free_port()
    token = secrets.token_urlsafe(32)
    settings = {
        "SOURCES__MESSAGING__RECEIVER__TOKEN": token,
        "SOURCES__MESSAGING__RECEIVER__LANDING_URL": str(folder),
        **(bucket.settings() if bucket else {}),
    }
    if window_ms is not None:
        settings["SOURCES__MESSAGING__RECEIVER__COMMIT_WINDOW_MS"] = str(window_ms)
    cmd = [PYTHON, "-m", "messaging_assets.receiver", "--port", str(port)]
    log = work / ("receiver-bucket.log" if bucket else "receiver.log")
    with server(cmd, port, _env(**settings), log):
        url = f"http://127.0.0.1:{port}/{token}/delivery-reports"
        figures = _load_process(url, run, events, clients)
    if bucket:
        files = bucket.files()
    else:
        files = [path.read_bytes() for path in landing.list_files(folder, landing.DELIVERY_REPORTS)]
    lines = [line for data in files for line in data.split(b"\n")[:-1]]
    parsed = [landing.parse_line(line, "-", number) for number, line in enumerate(lines, 1)]
    landed = {json.loads(event.body)["requestId"] for event in parsed if event.readable}
    if len(landed) < figures["acked"]:
        raise SystemExit(f"receiver: {len(landed)} landed of {figures['acked']} acknowledged")
    figures["files"] = len(files)
    figures["events_per_file"] = len(lines) / len(files)
    return figures


class Bucket:
    """A bucket of its own on moto's S3 server, and the receiver's settings that point at it."""

    def __init__(self, endpoint: str, name: str) -> None:
        import boto3

        self.endpoint, self.name = endpoint, name
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench-secret",
            region_name="us-east-1",
        )
        self.client.create_bucket(Bucket=name)

    def settings(self) -> dict[str, str]:
        credentials = "SOURCES__MESSAGING__FILESYSTEM__CREDENTIALS__"
        return {
            "SOURCES__MESSAGING__RECEIVER__LANDING_URL": f"s3://{self.name}/landing",
            f"{credentials}AWS_ACCESS_KEY_ID": "bench",
            f"{credentials}AWS_SECRET_ACCESS_KEY": "bench-secret",
            f"{credentials}ENDPOINT_URL": self.endpoint,
            f"{credentials}REGION_NAME": "us-east-1",
        }

    def files(self) -> list[bytes]:
        """Every landed delivery-report object's bytes."""
        prefix = f"landing/{landing.DELIVERY_REPORTS}/"
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=prefix
        )
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        keys = [key for key in keys if landing.is_landed_file(key.rsplit("/", 1)[1])]
        return [self.client.get_object(Bucket=self.name, Key=key)["Body"].read() for key in keys]


def _say(what: str, runs: dict[str, list[dict[str, Any]]], repeat: int) -> None:
    """Each kind's figures of this repeat, on stderr as they come."""
    for kind, figures in runs.items():
        print(
            f"  {what} {kind} #{repeat + 1}: {figures[-1]['per_s']:7.0f}/s  "
            f"p50 {figures[-1]['p50_ms']:.1f} ms  p99 {figures[-1]['p99_ms']:.1f} ms",
            file=sys.stderr,
            flush=True,
        )


def scenario(
    events: int, repeats: int, clients: int = CLIENTS, window_ms: float | None = None
) -> dict[str, Any]:
    """Floor and receiver back to back in each repeat; medians, and ratios pair by pair."""
    runs: dict[str, list[dict[str, Any]]] = {"floor": [], "receiver": []}
    with tempfile.TemporaryDirectory(prefix="bench-receiver-") as tmp:
        for repeat in range(repeats):
            work = Path(tmp) / str(repeat)
            work.mkdir()
            run = secrets.token_hex(4)
            runs["floor"].append(run_floor(work, run, events, clients))
            runs["receiver"].append(run_receiver(work, run, events, clients, window_ms))
            _say("receiver scenario", runs, repeat)
    summary: dict[str, Any] = {"events": events, "clients": clients, "repeats": repeats}
    for kind, figures in runs.items():
        summary[kind] = {
            key: stats([f[key] for f in figures]) for key in ("per_s", "p50_ms", "p99_ms")
        }
        summary[kind]["files"] = stats([f["files"] for f in figures])
    summary["receiver"]["events_per_file"] = stats([f["events_per_file"] for f in runs["receiver"]])
    summary["receiver"]["ratio"] = paired_ratio(runs["receiver"], runs["floor"], "per_s")
    return summary


def bucket_scenario(events: int, repeats: int, clients: int = CLIENTS) -> dict[str, Any]:
    """The receiver landing in a local folder and in a bucket of moto's S3 server, back to back
    in each repeat; medians, and the bucket's rate over the folder's pair by pair."""
    runs: dict[str, list[dict[str, Any]]] = {"folder": [], "bucket": []}
    with tempfile.TemporaryDirectory(prefix="bench-receiver-bucket-") as tmp:
        port = _free_port()
        moto = [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        with server(moto, port, _env(), Path(tmp) / "moto.log"):
            for repeat in range(repeats):
                work = Path(tmp) / str(repeat)
                work.mkdir()
                run = secrets.token_hex(4)
                bucket = Bucket(f"http://127.0.0.1:{port}", f"bench-{run}")
                runs["folder"].append(run_receiver(work, run, events, clients, None))
                runs["bucket"].append(run_receiver(work, run, events, clients, None, bucket))
                _say("receiver to a", runs, repeat)
    summary: dict[str, Any] = {"events": events, "clients": clients, "repeats": repeats}
    for kind, figures in runs.items():
        summary[kind] = {
            key: stats([f[key] for f in figures])
            for key in ("per_s", "p50_ms", "p99_ms", "files", "events_per_file")
        }
    summary["bucket"]["ratio"] = paired_ratio(runs["bucket"], runs["folder"], "per_s")
    return summary


def bucket_table(results: dict[str, Any]) -> list[str]:
    ratio = results["bucket"]["ratio"]
    lines = [
        "",
        f"Receiver into a bucket: {results['events']:,} delivery reports per run from "
        f"{results['clients']} keep-alive clients, {results['repeats']} repeat(s); every "
        "acknowledgement durable (a local folder: flush and rename; a bucket of moto's S3 "
        "server on 127.0.0.1: one PUT per file)",
        "",
        "| landing zone | acks/s | p50 | p99 | files | events per file | acks/s ratio to folder |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, key, versus in (
        ("local folder", "folder", ""),
        (
            "bucket (S3, moto)",
            "bucket",
            ratio_text(ratio),
        ),
    ):
        entry = results[key]
        per_s = entry["per_s"]
        lines.append(
            f"| {label} | {per_s['median']:,.0f} ({per_s['min']:,.0f}-{per_s['max']:,.0f}) "
            f"| {entry['p50_ms']['median']:.1f} ms | {entry['p99_ms']['median']:.1f} ms "
            f"| {entry['files']['median']:,.0f} | {entry['events_per_file']['median']:.1f} "
            f"| {versus} |"
        )
    return lines


def table(results: dict[str, Any]) -> list[str]:
    floor, receiver = results["floor"], results["receiver"]
    ratio = receiver["ratio"]
    lines = [
        "",
        f"Receiver: {results['events']:,} delivery reports per run from {results['clients']} "
        f"keep-alive clients (threads in another process), {results['repeats']} repeat(s); "
        "every acknowledgement durable",
        "",
        "| server | acks/s | p50 | p99 | files | acks/s ratio to floor |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, entry, versus in (
        ("floor (a file and an fsync per request)", floor, ""),
        (
            "receiver (group commit)",
            receiver,
            ratio_text(ratio),
        ),
    ):
        per_s = entry["per_s"]
        lines.append(
            f"| {label} | {per_s['median']:,.0f} ({per_s['min']:,.0f}-{per_s['max']:,.0f}) "
            f"| {entry['p50_ms']['median']:.1f} ms | {entry['p99_ms']['median']:.1f} ms "
            f"| {entry['files']['median']:,.0f} | {versus} |"
        )
    lines.append(
        f"\nThe receiver landed {receiver['events_per_file']['median']:.1f} events per file "
        "(median)."
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.receiver")
    parser.add_argument(
        "role", nargs="?", choices=("bench", "bucket", "floor", "load"), default="bench"
    )
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--commit-window-ms", type=float, help="default: the receiver's setting")
    parser.add_argument("--port", type=int)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--url")
    parser.add_argument("--run", default="run")
    args = parser.parse_args(argv)
    if args.role == "floor":
        serve_floor(args.port, args.folder)
    elif args.role == "load":
        print(json.dumps(load(args.url, args.run, args.events, args.clients)))
    elif args.role == "bucket":
        print("\n".join(bucket_table(bucket_scenario(args.events, args.repeats, args.clients))))
    else:
        results = scenario(args.events, args.repeats, args.clients, args.commit_window_ms)
        print("\n".join(table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
