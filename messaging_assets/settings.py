"""Settings, read through dlt's configuration: `.dlt/config.toml`, `.dlt/secrets.toml` or
environment variables named after their path (`[messaging.automation] status_cron` is
`MESSAGING__AUTOMATION__STATUS_CRON`).

Each group is a dlt `@configspec`, validated where it is read: a wrong value fails with one line
naming the environment variable, the value and what is allowed. Automation settings are read when
the code location loads (restart `dagster dev` after a change); resource settings when a run
uses them, so that a mistake there fails only the runs that need it.

A settings file that is not valid TOML stops everything, as dlt reads no setting then: each entry
point (the code location, the report, `make dev` and `make demo`) calls `check_settings_files`
first, which says so in one line, file:line:column.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import zoneinfo
from collections.abc import Callable, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import dlt
import tomlkit
from croniter import croniter
from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import ConfigValueCannotBeCoercedException
from dlt.common.configuration.providers.toml import TomlProviderReadException
from dlt.common.configuration.specs import BaseConfiguration

from messaging_assets.registry import SOURCE

Spec = TypeVar("Spec", bound=BaseConfiguration)
_KINDS = {float: "a number", int: "a whole number", bool: "true or false"}
RUNTIME = ("runtime",)


class SettingError(ValueError):
    """A setting's value is not allowed; the message names the variable, the value and why."""


class SettingsFileError(Exception):
    """A settings file is not valid TOML. The message is all a user needs, in one line: the file,
    line and column, what is wrong there."""


def check_settings_files() -> None:
    """Raise SettingsFileError when dlt cannot read one of its settings files (`.dlt/config.toml`,
    `.dlt/secrets.toml`, or those in dlt's global folder). dlt reads them all on the first setting
    asked for, and otherwise fails with a long traceback that names neither the file nor its
    position, from wherever that first setting happened to be read. dlt then resolves its own
    `[runtime]` settings: one of the wrong type is a SettingError, as from `resolve`."""
    try:
        # Asking for them is what loads the files.
        dlt.config.config_providers  # noqa: B018
    except TomlProviderReadException as error:
        _print_only_the_message_if_uncaught()
        raise SettingsFileError(_broken_file(error)) from None
    except ConfigValueCannotBeCoercedException as error:
        raise _not_coerced(error, RUNTIME) from None


_FIX = "Fix it there: no setting is read until the file parses."


def _broken_file(error: TomlProviderReadException) -> str:
    """file:line:column and what is wrong, parsed again as dlt parses the files (tomlkit) to find
    which of them failed and where: dlt's message says neither."""
    for path in error.full_paths:
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as file:
                tomlkit.load(file)
        except tomlkit.exceptions.ParseError as broken:
            what = str(broken).removesuffix(f" at line {broken.line} col {broken.col}")
            # tomlkit counts columns from 0, editors from 1.
            where = f"{os.path.abspath(path)}:{broken.line}:{broken.col + 1}"
            return f"{where}: invalid TOML, {what}. {_FIX}"
        except (OSError, ValueError, tomlkit.exceptions.TOMLKitError) as broken:
            return f"{os.path.abspath(path)}: {broken}. {_FIX}"
    return " ".join(str(error).split())


def _print_only_the_message_if_uncaught() -> None:
    """Where nothing catches a SettingsFileError (the Dagster CLI importing the definitions),
    Python prints its one line rather than a traceback; a code server catches it and shows it as
    the code location's error."""
    if getattr(sys.excepthook, "func", None) is not _one_line:
        sys.excepthook = functools.partial(_one_line, sys.excepthook)


def _one_line(
    previous: Callable[[type[BaseException], BaseException, TracebackType | None], Any],
    kind: type[BaseException],
    error: BaseException,
    traceback: TracebackType | None,
) -> None:
    if isinstance(error, SettingsFileError):
        print(error, file=sys.stderr)
    else:
        previous(kind, error, traceback)


def variable(sections: Sequence[str], name: str) -> str:
    """The environment variable of a setting: MESSAGING__AUTOMATION__STATUS_CRON."""
    return "__".join((*sections, name)).upper()


def resolve(spec: Spec, sections: Sequence[str], check: bool = True) -> Spec:
    """`spec` resolved from dlt's config, with a value of the wrong type named; validated unless
    `check` is false (a caller that needs only some of its values validates those)."""
    try:
        resolved = resolve_configuration(spec, sections=tuple(sections))
    except ConfigValueCannotBeCoercedException as error:
        # dlt resolves its own `[runtime]` settings first, whatever spec is asked for.
        owner = sections if error.field_name in spec.get_resolvable_fields() else RUNTIME
        raise _not_coerced(error, owner) from None
    if check:
        resolved.check(sections)
    return resolved


def _not_coerced(
    error: ConfigValueCannotBeCoercedException, sections: Sequence[str]
) -> SettingError:
    expected = _KINDS.get(error.hint, f"a value of type {error.hint}")
    return SettingError(
        f"{variable(sections, error.field_name)}={error.field_value!r}: expected {expected}."
    )


