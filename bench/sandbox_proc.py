"""A sandbox in its own process for the benchmark, with pre-created messages.

``python -m bench.sandbox_proc --contacts N --messages M --latency-ms L --ids-file F``
(and ``--shape provider``, ``--contact-tags`` for the sandbox's provider shape and nested tags)
prints ``READY <url>`` once it answers. The sandbox runs in its own process so that its request
handling (pure Python threads) does not share a GIL with the client being measured; the requestIds
of the pre-created messages go to a file because a list of 100,000 does not fit in an argument.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from messaging_assets.sandbox import SHAPES, Sandbox, serve_until_signalled

API_KEY = "bench-key"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox_proc")
    parser.add_argument("--contacts", type=int, default=200)
    parser.add_argument("--messages", type=int, default=0)
    parser.add_argument("--pending", action="store_true", help="messages not yet final")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--ids-file", type=Path)
    parser.add_argument("--shape", choices=SHAPES, default="data")
    parser.add_argument("--contact-tags", action="store_true")
    args = parser.parse_args(argv)

    # advance_on_lookup=False: a pending message stays pending, so every look-up of it in every
    # repeat returns the same record and repeats measure the same work.
    sandbox = Sandbox(
        api_key=API_KEY,
        shape=args.shape,
        contact_tags=args.contact_tags,
        contacts=args.contacts,
        advance_on_lookup=False,
    )
    ids = sandbox.add_messages(args.messages, final=not args.pending)
    if args.ids_file:
        args.ids_file.write_text(json.dumps(ids))
    if args.latency_ms > 0:
        sandbox.set_latency("messages", args.latency_ms / 1000)
    serve_until_signalled(sandbox, "READY {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
