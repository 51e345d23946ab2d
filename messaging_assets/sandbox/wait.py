"""`python -m messaging_assets.sandbox.wait URL [--inbound N] [--reply NUMBER:TEXT ...] [--pushed]`
(Makefile use): block until the sandbox answers; with `--inbound N`, have it push N inbound
messages; with `--reply`, a reply from NUMBER saying TEXT (STOP, START, ...), each in turn; with
`--pushed`, then block until every push it has made was accepted (answered 2xx) and no timer is
left to move a message on."""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence

from .server import INBOUND_PATH, STATS_PATH


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}{STATS_PATH}", timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"sandbox at {url} did not answer within {timeout:.0f}s") from None
            time.sleep(0.1)


def push_inbound(url: str, count: int) -> list[str]:
    """Have the sandbox push `count` inbound messages; the requestIds of what it pushed."""
    request = urllib.request.Request(f"{url}{INBOUND_PATH}?count={count}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["pushed"]


def push_reply(url: str, sender: str, text: str) -> str:
    """Have the sandbox push a reply from `sender` saying `text`; its requestId."""
    query = urllib.parse.urlencode({"from": sender, "text": text})
    request = urllib.request.Request(f"{url}{INBOUND_PATH}?{query}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        (request_id,) = json.load(answer)["pushed"]
        return request_id


def wait_until_pushed(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{url}{STATS_PATH}", timeout=5) as answer:
            pushes = json.load(answer)["pushes"]
        if pushes["waiting"] == 0 and pushes["scheduled"] == 0:
            return
        if time.monotonic() > deadline:
            raise SystemExit(
                f"sandbox at {url}: {pushes['waiting']} push(es) still not accepted and "
                f"{pushes['scheduled']} state change(s) to come after {timeout:.0f}s: is the "
                "receiver up?"
            )
        time.sleep(0.2)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m messaging_assets.sandbox.wait")
    parser.add_argument("url")
    parser.add_argument("--inbound", type=int, default=0, help="inbound messages to push")
    parser.add_argument(
        "--reply",
        action="append",
        default=[],
        metavar="NUMBER:TEXT",
        help="a reply to push, e.g. '+4915112345678:STOP' (repeatable, pushed in turn)",
    )
    parser.add_argument("--pushed", action="store_true", help="until every push is accepted")
    args = parser.parse_args(argv)
    wait_until_up(args.url)
    if args.inbound:
        push_inbound(args.url, args.inbound)
    for reply in args.reply:
        sender, colon, text = reply.partition(":")
        if not colon:
            parser.error(f"--reply {reply!r}: expected NUMBER:TEXT, e.g. '+4915112345678:STOP'")
        push_reply(args.url, sender, text)
    if args.pushed:
        wait_until_pushed(args.url)


if __name__ == "__main__":
    main(sys.argv[1:])
