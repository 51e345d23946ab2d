"""Automation profiles: how fresh each kind of asset must stay (freshness policy) and what
refreshes it without a person (automation condition), from the settings this code location
loaded with (`[messaging.automation]`)."""

from __future__ import annotations

from dagster import AutomationCondition, FreshnessPolicy

from messaging_assets.registry import Automation
from messaging_assets.settings import AutomationSettings, automation_settings

AUTOMATION: AutomationSettings = automation_settings()


def refresh_when_stale() -> AutomationCondition:
    """Materialize once per episode of staleness, unless a run is already on it.

    The freshness daemon re-evaluates a while after a materialization, so "stale" outlasts the run
    that fixed it; asking "not yet requested since it went stale" keeps that lag, and a run that
    failed against a broken API, from turning into a run every automation tick.
    """
    stale = (
        AutomationCondition.freshness_warned() | AutomationCondition.freshness_failed()
    ).with_label("freshness warned or failed")
    became_stale = (
        AutomationCondition.freshness_warned().newly_true()
        | AutomationCondition.freshness_failed().newly_true()
    ).with_label("became stale")
    requested_since = AutomationCondition.newly_requested().since(became_stale)
    return (
        stale
        & ~AutomationCondition.in_progress()
        & ~requested_since.with_label("already requested since it became stale")
    ).with_label("refresh when stale")


def freshness_policy(
    profile: Automation, settings: AutomationSettings = AUTOMATION
) -> FreshnessPolicy | None:
    # Sending is billed and happens on request only: it has no expected cadence.
    if profile == "daily":
        return FreshnessPolicy.time_window(
            fail_window=settings.reference_fail, warn_window=settings.reference_warn
        )
    if profile == "status":
        return FreshnessPolicy.time_window(
            fail_window=settings.status_fail, warn_window=settings.status_warn
        )
    if profile == "pushed":
        # Loaded as files land, and by a schedule on a quiet day: stale means loading stopped.
        return FreshnessPolicy.time_window(
            fail_window=settings.pushed_fail, warn_window=settings.pushed_warn
        )
    return None


def automation_condition(profile: Automation) -> AutomationCondition | None:
    # Statuses are kept current by sensors that know which messages are pending, pushed data by
    # the sensor that notices landed files.
    return refresh_when_stale() if profile == "daily" else None


def summary_freshness(settings: AutomationSettings = AUTOMATION) -> FreshnessPolicy:
    """The delivery summary follows every status look-up: a gap means nobody watches deliveries."""
    return FreshnessPolicy.time_window(
        fail_window=settings.summary_fail, warn_window=settings.summary_warn
    )
