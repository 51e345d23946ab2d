"""`make dev` as a user runs it: the sandbox and `dagster dev` come up, and Ctrl-C or a SIGTERM to
make stops every process it started within seconds, leaving its ports free."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from messaging_assets.dev.supervisor import ProcessStat, descendants, running
from messaging_assets_tests.conftest import REPO_ROOT, free_port

STARTUP_TIMEOUT = 120
STOP_TIMEOUT = 10


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except (urllib.error.URLError, ConnectionError):
        return False
    return True


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    "send_signal",
    [
        pytest.param(lambda make: os.killpg(make.pid, signal.SIGINT), id="ctrl-c"),
        pytest.param(lambda make: make.send_signal(signal.SIGTERM), id="sigterm-to-make"),
    ],
)
def test_make_dev_stops_every_process_it_started_within_seconds(
    send_signal, dagster_home: Path, tmp_path: Path
):
    ui_port, sandbox_port = free_port(), free_port()
    log_path = tmp_path / "make_dev.log"
    # As from a shell, not as a sub-make of `make test`.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    with log_path.open("w") as log:
        make = subprocess.Popen(
            ["make", "dev", f"DAGSTER_PORT={ui_port}", f"SANDBOX_PORT={sandbox_port}",
             f"DAGSTER_HOME_DIR={dagster_home}"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )  # fmt: skip
    started: dict[int, ProcessStat] = {}
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (
            answers(f"http://127.0.0.1:{ui_port}/server_info")
            and answers(f"http://127.0.0.1:{sandbox_port}/_sandbox/stats")
        ):
            assert make.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "make dev did not serve the UI and the sandbox"
            time.sleep(1)
        started = descendants(make.pid)

        send_signal(make)

        deadline = time.monotonic() + STOP_TIMEOUT
        while make.poll() is None or running(started):
            assert time.monotonic() < deadline, (
                f"still running {STOP_TIMEOUT} s after the signal: "
                f"{sorted(running(started))}\n{log_path.read_text()[-3000:]}"
            )
            time.sleep(0.1)
        assert not listening(ui_port)
        assert not listening(sandbox_port)
    finally:
        for pid in running(started):
            os.kill(pid, signal.SIGKILL)
        if make.poll() is None:
            make.kill()
        make.wait()
