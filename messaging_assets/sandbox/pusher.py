"""What the sandbox pushes, as the provider does: delivery reports to a send's `callbackUrl`,
inbound messages to the URL registered for them. Each push is a POST of a JSON body, retried until
it is answered 2xx: every `every` seconds, with a pause of `pause` seconds after each
`pause_after` failures in a row, given up `give_up_after` seconds after its first attempt. The
provider documents this schedule for inbound messages; its reports are retried the same way here.

One background thread sends them, one at a time, and runs the timers that move pushed messages on;
it stops with the sandbox. Only the standard library, as the rest of the sandbox.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["delivery_report", "inbound_message"]


@dataclass(frozen=True)
class ReportTiming:
    """When a message that asked for reports moves on, in seconds: its ACCEPTED report after the
    send, then its next state (BUFFERED for a message bound to expire, else its final state), and
    a BUFFERED message's EXPIRED state at the end of its validity (48 h)."""

    accepted_after: float = 1.0
    changed_after: float = 5.0
    expired_after: float = 48 * 3600.0


@dataclass(frozen=True)
class RetrySchedule:
    """How a push is retried (the provider's schedule by default), in seconds; `timeout` bounds
    each attempt."""

    every: float = 10.0
    pause_after: int = 100
    pause: float = 600.0
    give_up_after: float = 48 * 3600.0
    timeout: float = 10.0


REPORT_TIMING = ReportTiming()
PROVIDER_RETRIES = RetrySchedule()


@dataclass(frozen=True)
class PushAttempt:
    """One POST of a push: which push (numbered from 1 in the order they were made), the HTTP
    status it was answered (0: none, e.g. connection refused or timed out), its attempt number,
    and when it was made (time.monotonic())."""

    push: int
    kind: Kind
    request_id: str
    status: int
    attempt: int
    at: float


@dataclass
class _Push:
    number: int
    kind: Kind
    request_id: str
    url: str  # holds the receiver's token: never logged
    body: bytes
    first_attempt: float | None = None
    failures: int = 0


@dataclass(order=True)
class _Due:
    at: float
    sequence: int
    # A push to make, or a timer to run (which may schedule more).
    job: _Push | Callable[[], None] = field(compare=False)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer that is not 2xx, as the provider counts it: not followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# Not the environment's proxies: the sandbox pushes to what the test or demo runs locally.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


class Pusher:
    """The background thread: pushes and timers, each at its time."""

    def __init__(self, retry: RetrySchedule) -> None:
        self.retry = retry
        self._queue: list[_Due] = []
        self._sequence = itertools.count()
        self._numbers = itertools.count(1)
        self._condition = threading.Condition()
        self._stopping = False
        # What the thread is doing right now: "push", "timer" or nothing.
        self._busy: str | None = None
        self._thread: threading.Thread | None = None
        self._attempts: list[PushAttempt] = []
        self._counts: Counter[str] = Counter()

    def start(self, name: str) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop at once: what is due later is dropped; a POST in flight ends within `timeout`."""
        with self._condition:
            self._stopping = True
            self._queue.clear()
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=self.retry.timeout + 5)
            self._thread = None

    def later(self, delay: float, timer: Callable[[], None]) -> None:
        """Run `timer` in the pushing thread after `delay` seconds."""
        self._schedule(time.monotonic() + delay, timer)

    def push(self, kind: Kind, request_id: str, url: str, body: bytes) -> None:
        """POST `body` to `url` now, then again as the schedule says until it is answered 2xx."""
        push = _Push(next(self._numbers), kind, request_id, url, body)
        self._schedule(time.monotonic(), push)

    @property
    def attempts(self) -> list[PushAttempt]:
        with self._condition:
            return list(self._attempts)

    def stats(self) -> dict[str, Any]:
        """Pushes delivered (answered 2xx), failed attempts, pushes given up; pushes waiting for
        their next attempt (`waiting`) and timers still to run (`scheduled`), a push or timer in
        progress counted in its kind."""
        with self._condition:
            pushes = sum(isinstance(due.job, _Push) for due in self._queue)
            timers = len(self._queue) - pushes
            busy = self._busy
            return {
                "delivered": self._counts["delivered"],
                "failed_attempts": self._counts["failed"],
                "given_up": self._counts["given_up"],
                "waiting": pushes + (busy == "push"),
                "scheduled": timers + (busy == "timer"),
            }

    def _schedule(self, at: float, job: _Push | Callable[[], None]) -> None:
        with self._condition:
            if self._stopping:
                return
            heapq.heappush(self._queue, _Due(at, next(self._sequence), job))
            self._condition.notify_all()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopping:
                    wait = self._queue[0].at - time.monotonic() if self._queue else None
                    if wait is not None and wait <= 0:
                        break
                    self._condition.wait(wait)
                if self._stopping:
                    return
                job = heapq.heappop(self._queue).job
                self._busy = "push" if isinstance(job, _Push) else "timer"
            try:
                if isinstance(job, _Push):
                    self._attempt(job)
                else:
                    job()
            finally:
                with self._condition:
                    self._busy = None

    def _attempt(self, push: _Push) -> None:
        now = time.monotonic()
        if push.first_attempt is None:
            push.first_attempt = now
        status = _post(push.url, push.body, self.retry.timeout)
        with self._condition:
            attempt = push.failures + 1
            self._attempts.append(
                PushAttempt(push.number, push.kind, push.request_id, status, attempt, now)
            )
            if 200 <= status < 300:
                self._counts["delivered"] += 1
                return
            self._counts["failed"] += 1
        push.failures += 1
        paused = push.failures % self.retry.pause_after == 0
        next_at = time.monotonic() + (self.retry.pause if paused else self.retry.every)
        if next_at - push.first_attempt > self.retry.give_up_after:
            with self._condition:
                self._counts["given_up"] += 1
            return
        self._schedule(next_at, push)


def _post(url: str, body: bytes, timeout: float) -> int:
    """The status a POST was answered, 0 when it was not answered at all."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "messaging-sandbox/1.0"},
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code
    except (OSError, ValueError, http.client.HTTPException):
        # Refused, reset, timed out, garbled, or not a URL urllib can reach: try again later.
        return 0
