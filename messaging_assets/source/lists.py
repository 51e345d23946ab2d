"""The full-list resources (contacts, phones, registrations): read page by page, checked before
anything changes, kept with history (dlt's scd2).

Every page is checked as it arrives: records carry their key or none do (the list then keeps its
history by row content), and no key comes twice. After the last page, a list that would retire
more than the allowed share of the current rows is refused. Either way the run fails before dlt
loads anything, so what is stored stays as it was.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.extract.resource import DltResource
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import (
    BasePaginator,
    PageNumberPaginator,
    SinglePagePaginator,
)
from dlt.sources.rest_api import create_paginator
from requests import Request, Response

from messaging_assets import column_hints
from messaging_assets.registry import SCD2, SOURCE, Endpoint
from messaging_assets.settings import (
    ResourceSettings,
    SettingError,
    automation_settings,
    variable,
)
from messaging_assets.source.answers import Answers
from messaging_assets.source.api import Api
from messaging_assets.source.arrow_pages import NotColumnar, as_dlt_page, read_page, stamp_versions
from messaging_assets.source.variants import Columns
from messaging_assets.warehouse.connection import connect

log = logging.getLogger(__name__)

SAMPLE = 5

Page = pa.Table | list[dict[str, Any]]


class ListRefused(RuntimeError):
    """The list breaks a guard; nothing was loaded."""


class PageSizePaginator(PageNumberPaginator):
    """Pages numbered from `first_page`, `page_size` records each, until one comes back short or
    empty: the API states no total and no next page."""

    def __init__(self, page_size: int, first_page: int = 0) -> None:
        super().__init__(base_page=first_page, page_param="page", total_path=None)
        self.page_size = page_size

    def init_request(self, request: Request) -> None:
        super().init_request(request)
        request.params["size"] = self.page_size

    def update_state(self, response: Response, data: Sequence[Any] | None = None) -> None:
        super().update_state(response, data)
        if len(data or ()) < self.page_size:
            self._has_next_page = False


def paginator_for(endpoint: Endpoint, shape: str, settings: ResourceSettings) -> BasePaginator:
    """SOURCES__MESSAGING__<NAME>__PAGINATOR (dlt rest_api's paginator config) if set, else pages
    of PAGE_SIZE (or the registry's size for this API shape), else one page."""
    if settings.paginator:
        config = settings.paginator
        try:
            if isinstance(config, str) and config.lstrip().startswith("{"):
                config = json.loads(config)
            return create_paginator(config)
        except (ValueError, TypeError, KeyError) as error:
            name = variable(("sources", SOURCE, endpoint.name), "paginator")
            raise SettingError(
                f"{name}={settings.paginator!r}: expected a dlt rest_api paginator, a type name "
                f'or a JSON object such as {{"type": "page_number", "base_page": 1}} ({error}).'
            ) from None
    size = settings.page_size or endpoint.page_size.get(shape)
    if size:
        return PageSizePaginator(size, settings.first_page)
    return SinglePagePaginator()


@dataclass
class Guard:
    """What a list must hold to before it may replace what is stored."""

    endpoint: str
    key: str
    key_setting: str
    allowed_drop: float
    accept_shrink: bool
    keyed: bool | None = None
    records: int = 0

    def __post_init__(self) -> None:
        self._seen: list[pa.Array] = []

    def see(self, page: Page) -> None:
        keys = _keys(page, self.key)
        if self.keyed is None:
            self.keyed = keys.null_count < len(keys)
            if not self.keyed:
                log.warning(
                    "messaging/%s: the records carry no `%s`, so the list has no key: its history "
                    "is kept by row content. Choose a key with %s.",
                    self.endpoint,
                    self.key,
                    self.key_setting,
                )
        if self.keyed:
            if keys.null_count:
                first = pc.index(pc.is_null(keys), True).as_py()
                raise ListRefused(
                    f"messaging/{self.endpoint}: {keys.null_count} record(s) lack the key "
                    f"`{self.key}` ({self.key_setting}), the first at position "
                    f"{self.records + first}. Nothing was loaded."
                )
            repeated = self._repeated(keys)
            if repeated:
                raise ListRefused(
                    f"messaging/{self.endpoint}: the key `{self.key}` ({self.key_setting}) is not "
                    f"unique in the list: {', '.join(map(repr, repeated[:SAMPLE]))} come(s) "
                    "more than once. Nothing was loaded."
                )
            self._seen.append(keys)
        self.records += len(keys)

    def _repeated(self, keys: pa.Array) -> list[Any]:
        """Keys that come twice in this page, or that an earlier page had."""
        counts = pc.value_counts(keys)
        repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
        if self._seen:
            earlier = pc.filter(keys, pc.is_in(keys, value_set=pa.concat_arrays(self._seen)))
            repeated = pa.concat_arrays([repeated, earlier.cast(repeated.type)])
        return list(dict.fromkeys(repeated.to_pylist()))

    def finish(self, stored: int) -> None:
        """Refuses a list that would retire more than the allowed share of `stored` rows."""
        if not self.records or not stored or self.accept_shrink:
            return
        dropped = (stored - self.records) / stored
        if dropped > self.allowed_drop:
            raise ListRefused(
                f"messaging/{self.endpoint}: the API listed {self.records} record(s) where "
                f"{stored} are current in the warehouse: loading it would retire "
                f"{stored - self.records} ({dropped:.0%}), more than the allowed "
                f"{self.allowed_drop:.0%}. Nothing was retired. If the list shrank on purpose, "
                "materialize it once with run config `accept_shrink: true` (launchpad), or raise "
                "MESSAGING__AUTOMATION__ROW_DROP_SHARE."
            )


def _keys(page: Page, key: str) -> pa.Array:
    """The page's keys as text (null where a record has none)."""
    if isinstance(page, pa.Table):
        if key not in page.column_names:
            return pa.nulls(page.num_rows, pa.string())
        return page.column(key).combine_chunks().cast(pa.string())
    values = (record.get(key) for record in page)
    return pa.array([None if value is None else str(value) for value in values], pa.string())


def list_resource(api: Api, endpoint: Endpoint, accept_shrink: bool) -> DltResource:
    """A list as a dlt resource: its pages, with the key as primary key when records carry it.
    Its settings are read when it runs: a mistake in them fails only the runs that load it."""
    hints = column_hints.named(endpoint.columns)

    def pages() -> Iterator[Any]:
        settings = api.settings(endpoint)
        answers = api.answers(endpoint, settings)
        key = settings.primary_key or endpoint.key
        guard = Guard(
            endpoint.name,
            key,
            api.key_setting(endpoint),
            automation_settings().row_drop_share,
            accept_shrink,
        )
        client = RESTClient(api.base_url, auth=api.auth, session=api.session())
        paginator = paginator_for(endpoint, api.shape, settings)
        stored = Columns(dlt.current.source_schema(), endpoint.tables())
        read = _reader(endpoint, answers, stored)
        previous = None
        for response, page in _fetch(client, endpoint.path, paginator, read):
            # A server that ignores the paging parameters would be asked forever.
            if response.content and response.content == previous:
                raise answers.error(
                    response,
                    "answered the same page twice: the API seems to ignore the paging "
                    f"parameters ({response.request.url}). Nothing was loaded.",
                )
            previous = response.content
            if page is None:
                continue
            first = guard.keyed is None
            guard.see(page)
            if isinstance(page, pa.Table):
                page = as_dlt_page(page, hints)
            else:
                for record in page:
                    stored.route(record, endpoint.name)
                stamp_versions(page, endpoint.name, stored)
            if first and guard.keyed:
                page = dlt.mark.with_hints(page, dlt.mark.make_hints(primary_key=key))
            yield page
        with connect(dlt.current.pipeline()) as warehouse:
            guard.finish(warehouse.current_row_count(endpoint.name))

    return dlt.resource(
        pages,
        name=endpoint.name,
        write_disposition=dict(SCD2),
        columns=hints,
        file_format="parquet",
    )()


def _reader(endpoint: Endpoint, answers: Answers, stored: Columns) -> Any:
    """Reads a page into arrow columns where it can (much faster), else into dicts."""

    def read(response: Response) -> Page | None:
        answers.check(response)
        if response.status_code == 204:
            return None  # the provider's empty list
        answers.require_json(response)
        try:
            return read_page(
                response.content, answers.selector.steps, endpoint.columns, endpoint.name, stored
            )
        except NotColumnar as reason:
            # Not an error, but slower, and the list's row versions change with the path.
            log.warning("messaging/%s: page parsed into dicts: %s", endpoint.name, reason)
        return answers.records(response, answers.json(response)) or None

    return read


def _fetch(
    client: RESTClient, path: str, paginator: BasePaginator, read: Any
) -> Iterator[tuple[Response, Page | None]]:
    """Every page's answer and records, as the paginator walks the list."""
    request = Request("GET", path, params={})
    paginator.init_request(request)
    while True:
        response = client.get(request.url, params=request.params)
        page = read(response)
        paginator.update_state(response, page if page is not None else [])
        yield response, page
        if not paginator.has_next_page:
            return
        paginator.update_request(request)
