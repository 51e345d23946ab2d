"""A simulated day of status tracking: what polling costs in API calls, without waiting a day.

10,000 sends spread over 24 hours; most become final within a minute, some stay buffered for
hours, some expire at their validity (48 h). A simulated clock ticks as the status sensor does
(every 30 s) and drives the project's own polling plan (`messaging_assets.defs.status_plan`)
exactly as `pending_status_sensor` uses it: the plan's due messages are looked up (the run it
requests), a look-up at or after a message's final moment finds it final, and the sensor's cursor
and each message's `checked_at` move on. Two references run on the same day: asking about every
pending message at every tick (what a status run did before it looked up only the due ones), and
the ideal, one look-up per message right after it became final.

    python -m bench.day [--sends 10000] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from messaging_assets.defs.status_plan import PendingMessage, plan_status_checks
from messaging_assets.settings import AutomationSettings

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
TICK = timedelta(seconds=30)  # pending_status_sensor's minimum interval
DAY = timedelta(days=1)


@dataclass
class Message:
    request_id: str
    sent: datetime
    final: datetime  # when its status becomes final (EXPIRED at validity for some)
    checked: datetime | None = None
    known_final: bool = False
    look_ups: int = 0


def status_model(sends: int, seed: int, validity: timedelta) -> list[Message]:
    """Sends spread over a day and when each becomes final: 85% within a minute, 12% buffered
    for 1 to 6 hours, 3% expiring at their validity."""
    rng = random.Random(f"{seed}:day")
    messages = []
    for n in range(sends):
        sent = START + timedelta(seconds=rng.uniform(0, DAY.total_seconds()))
        fate = rng.random()
        if fate < 0.85:
            after = timedelta(seconds=rng.uniform(2, 60))
        elif fate < 0.97:
            after = timedelta(hours=rng.uniform(1, 6))
        else:
            after = validity
        messages.append(Message(f"m-{n:05d}", sent, sent + after))
    return sorted(messages, key=lambda message: message.sent)


def _summary(per_message: Sequence[int], per_hour: Counter[int]) -> dict[str, Any]:
    ordered = sorted(per_message)
    return {
        "calls": sum(per_message),
        "mean_per_message": statistics.fmean(per_message),
        "p95_per_message": ordered[int(0.95 * (len(ordered) - 1))],
        "busiest_hour_calls": max(per_hour.values()),
    }


def simulate(sends: int, seed: int, settings: AutomationSettings) -> dict[str, Any]:
    validity = timedelta(hours=settings.validity_hours)
    planned = status_model(sends, seed, validity)
    every = status_model(sends, seed, validity)
    requested: dict[str, datetime] = {}
    calls = {"plan": Counter[int](), "every": Counter[int]()}
    pending: dict[str, Message] = {}  # the project's: sent, not yet known final
    asked: list[Message] = []  # the reference's
    end = START + DAY + settings.give_up_after + TICK
    now, arrived = START, 0
    while now <= end:
        while arrived < sends and planned[arrived].sent <= now:
            pending[planned[arrived].request_id] = planned[arrived]
            asked.append(every[arrived])
            arrived += 1
        hour = int((now - START) / timedelta(hours=1))
        # The project: the sensor's plan, then a run that looks up exactly its due messages.
        plan = plan_status_checks(
            [PendingMessage(m.request_id, "BUFFERED", m.sent, m.checked) for m in pending.values()],
            now,
            settings,
            requested,
        )
        for request_id in plan.due:
            message = pending[request_id]
            requested[request_id] = message.checked = now
            message.look_ups += 1
            if now >= message.final:
                message.known_final = True
                del pending[request_id]
                requested.pop(request_id)
        calls["plan"][hour] += len(plan.due)
        # The reference: every pending message at every tick (past validity + margin: given up).
        still = []
        for message in asked:
            if now - message.sent > settings.give_up_after:
                continue
            message.look_ups += 1
            calls["every"][hour] += 1
            if now >= message.final:
                message.known_final = True
            else:
                still.append(message)
        asked = still
        now += TICK
    ideal = Counter(int((m.final - START) / timedelta(hours=1)) for m in planned)
    results = {
        "sends": sends,
        "plan": _summary([m.look_ups for m in planned], calls["plan"]),
        "every_tick": _summary([m.look_ups for m in every], calls["every"]),
        "ideal": _summary([1] * sends, ideal),
        "never_final": sum(not m.known_final for m in planned),
    }
    results["fewer_calls_than_every_tick"] = (
        results["every_tick"]["calls"] / results["plan"]["calls"]
    )
    results["calls_over_ideal"] = results["plan"]["calls"] / results["ideal"]["calls"]
    return results


def table(day: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"Simulated day of status tracking: {day['sends']:,} sends over 24 h (85% final within "
        "a minute, 12% buffered 1-6 h, 3% expiring at validity), sensor ticks every 30 s",
        "",
        "| strategy | API calls | look-ups per message (mean / p95) | busiest hour |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, key in (
        ("the project's plan (due messages only)", "plan"),
        ("every pending message at every tick", "every_tick"),
        ("ideal (one look-up once final)", "ideal"),
    ):
        s = day[key]
        lines.append(
            f"| {label} | {s['calls']:,} | {s['mean_per_message']:.1f} / "
            f"{s['p95_per_message']} | {s['busiest_hour_calls']:,} |"
        )
    lines += [
        "",
        f"The plan makes {day['fewer_calls_than_every_tick']:.0f}x fewer calls than asking about "
        f"every pending message, and {day['calls_over_ideal']:.1f}x the ideal.",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.day")
    parser.add_argument("--sends", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    day = simulate(args.sends, args.seed, AutomationSettings())
    print("\n".join(table(day)))
    print(json.dumps(day), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
