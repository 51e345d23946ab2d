"""Landed delivery reports into the warehouse: `pushed_data_job` through Dagster against DuckDB
reading the same files and merging them itself (the floor), in the same run.

    python -m bench.pushed [--reports 100000] [--per-file 10] [--landing FOLDER]

lands the files alone (to profile the loader on them); `make bench` (scenario `pushed`,
bench/run.py) lands them and runs both loads.

The files are written once per bench by the receiver's own writer (`landing.event_line`,
`landing.file_name`, `storage.LocalFolder`: named, flushed and renamed as the receiver does),
`--per-file` events each, as the receiver's group commit landed them under 20 concurrent
clients (bench/receiver.py). The reports are the provider's status objects: every message
ACCEPTED, some BUFFERED, then final, with one to three parts; some arrive before an earlier
status, and some land twice (a retry after an answer the provider did not get), in a later file.

Each repeat loads all of them into a fresh DuckDB file, twice: the floor (`floor.load_pushed`, one
DuckDB transaction: `read_json` over the files, the bodies parsed by DuckDB's JSON functions,
insert-only into `delivery_reports` and its parts by a key, then each message's best report
merged into `messages` and its parts by rank) and the project (`pushed_data_job` in-process, its
steps' time). Both end with as many rows in the four tables.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from messaging_assets.receiver import landing
from messaging_assets.receiver.storage import LocalFolder

# Events per landed file: what the receiver's group commit landed with 20 concurrent clients.
PER_FILE = 10
DUPLICATE_SHARE = 0.02
OUT_OF_ORDER_SHARE = 0.02
FINAL = ("DELIVERED",) * 18 + ("UNDELIVERABLE", "EXPIRED")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S%z")


def status_object(request_id: str, status: str, sent: datetime, parts: int) -> dict[str, Any]:
    """A delivery report as the provider posts it: the status object at the root."""
    final = status not in ("ACCEPTED", "BUFFERED")
    done = _stamp(sent + timedelta(seconds=4)) if final else None
    local = timezone(timedelta(hours=1))
    return {
        "requestId": request_id,
        "status": status,
        "reference": f"order-{request_id}",
        "from": "MyCompany",
        "to": "+4915112345678",
        "submitDate": _stamp(sent.astimezone(local)),
        "doneDate": done,
        "errorCode": "0" if status != "UNDELIVERABLE" else "3",
        "errorReason": None if status != "UNDELIVERABLE" else "Absent subscriber",
        "overallPrice": f"{0.005 * parts:.3f}",
        "size": parts,
        "mccmnc": "26201",
        "ttid": "77292",
        "parts": [
            {
                "partId": f"{request_id}-{n}",
                "currency": "EUR",
                "price": "0.005",
                "priceEffective": "2026-01-01T00:00:00+0100",
                "sentDate": _stamp(sent.astimezone(local) + timedelta(seconds=1)),
                "doneDate": done,
                "deliveryState": status,
                "errorCode": "0",
                "statusText": f"Your code is {n:06d}",
            }
            for n in range(1, parts + 1)
        ],
    }


def reports(
    count: int, seed: int, start: datetime, prefix: str = "r"
) -> list[tuple[datetime, bytes]]:
    """`count` delivery reports as (received at, body), in the order they land; requestIds
    `<prefix>-<n>`."""
    rng = random.Random(seed)
    arriving: list[tuple[datetime, bytes]] = []
    n = 0
    while len(arriving) < count:
        request_id = f"{prefix}-{n:07d}"
        sent = start + timedelta(seconds=n * 0.05)
        parts = rng.choices((1, 2, 3), weights=(80, 15, 5))[0]
        statuses = ["ACCEPTED", *(["BUFFERED"] if rng.random() < 0.15 else []), rng.choice(FINAL)]
        for step, status in enumerate(statuses):
            at = sent + timedelta(seconds=2 * step + rng.uniform(0, 1))
            if rng.random() < OUT_OF_ORDER_SHARE:
                at -= timedelta(seconds=5)  # before the status it follows
            body = json.dumps(status_object(request_id, status, sent, parts)).encode()
            arriving.append((at, body))
            if rng.random() < DUPLICATE_SHARE:
                arriving.append((at + timedelta(seconds=30), body))
        n += 1
    arriving.sort(key=lambda report: report[0])
    return arriving[:count]


def land(
    folder: Path, count: int, per_file: int, seed: int = 7, prefix: str = "r"
) -> dict[str, Any]:
    """Lands `count` reports in `folder` as the receiver does, `per_file` a file; four files
    written at once, as the receiver's group commit writes them."""
    storage = LocalFolder(folder, landing.ENDPOINTS)
    receiver = landing.receiver_id()
    arriving = reports(count, seed, datetime.now(timezone.utc) - timedelta(hours=2), prefix)
    files = []
    for sequence, first in enumerate(range(0, len(arriving), per_file), start=1):
        batch = arriving[first : first + per_file]
        lines = b"".join(
            landing.event_line(at, landing.DELIVERY_REPORTS, body, None) for at, body in batch
        )
        files.append((landing.file_name(batch[-1][0], receiver, sequence), lines))
    with ThreadPoolExecutor(4) as pool:
        for _ in pool.map(lambda file: storage.write(landing.DELIVERY_REPORTS, *file), files):
            pass
    messages = len({json.loads(body)["requestId"] for _, body in arriving})
    return {"reports": len(arriving), "files": len(files), "messages": messages}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pushed")
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--per-file", type=int, default=PER_FILE)
    parser.add_argument("--landing", type=Path)
    args = parser.parse_args(argv)
    folder = args.landing or Path(tempfile.mkdtemp(prefix="bench-landing-"))
    print(json.dumps({"landing": str(folder), **land(folder, args.reports, args.per_file)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