class Checked(BaseConfiguration):
    """A configspec that validates its own values after resolving."""

    def check(self, sections: Sequence[str]) -> None:
        broken = self.rules()
        if broken:
            name, allowed = broken[0]
            raise SettingError(f"{variable(sections, name)}={getattr(self, name)!r}: {allowed}.")

    def rules(self) -> list[tuple[str, str]]:
        """(field, what is allowed) for every field whose value is not allowed."""
        return []


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _share(value: float) -> bool:
    return math.isfinite(value) and 0 < value < 1


def _cron(value: str) -> bool:
    return len(value.split()) == 5 and croniter.is_valid(value)


def _timezone(value: str) -> bool:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


@configspec
class AutomationSettings(Checked):
    """`[messaging.automation]`: schedules, freshness windows, status polling, guards."""

    reference_cron: str = "0 2 * * *"
    schedule_timezone: str = "UTC"
    # More often than the messages' freshness warn window, so that an idle hour stays fresh.
    status_cron: str = "*/20 * * * *"
    reference_warn_hours: float = 25
    reference_fail_hours: float = 26
    status_warn_minutes: float = 30
    status_fail_minutes: float = 60
    summary_warn_hours: float = 6
    summary_fail_hours: float = 24
    # The provider's default validity; a message not final by then ends EXPIRED.
    validity_hours: float = 48
    # The provider reports EXPIRED shortly after the validity ends, not on the second.
    validity_margin_hours: float = 2
    recheck_share_of_age: float = 0.25
    recheck_min_seconds: float = 60
    recheck_max_seconds: float = 21600
    # With delivery reports pushed (SOURCES__MESSAGING__RECEIVER__PUBLIC_URL set), a pending
    # message is looked up only once its report is this late. The provider reports each change
    # as it happens and most messages are final within a minute or two: 15 minutes is several
    # times that, outlasts a receiver restart (the provider retries every 10 s), and leaves a
    # lost report's look-up inside the messages' 30-minute freshness window.
    report_overdue_minutes: float = 15
    # A full list that would retire more than this share of the current rows is refused.
    row_drop_share: float = 0.25
    # Pushed data (delivery reports, inbound messages): the landed-files sensor loads new files
    # within its interval; this schedule catches what it missed and keeps a quiet day fresh.
    pushed_cron: str = "*/20 * * * *"
    pushed_warn_minutes: float = 30
    pushed_fail_minutes: float = 60
    # How far back, before the newest landed file's modification time, files are read again: a
    # file keeps the time it was written, but appears only when renamed into place after its
    # flush, so a file written earlier can appear after a later one was loaded
    # (docs/receiver.md#when-files-are-loaded).
    landing_lag_seconds: float = 300
    # The unreadable-events check fails while an event that could not be read arrived this recently.
    unreadable_window_days: float = 7

    SECTIONS: ClassVar[tuple[str, ...]] = ("messaging", "automation")

    def rules(self) -> list[tuple[str, str]]:
        broken = [
            (name, "expected a cron expression of 5 fields, e.g. '0 2 * * *'")
            for name in ("reference_cron", "status_cron", "pushed_cron")
            if not _cron(getattr(self, name))
        ]
        if not _timezone(self.schedule_timezone):
            broken.append(("schedule_timezone", "expected an IANA time zone, e.g. 'Europe/Berlin'"))
        for name in (
            "reference_warn_hours",
            "status_warn_minutes",
            "summary_warn_hours",
            "validity_hours",
            "recheck_min_seconds",
            "pushed_warn_minutes",
            "unreadable_window_days",
        ):
            if not _positive(getattr(self, name)):
                broken.append((name, "expected a number above 0"))
        for warn, fail in (
            ("reference_warn_hours", "reference_fail_hours"),
            ("status_warn_minutes", "status_fail_minutes"),
            ("summary_warn_hours", "summary_fail_hours"),
            ("recheck_min_seconds", "recheck_max_seconds"),
            ("pushed_warn_minutes", "pushed_fail_minutes"),
        ):
            if not getattr(self, fail) >= getattr(self, warn):
                broken.append(
                    (fail, f"expected a number no smaller than {variable(self.SECTIONS, warn)}")
                )
        for name in ("validity_margin_hours", "landing_lag_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                broken.append((name, "expected a number of 0 or more"))
        # A buffered message's lost report is looked for once its validity ends: that must come
        # before the margin ends and its status is no longer asked about at all.
        if not (
            _positive(self.report_overdue_minutes)
            and self.report_overdue_minutes < self.validity_margin_hours * 60
        ):
            broken.append(
                (
                    "report_overdue_minutes",
                    "expected a number above 0 and below "
                    f"{variable(self.SECTIONS, 'validity_margin_hours')} in minutes "
                    f"({self.validity_margin_hours * 60:g})",
                )
            )
        for name in ("recheck_share_of_age", "row_drop_share"):
            if not _share(getattr(self, name)):
                broken.append((name, "expected a share between 0 and 1, e.g. 0.25 for 25%"))
        return broken

    @property
    def reference_warn(self) -> timedelta:
        return timedelta(hours=self.reference_warn_hours)

    @property
    def reference_fail(self) -> timedelta:
        return timedelta(hours=self.reference_fail_hours)

    @property
    def status_warn(self) -> timedelta:
        return timedelta(minutes=self.status_warn_minutes)

    @property
    def status_fail(self) -> timedelta:
        return timedelta(minutes=self.status_fail_minutes)

    @property
    def summary_warn(self) -> timedelta:
        return timedelta(hours=self.summary_warn_hours)

    @property
    def summary_fail(self) -> timedelta:
        return timedelta(hours=self.summary_fail_hours)

    @property
    def pushed_warn(self) -> timedelta:
        return timedelta(minutes=self.pushed_warn_minutes)

    @property
    def pushed_fail(self) -> timedelta:
        return timedelta(minutes=self.pushed_fail_minutes)

    @property
    def landing_lag(self) -> timedelta:
        return timedelta(seconds=self.landing_lag_seconds)

    @property
    def unreadable_window(self) -> timedelta:
        return timedelta(days=self.unreadable_window_days)

    @property
    def recheck_min(self) -> timedelta:
        return timedelta(seconds=self.recheck_min_seconds)

    @property
    def recheck_max(self) -> timedelta:
        return timedelta(seconds=self.recheck_max_seconds)

    @property
    def validity(self) -> timedelta:
        return timedelta(hours=self.validity_hours)

    @property
    def report_overdue(self) -> timedelta:
        return timedelta(minutes=self.report_overdue_minutes)

    @property
    def give_up_after(self) -> timedelta:
        """Past this age a message's status cannot change any more."""
        return timedelta(hours=self.validity_hours + self.validity_margin_hours)


def automation_settings() -> AutomationSettings:
    return resolve(AutomationSettings(), AutomationSettings.SECTIONS)


@configspec
class ResourceSettings(Checked):
    """`[sources.messaging.<resource>]`: what a user may override per resource."""

    # The field that identifies a record, as the API names it.
    primary_key: str | None = None
    # Where the records are in an answer: a path of keys and `[*]` (`$` is the root).
    data_selector: str | None = None
    # A list's paginator, in dlt rest_api's paginator config (a type name or a dict).
    paginator: Any | None = None
    # A paged list: records per page, and the number of the first page.
    page_size: int | None = None
    first_page: int = 0
    # Statuses to track for messages sent elsewhere: a JSON list or comma-separated text.
    request_ids: Any | None = None
    # A ceiling on status look-ups a second, across all look-up workers of a run (unset: none).
    max_requests_per_second: float | None = None

    def rules(self) -> list[tuple[str, str]]:
        broken = []
        if self.page_size is not None and self.page_size < 1:
            broken.append(("page_size", "expected a number of records of 1 or more"))
        ceiling = self.max_requests_per_second
        if ceiling is not None and not _positive(ceiling):
            broken.append(("max_requests_per_second", "expected a number above 0"))
        return broken


def resource_settings(name: str) -> ResourceSettings:
    return resolve(ResourceSettings(), ("sources", SOURCE, name))


def _words(value: Any) -> list[str]:
    """A list of words given as a list or as comma-separated text."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in items if str(item).strip()]


@configspec
class OptOutSettings(Checked):
    """`[sources.messaging.opt_outs]`: words that opt out or back in, besides the usual ones
    (`source/opt_outs.py`), as a list or comma-separated text; matched ignoring case."""

    opt_out_keywords: Any | None = None
    opt_in_keywords: Any | None = None

    SECTIONS: ClassVar[tuple[str, ...]] = ("sources", SOURCE, "opt_outs")

    def rules(self) -> list[tuple[str, str]]:
        return [
            (name, "expected words of letters or digits, as a list or comma-separated")
            for name in ("opt_out_keywords", "opt_in_keywords")
            if not isinstance(getattr(self, name), (str, list, type(None)))
            or not all(word.isalnum() for word in _words(getattr(self, name)))
        ]

    @property
    def opt_out_words(self) -> list[str]:
        return _words(self.opt_out_keywords)

    @property
    def opt_in_words(self) -> list[str]:
        return _words(self.opt_in_keywords)


def opt_out_settings() -> OptOutSettings:
    return resolve(OptOutSettings(), OptOutSettings.SECTIONS)


@configspec
class LookupSettings(Checked):
    """`[extract] workers`: status look-ups in flight at once (dlt's extract setting)."""

    workers: int = 20

    SECTIONS: ClassVar[tuple[str, ...]] = ("extract",)

    def rules(self) -> list[tuple[str, str]]:
        return [] if self.workers >= 1 else [("workers", "expected 1 or more look-ups in flight")]


def lookup_settings() -> LookupSettings:
    return resolve(LookupSettings(), LookupSettings.SECTIONS)
