"""Automation settings: schedules, freshness, status polling and check thresholds.

Read through dlt's configuration like every other setting of the project, from
`[messaging.automation]` in .dlt/config.toml or `MESSAGING__AUTOMATION__<KEY>` environment
variables, when the code location loads (restart `dagster dev` after a change). The defaults
follow the provider's behaviour (validity 48 h).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import dlt

_HOUR = timedelta(hours=1)
_MINUTE = timedelta(minutes=1)


def _setting(key: str) -> str:
    return str(dlt.config.get(f"messaging.automation.{key}") or "").strip()


def _number(key: str, default: float) -> float:
    value = _setting(key)
    return float(value) if value else default


def _text(key: str, default: str) -> str:
    return _setting(key) or default


@dataclass(frozen=True)
class AutomationSettings:
    reference_cron: str = "0 2 * * *"
    timezone: str = "UTC"
    # More often than the messages' freshness warn window, so that an idle hour stays fresh.
    status_cron: str = "*/20 * * * *"
    reference_warn: timedelta = timedelta(hours=25)
    reference_fail: timedelta = timedelta(hours=26)
    status_warn: timedelta = timedelta(minutes=30)
    status_fail: timedelta = timedelta(hours=1)
    validity: timedelta = timedelta(hours=48)
    # The provider reports EXPIRED shortly after the validity ends, not on the second.
    validity_margin: timedelta = timedelta(hours=2)
    recheck_share_of_age: float = 0.25
    recheck_min: timedelta = timedelta(minutes=1)
    recheck_max: timedelta = timedelta(hours=6)
    row_drop_share: float = 0.25

    @classmethod
    def from_config(cls) -> AutomationSettings:
        d = cls()
        return cls(
            reference_cron=_text("reference_cron", d.reference_cron),
            timezone=_text("schedule_timezone", d.timezone),
            status_cron=_text("status_cron", d.status_cron),
            reference_warn=timedelta(
                hours=_number("reference_warn_hours", d.reference_warn / _HOUR)
            ),
            reference_fail=timedelta(
                hours=_number("reference_fail_hours", d.reference_fail / _HOUR)
            ),
            status_warn=timedelta(minutes=_number("status_warn_minutes", d.status_warn / _MINUTE)),
            status_fail=timedelta(minutes=_number("status_fail_minutes", d.status_fail / _MINUTE)),
            validity=timedelta(hours=_number("validity_hours", d.validity / _HOUR)),
            validity_margin=timedelta(
                hours=_number("validity_margin_hours", d.validity_margin / _HOUR)
            ),
            recheck_share_of_age=_number("recheck_share_of_age", d.recheck_share_of_age),
            recheck_min=timedelta(
                seconds=_number("recheck_min_seconds", d.recheck_min.total_seconds())
            ),
            recheck_max=timedelta(
                seconds=_number("recheck_max_seconds", d.recheck_max.total_seconds())
            ),
            row_drop_share=_number("row_drop_share", d.row_drop_share),
        )

    @property
    def give_up_after(self) -> timedelta:
        """Past this age a message's status cannot change any more: stop asking for it."""
        return self.validity + self.validity_margin


SETTINGS = AutomationSettings.from_config()
