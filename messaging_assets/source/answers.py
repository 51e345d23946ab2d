"""What the API answered, turned into records or into an error a user can act on.

Errors name the resource, the path and the problem, with the provider's own explanation (a
problem document's title and detail, or the BYON error's code and message). Anything taken from a
response passes through `Redactor`, so the key never appears, even when a gateway echoes the
request back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from dlt.common.json import json as fast_json
from requests import Response
from requests.exceptions import HTTPError

from messaging_assets.source.sessions import KEY_PLACES

EXPLANATION_LIMIT = 300
SNIPPET_LIMIT = 80
WILDCARD = "[*]"
# orjson reads an integer of 2**64 or more as a float, rounded without a word
# (18446744073709551617 becomes 1.8446744073709552e19): an answer that may hold one (20 digits in
# a row, in a number or a string) is read by the standard library, which keeps it exact.
LONG_INTEGER = re.compile(rb"[0-9]{20}")


class Redactor:
    """Removes secrets from text that came from a response."""

    def __init__(self, secrets: Iterable[str]) -> None:
        found = {s for secret in secrets if secret for s in (secret, quote(secret, safe=""))}
        # Longest first, so that no shorter secret leaves part of a longer one behind.
        self._secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"


class ApiError(HTTPError):
    """The API answered something this project cannot store (after the session's retries)."""

    def __init__(self, resource: str, response: Response, problem: str, redact: Redactor) -> None:
        path = urlsplit(response.url).path
        super().__init__(
            redact(f"messaging/{resource}: GET {path} {problem}"), response=response, request=None
        )


def explanation(response: Response, redact: Redactor) -> str:
    """The provider's own words for an error answer, if it gave any."""
    try:
        body = fast_json.loadb(response.content) if response.content else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return ""
    fields = ("title", "detail", "code", "message")
    words = [str(body[field]) for field in fields if body.get(field)]
    text = redact(": ".join(words))
    return text if len(text) <= EXPLANATION_LIMIT else text[:EXPLANATION_LIMIT] + " …"


class Answers:
    """Reads one resource's answers: checks the status, parses the JSON once, finds the records.

    `settings` names the settings that decide where the records are, for errors about them.
    """

    def __init__(
        self, resource: str, selector: Selector, redact: Redactor, key_header: str, settings: str
    ) -> None:
        self.resource = resource
        self.selector = selector
        self.redact = redact
        self.key_header = key_header
        self.settings = settings

    def error(self, response: Response, problem: str) -> ApiError:
        return ApiError(self.resource, response, problem, self.redact)

    def check(self, response: Response) -> None:
        """Raises ApiError for an answer that is not a success."""
        status = response.status_code
        if status < 400:
            return
        said = explanation(response, self.redact)
        said = f" (the API says: {said})" if said else ""
        if status in (401, 403):
            raise self.error(
                response,
                f"answered {status}: the API rejected the key{said}. Check {KEY_PLACES}, the "
                f"header it travels in, SOURCES__MESSAGING__API_KEY_HEADER (now "
                f"`{self.key_header}`), and SOURCES__MESSAGING__API_SHAPE.",
            )
        raise self.error(response, f"answered {status} {response.reason}{said}")

    def require_json(self, response: Response) -> None:
        content_type = response.headers.get("Content-Type", "")
        if "json" not in content_type:
            # Redacted before it is cut: a secret cut in two would no longer be recognised.
            snippet = self.redact(response.text)[:SNIPPET_LIMIT].replace("\n", " ")
            raise self.error(response, f"answered {content_type!r}, not JSON: {snippet!r}")

    def json(self, response: Response) -> Any:
        """The answer's JSON, parsed once."""
        self.require_json(response)
        if not LONG_INTEGER.search(response.content):
            try:
                return fast_json.loadb(response.content)
            except ValueError:
                # orjson is stricter than the JSON the standard library reads (NaN, a BOM): only
                # what neither reads is malformed.
                pass
        try:
            return json.loads(response.content)
        except ValueError as error:
            raise self.error(response, f"answered malformed JSON ({error})") from None

    def records(self, response: Response, payload: Any) -> list[dict[str, Any]]:
        """A list's records: the items of the lists the selector reaches, or, for a selector
        ending in `[*]`, what it reaches."""
        found = self._find(response, payload)
        if self.selector.steps[-1:] != [WILDCARD]:
            if not all(isinstance(value, list) for value in found):
                raise self._wrong(response, found, "a list")
            found = [record for value in found for record in value]
        if not all(isinstance(record, dict) for record in found):
            raise self._wrong(response, found, "a list of objects")
        return found

    def record(self, response: Response, payload: Any) -> dict[str, Any]:
        """An object endpoint's one record."""
        found = self._find(response, payload)
        if len(found) != 1 or not isinstance(found[0], dict):
            raise self._wrong(response, found, "an object")
        return found[0]

    def _find(self, response: Response, payload: Any) -> list[Any]:
        try:
            return self.selector.find(payload)
        except RecordsMissing as missing:
            raise self.error(response, f"{missing}. {self.settings}") from None

    def _wrong(self, response: Response, values: Sequence[Any], expected: str) -> ApiError:
        kinds = sorted({type(value).__name__ for value in values}) or ["nothing"]
        found = kinds[0] if len(values) == 1 else "list of " + "/".join(kinds)
        return self.error(
            response, f"answered {found} at `{self.selector.text}`, not {expected}. {self.settings}"
        )


class RecordsMissing(ValueError):
    """The answer has nothing where the selector points."""


class Selector:
    """Where the records are in an answer: a path of keys and `[*]`, e.g. `data` or
    `[*].contacts[*]`; `$` (or nothing) is the answer itself.

    A path ending at a list yields its items; `[*]` yields every item of a list, so an array of
    envelopes yields every envelope's records, concatenated.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.steps = parse_selector(text)

    def __repr__(self) -> str:
        return f"Selector({self.text!r})"

    def find(self, payload: Any) -> list[Any]:
        """The values the path reaches; raises RecordsMissing naming what is missing where."""
        values = [payload]
        for depth, step in enumerate(self.steps):
            reached: list[Any] = []
            for value in values:
                if step == WILDCARD and isinstance(value, list):
                    reached.extend(value)
                elif step != WILDCARD and isinstance(value, dict) and step in value:
                    reached.append(value[step])
                else:
                    at = ".".join(self.steps[: depth + 1])
                    found = sorted(value) if isinstance(value, dict) else type(value).__name__
                    raise RecordsMissing(f"has no `{at}` in its answer ({found})")
            values = reached
        return values


_TOKEN = re.compile(r"\[\*\]|[A-Za-z0-9_-]+")


def parse_selector(text: str) -> list[str]:
    """`[*].contacts[*]` -> ["[*]", "contacts", "[*]"]; `$.data` and `data` -> ["data"]."""
    steps: list[str] = []
    path = text.strip().removeprefix("$").removeprefix(".")
    for part in path.split(".") if path else ():
        tokens = _TOKEN.findall(part)
        if not part or "".join(tokens) != part:
            raise ValueError(f"`{text}` is not a path of keys and `[*]` (e.g. `[*].contacts[*]`)")
        steps.extend(tokens)
    return steps
