"""Settings are validated where they are read, and a wrong one is named with its value and what
is allowed: at load for what the code location needs, in the run for what only runs use. A
settings file that is not valid TOML is named with the line and column, wherever it is met."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from messaging_assets.sandbox import Sandbox
from messaging_assets.settings import SettingError, automation_settings
from messaging_assets_tests.conftest import (
    REPO_ROOT,
    failure_text,
    free_port,
    make_dagster_home,
    materialize_command,
    run_to_its_end,
    shell_env,
)

BIN = Path(sys.executable).parent

AUTOMATION = "MESSAGING__AUTOMATION__"


def validate_definitions(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Load the code location as `dagster dev` does."""
    return subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate"],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("STATUS_WARN_MINUTES", "abc", "STATUS_WARN_MINUTES='abc': expected a number."),
        ("ROW_DROP_SHARE", "25", "ROW_DROP_SHARE=25.0: expected a share between 0 and 1"),
        ("RECHECK_SHARE_OF_AGE", "nan", "RECHECK_SHARE_OF_AGE=nan: expected a share between 0"),
        ("REFERENCE_CRON", "daily", "REFERENCE_CRON='daily': expected a cron expression of 5"),
        ("SCHEDULE_TIMEZONE", "Mars/Base", "SCHEDULE_TIMEZONE='Mars/Base': expected an IANA"),
        ("REFERENCE_WARN_HOURS", "-1", "REFERENCE_WARN_HOURS=-1.0: expected a number above 0"),
        ("STATUS_FAIL_MINUTES", "10", "STATUS_FAIL_MINUTES=10.0: expected a number no smaller"),
        ("SUMMARY_FAIL_HOURS", "1", "SUMMARY_FAIL_HOURS=1.0: expected a number no smaller"),
        ("REPORT_OVERDUE_MINUTES", "0", "REPORT_OVERDUE_MINUTES=0.0: expected a number above 0"),
        ("REPORT_OVERDUE_MINUTES", "120", "REPORT_OVERDUE_MINUTES=120.0: expected a number above"),
    ],
)
def test_automation_setting_out_of_bounds_is_named_with_its_value(monkeypatch, name, value, said):
    monkeypatch.setenv(AUTOMATION + name, value)

    with pytest.raises(SettingError) as refused:
        automation_settings()

    assert str(refused.value).startswith(AUTOMATION + said)


@pytest.mark.e2e
def test_a_wrong_automation_setting_stops_the_code_location_with_one_line():
    loaded = validate_definitions({AUTOMATION + "STATUS_CRON": "every minute"})

    assert loaded.returncode != 0
    assert (
        "SettingError: MESSAGING__AUTOMATION__STATUS_CRON='every minute': expected a cron "
        "expression of 5 fields, e.g. '0 2 * * *'."
    ) in loaded.stdout + loaded.stderr


@pytest.mark.e2e
def test_a_wrong_runtime_setting_is_named_by_its_variable():
    # dlt reads its own [runtime] settings whenever it reads configuration, at load too.
    loaded = validate_definitions({"RUNTIME__REQUEST_TIMEOUT": "soon"})

    assert "RUNTIME__REQUEST_TIMEOUT='soon': expected a number." in loaded.stdout + loaded.stderr


@pytest.mark.e2e
def test_a_wrong_runtime_setting_stops_make_dev_and_make_demo_before_they_start_in_one_line():
    # Their first step, which reads the settings files, and so dlt's [runtime] settings.
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "messaging_assets.dev.preflight",
            "--sandbox-port",
            str(free_port()),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "RUNTIME__REQUEST_TIMEOUT": "soon"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert checked.returncode == 1
    assert checked.stderr == "RUNTIME__REQUEST_TIMEOUT='soon': expected a number.\n"


