"""The full lists: paging, envelopes, keys, and the guards that run before anything changes; the
loads, scd2 retirements and guards that read the warehouse on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from messaging_assets.sandbox import Fault, Sandbox
from messaging_assets_tests.conftest import (
    API_KEY,
    Warehouse,
    both_destinations,
    failure_text,
    materialize_cli,
    metadata_of,
    point_at,
)

CURRENT = "SELECT count(*) FROM messaging.{} WHERE _dlt_valid_to IS NULL"


@contextmanager
def provider(monkeypatch: pytest.MonkeyPatch, **options) -> Iterator[Sandbox]:
    """A sandbox in the provider's published shape, the project pointed at it."""
    with Sandbox(api_key=API_KEY, shape="provider", **options) as api:
        point_at(api, monkeypatch)
        yield api


def pages_asked(api: Sandbox, endpoint: str) -> list[tuple[str | None, str | None]]:
    return [
        (r.params.get("page"), r.params.get("size")) for r in api.requests if r.endpoint == endpoint
    ]


# Paging


@both_destinations
def test_phone_book_is_read_page_by_page_until_a_short_page(run, warehouse: Warehouse, monkeypatch):
    with provider(monkeypatch, phones=7001) as api:
        result = run("phones")

    assert pages_asked(api, "phones") == [("0", "3000"), ("1", "3000"), ("2", "3000")]
    assert warehouse.scalar(CURRENT.format("phones")) == 7001
    assert warehouse.scalar("SELECT count(DISTINCT phone_number) FROM messaging.phones") == 7001
    assert metadata_of(result, "phones")["dagster/row_count"] == 7001


def test_page_size_and_first_page_are_settings(run, duckdb_path, monkeypatch):
    monkeypatch.setenv("SOURCES__MESSAGING__PHONES__PAGE_SIZE", "2500")
    monkeypatch.setenv("SOURCES__MESSAGING__PHONES__FIRST_PAGE", "1")
    with provider(monkeypatch, phones=6000) as api:
        run("phones")

    # Counting from page 1, the sandbox (whose pages count from 0) skips the first 2,500.
    assert pages_asked(api, "phones") == [("1", "2500"), ("2", "2500")]
    assert Warehouse(duckdb_path).scalar(CURRENT.format("phones")) == 3500


def test_a_paginator_can_be_set_the_dlt_way(run, duckdb_path, monkeypatch):
    paginator = {"type": "page_number", "base_page": 0, "total_path": None, "maximum_page": 2}
    monkeypatch.setenv("SOURCES__MESSAGING__PHONES__PAGINATOR", json.dumps(paginator))
    with provider(monkeypatch, phones=7001) as api:
        run("phones")

    assert pages_asked(api, "phones") == [("0", None), ("1", None)]
    assert Warehouse(duckdb_path).scalar(CURRENT.format("phones")) == 6000


def test_a_server_that_ignores_paging_fails_instead_of_asking_forever(run, monkeypatch):
    with provider(monkeypatch, phones=7001, ignore_paging=True) as api:
        message = failure_text(run("phones", raise_on_error=False))

    assert "answered the same page twice: the API seems to ignore the paging" in message
    assert api.count("phones") == 2


# Envelopes


def test_every_envelope_of_an_answer_is_loaded(run, duckdb_path, monkeypatch):
    with provider(monkeypatch, contacts=120, envelopes=3):
        run("contacts")

    assert Warehouse(duckdb_path).scalar(CURRENT.format("contacts")) == 120


def test_an_envelope_of_exactly_one_record_loads(run, duckdb_path, monkeypatch):
    with provider(monkeypatch, registrations=1):
        run("registrations")

    assert Warehouse(duckdb_path).scalar(CURRENT.format("registrations")) == 1


def test_a_missing_envelope_names_the_selector_and_shape_settings(run, monkeypatch):
    with provider(monkeypatch, contacts=5) as api:
        api.inject("contacts", Fault.NO_DATA_KEY)
        message = failure_text(run("contacts", raise_on_error=False))

    assert "messaging/contacts: GET /byon/contacts/v1 has no `[*].contacts`" in message
    assert "SOURCES__MESSAGING__CONTACTS__DATA_SELECTOR (now `[*].contacts[*]`)" in message
    assert "SOURCES__MESSAGING__API_SHAPE (now `provider`)" in message


