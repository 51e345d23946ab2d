"""The API as configured for a run: where it is, which shape it answers in, the key and its header,
and how each resource's answers are read."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from dlt.sources.helpers.requests import Session

from messaging_assets.registry import API_SHAPES, KEY_HEADERS, ApiShape, Endpoint
from messaging_assets.settings import ResourceSettings, SettingError, resource_settings, variable
from messaging_assets.source.answers import Answers, Redactor, Selector
from messaging_assets.source.sessions import HeaderKey, api_session, send_session

SHAPE_SETTING = "SOURCES__MESSAGING__API_SHAPE"


@dataclass
class Api:
    base_url: str
    shape: ApiShape
    key_header: str
    auth: HeaderKey
    # Secrets besides the key that requests may carry (the receiver's token in a send's
    # callbackUrl): redacted from everything taken from an answer, as the key is.
    secrets: tuple[str, ...] = field(default=(), repr=False)
    redact: Redactor = field(init=False)

    def __post_init__(self) -> None:
        self.redact = Redactor([self.auth.secret, *self.secrets])

    def redacting(self, *secrets: str) -> Api:
        """This API, with `secrets` redacted too."""
        return dataclasses.replace(self, secrets=(*self.secrets, *secrets))

    @classmethod
    def configured(
        cls, base_url: str, api_key: str | None, api_shape: str, api_key_header: str | None
    ) -> Api:
        """Checks the source's settings; raises SettingError naming the one that is wrong."""
        if api_shape not in API_SHAPES:
            raise SettingError(
                f"{SHAPE_SETTING}={api_shape!r}: expected one of {', '.join(API_SHAPES)}."
            )
        address = urlsplit(base_url)
        if address.scheme not in ("http", "https") or not address.netloc:
            raise SettingError(
                f"SOURCES__MESSAGING__BASE_URL={base_url!r}: expected an http(s) address, e.g. "
                "https://api.provider.example."
            )
        header = api_key_header or KEY_HEADERS[api_shape]  # type: ignore[index]
        return cls(base_url, api_shape, header, HeaderKey(api_key, header))  # type: ignore[arg-type]

    def session(self) -> Session:
        return api_session(self.base_url)

    def send_session(self) -> Session:
        return send_session(self.base_url)

    def settings(self, endpoint: Endpoint) -> ResourceSettings:
        return resource_settings(endpoint.name)

    def answers(self, endpoint: Endpoint, settings: ResourceSettings) -> Answers:
        """How `resource`'s answers are read, where its records are per the settings."""
        setting = variable(("sources", "messaging", endpoint.name), "data_selector")
        text = settings.data_selector or endpoint.selector[self.shape]
        try:
            selector = Selector(text)
        except ValueError as error:
            raise SettingError(f"{setting}={text!r}: {error}.") from None
        where = (
            f"Check {setting} (now `{text}`) and {SHAPE_SETTING} (now `{self.shape}`): the "
            "provider's published shape needs API_SHAPE=provider."
        )
        return Answers(endpoint.name, selector, self.redact, self.key_header, where)

    def key_setting(self, endpoint: Endpoint) -> str:
        return variable(("sources", "messaging", endpoint.name), "primary_key")
