"""The landing zone in a bucket of a real S3-compatible server (moto's, .ci/s3): objects landed as
the receiver lands them there, loaded through Dagster and noticed by the sensor, each once.

S3 dates an object to the whole second, and an object can become visible after one with a later
date was already listed (S3 dates a PUT by when it began, so a slow upload appears late). Here
an object is made to appear late the way a versioned bucket allows: it is landed, hidden behind
a delete marker at once, and revealed later by removing the marker, keeping its LastModified.
"""

from __future__ import annotations

import time
from pathlib import PurePosixPath

import pytest
from dagster import build_sensor_context

from messaging_assets.definitions import defs
from messaging_assets.defs.sensors import landed_files_sensor
from messaging_assets.receiver.landing import DELIVERY_REPORTS, INBOUND_MESSAGES
from messaging_assets_tests.conftest import Bucket, Landing, Warehouse
from messaging_assets_tests.source.test_pushed import INBOUND, report

pytestmark = pytest.mark.s3

# (seconds between the object loaded first and the late one's date, the loader's lag): the late
# object shares the second of the one loaded (no lag needed: dlt's incremental keeps the keys of
# its last second), or is dated seconds before it (the lag reaches back for it).
LATE = [
    pytest.param(0, 0, id="same-second"),
    pytest.param(2, 60, id="earlier-second-within-the-lag"),
]


def hide(bucket: Bucket, key: PurePosixPath) -> str:
    """Hide an object behind a delete marker; the marker's version id."""
    answer = bucket.client().delete_object(Bucket=bucket.name, Key=f"landing/{key}")
    return answer["VersionId"]


def reveal(bucket: Bucket, key: PurePosixPath, marker: str) -> None:
    bucket.client().delete_object(Bucket=bucket.name, Key=f"landing/{key}", VersionId=marker)


def land_late_pair(
    bucket: Bucket, landed: Landing, gap: int
) -> tuple[PurePosixPath, PurePosixPath, str]:
    """A visible report, and a hidden one dated `gap` seconds before it (in its second if 0);
    the hidden one's key and delete marker."""
    for _ in range(5):
        if gap == 0:
            # Both early in one second, so that they share it.
            time.sleep(1 - time.time() % 1)
        late = landed.land(DELIVERY_REPORTS, report("r-late", "ACCEPTED"))
        marker = hide(bucket, late)
        time.sleep(gap)
        loaded = landed.land(DELIVERY_REPORTS, report("r-loaded", "ACCEPTED"))
        dates = bucket.client().list_object_versions(
            Bucket=bucket.name, Prefix=f"landing/{DELIVERY_REPORTS}/"
        )["Versions"]
        modified = {v["Key"].rsplit("/", 1)[1]: v["LastModified"] for v in dates}
        if (modified[loaded.name] - modified[late.name]).total_seconds() == gap:
            return loaded, late, marker
    raise AssertionError(f"could not land two objects {gap} s apart in 5 tries")


def test_reports_and_inbound_messages_load_from_a_bucket_once_each(
    run, bucket_landed: Landing, warehouse: Warehouse
):
    first = bucket_landed.land(DELIVERY_REPORTS, report("r-1", "DELIVERED"))
    # The same report again beside a new one: the provider's retry, to another receiver.
    second = bucket_landed.land(
        DELIVERY_REPORTS, report("r-1", "DELIVERED"), report("r-2", "BUFFERED")
    )
    bucket_landed.land(INBOUND_MESSAGES, INBOUND)

    run("delivery_reports", "inbound_messages")
    run("delivery_reports", "inbound_messages")

    assert warehouse.rows(
        "SELECT request_id, status, landed_file, landed_line FROM messaging.delivery_reports "
        "ORDER BY request_id"
    ) == [("r-1", "DELIVERED", str(first), 1), ("r-2", "BUFFERED", str(second), 2)]
    assert warehouse.scalar("SELECT count(*) FROM messaging.inbound_messages") == 1


def test_the_bucket_secret_is_in_no_event_of_a_run_that_loaded_from_it(
    run, bucket: Bucket, bucket_landed: Landing, instance
):
    bucket_landed.land(DELIVERY_REPORTS, report("r-1", "DELIVERED"))

    result = run("delivery_reports")

    records = instance.get_records_for_run(result.run_id).records
    assert any(r.event_log_entry.dagster_event_type == "ASSET_MATERIALIZATION" for r in records)
    assert bucket.secret not in repr([r.event_log_entry for r in records])


@pytest.mark.parametrize(("gap", "lag"), LATE)
def test_an_object_that_appears_late_is_loaded_by_the_next_run_once(
    run, bucket: Bucket, bucket_landed: Landing, warehouse: Warehouse, monkeypatch, gap, lag
):
    monkeypatch.setenv("MESSAGING__AUTOMATION__LANDING_LAG_SECONDS", str(lag))
    _, late, marker = land_late_pair(bucket, bucket_landed, gap)
    run("delivery_reports")
    assert warehouse.rows("SELECT request_id FROM messaging.delivery_reports") == [("r-loaded",)]

    reveal(bucket, late, marker)
    run("delivery_reports")
    run("delivery_reports")

    assert warehouse.rows(
        "SELECT request_id, count(*) FROM messaging.delivery_reports GROUP BY 1 ORDER BY 1"
    ) == [("r-late", 1), ("r-loaded", 1)]


@pytest.mark.parametrize(("gap", "lag"), LATE)
def test_the_sensor_requests_one_run_for_an_object_that_appears_late(
    bucket: Bucket, bucket_landed: Landing, instance, gap, lag
):
    loaded, late, marker = land_late_pair(bucket, bucket_landed, gap)

    def tick(cursor: str | None = None):
        context = build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
        return landed_files_sensor.evaluate_tick(context)

    first = tick()
    (before,) = first.run_requests
    assert tick(first.cursor).skip_message.endswith(f"still {loaded}.")
    reveal(bucket, late, marker)
    revealed = tick(first.cursor)

    (after,) = revealed.run_requests
    assert after.run_key != before.run_key
    assert tick(revealed.cursor).run_requests == []
