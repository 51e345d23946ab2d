"""A local, realistic imitation of the messaging provider's HTTP API, for tests and benchmarks.

with Sandbox(contacts=1000) as sandbox:
    requests.get(f"{sandbox.url}/byon/contacts/v1", headers={"api_key": "sandbox-key"})
    sandbox.inject("contacts", Fault.RATE_LIMIT, times=2)
"""

from .server import Fault, RecordedRequest, Sandbox, serve_until_signalled

__all__ = ["Fault", "RecordedRequest", "Sandbox", "serve_until_signalled"]
