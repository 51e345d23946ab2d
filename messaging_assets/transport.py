"""Talking to the API over HTTP: retrying sessions, response checks, and the errors users read.

dlt's requests client does the retrying (429 honouring `Retry-After`, 5xx, timeouts, dropped
connections, with exponential backoff); this module adds jitter, reads the attempts, backoff and
timeout from dlt's `[runtime]` settings, and turns whatever the API answers into either records for
rest_api or an error that names the resource, the path and the problem, and never the key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from dlt.common.json import json as fast_json
from dlt.common.jsonpath import compile_path, find_values
from dlt.sources.helpers.requests import Client, Session
from dlt.sources.helpers.requests.retry import _make_retry
from requests import PreparedRequest, Response
from requests.exceptions import ConnectionError, ConnectTimeout, HTTPError, RequestException
from tenacity import wait_random
from urllib3.exceptions import NewConnectionError

ResponseHook = Callable[..., None]

log = logging.getLogger(__name__)


class ApiError(HTTPError):
    """The API answered something this project cannot store. Carries the response, so that dlt's
    retry logic still sees the status (429 and 5xx are retried; the rest fail at once)."""

    def __init__(self, resource: str, response: Response, problem: str) -> None:
        path = urlsplit(response.url).path
        super().__init__(
            f"messaging/{resource}: GET {path} {problem}", response=response, request=None
        )


class KeyRejected(ApiError):
    def __init__(self, resource: str, response: Response, header: str) -> None:
        super().__init__(
            resource,
            response,
            f"answered {response.status_code}: the API rejected the key. Check "
            "SOURCES__MESSAGING__API_KEY (or api_key under [sources.messaging] in "
            f".dlt/secrets.toml) and the header it travels in, SOURCES__MESSAGING__API_KEY_HEADER "
            f"(now `{header}`).",
        )


class SendOutcomeUnknown(RequestException):
    """A send that may have reached the API, and so may have been billed: never retried."""

    def __init__(self, reference: str, what: str) -> None:
        super().__init__(
            f"messaging/sms: the send may or may not have reached the API ({what}). It was not "
            f"retried, to avoid sending and billing it twice. Ask the provider for reference "
            f"`{reference}` before sending again."
        )


class EnvironmentOnce(Session):
    """dlt's session, reading proxy and CA settings from the environment once per host.

    requests reads them for every request, scanning the whole environment twice (`no_proxy`):
    a fifth of a status look-up's CPU. Sessions are built per run, so a changed environment is
    still seen by the next run. The cached settings include the session's own `proxies`,
    `verify` and `cert` as they were at its first request: set those before the first request.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}

    def merge_environment_settings(
        self, url: str | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        if proxies or stream is not None or verify is not None or cert is not None or not url:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        host = urlsplit(url)[:2]
        if host not in self._environment:
            self._environment[host] = super().merge_environment_settings(url, {}, None, None, None)
        # A copy: callers add their own send arguments to it.
        return dict(self._environment[host])


class Jittered(Client):
    """dlt's retrying client with the `[runtime]` request settings applied, plus jitter."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(raise_for_status=False, **kwargs)
        self.configure()

    def _make_session(self) -> Session:
        # As dlt's Client._make_session, plus up to one backoff factor of random jitter:
        # parallel look-ups that fail together would otherwise retry together, in lockstep.
        session = EnvironmentOnce(**self._session_kwargs)
        session.mount("http://", self._adapter)
        session.mount("https://", self._adapter)
        retry = _make_retry(**self._retry_kwargs)
        jitter = wait_random(0, self._retry_kwargs["backoff_factor"])
        retry = retry.copy(wait=retry.wait + jitter)
        session.send = retry.wraps(session.send)  # type: ignore[method-assign]
        return session


def api_session() -> Session:
    return Jittered().session


def _certainly_not_sent(response: Response | None, exception: BaseException | None) -> bool:
    """The send endpoint bills on arrival: retry only when the request never reached the API."""
    if response is not None:
        return response.status_code == 429
    if isinstance(exception, ConnectTimeout):
        return True
    reason = getattr(exception.args[0], "reason", None) if exception and exception.args else None
    return isinstance(exception, ConnectionError) and isinstance(reason, NewConnectionError)


def send_session(reference: str) -> Session:
    """A session for the send endpoint: retried only when the request certainly did not arrive
    (connection refused, 429); a timeout, a dropped connection or a 5xx fail the run at once."""
    session = Jittered(status_codes=(), exceptions=(), retry_condition=_certainly_not_sent).session
    send = session.send

    def send_at_most_once(request: PreparedRequest, **kwargs: Any) -> Response:
        try:
            return send(request, **kwargs)
        except ApiError as error:
            if error.response.status_code < 500:
                raise
            raise SendOutcomeUnknown(reference, f"answered {error.response.status_code}") from None
        except RequestException as error:
            if _certainly_not_sent(None, error):
                raise
            raise SendOutcomeUnknown(reference, type(error).__name__) from None

    session.send = send_at_most_once  # type: ignore[method-assign]
    return session


def selector_keys(selector: str) -> list[str]:
    """The keys of a data selector read as a path of keys: `$.result.items` -> result, items."""
    return [key for key in selector.lstrip("$.").split(".") if key]


def _nested(selector: str, records: Any) -> Any:
    """`records` where `selector` finds them."""
    for key in reversed(selector_keys(selector)):
        records = {key: records}
    return records


def _envelope(selector: str, records: Any) -> bytes:
    return json.dumps(_nested(selector, records)).encode()


def check_response(
    resource: str,
    selector: str,
    expects_list: bool,
    header: str,
    not_found: ResponseHook | None = None,
    read_columns: Callable[[bytes], Any] | None = None,
) -> ResponseHook:
    """A rest_api response action: passes a well-formed answer on (parsed once), or raises.

    `not_found` turns a 404 into a record instead. It is part of this one action, not an action
    of its own, because rest_api decodes the whole body as text once per action.
    `read_columns` (columnar.ColumnReader) reads the records into arrow columns; where it finds
    none, or declines with a ValueError, the answer is parsed into dicts.
    """
    shape = "a list" if expects_list else "an object"
    path = compile_path(selector)

    def check(response: Response, *args: Any, **kwargs: Any) -> None:
        if response.status_code == 404 and not_found:
            not_found(response)
        status = response.status_code
        if status in (401, 403):
            raise KeyRejected(resource, response, header)
        if status >= 400:
            raise ApiError(resource, response, f"answered {status} {response.reason}")
        if status == 204 and expects_list:
            # The provider answers an empty list with 204 and no body.
            response.status_code, response._content = 200, _envelope(selector, [])
            response.headers["Content-Type"] = "application/json"
        content_type = response.headers.get("Content-Type", "")
        if "json" not in content_type:
            snippet = response.text[:80].replace("\n", " ")
            raise ApiError(resource, response, f"answered {content_type!r}, not JSON: {snippet!r}")
        columns = None
        if read_columns:
            try:
                columns = read_columns(response.content)
            except ValueError as reason:
                # Not an error, but slower, and the list's row versions change with the path.
                log.warning("messaging/%s: page parsed into dicts: %s", resource, reason)
        if columns is not None:
            response.json = lambda **_: _nested(selector, columns)  # type: ignore[method-assign]
            return
        try:
            payload = fast_json.loadb(response.content)
        except ValueError:
            # orjson is stricter than the JSON the standard library reads (NaN, a BOM, integers
            # beyond 64 bits): only what neither reads is malformed.
            try:
                payload = json.loads(response.content)
            except ValueError as error:
                raise ApiError(resource, response, f"answered malformed JSON ({error})") from None
        found = find_values(path, payload)
        if not found:
            keys = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
            raise ApiError(resource, response, f"has no `{selector}` in its answer ({keys})")
        data = found[0] if len(found) == 1 else found
        if isinstance(data, list) != expects_list or not isinstance(data, (list, dict)):
            raise ApiError(
                resource, response, f"answered {type(data).__name__} at `{selector}`, not {shape}"
            )
        # rest_api would parse the body again: hand it what was parsed here.
        response.json = lambda **_: payload  # type: ignore[method-assign]

    return check


def record_missing_status(selector: str) -> ResponseHook:
    """A 404 on a status means the provider no longer keeps it (about 3 months after it became
    final) or never knew the id: recorded on the message instead of failing the run."""

    def record(response: Response, *args: Any, **kwargs: Any) -> None:
        request_id = urlsplit(response.url).path.rstrip("/").rsplit("/", 1)[-1]
        missing = {"requestId": request_id, "lookupError": "NOT_FOUND"}
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        response._content = _envelope(selector, missing)

    return record
