"""The receiver landing in a bucket of a real S3-compatible server (moto's, .ci/s3): one PUT per
file, acknowledged once the store answered, names no other receiver takes, and two receivers on
one bucket whose events are loaded through Dagster each once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bench import bucket_load as bench_bucket_load
from bench import receiver as bench_receiver
from messaging_assets.receiver import landing
from messaging_assets.receiver.__main__ import main
from messaging_assets.receiver.storage import ObjectStore
from messaging_assets_tests.conftest import TOKEN, Bucket, Receiver, Warehouse
from messaging_assets_tests.receiver.test_receiver import REPORT


def on_bucket(tmp_path: Path, bucket: Bucket, name: str = "receiver", **env: str) -> Receiver:
    """A receiver process landing in the bucket, with the bucket's settings as a user sets them."""
    receiver = Receiver(tmp_path / "unused", tmp_path / f"{name}.log")
    receiver.env.update({**bucket.env(), **env})
    return receiver.start()


@pytest.fixture
def receivers(tmp_path: Path, bucket: Bucket) -> Iterator[list[Receiver]]:
    """Two receiver processes on one bucket: hosts of their own but for the machine."""
    started = [on_bucket(tmp_path, bucket, f"receiver-{n}") for n in range(2)]
    yield started
    for receiver in started:
        if receiver.process and receiver.process.poll() is None:
            receiver.stop()


