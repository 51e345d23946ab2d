"""`python -m messaging_assets.sandbox.wait URL`: block until the sandbox answers (Makefile use)."""

from __future__ import annotations

import sys
import time
import urllib.request


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"sandbox at {url} did not answer within {timeout:.0f}s") from None
            time.sleep(0.1)


if __name__ == "__main__":
    wait_until_up(sys.argv[1])
