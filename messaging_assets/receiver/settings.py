"""`[sources.messaging.receiver]`: the receiver's settings, a dlt configspec validated as the
project's other settings are (`messaging_assets.settings`): a wrong value fails with one line
naming the environment variable. The tokens are secrets: read only from secret providers
(environment variables, `.dlt/secrets.toml`) and never shown, not even when they are refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlsplit

import dlt
from dlt.common.configuration import configspec
from dlt.common.configuration.exceptions import ValueNotSecretException
from dlt.common.storages.configuration import FilesystemConfiguration
from dlt.common.typing import TSecretStrValue

from messaging_assets.receiver.storage import is_local
from messaging_assets.registry import SOURCE
from messaging_assets.settings import Checked, SettingError, resolve, variable

MIN_TOKEN_LENGTH = 32
# The token is a path segment of the URLs: only characters a URL carries as they are (RFC 3986's
# unreserved characters), so that the provider sends exactly what was registered.
_TOKEN = re.compile(r"[A-Za-z0-9._~-]+")
# The object stores dlt's filesystem authenticates (its credentials per scheme).
OBJECT_STORES = tuple(FilesystemConfiguration.PROTOCOL_CREDENTIALS)
MAKE_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
# The URL path segment of each endpoint, after the token.
DELIVERY_REPORTS_PATH = "delivery-reports"
INBOUND_MESSAGES_PATH = "inbound-messages"
# Plain http carries the token in clear text: only where it never leaves the machine.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@configspec
class ReceiverSettings(Checked):
    """The receiver of the provider's callbacks (delivery reports, inbound messages)."""

    # The secret in the URLs; a second one is accepted too while the provider moves to a new one.
    token: TSecretStrValue | None = None
    previous_token: TSecretStrValue | None = None
    # The base URL the provider reaches (e.g. a TLS proxy in front of the receiver). Set, every
    # send asks the provider to post its delivery reports there, and status look-ups only
    # reconcile (messaging_assets.defs.status_plan).
    public_url: str | None = None
    # Where landed files go: a local folder, relative to where the receiver runs, or a bucket
    # (s3://bucket/prefix), with credentials the dlt way (storage.FILESYSTEM_SECTIONS).
    landing_url: str = "data/landing"
    # The provider's bodies are a few kilobytes; anything far larger is not one of them.
    max_body_bytes: int = 65536
    # Connections (idle keep-alive ones included) and requests at once; beyond it: 503.
    max_concurrency: int = 200
    # An idle connection, new or between requests, is closed after this long.
    keep_alive_seconds: float = 5
    # A request (head and body) must arrive whole within this long of its first byte.
    read_timeout_seconds: float = 10
    # After an idle moment, how long the writer waits for more events before writing a file.
    commit_window_ms: float = 1

    SECTIONS: ClassVar[tuple[str, ...]] = ("sources", SOURCE, "receiver")

    def check(self, sections: Sequence[str]) -> None:
        self.check_tokens(sections)
        super().check(sections)

    def check_tokens(self, sections: Sequence[str]) -> None:
        """The token is set and fit for a URL; neither token is ever shown."""
        for name in ("token", "previous_token"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.strip() or None)
        if self.token is None:
            raise SettingError(
                f"{variable(sections, 'token')} is not set (nor `token` under "
                "[sources.messaging.receiver] in .dlt/secrets.toml): the receiver needs a secret "
                f"of at least {MIN_TOKEN_LENGTH} characters, e.g. from `{MAKE_TOKEN}`."
            )
        for name in ("token", "previous_token"):
            value = getattr(self, name)
            if value is None:
                continue
            if len(value) < MIN_TOKEN_LENGTH:
                raise SettingError(
                    f"{variable(sections, name)}: expected at least {MIN_TOKEN_LENGTH} characters "
                    f"(not shown here), e.g. from `{MAKE_TOKEN}`."
                )
            if not _TOKEN.fullmatch(value):
                raise SettingError(
                    f"{variable(sections, name)}: expected only letters, digits and - . _ ~ "
                    "(it goes into a URL; not shown here)."
                )

    def rules(self) -> list[tuple[str, str]]:
        broken = []
        url = self.landing_url.strip()
        if not url:
            broken.append(("landing_url", "expected a folder, e.g. data/landing"))
        elif not is_local(url) and (
            urlsplit(url).scheme not in OBJECT_STORES or not urlsplit(url).netloc
        ):
            broken.append(
                (
                    "landing_url",
                    "expected a local folder or a bucket URL, e.g. s3://bucket/landing (schemes: "
                    f"{', '.join(OBJECT_STORES)})",
                )
            )
        for name in ("max_body_bytes", "max_concurrency"):
            if getattr(self, name) < 1:
                broken.append((name, "expected a whole number of 1 or more"))
        for name in ("keep_alive_seconds", "read_timeout_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                broken.append((name, "expected a number of seconds above 0"))
        if not (math.isfinite(self.commit_window_ms) and 0 <= self.commit_window_ms <= 1000):
            broken.append(("commit_window_ms", "expected milliseconds from 0 to 1000"))
        return broken

    @property
    def tokens(self) -> tuple[str, ...]:
        """The tokens the door opens for: the current one, and the previous one if set."""
        return tuple(t for t in (self.token, self.previous_token) if t)

    def base_url(self) -> str:
        """The public base URL, checked (`urls` and the sends need it; serving does not)."""
        name = variable(self.SECTIONS, "public_url")
        public_url = (self.public_url or "").strip()
        if not public_url:
            raise SettingError(
                f"{name} is not set: the base URL the provider reaches the receiver at, e.g. "
                "https://hooks.example.com (a TLS proxy in front of the receiver)."
            )
        address = urlsplit(public_url)
        scheme = address.scheme.lower()
        try:
            loopback = address.hostname in LOOPBACK_HOSTS
        except ValueError:  # a malformed [...] host
            loopback = False
        if (
            not (scheme == "https" or (scheme == "http" and loopback))
            or not address.hostname
            or address.query
            or address.fragment
        ):
            raise SettingError(
                f"{name}={self.public_url!r}: expected an https address without query, e.g. "
                "https://hooks.example.com/messaging (the token travels in the URL: plain http "
                "would show it to the network; it is accepted only for a loopback host, "
                f"{', '.join(LOOPBACK_HOSTS)})."
            )
        return public_url.rstrip("/")

    def url(self, path: str) -> str:
        """An endpoint's public URL, the token in it: a secret, never to be shown."""
        return f"{self.base_url()}/{self.token}/{path}"


def receiver_settings() -> ReceiverSettings:
    """The receiver's settings, all of them checked, as the receiver itself needs them."""
    return _resolved(check=True)


def _resolved(check: bool) -> ReceiverSettings:
    try:
        return resolve(ReceiverSettings(), ReceiverSettings.SECTIONS, check=check)
    except ValueNotSecretException as error:
        name = error.key.rsplit(".", 1)[-1]
        raise SettingError(
            f"{variable(ReceiverSettings.SECTIONS, name)}: found in {error.provider_name}, which "
            "dlt does not read secrets from: move it to .dlt/secrets.toml or the environment."
        ) from None


def reports_pushed() -> bool:
    """Whether sends ask the provider to push their delivery reports: PUBLIC_URL is set. Reads no
    secret, so that what only plans look-ups (the code location) needs no token."""
    public_url = dlt.config.get(".".join((*ReceiverSettings.SECTIONS, "public_url")))
    return bool(str(public_url or "").strip())


@dataclass(frozen=True)
class ReportCallback:
    """Where a send asks the provider to post its delivery reports. The URL holds the token:
    `repr` shows neither, and `token` is there to be redacted wherever text may show it."""

    url: str = field(repr=False)
    token: str = field(repr=False)


def report_callback() -> ReportCallback | None:
    """The delivery-report URL a send carries, from PUBLIC_URL and the token, both checked as the
    receiver checks them; None while PUBLIC_URL is not set (sends carry no callback)."""
    if not reports_pushed():
        return None
    settings = _resolved(check=False)
    settings.check_tokens(settings.SECTIONS)
    assert settings.token is not None  # check_tokens refuses a missing one
    return ReportCallback(settings.url(DELIVERY_REPORTS_PATH), settings.token)
