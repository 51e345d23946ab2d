"""Run the receiver: ``python -m messaging_assets.receiver [--host 127.0.0.1] [--port 8787]``;
``python -m messaging_assets.receiver urls`` prints the two URLs to register with the provider."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from messaging_assets.receiver.app import PATHS
from messaging_assets.receiver.landing import ENDPOINTS
from messaging_assets.receiver.server import serve
from messaging_assets.receiver.settings import ReceiverSettings, receiver_settings
from messaging_assets.receiver.storage import open_storage
from messaging_assets.settings import (
    SettingError,
    SettingsFileError,
    check_settings_files,
    variable,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m messaging_assets.receiver",
        description="Receive the provider's delivery reports and inbound messages into the "
        "landing zone.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=("serve", "urls"),
        default="serve",
        help="serve (the default), or print the URLs to register with the provider",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    return parser.parse_args(argv)


def urls(settings: ReceiverSettings) -> list[str]:
    """The two URLs to register, one line each, saying which is which."""
    return [f"{path.replace('-', ' ')}: {settings.url(path)}" for path in PATHS]


def _stop(signum: int, frame: FrameType | None) -> None:
    # uvicorn raises the signal again once it has shut down gracefully: stop quietly then.
    sys.exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_settings_files()
        settings = receiver_settings()
        if args.command == "urls":
            print("\n".join(urls(settings)))
            return 0
        try:
            storage = open_storage(settings.landing_url, ENDPOINTS)
        except OSError as error:
            raise SettingError(
                f"{variable(settings.SECTIONS, 'landing_url')}={settings.landing_url!r}: "
                f"cannot write there ({error.strerror or error})."
            ) from None
    except (SettingError, SettingsFileError) as error:
        print(f"messaging receiver: {error}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    serve(settings, storage, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