# (asset, variable, value, what the error says after the variable's name)
RUN_SETTINGS = [
    ("contacts", "SOURCES__MESSAGING__API_SHAPE", "xml", "='xml': expected one of data, provider"),
    ("contacts", "SOURCES__MESSAGING__BASE_URL", "api.example", "='api.example': expected an http"),
    ("phones", "SOURCES__MESSAGING__PHONES__PAGE_SIZE", "lots", "='lots': expected a whole number"),
    ("phones", "SOURCES__MESSAGING__PHONES__PAGE_SIZE", "0", "=0: expected a number of records of"),
    ("contacts", "SOURCES__MESSAGING__CONTACTS__DATA_SELECTOR", "$..x", "='$..x': `$..x` is not"),
    (
        "phones",
        "SOURCES__MESSAGING__PHONES__PAGINATOR",
        "{page",
        "='{page': expected a dlt rest_api",
    ),
    (
        "phones",
        "SOURCES__MESSAGING__PHONES__PAGINATOR",
        "pages",
        "='pages': expected a dlt rest_api",
    ),
    ("messages", "EXTRACT__WORKERS", "0", "=0: expected 1 or more look-ups in flight"),
]


@pytest.mark.parametrize(("asset", "variable", "value", "said"), RUN_SETTINGS)
def test_a_wrong_run_setting_fails_only_the_runs_that_use_it(
    sandbox: Sandbox, run, monkeypatch, asset, variable, value, said
):
    monkeypatch.setenv(variable, value)

    message = failure_text(run(asset, raise_on_error=False))

    assert variable + said in message
    assert sandbox.requests == []


@pytest.mark.e2e
def test_the_code_location_loads_whatever_the_run_settings_say():
    loaded = validate_definitions({variable: value for _, variable, value, _ in RUN_SETTINGS})

    assert loaded.returncode == 0, loaded.stderr[-3000:]


# Entry points a user meets a settings file through (run from the repo root): each command, and
# the file broken for it. `{home}` is a Dagster home, each `{port}` a free port.
BROKEN_FILE_ENTRY_POINTS = [
    pytest.param(materialize_command("messaging/contacts"), "config.toml", id="dagster-cli"),
    pytest.param([str(BIN / "dg"), "check", "defs"], "config.toml", id="dg-check-defs"),
    pytest.param([sys.executable, "-m", "messaging_assets.report"], "secrets.toml", id="report"),
    pytest.param(
        [sys.executable, "-m", "messaging_assets.receiver", "urls"], "secrets.toml", id="receiver"
    ),
    pytest.param(
        ["make", "demo", "SANDBOX_PORT={port}", "DAGSTER_HOME_DIR={home}"],
        "config.toml",
        id="make-demo",
    ),
    pytest.param(
        ["make", "dev", "DAGSTER_PORT={port}", "SANDBOX_PORT={port}", "DAGSTER_HOME_DIR={home}"],
        "secrets.toml",
        id="make-dev",
    ),
]


@pytest.mark.e2e
@pytest.mark.parametrize(("command", "file"), BROKEN_FILE_ENTRY_POINTS)
def test_a_settings_file_that_is_not_toml_is_told_in_one_line_with_its_position(
    command: list[str], file: str, tmp_path: Path
):
    # A dlt project folder of its own (DLT_PROJECT_DIR): the repo's own .dlt stays as it is.
    settings = tmp_path / "project" / ".dlt"
    settings.mkdir(parents=True)
    shutil.copy(REPO_ROOT / ".dlt" / "config.toml", settings)
    text = (settings / file).read_text() if (settings / file).exists() else ""
    (settings / file).write_text(text + "\nkey = = 1\n")
    position = f"{settings / file}:{len(text.splitlines()) + 2}:7"
    home = make_dagster_home(tmp_path, "dagster.yaml")

    done = run_to_its_end(
        [part.format(home=home, port=free_port()) for part in command],
        shell_env(DLT_PROJECT_DIR=str(tmp_path / "project"), DAGSTER_HOME=str(home)),
        timeout=120,
    )

    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert f"{position}: invalid TOML, Unexpected character: '='. Fix it there" in said
    assert "Traceback" not in said
    assert "tomlkit" not in said