# Keys


@both_destinations
def test_list_whose_records_lack_the_key_keeps_its_history_by_content(
    sandbox: Sandbox, run, warehouse: Warehouse, monkeypatch, caplog
):
    monkeypatch.setenv("SOURCES__MESSAGING__CONTACTS__PRIMARY_KEY", "customerNumber")

    first = run("contacts")
    sandbox.remove_contact("c-000001")
    second = run("contacts")

    assert warehouse.scalar(CURRENT.format("contacts")) == 119
    assert warehouse.scalar("SELECT count(*) FROM messaging.contacts") == 120
    said = "the records carry no `customerNumber`"
    assert said in caplog.text and "SOURCES__MESSAGING__CONTACTS__PRIMARY_KEY" in caplog.text
    assert metadata_of(first, "contacts")["primary_key"].startswith(f"none: {said}")
    (key_check,) = [
        e
        for e in second.get_asset_check_evaluations()
        if e.check_name == "primary_key_unique_not_null"
    ]
    assert key_check.passed
    assert key_check.description.startswith(f"no key: {said}")


def test_changing_a_lists_key_on_an_existing_table_keeps_loading(
    sandbox: Sandbox, run, warehouse: Warehouse, monkeypatch
):
    run("contacts")
    monkeypatch.setenv("SOURCES__MESSAGING__CONTACTS__PRIMARY_KEY", "contactEmail")

    result = run("contacts")

    assert metadata_of(result, "contacts")["primary_key"] == "contact_email"
    assert warehouse.scalar(CURRENT.format("contacts")) == 120


# Guards before damage: each run through the CLI with a Dagster home of its own


@pytest.mark.e2e
@both_destinations
def test_a_list_that_would_retire_most_rows_is_refused_and_retires_nothing(
    sandbox: Sandbox, warehouse: Warehouse
):
    assert materialize_cli("messaging/contacts", env=os.environ).returncode == 0
    sandbox.set_contact_count(12)

    refused = materialize_cli("messaging/contacts", env=os.environ)

    assert refused.returncode != 0
    assert (
        "messaging/contacts: the API listed 12 record(s) where 120 are current in the warehouse: "
        "loading it would retire 108 (90%), more than the allowed 25%. Nothing was retired."
    ) in refused.stderr
    assert "run config `accept_shrink: true`" in refused.stderr
    assert "MESSAGING__AUTOMATION__ROW_DROP_SHARE" in refused.stderr
    assert warehouse.scalar(CURRENT.format("contacts")) == 120


@pytest.mark.e2e
def test_duplicate_keys_in_a_page_fail_before_anything_changes(
    sandbox: Sandbox, warehouse: Warehouse
):
    assert materialize_cli("messaging/phones", env=os.environ).returncode == 0
    before = warehouse.rows("SELECT * FROM messaging.phones ORDER BY ALL")
    sandbox.inject("phones", Fault.DUPLICATE_KEY)

    refused = materialize_cli("messaging/phones", env=os.environ)

    assert refused.returncode != 0
    assert re.search(
        r"messaging/phones: the key `phoneNumber` \(SOURCES__MESSAGING__PHONES__PRIMARY_KEY\) is "
        r"not unique in the list: '\+\d+' come\(s\) more than once. Nothing was loaded.",
        refused.stderr,
    )
    assert warehouse.rows("SELECT * FROM messaging.phones ORDER BY ALL") == before


@both_destinations
def test_a_shrink_accepted_in_the_run_config_retires_the_rows(
    sandbox: Sandbox, run, warehouse: Warehouse
):
    run("contacts")
    sandbox.set_contact_count(12)

    run("contacts", config={"ops": {"messaging_reference": {"config": {"accept_shrink": True}}}})

    assert warehouse.scalar(CURRENT.format("contacts")) == 12


def test_a_larger_allowed_share_lets_a_shrink_through(
    sandbox: Sandbox, run, warehouse: Warehouse, monkeypatch
):
    run("contacts")
    sandbox.set_contact_count(60)
    monkeypatch.setenv("MESSAGING__AUTOMATION__ROW_DROP_SHARE", "0.6")

    run("contacts")

    assert warehouse.scalar(CURRENT.format("contacts")) == 60
