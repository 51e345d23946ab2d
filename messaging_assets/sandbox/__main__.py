"""Run the sandbox as a process: ``python -m messaging_assets.sandbox --port 8765``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .server import Sandbox, serve_until_signalled


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m messaging_assets.sandbox",
        description="Serve a local imitation of the messaging provider's API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default="sandbox-key")
    parser.add_argument("--api-key-header", default="api_key")
    parser.add_argument("--contacts", type=int, default=200)
    parser.add_argument("--phones", type=int, default=50)
    parser.add_argument("--registrations", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sandbox = Sandbox(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        api_key_header=args.api_key_header,
        contacts=args.contacts,
        phones=args.phones,
        registrations=args.registrations,
        seed=args.seed,
    )
    serve_until_signalled(sandbox, "sandbox listening on {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
