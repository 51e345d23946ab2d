"""Run the sandbox as a process: ``python -m messaging_assets.sandbox --port 8765``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .pusher import PROVIDER_RETRIES, REPORT_TIMING, ReportTiming, RetrySchedule
from .server import SHAPES, Sandbox, serve_until_signalled


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m messaging_assets.sandbox",
        description="Serve a local imitation of the messaging provider's API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default="sandbox-key")
    parser.add_argument(
        "--api-key-header", help="default: api_key (shape data), apikey (shape provider)"
    )
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        default="data",
        help="data: the neutral {'data': ...} shape; provider: the provider's published contract",
    )
    parser.add_argument(
        "--send-answer",
        choices=("object", "empty-201"),
        default="object",
        help="a send answers its message (200) or 201 with no body",
    )
    parser.add_argument(
        "--envelopes", type=int, default=1, help="envelopes per list answer (shape provider)"
    )
    parser.add_argument(
        "--contact-tags", action="store_true", help="contacts carry a nested tags object"
    )
    parser.add_argument(
        "--ignore-paging",
        action="store_true",
        help="the phone book always answers its first page (shape provider)",
    )
    pushes = parser.add_argument_group(
        "pushes", "what the sandbox posts, as the provider does (seconds unless said otherwise)"
    )
    pushes.add_argument(
        "--inbound-url",
        help="where inbound messages are pushed (POST /_sandbox/inbound-messages?count=N)",
    )
    pushes.add_argument(
        "--accepted-after",
        type=float,
        default=REPORT_TIMING.accepted_after,
        help="a send with a callbackUrl: its ACCEPTED report this long after the send",
    )
    pushes.add_argument(
        "--changed-after",
        type=float,
        default=REPORT_TIMING.changed_after,
        help="then its next state (BUFFERED or final) this long after that",
    )
    pushes.add_argument(
        "--expired-after",
        type=float,
        default=REPORT_TIMING.expired_after,
        help="and a BUFFERED message's EXPIRED state this long after that (48 h)",
    )
    pushes.add_argument("--retry-every", type=float, default=PROVIDER_RETRIES.every)
    pushes.add_argument(
        "--retry-pause-after",
        type=int,
        default=PROVIDER_RETRIES.pause_after,
        help="failures in a row before a pause",
    )
    pushes.add_argument("--retry-pause", type=float, default=PROVIDER_RETRIES.pause)
    pushes.add_argument("--retry-give-up-after", type=float, default=PROVIDER_RETRIES.give_up_after)
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
        shape=args.shape,
        send_answer=args.send_answer.replace("-", "_"),
        envelopes=args.envelopes,
        contact_tags=args.contact_tags,
        ignore_paging=args.ignore_paging,
        contacts=args.contacts,
        phones=args.phones,
        registrations=args.registrations,
        seed=args.seed,
        inbound_url=args.inbound_url,
        report_timing=ReportTiming(args.accepted_after, args.changed_after, args.expired_after),
        retry=RetrySchedule(
            every=args.retry_every,
            pause_after=args.retry_pause_after,
            pause=args.retry_pause,
            give_up_after=args.retry_give_up_after,
        ),
    )
    serve_until_signalled(sandbox, "sandbox listening on {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
