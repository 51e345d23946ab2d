"""Stopping a child process the bench started."""

from __future__ import annotations

import signal
import subprocess


def stop(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, so that the child shuts down cleanly (uvicorn finishes its requests, the receiver
    writes what is pending); SIGKILL if it has not exited within `timeout` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
