"""HTTP sessions for the API: dlt's retrying requests client, with its `[runtime]` settings.

dlt's client retries 429 (honouring `Retry-After`, capped at `request_max_retry_delay`), 5xx,
timeouts and dropped connections with exponential backoff, `request_max_attempts` times. The send
endpoint bills on arrival, so its session retries only what certainly never arrived.
"""

from __future__ import annotations

import os
from typing import Any

from dlt.sources.helpers.requests import Client, Session
from requests import PreparedRequest, Response
from requests.auth import AuthBase
from requests.exceptions import ConnectionError, ConnectTimeout
from requests.utils import get_environ_proxies
from urllib3.exceptions import NewConnectionError

KEY_SETTING = "SOURCES__MESSAGING__API_KEY"
KEY_PLACES = f"{KEY_SETTING} (or api_key under [sources.messaging] in .dlt/secrets.toml)"


class ApiKeyProblem(RuntimeError):
    """The configured key cannot be sent. The message never shows the key."""


class HeaderKey(AuthBase):
    """The API key in its header, checked when the first request leaves: a code location loads
    without a key, and a run without one fails before anything is sent."""

    def __init__(self, key: str | None, header: str) -> None:
        self._key = (key or "").strip()
        self.header = header

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        if not self._key:
            raise ApiKeyProblem(
                f"messaging: no API key configured. Set {KEY_PLACES}; see "
                ".dlt/secrets.toml.example."
            )
        if any(ord(char) < 32 or ord(char) == 127 for char in self._key):
            raise ApiKeyProblem(
                f"messaging: the API key in {KEY_SETTING} contains a control character (a line "
                "end copied from a file?), which no HTTP header can carry. Fix the key where it "
                "is set; it is not shown here."
            )
        request.headers[self.header] = self._key
        return request

    def __repr__(self) -> str:
        return f"HeaderKey(header={self.header!r}, key=***)"

    @property
    def secret(self) -> str:
        return self._key


def _environment(base_url: str) -> dict[str, Any]:
    """Proxy and CA settings from the environment, read once for the API's host.

    requests would read them for every request, scanning the whole environment twice (a fifth of
    a status look-up's CPU). A session is built per run, so a changed environment counts from the
    next run on.
    """
    verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return {"trust_env": False, "proxies": get_environ_proxies(base_url), "verify": verify}


def api_session(base_url: str) -> Session:
    client = Client(raise_for_status=False, session_attrs=_environment(base_url))
    client.configure()
    return client.session


def certainly_not_sent(response: Response | None, exception: BaseException | None) -> bool:
    """Whether a send never reached the API: rate limited, refused, or no connection made."""
    if response is not None:
        return response.status_code == 429
    if isinstance(exception, ConnectTimeout):
        return True
    reason = getattr(exception.args[0], "reason", None) if exception and exception.args else None
    return isinstance(exception, ConnectionError) and isinstance(reason, NewConnectionError)


def send_session(base_url: str) -> Session:
    """Retries only what certainly never arrived: a timeout, a dropped connection or a 5xx may
    have been billed, so they are the caller's to report, never to repeat."""
    client = Client(
        raise_for_status=False,
        status_codes=(),
        exceptions=(),
        retry_condition=certainly_not_sent,
        session_attrs=_environment(base_url),
    )
    client.configure()
    return client.session