def post_all(receivers: list[Receiver], ids: list[list[str]]) -> list[str]:
    """One client thread per list of ids, each posting its reports to every receiver in turn,
    each report to every receiver (the provider retrying against another host behind a load
    balancer); the ids acknowledged by all."""
    acknowledged: list[str] = []

    def client(mine: list[str]) -> None:
        for request_id in mine:
            body = json.dumps({**REPORT, "requestId": request_id}).encode()
            if all(r.post("delivery-reports", body).status == 204 for r in receivers):
                acknowledged.append(request_id)

    threads = [threading.Thread(target=client, args=(mine,)) for mine in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return acknowledged


@pytest.mark.e2e
@pytest.mark.s3
def test_acknowledged_events_are_whole_objects_in_the_bucket_never_overwritten(
    tmp_path: Path, bucket: Bucket
):
    receiver = on_bucket(tmp_path, bucket)
    ids = [[f"o-{client}-{n}" for n in range(10)] for client in range(10)]

    acknowledged = post_all([receiver], ids)
    assert receiver.stop() == 0

    objects = bucket.objects(landing.DELIVERY_REPORTS)
    versions = bucket.client().list_object_versions(Bucket=bucket.name)["Versions"]
    landed = [json.loads(e.body)["requestId"] for e in bucket.read(landing.DELIVERY_REPORTS)]
    assert sorted(acknowledged) == sorted(landed) == sorted(i for mine in ids for i in mine)
    assert all(landing.is_landed_file(name) for name in objects)
    # One version per object: no PUT replaced another.
    assert len(versions) == len(objects)
    log = receiver.logs.read_text()
    assert f"landing in {bucket.url}" in log
    assert bucket.secret not in log


@pytest.mark.e2e
@pytest.mark.s3
def test_two_receivers_on_one_bucket_lose_nothing_and_load_nothing_twice(
    run, receivers: list[Receiver], bucket: Bucket, warehouse: Warehouse
):
    ids = [[f"t-{client}-{n}" for n in range(8)] for client in range(8)]

    acknowledged = post_all(receivers, ids)
    for receiver in receivers:
        assert receiver.stop() == 0
    run("delivery_reports")
    run("delivery_reports")

    writers = {name.split("-")[1] for name in bucket.objects(landing.DELIVERY_REPORTS)}
    assert len(writers) == 2
    assert len(acknowledged) == 64
    assert warehouse.rows(
        "SELECT request_id, count(*) FROM messaging.delivery_reports GROUP BY 1 ORDER BY 1"
    ) == [(request_id, 1) for request_id in sorted(acknowledged)]


@pytest.mark.e2e
@pytest.mark.s3
def test_a_write_the_store_refuses_is_answered_503_and_named_in_the_log(
    tmp_path: Path, bucket: Bucket
):
    missing = "s3://no-such-bucket-for-messaging/landing"
    receiver = on_bucket(tmp_path, bucket, SOURCES__MESSAGING__RECEIVER__LANDING_URL=missing)

    answer = receiver.post("delivery-reports", json.dumps(REPORT).encode())
    assert receiver.stop() == 0

    assert answer.status == 503
    log = receiver.logs.read_text()
    assert "landing delivery_reports/" in log
    assert "1 event(s) not acknowledged: FileNotFoundError" in log
    assert bucket.secret not in log
    assert TOKEN not in log


@pytest.mark.s3
def test_an_object_name_already_taken_is_refused_not_overwritten(bucket: Bucket):
    store = ObjectStore(bucket.url)
    name = landing.file_name(datetime.now(timezone.utc), "00ff00ff_1", 1)
    store.write(landing.INBOUND_MESSAGES, name, b"first\n")

    with pytest.raises(FileExistsError):
        store.write(landing.INBOUND_MESSAGES, name, b"second\n")

    stored = bucket.client().get_object(Bucket=bucket.name, Key=f"landing/inbound_messages/{name}")
    assert stored["Body"].read() == b"first\n"


@pytest.mark.e2e
def test_the_bench_bucket_scenario_measures_the_receiver_on_a_bucket_and_a_folder():
    figures = bench_receiver.bucket_scenario(events=200, repeats=1)

    assert figures["folder"]["files"]["median"] >= 1
    assert figures["bucket"]["files"]["median"] >= 1
    assert figures["bucket"]["ratio"]["median"] > 0
    assert "| bucket (S3, moto) |" in "\n".join(bench_receiver.bucket_table(figures))


@pytest.mark.e2e
def test_the_bench_loads_the_same_landed_reports_from_a_bucket_and_a_folder():
    figures = bench_bucket_load.scenario(reports=300, per_file=100, repeats=1)

    assert figures["files"] == 3
    assert figures["bucket"]["ratio"]["median"] > 0
    assert "| bucket (S3, moto) |" in "\n".join(bench_bucket_load.table(figures))


def test_a_bucket_without_credentials_is_one_line_naming_the_variables(monkeypatch, capsys):
    monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__TOKEN", TOKEN)
    monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__LANDING_URL", "s3://bucket/landing")
    # Nothing for botocore's default chain either: no keys, no profile, no instance metadata.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    assert main([]) == 1

    assert capsys.readouterr().err == (
        "messaging receiver: the landing zone s3://bucket/landing needs credentials: "
        "SOURCES__MESSAGING__FILESYSTEM__CREDENTIALS__AWS_ACCESS_KEY_ID, "
        "SOURCES__MESSAGING__FILESYSTEM__CREDENTIALS__AWS_SECRET_ACCESS_KEY not set (nor in "
        ".dlt/secrets.toml, nor the store's own default chain, e.g. AWS_ACCESS_KEY_ID or an "
        "instance role).\n"
    )


def test_a_store_whose_filesystem_is_not_installed_is_one_line_naming_it(monkeypatch, capsys):
    monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__TOKEN", TOKEN)
    monkeypatch.setenv("SOURCES__MESSAGING__RECEIVER__LANDING_URL", "az://container/landing")
    credentials = "SOURCES__MESSAGING__FILESYSTEM__CREDENTIALS__"
    monkeypatch.setenv(f"{credentials}AZURE_STORAGE_ACCOUNT_NAME", "account")
    monkeypatch.setenv(f"{credentials}AZURE_STORAGE_ACCOUNT_KEY", "a-key-never-shown")

    assert main([]) == 1

    said = capsys.readouterr().err
    assert said == (
        "messaging receiver: the landing zone az://container/landing needs fsspec's az:// "
        "filesystem, not installed: pip install dlt[az] (for s3:// the project's `s3` extra, "
        "which `make install` installs).\n"
    )
