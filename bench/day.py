"""A simulated day of status tracking: what polling costs in API calls, without waiting a day.

10,000 sends spread over 24 hours; most become final within a minute, some stay buffered for
hours, some expire at their validity (48 h). A simulated clock ticks as the status sensor does
(every 30 s) and drives the project's own polling plan (`messaging_assets.defs.status_plan`)
exactly as `pending_status_sensor` uses it: the plan's due messages are looked up (the run it
requests), a look-up at or after a message's final moment finds it final, and the sensor's cursor
and each message's `checked_at` move on. Two references run on the same day: asking about every
pending message at every tick (what a status run did before it looked up only the due ones), and
the ideal, one look-up per message right after it became final.

The same day with delivery reports pushed (SOURCES__MESSAGING__RECEIVER__PUBLIC_URL set): every
status change is reported as it happens (a buffered message is BUFFERED within a minute), 1% of
reports never arrive, and the plan then only reconciles. Beside the sensor, what else looks
statuses up runs too: the safety-net schedule every 20 minutes, and sms_sent_sensor at the first
tick after a send. It counts look-ups per message and the lost final reports that reconciliation
caught, and how long after the final state it caught them; and, for reference, the same day with
the schedule and sms_sent_sensor asking about every pending message, as they did before they
reconciled too.

A report's delay is the time from its landing (the receiver acknowledges it once its file is in
place, in milliseconds: counted as the moment it arrived) to the end of the run that puts it in
the warehouse. On the simulated clock: `landed_files_sensor` ticks every 30 s and requests a run
when something landed since its last tick; the run queue dequeues every 5 s (Dagster's default),
so a run starts 0 to 5 s after its tick, or when the previous run ends (one writer at a time);
the run then takes `run_seconds` of real time, which `make bench` measures: `dagster job
execute` of `pushed_data_job` over a tick's worth of reports, the whole process as the run
launcher starts one (bench/run.py). The status plan sees a report once its run has ended.

    python -m bench.day [--sends 10000] [--seed 7] [--lost-share 0.01] [--run-seconds 0]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from messaging_assets.defs.status_plan import PendingMessage, plan_status_checks
from messaging_assets.settings import AutomationSettings

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
# The interval of pending_status_sensor, sms_sent_sensor and landed_files_sensor.
TICK = timedelta(seconds=30)
STATUS_SCHEDULE = timedelta(minutes=20)  # message_status_schedule's default cron, */20
# The queued run coordinator's default dequeue interval: a requested run starts within it.
DEQUEUE = timedelta(seconds=5)
DAY = timedelta(days=1)
# The share of delivery reports that never arrive, in the day with reports pushed.
LOST_SHARE = 0.01
ACCEPTED, BUFFERED, FINAL = "ACCEPTED", "BUFFERED", "FINAL"


@dataclass
class Message:
    request_id: str
    sent: datetime
    final: datetime  # when its status becomes final (EXPIRED at validity for some)
    checked: datetime | None = None
    known_final: bool = False
    look_ups: int = 0
    # The day with reports pushed: when it turns BUFFERED (if it does), and its stored status.
    buffered: datetime | None = None
    stored: str = ACCEPTED

    def status_at(self, moment: datetime) -> str:
        if moment >= self.final:
            return FINAL
        return BUFFERED if self.buffered and moment >= self.buffered else ACCEPTED


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


def simulate(
    sends: int,
    seed: int,
    settings: AutomationSettings,
    lost_share: float = LOST_SHARE,
    run_seconds: float = 0.0,
) -> dict[str, Any]:
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
            [PendingMessage(m.request_id, BUFFERED, m.sent, m.checked) for m in pending.values()],
            now,
            settings,
            requested,
            reports_pushed=False,
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
    results["pushed"] = simulate_pushed(sends, seed, settings, lost_share, run_seconds)
    results["pushed_safety_nets_polling"] = simulate_pushed(
        sends, seed, settings, lost_share, run_seconds, safety_nets_reconcile=False
    )
    return results


Report = tuple[datetime, str, Message]


def reports(
    messages: Sequence[Message], seed: int, lost_share: float
) -> tuple[list[Report], set[str]]:
    """Each message's reports that arrive, as (when, status, message) in time order, and the
    messages whose final report is lost. Messages final within a minute go from ACCEPTED straight
    to their final state; the others are BUFFERED within a minute of their send."""
    rng = random.Random(f"{seed}:reports")
    arriving: list[Report] = []
    final_lost: set[str] = set()
    for message in messages:
        if message.final - message.sent > timedelta(minutes=1):
            message.buffered = message.sent + timedelta(seconds=rng.uniform(2, 60))
        for at, status in ((message.sent, ACCEPTED), (message.buffered, BUFFERED)):
            if at is not None and rng.random() >= lost_share:
                arriving.append((at, status, message))
        if rng.random() >= lost_share:
            arriving.append((message.final, FINAL, message))
        else:
            final_lost.add(message.request_id)
    arriving.sort(key=lambda report: report[0])
    return arriving, final_lost


def reports_per_tick(sends: int, seed: int, settings: AutomationSettings) -> int:
    """How many reports land between two ticks of the landed-files sensor, on average: what one
    pushed-data run of the day loads."""
    messages = status_model(sends, seed, timedelta(hours=settings.validity_hours))
    arriving, _ = reports(messages, seed, LOST_SHARE)
    return math.ceil(len(arriving) / (DAY / TICK))


def simulate_pushed(
    sends: int,
    seed: int,
    settings: AutomationSettings,
    lost_share: float,
    run_seconds: float,
    safety_nets_reconcile: bool = True,
) -> dict[str, Any]:
    """The same day with delivery reports pushed: the status sensor reconciles what reports did
    not say, and so do the safety-net schedule and sms_sent_sensor; with `safety_nets_reconcile`
    False, each of their runs looks up every pending message instead."""
    messages = status_model(sends, seed, timedelta(hours=settings.validity_hours))
    arriving, final_lost = reports(messages, seed, lost_share)
    queue = random.Random(f"{seed}:queue")
    run_time = timedelta(seconds=run_seconds)
    requested: dict[str, datetime] = {}
    calls = Counter[int]()
    pending: dict[str, Message] = {}
    caught: list[timedelta] = []  # how long after its final state a lost final report was caught
    delays: list[float] = []  # seconds from each report's landing to its row in the warehouse
    loading: deque[Report] = deque()  # (when its run ends, status, message), in that order
    runs, free = 0, START  # the pushed-data runs, and when the last one ends
    end = START + DAY + settings.give_up_after + TICK
    now, sent, reported = START, 0, 0

    def plan(cursor: dict[str, datetime] | None) -> list[str]:
        stored = [
            PendingMessage(m.request_id, m.stored, m.sent, m.checked) for m in pending.values()
        ]
        return plan_status_checks(stored, now, settings, cursor, reports_pushed=True).due

    def look_up(request_ids: list[str]) -> None:
        for request_id in request_ids:
            message = pending[request_id]
            message.checked = now
            message.look_ups += 1
            status = message.status_at(now)
            if status == FINAL:
                message.known_final = True
                caught.append(now - message.final)
                del pending[request_id]
                requested.pop(request_id, None)
            else:
                message.stored = status
        calls[int((now - START) / timedelta(hours=1))] += len(request_ids)

    while now <= end:
        before = sent
        while sent < sends and messages[sent].sent <= now:
            pending[messages[sent].request_id] = messages[sent]
            sent += 1
        # The landed-files sensor: a run for whatever landed since its last tick.
        landed = []
        while reported < len(arriving) and arriving[reported][0] <= now:
            landed.append(arriving[reported])
            reported += 1
        if landed:
            runs += 1
            start = max(now + queue.uniform(0, 1) * DEQUEUE, free)
            free = start + run_time
            for at, status, message in landed:
                delays.append((free - at).total_seconds())
                loading.append((free, status, message))
        # Reports whose run has ended are in the warehouse.
        while loading and loading[0][0] <= now:
            _, status, message = loading.popleft()
            if status == FINAL:
                message.known_final = True
                pending.pop(message.request_id, None)
                requested.pop(message.request_id, None)
            elif status == BUFFERED and message.stored == ACCEPTED:
                message.stored = BUFFERED
        # The status sensor: its cursor remembers what it requested.
        due = plan(requested)
        requested.update(dict.fromkeys(due, now))
        look_up(due)
        # sms_sent_sensor after a send, then the schedule on its minute; neither has a cursor.
        if sent > before and not safety_nets_reconcile:
            look_up(list(pending))
        if (now - START) % STATUS_SCHEDULE == timedelta(0):
            look_up(plan(None) if safety_nets_reconcile else list(pending))
        now += TICK
    minutes = sorted(delay / timedelta(minutes=1) for delay in caught)
    sent_reports = 2 * sends + sum(m.buffered is not None for m in messages)
    delays.sort()
    return {
        "lost_share": lost_share,
        "run_seconds": run_seconds,
        "runs": runs,
        "delay_s": {
            "p50": delays[len(delays) // 2],
            "p99": delays[min(len(delays) - 1, int(len(delays) * 0.99))],
            "max": delays[-1],
        },
        "reports": sent_reports,
        "lost": sent_reports - len(arriving),
        **_summary([m.look_ups for m in messages], calls),
        "final_reports_lost": len(final_lost),
        "caught": len(caught),
        "caught_within_an_hour": sum(m <= 60 for m in minutes),
        "caught_after_minutes_median": statistics.median(minutes) if minutes else None,
        "caught_after_minutes_max": minutes[-1] if minutes else None,
        "never_final": sum(not m.known_final for m in messages),
    }


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
    return lines + pushed_table(day["pushed"], day["pushed_safety_nets_polling"])


def pushed_table(pushed: dict[str, Any], polling: dict[str, Any]) -> list[str]:
    delay = pushed["delay_s"]
    run = pushed.get("run")
    steps = f", of which its steps {run['steps']['median']:.1f} s" if run else ""
    # Lost final reports of messages that were BUFFERED are caught once their validity ends.
    caught = (
        f"{pushed['caught_within_an_hour']:,} within an hour of the final state; median "
        f"{pushed['caught_after_minutes_median']:.0f} min, max "
        f"{pushed['caught_after_minutes_max'] / 60:.1f} h"
        if pushed["caught"]
        else "none to catch"
    )
    rows = (
        ("everything reconciling overdue reports", pushed),
        ("the sensor reconciling; schedule and sms_sent_sensor asking about all pending", polling),
    )
    return [
        "",
        f"The same day with delivery reports pushed, {pushed['lost_share']:.0%} of them lost "
        f"({pushed['lost']:,} of {pushed['reports']:,}), with the status sensor, the safety-net "
        "schedule and sms_sent_sensor:",
        "",
        "| strategy | API calls | look-ups per message (mean / p95) | busiest hour |",
        "| --- | ---: | ---: | ---: |",
        *(
            f"| {label} | {s['calls']:,} | {s['mean_per_message']:.3f} / "
            f"{s['p95_per_message']} | {s['busiest_hour_calls']:,} |"
            for label, s in rows
        ),
        "",
        f"Lost final reports: {pushed['final_reports_lost']:,}, caught by a look-up: "
        f"{pushed['caught']:,} ({caught}); messages never known final: "
        f"{pushed['never_final']:,}.",
        "",
        f"From a report's landing to its row in the warehouse: p50 {delay['p50']:.0f} s, p99 "
        f"{delay['p99']:.0f} s, max {delay['max']:.0f} s ({pushed['runs']:,} runs of "
        "pushed_data_job). The delay is the simulated clock's wait for the landed-files sensor's "
        "next tick (every 30 s) and for the run queue (every 5 s), plus each run's real time, "
        f"{pushed['run_seconds']:.1f} s{steps} (`make bench` measures it: `dagster job execute` "
        "of pushed_data_job over a tick's reports; `python -m bench.day --run-seconds S`).",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.day")
    parser.add_argument("--sends", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--lost-share", type=float, default=LOST_SHARE)
    parser.add_argument(
        "--run-seconds", type=float, default=0.0, help="each pushed-data run's real time"
    )
    args = parser.parse_args(argv)
    day = simulate(args.sends, args.seed, AutomationSettings(), args.lost_share, args.run_seconds)
    print("\n".join(table(day)))
    print(json.dumps(day), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
