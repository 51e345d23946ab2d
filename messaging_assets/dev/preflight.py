"""What `make dev` and `make demo` make sure of before they start anything, each failure told in
one line that names what to change: the settings files parse, their ports are free, and (`make
dev`) no other `make dev` runs on their Dagster home.

``python -m messaging_assets.dev.preflight --sandbox-port 8765 --receiver-port 8787`` is `make
demo`'s first step;
messaging_assets.dev runs the same checks and holds its Dagster home for as long as it runs.

Another `make dev` is told by a lock file in the Dagster home, `make-dev.lock`, which a running
`make dev` holds (flock) and in which it writes its process id. The kernel lets go of the lock when
that process ends, however it ends, so a lock is never stale. Dagster's own record of a running
daemon, its heartbeats in the instance's storage, would not do: they are written every 30 s and
stay behind when the daemon stops, so they cannot tell a daemon stopped a moment ago from one
still running, nor say which process it is.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from messaging_assets.settings import SettingError, SettingsFileError, check_settings_files

HOME_LOCK = "make-dev.lock"


class Refused(Exception):
    """Not starting; the message (one line) says why and what to change."""


def check_before_start(host: str, ports: Mapping[str, int]) -> None:
    """Raise Refused unless the settings files parse (and dlt's own `[runtime]` settings in them
    are of the right type), and every port (by the Make setting that chooses it) is free on
    `host`."""
    try:
        check_settings_files()
    except (SettingsFileError, SettingError) as error:
        raise Refused(str(error)) from None
    # All held at once: two settings naming the same port are refused too.
    with contextlib.ExitStack() as held:
        for setting, port in ports.items():
            probe = held.enter_context(socket.socket())
            # As the sandbox and Dagster's webserver bind: a port a server that just stopped
            # left in TIME_WAIT counts as free, one something listens on does not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                raise Refused(
                    f"Port {port} on {host} ({setting}) is not free: {error.strerror}. Stop what "
                    f"listens there, or set {setting} to a free port."
                ) from None


def hold_dagster_home(home: Path) -> IO[str]:
    """Take `home` for this process (a `make dev`) until it ends or the returned file is closed;
    raise Refused, naming the `make dev` that has it, while another one has it."""
    # Open for as long as this process holds the home: the caller closes it.
    lock = open(home / HOME_LOCK, "a+")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        # Empty for the moment between the other one's lock and its write.
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise Refused(
            f"Another make dev (pid {holder}) runs on the Dagster home {home}. Stop it, or give "
            "this one a home of its own with DAGSTER_HOME_DIR."
        ) from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m messaging_assets.dev.preflight",
        description="Exit non-zero, saying why in one line, unless `make demo` can start.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--sandbox-port", type=int, default=8765)
    parser.add_argument("--receiver-port", type=int, default=8787)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_before_start(
            args.host, {"SANDBOX_PORT": args.sandbox_port, "RECEIVER_PORT": args.receiver_port}
        )
    except Refused as refused:
        print(refused, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
