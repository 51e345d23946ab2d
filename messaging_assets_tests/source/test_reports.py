"""Delivery reports merged into `messages` through Dagster, in the runs that load them: each
message ends with the furthest status reported, whatever order the reports came in, and a look-up
in the same run is weighed against them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from messaging_assets.defs.jobs import PUSHED_RUN_CONFIG
from messaging_assets.receiver.landing import DELIVERY_REPORTS
from messaging_assets.sandbox import Sandbox
from messaging_assets_tests.conftest import Landing, Warehouse, both_destinations, run_config
from messaging_assets_tests.source.test_pushed import PART, report

PUSHED = ("delivery_reports", "inbound_messages", "messages")


def statuses(warehouse: Warehouse) -> dict[str, str]:
    return dict(warehouse.rows("SELECT request_id, status FROM messaging.messages"))


@both_destinations
def test_each_message_keeps_the_furthest_status_reported_whatever_the_order(
    sandbox: Sandbox, run, landed: Landing, warehouse: Warehouse
):
    now = datetime.now(timezone.utc)
    landed.land(DELIVERY_REPORTS, report("final-first", "DELIVERED", parts=[PART]))
    landed.land(DELIVERY_REPORTS, report("accepted-first", "ACCEPTED"))
    # Two reports of one message in one run: the later one received is the lesser status.
    landed.land(DELIVERY_REPORTS, report("one-run", "BUFFERED"), received_at=now)
    landed.land(
        DELIVERY_REPORTS, report("one-run", "ACCEPTED"), received_at=now + timedelta(seconds=1)
    )
    run(*PUSHED, config=PUSHED_RUN_CONFIG)
    final_load = warehouse.scalar(
        "SELECT _dlt_load_id FROM messaging.messages WHERE request_id = 'final-first'"
    )
    landed.land(DELIVERY_REPORTS, report("final-first", "ACCEPTED"))
    landed.land(DELIVERY_REPORTS, report("accepted-first", "BUFFERED"))

    run(*PUSHED, config=PUSHED_RUN_CONFIG)

    assert statuses(warehouse) == {
        "final-first": "DELIVERED",
        "accepted-first": "BUFFERED",
        "one-run": "BUFFERED",
    }
    # The final status was not written again: the late pending report lost, and the reports the
    # first run merged were not merged again (the resource's own state says where it stopped).
    assert final_load == warehouse.scalar(
        "SELECT _dlt_load_id FROM messaging.messages WHERE request_id = 'final-first'"
    )
    # None of them was sent by this project nor tracked; none was asked about.
    assert sandbox.requests == []
    assert warehouse.scalar("SELECT count(*) FROM messaging.messages__parts") == 1
    # Each row says when the report it came from was received; none was looked up.
    assert warehouse.rows(
        "SELECT count(reported_at), count(checked_at) FROM messaging.messages"
    ) == [(3, 0)]


def test_a_report_and_a_look_up_in_one_run_store_the_furthest_of_the_two(
    sandbox: Sandbox, run, landed: Landing, warehouse: Warehouse
):
    (pending,) = sandbox.add_messages(1)
    (final,) = sandbox.add_messages(1, final=True)
    run("messages", config=run_config(request_ids=[pending]))
    landed.land(DELIVERY_REPORTS, report(pending, "EXPIRED"), report(final, "ACCEPTED"))
    sandbox.reset()

    run("delivery_reports", "messages", config=run_config(request_ids=[final]))

    # The stored pending message is settled by its report: it was not asked about again.
    assert [r.path.rsplit("/", 1)[-1] for r in sandbox.requests] == [final]
    assert statuses(warehouse) == {pending: "EXPIRED", final: sandbox.message(final)["status"]}
