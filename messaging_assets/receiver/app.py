"""The receiver's HTTP side: `POST /<token>/delivery-reports` and `POST /<token>/inbound-messages`.

A request is answered 204 only once its event is in a durable landed file. Whatever the right
token brings is landed, readable or not: the provider retries anything but a 2xx, and would only
bring the same bytes back. Everything else is refused before any byte of it is stored: 404 for a
wrong or missing token (one answer, whichever part was wrong), 405 for another method, 413 for a
body over the limit; a request that does not arrive in time has its connection closed.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timezone

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from messaging_assets.receiver.group_commit import (
    WRITES_IN_FLIGHT,
    FileNames,
    GroupCommit,
    LandingFailed,
)
from messaging_assets.receiver.landing import (
    DELIVERY_REPORTS,
    ENDPOINTS,
    INBOUND_MESSAGES,
    Endpoint,
    event_line,
)
from messaging_assets.receiver.readability import problem
from messaging_assets.receiver.settings import (
    DELIVERY_REPORTS_PATH,
    INBOUND_MESSAGES_PATH,
    ReceiverSettings,
)
from messaging_assets.receiver.storage import Storage

logger = logging.getLogger("messaging_assets.receiver")

# The URL path segment of each endpoint.
PATHS: dict[str, Endpoint] = {
    DELIVERY_REPORTS_PATH: DELIVERY_REPORTS,
    INBOUND_MESSAGES_PATH: INBOUND_MESSAGES,
}
# A refused request's connection is closed after the answer: whatever else it still sends is
# then never read, however long it is.
_CLOSE = {"connection": "close"}
# nginx's code for "the client went away before it was answered"; only ever logged.
CLIENT_GONE = 499


class Door:
    """The token check: constant-time comparisons against every accepted token, all of them
    made each time, so that the time taken says nothing about which part was wrong."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self._tokens = tuple(token.encode("utf-8") for token in tokens)

    def opens(self, candidate: str) -> bool:
        given = candidate.encode("utf-8", "surrogatepass")
        opened = False
        for token in self._tokens:
            opened |= hmac.compare_digest(given, token)
        return opened


class _TooLarge(Exception):
    pass


async def _body(request: Request, limit: int) -> bytes:
    """The whole body, counted as it streams in: a chunked body declares no length."""
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def shown_path(path: str) -> str:
    """A path as logs show it: the first segment, where the token goes, is never shown."""
    segments = path.split("/")
    if len(segments) == 3 and segments[2] in PATHS:
        return f"/***/{segments[2]}"
    return "/***"


class AccessLog:
    """One line per request, with the token hidden (uvicorn's own access log shows the path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | str = "-"

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client")
            logger.info(
                '%s "%s %s" %s %.1f ms',
                f"{client[0]}:{client[1]}" if client else "-",
                scope["method"],
                shown_path(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
            )


async def _refuse(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = {**(exc.headers or {}), **_CLOSE}
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=headers)


def create_app(settings: ReceiverSettings, storage: Storage, receiver: str) -> ASGIApp:
    """The receiver as an ASGI app, landing into `storage` under file names of `receiver`."""
    door = Door(settings.tokens)
    limit = settings.max_body_bytes
    names = FileNames(receiver)
    window = settings.commit_window_ms / 1000
    writers = {e: GroupCommit(storage, e, names, window, WRITES_IN_FLIGHT) for e in ENDPOINTS}

    def endpoint(name: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        writer = writers[name]

        async def land(request: Request) -> Response:
            if not door.opens(request.path_params["token"]):
                raise HTTPException(404)
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                raise HTTPException(413)
            try:
                # A body that trickles is cut off by the server's read deadline (server.py).
                body = await _body(request, limit)
            except _TooLarge:
                raise HTTPException(413) from None
            except ClientDisconnect:
                return Response(status_code=CLIENT_GONE)
            line = event_line(datetime.now(timezone.utc), name, body, problem(name, body))
            try:
                await writer.commit(line)
            except LandingFailed:
                raise HTTPException(503) from None
            return Response(status_code=204)

        return land

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for writer in writers.values():
            writer.start()
        try:
            yield
        finally:
            # uvicorn has let every request in flight finish by now: this writes what is left.
            for writer in writers.values():
                await writer.close()

    app = Starlette(
        routes=[
            Route(f"/{{token}}/{path}", endpoint(name), methods=["POST"])
            for path, name in PATHS.items()
        ],
        exception_handlers={HTTPException: _refuse},
        lifespan=lifespan,
    )
    # A trailing slash is a 404 like any other wrong path, not a redirect echoing the path.
    app.router.redirect_slashes = False
    return AccessLog(app)
