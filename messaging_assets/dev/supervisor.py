"""`make dev`: the sandbox, the receiver of its pushes and `dagster dev` pointed at both, stopped
together within seconds.

``python -m messaging_assets.dev --port 3000 --sandbox-port 8765 --receiver-port 8787
--api-key sandbox-key``

The receiver gets a token made for this run, and `dagster dev` the receiver's URL with it
(SOURCES__MESSAGING__RECEIVER__PUBLIC_URL and TOKEN): every send asks the sandbox for its delivery
reports, which it pushes to the receiver as the messages move on, and inbound messages pushed on
request (POST /_sandbox/inbound-messages) go there too; both land under `--landing`.

Each child runs in a process group of its own, so a signal reaches it only through this process,
and this process can signal everything the child started at once: `dagster dev` starts a
webserver, a daemon and code servers (which start run workers). Ctrl-C, SIGTERM (what make passes
on to its recipe) and SIGHUP all stop every child: `dagster dev` gets the SIGINT a terminal
would send to all its processes; what still runs after GRACE_SECONDS is killed.

Nothing starts unless everything can (`preflight.py`): the settings files parse, every port is
free, and no other `make dev` runs on the same DAGSTER_HOME, whose lock this process
then holds until it ends. Otherwise one line on stderr says why and which Make setting to change.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from messaging_assets.dev.preflight import Refused, check_before_start, hold_dagster_home
from messaging_assets.receiver.settings import INBOUND_MESSAGES_PATH
from messaging_assets.sandbox.server import INBOUND_PATH

# `dagster dev` stops in 2 to 5 s when idle; on its own it would wait up to 60 s for its webserver
# and daemon, and the daemon up to 30 s for each of its threads.
GRACE_SECONDS = 5.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m messaging_assets.dev",
        description="Run the sandbox, the receiver and `dagster dev` against them until Ctrl-C or "
        "SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="where all three listen")
    parser.add_argument("--port", type=int, default=3000, help="the Dagster UI's port")
    parser.add_argument("--sandbox-port", type=int, default=8765)
    parser.add_argument("--receiver-port", type=int, default=8787)
    parser.add_argument("--landing", default="data/landing", help="where the receiver lands")
    parser.add_argument("--api-key", default="sandbox-key", help="the sandbox's key")
    return parser.parse_args(argv)


def start(command: Sequence[str], env: Mapping[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, start_new_session=True)


def stop(processes: Mapping[subprocess.Popen, signal.Signals]) -> None:
    """Send each process group its signal, wait for all of them up to GRACE_SECONDS, then kill
    the groups that still have a process, and any process started below this one that is still
    running: under load, processes of `dagster dev` were seen outliving their group's signals."""
    started = descendants(os.getpid())
    for process, signum in processes.items():
        signal_group(process, signum)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline:
        # Every group in each round, not up to the first alive: group_alive reaps its leader.
        alive = [process for process in processes if group_alive(process)]
        if not alive and not running(started):
            break
        time.sleep(0.1)
    for process in processes:
        signal_group(process, signal.SIGKILL)
        process.wait()
    # Also what was started after the signal: as the subreaper, this process has inherited any
    # orphan of its children.
    for pid in running(started) | set(descendants(os.getpid())):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def become_subreaper() -> None:
    """Have the processes our children leave behind (their parents gone) reparented to this one
    rather than to init, so that stop() still finds them (Linux; elsewhere nothing changes)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


@dataclass(frozen=True)
class ProcessStat:
    parent: int
    # Clock ticks after boot: a process id given again to a new process comes with a later one.
    started: int


def process_stat(pid: int) -> ProcessStat | None:
    """A process's parent and start time from /proc; None once it is gone or has finished (a
    zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return None if fields[0] == "Z" else ProcessStat(int(fields[1]), int(fields[19]))
    except (OSError, ValueError, IndexError):
        return None


