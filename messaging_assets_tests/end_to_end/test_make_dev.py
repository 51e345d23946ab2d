"""`make dev` as a user runs it: the sandbox, the receiver of its pushes and `dagster dev` come up
(an inbound message the sandbox pushes lands), and Ctrl-C or a SIGTERM to make stops every process
it started within seconds, leaving its ports free. `make dev` and `make
demo` start nothing while one of their ports is taken or another `make dev` runs on their Dagster
home, and say so in one line that names the setting to change."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from messaging_assets.dev.supervisor import ProcessStat, descendants, running
from messaging_assets.receiver import landing
from messaging_assets_tests.conftest import REPO_ROOT, free_port, run_to_its_end, shell_env

STARTUP_TIMEOUT = 120
STOP_TIMEOUT = 10
# A refusal comes before anything starts; what it waits for is Python importing the checks,
# which takes seconds, more on 2 busy cores.
REFUSE_TIMEOUT = 60
# make's own last word when a recipe fails: `make: *** [Makefile:109: dev] Error 1`.
MAKE_FAILED = re.compile(r"make(\[\d+\])?: \*\*\* ")


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except (urllib.error.URLError, ConnectionError):
        return False
    return True


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def refusal(*make_args: str) -> str:
    """`make *make_args` from a shell, which must fail within REFUSE_TIMEOUT saying why in one
    line of its own on stderr, and that line."""
    done = run_to_its_end(["make", *make_args], shell_env(), timeout=REFUSE_TIMEOUT)
    assert done.returncode != 0
    said = [line for line in done.stderr.splitlines() if not MAKE_FAILED.match(line)]
    assert len(said) == 1, done.stderr[-3000:]
    return said[0]


# Each run also starts a second make dev on the same Dagster home while the first serves: on
# the same ports, and on others, where it would have started a second daemon on the home.
@pytest.mark.parametrize(
    ("send_signal", "second_on_same_ports"),
    [
        pytest.param(lambda make: os.killpg(make.pid, signal.SIGINT), True, id="ctrl-c"),
        pytest.param(lambda make: make.send_signal(signal.SIGTERM), False, id="sigterm-to-make"),
    ],
)
def test_make_dev_refuses_a_second_on_its_home_and_stops_every_process_it_started_in_seconds(
    send_signal: Callable[[subprocess.Popen], None],
    second_on_same_ports: bool,
    dagster_home: Path,
    tmp_path: Path,
):
    ui_port, sandbox_port, receiver_port = free_port(), free_port(), free_port()
    landing_dir = tmp_path / "landing"
    log_path = tmp_path / "make_dev.log"
    with log_path.open("w") as log:
        make = subprocess.Popen(
            ["make", "dev", f"DAGSTER_PORT={ui_port}", f"SANDBOX_PORT={sandbox_port}",
             f"RECEIVER_PORT={receiver_port}", f"LANDING_DIR={landing_dir}",
             f"DAGSTER_HOME_DIR={dagster_home}"],
            cwd=REPO_ROOT, env=shell_env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )  # fmt: skip
    started: dict[int, ProcessStat] = {}
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (
            answers(f"http://127.0.0.1:{ui_port}/server_info")
            and answers(f"http://127.0.0.1:{sandbox_port}/_sandbox/stats")
            and listening(receiver_port)
        ):
            assert make.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "make dev did not serve the UI, sandbox, receiver"
            time.sleep(1)
        started = descendants(make.pid)
        (supervisor,) = [pid for pid, stat in started.items() if stat.parent == make.pid]
        # The sandbox pushes to the receiver, which lands: one message, and the same again.
        push = f"http://127.0.0.1:{sandbox_port}/_sandbox/inbound-messages?count=1"
        urllib.request.urlopen(urllib.request.Request(push, method="POST"), timeout=10).close()
        while len(list(landing.read(landing_dir, landing.INBOUND_MESSAGES))) < 2:
            assert time.monotonic() < deadline, "the inbound message did not land"
            time.sleep(0.2)

        ports = (ui_port, sandbox_port, receiver_port)
        second = ports if second_on_same_ports else (free_port(), free_port(), free_port())
        said = refusal("dev", f"DAGSTER_PORT={second[0]}", f"SANDBOX_PORT={second[1]}",
                       f"RECEIVER_PORT={second[2]}",
                       f"DAGSTER_HOME_DIR={dagster_home}")  # fmt: skip
        assert said == (
            f"Another make dev (pid {supervisor}) runs on the Dagster home {dagster_home}. "
            "Stop it, or give this one a home of its own with DAGSTER_HOME_DIR."
        )
        assert make.poll() is None

        send_signal(make)

        deadline = time.monotonic() + STOP_TIMEOUT
        while make.poll() is None or running(started):
            assert time.monotonic() < deadline, (
                f"still running {STOP_TIMEOUT} s after the signal: "
                f"{sorted(running(started))}\n{log_path.read_text()[-3000:]}"
            )
            time.sleep(0.1)
        assert not any(listening(port) for port in ports)
    finally:
        for pid in running(started):
            os.kill(pid, signal.SIGKILL)
        if make.poll() is None:
            make.kill()
        make.wait()


@pytest.mark.parametrize(
    ("target", "setting"),
    [
        ("dev", "DAGSTER_PORT"),
        ("dev", "SANDBOX_PORT"),
        ("dev", "RECEIVER_PORT"),
        ("demo", "SANDBOX_PORT"),
        ("demo", "RECEIVER_PORT"),
    ],
)
def test_a_taken_port_is_refused_in_one_line_naming_it_and_its_setting(
    target: str, setting: str, dagster_home: Path
):
    ports = {"DAGSTER_PORT": free_port(), "SANDBOX_PORT": free_port(), "RECEIVER_PORT": free_port()}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports[setting]))
        taken.listen()

        said = refusal(target, *(f"{s}={port}" for s, port in ports.items()),
                       f"DAGSTER_HOME_DIR={dagster_home}")  # fmt: skip

    assert f"Port {ports[setting]} " in said
    assert f"set {setting} to a free port" in said
    # Nothing half-started: no server left on the other port.
    assert not any(listening(port) for s, port in ports.items() if s != setting)
