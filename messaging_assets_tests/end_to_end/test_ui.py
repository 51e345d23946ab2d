"""Dagster's web UI in a real headless Chromium, as a person uses it.

`dagster dev` serves the code location against an in-process sandbox and a temporary DAGSTER_HOME
and DuckDB file; Playwright drives Debian's `chromium` (never a browser Playwright downloads).
Each step saves a screenshot under `messaging_assets_tests/artifacts/ui/` (git-ignored).
Dagster's CSS classes change between versions: elements are found by visible text and role.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from messaging_assets.sandbox import Sandbox
from messaging_assets_tests.conftest import API_KEY, REPO_ROOT, run_config, stop_process_group

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO_ROOT / "messaging_assets_tests" / "artifacts" / "ui"
# The machine has no internet: keep Chromium from phoning home and waiting on it.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NAMES = (
    "sms",
    "messages",
    "contacts",
    "phones",
    "registrations",
    "delivery_reports",
    "inbound_messages",
    "opt_outs",
    "delivery_summary",
)
UI_TIMEOUT_MS = 60_000

playwright_api = pytest.importorskip("playwright.sync_api", reason="make test-ui installs it")
pytestmark = [
    pytest.mark.ui,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install chromium"
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DagsterUI:
    url: str
    sandbox: Sandbox
    log: Path


def wait_for_ui(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """Until the webserver answers and the code location has loaded (it imports dlt and the
    definitions in a subprocess, which takes a while on 2 cores)."""
    query = b'{"query": "{ workspaceOrError { ... on Workspace { locationEntries { '
    query += b'locationOrLoadError { __typename } } } } }"}'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dagster dev exited: {log.read_text()[-3000:]}")
        try:
            request = urllib.request.Request(
                f"{url}/graphql", data=query, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                if b'"RepositoryLocation"' in response.read():
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"UI not up after {timeout:.0f}s: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterUI]:
    tmp = tmp_path_factory.mktemp("ui")
    home = tmp / "dagster_home"
    home.mkdir()
    # No telemetry: there is no internet to send it to.
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "dagster_dev.log"
    env_before = dict(os.environ)
    with Sandbox(api_key=API_KEY, contacts=120, phones=30, registrations=15) as api:
        os.environ.update(
            SOURCES__MESSAGING__BASE_URL=api.url,
            SOURCES__MESSAGING__API_KEY=API_KEY,
            DESTINATION__DUCKDB__CREDENTIALS=str(tmp / "warehouse.duckdb"),
            PIPELINES_DIR=str(tmp / "pipelines"),
            DAGSTER_HOME=str(home),
        )
        try:
            preload(api)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            with log.open("w") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port)],
                    cwd=REPO_ROOT,
                    env={**os.environ},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    # Its own process group: the webserver, daemon and code servers go together.
                    start_new_session=True,
                )
                try:
                    wait_for_ui(url, process, log)
                    yield DagsterUI(url, api, log)
                finally:
                    stop_process_group(process)
        finally:
            os.environ.clear()
            os.environ.update(env_before)


def preload(api: Sandbox) -> None:
    """Two look-ups of sandbox messages and two summaries, recorded in the DAGSTER_HOME the UI
    reads: the Plots view then has a line, not a single point."""
    from messaging_assets.definitions import defs

    keys = [AssetKey(["messaging", "messages"]), AssetKey(["messaging", "delivery_summary"])]
    with DagsterInstance.get() as instance:
        for batch in (20, 30):
            ids = api.add_messages(batch, final=True)
            materialize(
                [*defs.assets, *defs.asset_checks],
                selection=keys,
                resources=dict(defs.resources or {}),
                instance=instance,
                run_config=run_config(request_ids=ids),
            )


@pytest.fixture(scope="module")
def page(dagster_ui: DagsterUI) -> Iterator:
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(UI_TIMEOUT_MS)
        tab = context.new_page()
        # A fresh DAGSTER_HOME greets the first visitor with a "Join the community" dialog
        # that covers the page: skip it whenever it shows up.
        tab.add_locator_handler(
            tab.get_by_role("button", name="Skip", exact=True), lambda skip: skip.click()
        )
        yield tab
        context.close()
        browser.close()


@pytest.fixture(autouse=True)
def screenshot_on_failure(request: pytest.FixtureRequest, page) -> Iterator[None]:
    failed_before = request.session.testsfailed
    yield
    # The call phase is reported before teardown: a failed step shows here.
    if request.session.testsfailed > failed_before:
        shoot(page, f"failed-{request.node.name}")


def shoot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def test_asset_graph_shows_the_messaging_assets(dagster_ui: DagsterUI, page):
    page.goto(f"{dagster_ui.url}/asset-groups/messaging")

    for name in NAMES:
        page.get_by_text(name, exact=True).first.wait_for()
    # Nodes fill in their status after the graph is drawn.
    page.get_by_text("Loading...").first.wait_for(state="hidden")
    shoot(page, "1-asset-graph")


def test_contacts_materialized_from_the_ui_succeeds(dagster_ui: DagsterUI, page):
    page.goto(f"{dagster_ui.url}/assets/messaging/contacts")
    page.get_by_role("button", name=re.compile(r"Materialize$")).click()

    # The launch toast links to the run; the run's page says Success once it is done.
    page.get_by_text(re.compile(r"^Launched run")).wait_for()
    shoot(page, "2-contacts-launched")
    page.get_by_role("link", name="View", exact=True).click()
    page.wait_for_url(re.compile(r"/runs/"))
    page.get_by_text("Success", exact=True).first.wait_for(timeout=180_000)
    shoot(page, "3-contacts-run-succeeded")
    # The run asked the API for contacts, once, and for nothing else.
    assert dagster_ui.sandbox.count("contacts") == 1
    assert dagster_ui.sandbox.count("phones") == 0


def test_delivery_summary_shows_the_markdown_table_of_the_last_7_days(dagster_ui: DagsterUI, page):
    page.goto(f"{dagster_ui.url}/assets/messaging/delivery_summary")

    # Exactly that entry: `opt_outs_last_7_days` holds a table with the same first column.
    row = page.get_by_role("row").filter(has=page.get_by_text("last_7_days", exact=True))
    table = row.get_by_role("table")
    table.get_by_role("columnheader", name="day (UTC)").wait_for()
    table.get_by_role("cell", name="DELIVERED", exact=True).wait_for()
    row.scroll_into_view_if_needed()
    shoot(page, "4-delivery-summary-last-7-days")


def test_delivery_summary_plots_its_numbers(dagster_ui: DagsterUI, page):
    page.goto(f"{dagster_ui.url}/assets/messaging/delivery_summary")
    page.get_by_text("last_7_days", exact=True).wait_for()

    page.get_by_role("button", name=re.compile(r"Plots$")).click()
    for plotted in ("delivery_rate", "messages", "cost_eur", "median_seconds_to_final", "pending"):
        # The column schema above names some of them too: plot titles come last.
        page.get_by_text(plotted, exact=True).last.wait_for()
    page.get_by_text("cost_eur", exact=True).last.scroll_into_view_if_needed()
    assert page.locator("canvas").count() >= 5
    shoot(page, "5-delivery-summary-plots")