def descendants(pid: int) -> dict[int, ProcessStat]:
    """Every running process below `pid` (none where there is no /proc)."""
    stats = {}
    for entry in Path("/proc").glob("[0-9]*"):
        if (stat := process_stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    found, frontier = {}, {pid}
    while frontier:
        children = {child: s for child, s in stats.items() if s.parent in frontier}
        found |= children
        frontier = set(children)
    return found


def running(processes: Mapping[int, ProcessStat]) -> set[int]:
    """Those of `processes` still running, and not replaced by a new process of the same id."""
    return {
        pid
        for pid, stat in processes.items()
        if (now := process_stat(pid)) is not None and now.started == stat.started
    }


def signal_group(process: subprocess.Popen, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reaps the group's leader, which would otherwise count as alive
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as held:
        try:
            # Without DAGSTER_HOME, `dagster dev` makes a home of its own, shared with nobody.
            if home := os.environ.get("DAGSTER_HOME"):
                held.enter_context(hold_dagster_home(Path(home)))
            check_before_start(
                args.host,
                {
                    "DAGSTER_PORT": args.port,
                    "SANDBOX_PORT": args.sandbox_port,
                    "RECEIVER_PORT": args.receiver_port,
                },
            )
        except Refused as refused:
            print(refused, file=sys.stderr)
            return 1
        return run(args)


def run(args: argparse.Namespace) -> int:
    """Start the children and supervise them until a stop signal, or until one exits."""
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    become_subreaper()

    sandbox_url = f"http://{args.host}:{args.sandbox_port}"
    receiver_url = f"http://{args.host}:{args.receiver_port}"
    # Made for this run: the sandbox is the only one that posts to the receiver.
    token = secrets.token_urlsafe(32)
    receiving = {
        "SOURCES__MESSAGING__RECEIVER__TOKEN": token,
        "SOURCES__MESSAGING__RECEIVER__LANDING_URL": args.landing,
    }
    receiver = start(
        [sys.executable, "-m", "messaging_assets.receiver", "--host", args.host,
         "--port", str(args.receiver_port)],
        env={**os.environ, **receiving},
    )  # fmt: skip
    sandbox = start(
        [sys.executable, "-m", "messaging_assets.sandbox", "--host", args.host,
         "--port", str(args.sandbox_port), "--api-key", args.api_key,
         "--inbound-url", f"{receiver_url}/{token}/{INBOUND_MESSAGES_PATH}"]
    )  # fmt: skip
    dagster = start(
        [sys.executable, "-m", "dagster", "dev", "-h", args.host, "-p", str(args.port)],
        env={
            **os.environ,
            **receiving,
            "SOURCES__MESSAGING__BASE_URL": sandbox_url,
            "SOURCES__MESSAGING__API_KEY": args.api_key,
            "SOURCES__MESSAGING__RECEIVER__PUBLIC_URL": receiver_url,
        },
    )
    print(
        f"Sends ask the sandbox for delivery reports, pushed to the receiver on {receiver_url} "
        f"(landing in {args.landing}); inbound messages: curl -X POST "
        f"{sandbox_url}{INBOUND_PATH}?count=3",
        file=sys.stderr,
        flush=True,
    )
    children = {"sandbox": sandbox, "receiver": receiver, "dagster dev": dagster}
    exited: dict[str, int] = {}
    try:
        # A timed wait lets the main thread run the signal handler promptly.
        while not stop_requested.wait(0.2):
            exited = {name: p.returncode for name, p in children.items() if p.poll() is not None}
            if exited:
                break
    finally:
        print("Stopping dagster dev, the sandbox and the receiver...", file=sys.stderr, flush=True)
        stop({dagster: signal.SIGINT, sandbox: signal.SIGTERM, receiver: signal.SIGTERM})
    for name, code in exited.items():
        print(f"{name} exited by itself (code {code})", file=sys.stderr)
    return 1 if exited else 0
