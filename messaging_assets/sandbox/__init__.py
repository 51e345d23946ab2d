"""A local, realistic imitation of the messaging provider's HTTP API, for tests and benchmarks.

with Sandbox(contacts=1000) as sandbox:
    requests.get(f"{sandbox.url}/byon/contacts/v1", headers={"api_key": "sandbox-key"})
    sandbox.inject("contacts", Fault.RATE_LIMIT, times=2)

with Sandbox(shape="provider") as sandbox:  # the provider's published contract
    requests.get(
        f"{sandbox.url}/byon/phonebook/v1/numbers",
        params={"page": 0, "size": 3000},
        headers={"apikey": "sandbox-key"},
    )

with Sandbox(inbound_url=receiver_url) as sandbox:  # pushes, as the provider does
    # a send with callbackUrl=... has its delivery reports posted there as it moves on
    sandbox.push_inbound(3)
"""

from .pusher import PushAttempt, ReportTiming, RetrySchedule
from .server import (
    HOSTILE_REQUEST_ID,
    OMIT,
    PAGE_SIZE_LIMIT,
    SHAPES,
    Fault,
    RecordedRequest,
    Sandbox,
    serve_until_signalled,
)

__all__ = [
    "HOSTILE_REQUEST_ID",
    "OMIT",
    "PAGE_SIZE_LIMIT",
    "SHAPES",
    "Fault",
    "PushAttempt",
    "RecordedRequest",
    "ReportTiming",
    "RetrySchedule",
    "Sandbox",
    "serve_until_signalled",
]
