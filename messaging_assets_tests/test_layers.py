"""Imports go down the layers only: definitions → defs → source → warehouse and receiver →
registry, settings and column hints. The dlt source knows nothing of Dagster, the warehouse nothing
of the source; the sandbox and dev/ sit beside the product, which imports neither."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from messaging_assets_tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "messaging_assets"
DAGSTER = ("dagster", "dagster_dlt", "dagster_webserver", "dagster_postgres")
DEFINITIONS, DEFS = "messaging_assets.definitions", "messaging_assets.defs"
SOURCE, WAREHOUSE = "messaging_assets.source", "messaging_assets.warehouse"
RECEIVER = "messaging_assets.receiver"
BESIDE = ("messaging_assets.dev", "messaging_assets.sandbox")
# What each layer (a folder or a module of messaging_assets/) must never import, by module name
# prefix. Every module is under exactly one rule.
FORBIDDEN = {
    "__init__.py": BESIDE,
    "definitions.py": BESIDE,
    "defs": (*BESIDE, DEFINITIONS),
    "report.py": (*BESIDE, DEFINITIONS, DEFS),
    "source": (*DAGSTER, *BESIDE, DEFINITIONS, DEFS),
    "warehouse": (*DAGSTER, *BESIDE, DEFINITIONS, DEFS, SOURCE),
    # A service of its own, on a host of its own: it lands files and knows nothing of loading
    # (dlt only for its settings).
    "receiver": (*DAGSTER, *BESIDE, DEFINITIONS, DEFS, SOURCE, WAREHOUSE),
    "registry.py": (*DAGSTER, *BESIDE, DEFINITIONS, DEFS, SOURCE, WAREHOUSE, RECEIVER),
    "settings.py": (*DAGSTER, *BESIDE, DEFINITIONS, DEFS, SOURCE, WAREHOUSE, RECEIVER),
    "column_hints.py": (*DAGSTER, *BESIDE, DEFINITIONS, DEFS, SOURCE, WAREHOUSE, RECEIVER),
    # The provider's imitation: it shares no code with what it is tested against.
    "sandbox": (DEFINITIONS, DEFS, SOURCE, WAREHOUSE, RECEIVER, "messaging_assets.dev"),
    # `make dev`'s supervision may start and import anything.
    "dev": (),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module name the file imports, relative imports resolved against its package."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
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


def test_every_module_is_under_one_rule():
    ruled = [module for layer in FORBIDDEN for module in modules_of(layer)]

    assert sorted(ruled) == sorted(PACKAGE.rglob("*.py"))


def test_relative_imports_are_resolved_against_their_package():
    assert {
        "messaging_assets.sandbox.pusher",
        "messaging_assets.sandbox.pusher.PushAttempt",
    } <= imported(PACKAGE / "sandbox" / "__init__.py")
    assert "messaging_assets.sandbox.server" in imported(PACKAGE / "sandbox" / "__main__.py")


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
