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

Kind = Literal["send", "status", "list", "pushed", "derived"]
# merge: a record replaces the stored one of its key; scd2: with history; insert-only: the first
# record of a key is kept and later copies are dropped (events, which never change).
History = Literal["merge", "scd2", "insert-only"]
# none: only a person materializes it; status: kept current by the status sensors and schedule;
# daily: the reference-data schedule, freshness of a day, and a refresh when it goes stale;
# pushed: loaded from the landing zone by the landed-files sensor, and by its schedule.
Automation = Literal["none", "status", "daily", "pushed"]

PENDING_STATUSES = ("ACCEPTED", "BUFFERED")
FINAL_STATUSES = ("DELIVERED", "EXPIRED", "UNDELIVERABLE", "REJECTED")
# How far along a status is: a delivery report never replaces a status of a higher rank (reports
# arrive in no guaranteed order). Any other status, and none, ranks below these.
STATUS_RANK: Mapping[str, int] = {"ACCEPTED": 0, "BUFFERED": 1, **dict.fromkeys(FINAL_STATUSES, 2)}
UNRANKED = -1

# dlt's write disposition for records that never change once stored.
INSERT_ONLY: Mapping[str, str] = {"disposition": "merge", "strategy": "insert-only"}
# dlt's write disposition for a full set kept with history: a key absent from a load is retired.
SCD2: Mapping[str, str] = {"disposition": "merge", "strategy": "scd2"}
WRITE_DISPOSITIONS: Mapping[History, str | Mapping[str, str]] = {
    "merge": "merge",
    "scd2": SCD2,
    "insert-only": INSERT_ONLY,
}


@dataclass(frozen=True)
class Endpoint:
    name: str
    description: str
    path: str
    # send: one billed request per run; status: one look-up per requestId; list: a full list;
    # pushed: what the provider posts to the receiver, read from the landing zone (`path` is the
    # receiver's, `<endpoint>` the landing folder); derived: computed from the warehouse's tables
    # of `upstream`, asking the API nothing (no `path`, no `selector`).
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
    # The child rows are built by the loader, so that whole batches go to dlt as arrow tables
    # (`source/status_tables.py`): to dlt the child table is a table of its own, not a nested one.
    split_children: bool = False
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
        """dlt.resource's arguments for a resource merged on its key (with history if scd2)."""
        disposition = WRITE_DISPOSITIONS[self.history]
        return {
            "name": self.name,
            "primary_key": self.key,
            "write_disposition": disposition if isinstance(disposition, str) else dict(disposition),
            # DuckDB's default (insert_values) is several times slower and hungrier.
            "file_format": "parquet",
            "columns": column_hints.named(self.columns, self.key),
            "nested_hints": {}
            if self.split_children
            else {
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
        split_children=True,
        upstream=("sms", "delivery_reports"),
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
    Endpoint(
        name="delivery_reports",
        description=(
            "Every delivery report the provider pushed to the receiver, once each, as it arrived: "
            "the status object typed like `messaging/messages`, with when and where it landed. "
            "`messaging/messages` merges the latest status of each message from them. Parts are "
            "in `delivery_reports__parts`; unreadable reports in `unreadable_events`."
        ),
        path="/{token}/delivery-reports",
        kind="pushed",
        history="insert-only",
        automation="pushed",
        key="reportId",
        columns=column_hints.REPORT,
        # The provider posts the status object at the root, the seed's shape wraps it in `data`;
        # either is read whatever API_SHAPE says, since any system using the account can post.
        selector={**ENVELOPE, "provider": "$"},
        nested={"parts": column_hints.PART},
        split_children=True,
    ),
    Endpoint(
        name="inbound_messages",
        description=(
            "SMS sent to the account's numbers, pushed to the receiver: one row per message "
            "however often the provider retried it, its parts in "
            "`inbound_messages__content_list`; unreadable ones in `unreadable_events`."
        ),
        path="/{token}/inbound-messages",
        kind="pushed",
        history="insert-only",
        automation="pushed",
        key="requestId",
        columns=column_hints.INBOUND,
        selector={"data": "$", "provider": "$"},
        nested={"contentList": column_hints.INBOUND_PART},
    ),
    Endpoint(
        name="opt_outs",
        description=(
            "Whether each phone number opted out of messages (replied STOP, or another opt-out "
            "word) or back in (START), decided by its latest such reply by sent time, from "
            "`messaging/inbound_messages`; numbers in E.164. With history (scd2): current rows "
            "have no _dlt_valid_to. `messaging/sms` refuses to send to an opted-out number."
        ),
        path="",
        kind="derived",
        history="scd2",
        # Follows the inbound messages it is computed from, in the same runs.
        automation="pushed",
        key="phoneNumber",
        columns=column_hints.OPT_OUT,
        selector={},
        upstream=("inbound_messages",),
    ),
)

# Pushed events that could not be read, of every pushed endpoint: one table beside theirs.
UNREADABLE_TABLE = "unreadable_events"
UNREADABLE_KEY = "eventId"

BY_NAME: Mapping[str, Endpoint] = {endpoint.name: endpoint for endpoint in ENDPOINTS}


def of_kind(kind: Kind) -> tuple[Endpoint, ...]:
    return tuple(endpoint for endpoint in ENDPOINTS if endpoint.kind == kind)


def with_automation(automation: Automation) -> tuple[Endpoint, ...]:
    return tuple(endpoint for endpoint in ENDPOINTS if endpoint.automation == automation)


(SEND,) = of_kind("send")
(STATUS,) = of_kind("status")
LISTS = of_kind("list")
PUSHED = of_kind("pushed")
(OPT_OUTS,) = of_kind("derived")
