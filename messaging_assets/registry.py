"""Every API resource, described once, as data. Assets, jobs, checks, schedules, descriptions and
the warehouse tables are all derived from these entries.

Adding a list resource is one `Endpoint(kind="list", ...)` entry here (plus its sandbox data and
tests): it becomes a dlt resource, a Dagster asset in the reference-data job and schedule, with
its freshness policy, key check and shrink guard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from messaging_assets import column_hints
from messaging_assets.column_hints import Hint

GROUP = "messaging"
# The dlt source, its config section (`sources.messaging.*`) and the warehouse dataset.
SOURCE = "messaging"

ApiShape = Literal["data", "provider"]
API_SHAPES: tuple[ApiShape, ...] = get_args(ApiShape)
# The header that carries the key when SOURCES__MESSAGING__API_KEY_HEADER does not say.
KEY_HEADERS: Mapping[ApiShape, str] = {"data": "api_key", "provider": "apikey"}

Kind = Literal["send", "status", "list"]
History = Literal["merge", "scd2"]
# none: only a person materializes it; status: kept current by the status sensors and schedule;
# daily: the reference-data schedule, freshness of a day, and a refresh when it goes stale.
Automation = Literal["none", "status", "daily"]

PENDING_STATUSES = ("ACCEPTED", "BUFFERED")
FINAL_STATUSES = ("DELIVERED", "EXPIRED", "UNDELIVERABLE", "REJECTED")


@dataclass(frozen=True)
class Endpoint:
    name: str
    description: str
    path: str
    # send: one billed request per run; status: one look-up per requestId; list: a full list.
    kind: Kind
    history: History
    automation: Automation
    # The field that identifies a record (SOURCES__MESSAGING__<NAME>__PRIMARY_KEY overrides it).
    key: str
    columns: Mapping[str, Hint]
    # Where the records are in an answer, per API shape: a path of keys and `[*]`, `$` the root.
    selector: Mapping[ApiShape, str]
    # Child tables' column hints, by the field holding the list.
    nested: Mapping[str, Mapping[str, Hint]] = field(default_factory=dict)
    # Records per page where the API pages the list, per shape; absent: one page.
    page_size: Mapping[ApiShape, int] = field(default_factory=dict)
    # Assets this one reads from (lineage in the graph).
    upstream: tuple[str, ...] = ()

    def tables(self) -> dict[str, Mapping[str, Hint]]:
        """The declared column hints of the resource's table and of its child tables."""
        return {
            self.name: self.columns,
            **{f"{self.name}__{field}": hints for field, hints in self.nested.items()},
        }

    def merge_hints(self) -> dict[str, Any]:
        """dlt.resource's arguments for a resource merged on its key."""
        return {
            "name": self.name,
            "primary_key": self.key,
            "write_disposition": "merge",
            # DuckDB's default (insert_values) is several times slower and hungrier.
            "file_format": "parquet",
            "columns": column_hints.named(self.columns, self.key),
            "nested_hints": {
                field: {"columns": column_hints.named(hints)}
                for field, hints in self.nested.items()
            },
        }


ENVELOPE = {"data": "data"}

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        name="sms",
        description=(
            "Sends one SMS when `to` and `from` are configured (billed!) and stores its "
            "reference, requestId, to, from and submit time. Without them it sends nothing, and "
            "stores sends an earlier run could not."
        ),
        path="/messaging/v1/sms",
        kind="send",
        history="merge",
        automation="none",
        key="reference",
        columns=column_hints.SEND,
        selector={**ENVELOPE, "provider": "$"},
    ),
    Endpoint(
        name="messages",
        description=(
            "Delivery status of every message sent through `messaging/sms`, of tracked "
            "requestIds, and of stored messages not yet in a final state. Never sends. Parts are "
            "in `messages__parts`."
        ),
        path="/messaging/v1/messages/{request_id}",
        kind="status",
        history="merge",
        automation="status",
        key="requestId",
        columns=column_hints.MESSAGE,
        selector={**ENVELOPE, "provider": "$"},
        nested={"parts": column_hints.PART},
        upstream=("sms",),
    ),
    Endpoint(
        name="contacts",
        description="The account's contacts, with history (scd2): current rows have no "
        "_dlt_valid_to.",
        path="/byon/contacts/v1",
        kind="list",
        history="scd2",
        automation="daily",
        key="contactId",
        columns=column_hints.CONTACT,
        selector={**ENVELOPE, "provider": "[*].contacts[*]"},
    ),
    Endpoint(
        name="phones",
        description="The account's phone numbers, with history (scd2).",
        path="/byon/phonebook/v1/numbers",
        kind="list",
        history="scd2",
        automation="daily",
        key="phoneNumber",
        columns=column_hints.PHONE,
        selector={**ENVELOPE, "provider": "[*].provisioningRequests[*]"},
        page_size={"provider": 3000},
    ),
    Endpoint(
        name="registrations",
        description="Number provisioning requests, with history (scd2).",
        path="/byon/provisioning/v1",
        kind="list",
        history="scd2",
        automation="daily",
        key="requestId",
        columns=column_hints.REGISTRATION,
        selector={**ENVELOPE, "provider": "[*].provisioningRequests[*]"},
    ),
)

BY_NAME: Mapping[str, Endpoint] = {endpoint.name: endpoint for endpoint in ENDPOINTS}


def of_kind(kind: Kind) -> tuple[Endpoint, ...]:
    return tuple(endpoint for endpoint in ENDPOINTS if endpoint.kind == kind)


def with_automation(automation: Automation) -> tuple[Endpoint, ...]:
    return tuple(endpoint for endpoint in ENDPOINTS if endpoint.automation == automation)


(SEND,) = of_kind("send")
(STATUS,) = of_kind("status")
LISTS = of_kind("list")
