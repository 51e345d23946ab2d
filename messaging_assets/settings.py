"""Automation settings: schedules, freshness, status polling and check thresholds.

Read from `MESSAGING_*` environment variables when the code location loads (restart `dagster dev`
after changing one); the defaults follow the provider's behaviour (validity 48 h).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

_HOUR = timedelta(hours=1)
_MINUTE = timedelta(minutes=1)


def _number(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def _text(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


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
    def from_env(cls) -> AutomationSettings:
        d = cls()
        return cls(
            reference_cron=_text("MESSAGING_REFERENCE_CRON", d.reference_cron),
            timezone=_text("MESSAGING_SCHEDULE_TIMEZONE", d.timezone),
            status_cron=_text("MESSAGING_STATUS_CRON", d.status_cron),
            reference_warn=timedelta(
                hours=_number("MESSAGING_REFERENCE_WARN_HOURS", d.reference_warn / _HOUR)
            ),
            reference_fail=timedelta(
                hours=_number("MESSAGING_REFERENCE_FAIL_HOURS", d.reference_fail / _HOUR)
            ),
            status_warn=timedelta(
                minutes=_number("MESSAGING_STATUS_WARN_MINUTES", d.status_warn / _MINUTE)
            ),
            status_fail=timedelta(
                minutes=_number("MESSAGING_STATUS_FAIL_MINUTES", d.status_fail / _MINUTE)
            ),
            validity=timedelta(hours=_number("MESSAGING_VALIDITY_HOURS", d.validity / _HOUR)),
            validity_margin=timedelta(
                hours=_number("MESSAGING_VALIDITY_MARGIN_HOURS", d.validity_margin / _HOUR)
            ),
            recheck_share_of_age=_number("MESSAGING_RECHECK_SHARE_OF_AGE", d.recheck_share_of_age),
            recheck_min=timedelta(
                seconds=_number("MESSAGING_RECHECK_MIN_SECONDS", d.recheck_min.total_seconds())
            ),
            recheck_max=timedelta(
                seconds=_number("MESSAGING_RECHECK_MAX_SECONDS", d.recheck_max.total_seconds())
            ),
            row_drop_share=_number("MESSAGING_ROW_DROP_SHARE", d.row_drop_share),
        )

    @property
    def give_up_after(self) -> timedelta:
        """Past this age a message's status cannot change any more: stop asking for it."""
        return self.validity + self.validity_margin


SETTINGS = AutomationSettings.from_env()
