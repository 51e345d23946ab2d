"""Imports go down the layers only: definitions → defs → source → warehouse → registry and
settings. The dlt source knows nothing of Dagster, the warehouse nothing of the source."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from messaging_assets_tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "messaging_assets"
DAGSTER = ("dagster", "dagster_dlt", "dagster_webserver", "dagster_postgres")
# What each layer must never import, by module name prefix.
FORBIDDEN = {
    "source": (*DAGSTER, "messaging_assets.defs", "messaging_assets.definitions"),
    "warehouse": (
        *DAGSTER,
        "messaging_assets.source",
        "messaging_assets.defs",
        "messaging_assets.definitions",
    ),
    # A service of its own, on a host of its own: it lands files and knows nothing of loading
    # (dlt only for its settings).
    "receiver": (
        *DAGSTER,
        "messaging_assets.source",
        "messaging_assets.warehouse",
        "messaging_assets.defs",
    ),
    "registry.py": (*DAGSTER, "messaging_assets.source", "messaging_assets.warehouse"),
    "settings.py": (*DAGSTER, "messaging_assets.source", "messaging_assets.warehouse"),
    "column_hints.py": (*DAGSTER, "messaging_assets.source", "messaging_assets.warehouse"),
}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules_of(layer: str) -> list[Path]:
    path = PACKAGE / layer
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


@pytest.mark.parametrize("layer", FORBIDDEN)
def test_a_layer_imports_nothing_above_it(layer: str):
    broken = {
        f"{module.relative_to(REPO_ROOT)} imports {name}"
        for module in modules_of(layer)
        for name in imported(module)
        if name.startswith(FORBIDDEN[layer])
    }
    assert not broken


@pytest.mark.e2e
def test_the_source_and_the_warehouse_load_without_dagster():
    # What the modules import at run time, through any library in between.
    script = (
        "import sys, messaging_assets.source, messaging_assets.warehouse.connection; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{DAGSTER!r}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert loaded.stdout.strip() == "[]"
