"""The dlt pipeline on PostgreSQL: every connection dlt opens for the project asks for the
work_mem that keeps scd2 merges hashed, and a user's own connection options are kept."""

from __future__ import annotations

from pathlib import Path

from messaging_assets.sandbox import Sandbox
from messaging_assets.warehouse.connection import connect
from messaging_assets.warehouse.destination import messaging_pipeline
from messaging_assets_tests.conftest import Destination, Warehouse, on_postgres

pytestmark = on_postgres

CURRENT = "SELECT count(*) FROM messaging.contacts WHERE _dlt_valid_to IS NULL"


def test_the_projects_and_dlts_connections_ask_for_64mb_of_work_mem(
    destination: Destination, tmp_path: Path
):
    with connect() as warehouse:
        projects = warehouse.scalar("SHOW work_mem")
    # The client a run's pipeline loads and merges with (loads.py builds it the same way).
    with messaging_pipeline(tmp_path).sql_client() as client:
        (dlts,) = client.execute_sql("SHOW work_mem")[0]

    assert (projects, dlts) == ("64MB", "64MB")


def test_work_mem_in_the_credentials_options_is_kept_and_loads_go_through(
    sandbox: Sandbox, run, destination: Destination, warehouse: Warehouse, monkeypatch
):
    monkeypatch.setenv(
        "DESTINATION__POSTGRES__CREDENTIALS", f"{destination.location}?options=-cwork_mem%3D256MB"
    )

    run("contacts")

    with connect() as connected:
        assert connected.scalar("SHOW work_mem") == "256MB"
    assert warehouse.scalar(CURRENT) == 120
