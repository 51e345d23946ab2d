"""SQL shared by the checks, the status polling, the send journal and the delivery summary.

Written once, in DuckDB's dialect, and translated by sqlglot for other destinations.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlglot

from messaging_assets.registry import FINAL_STATUSES, PENDING_STATUSES, STATUS_RANK, UNRANKED

VALID_TO = "_dlt_valid_to"


def literals(values: Iterable[str]) -> str:
    """`('A', 'B')`: a list of SQL text literals."""
    return "(" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + ")"


FINAL = literals(FINAL_STATUSES)
KNOWN = literals((*PENDING_STATUSES, *FINAL_STATUSES))

# A message whose status can no longer change, or that the API cannot tell about: not asked again.
SETTLED = f"(status IN {FINAL} OR lookup_error IS NOT NULL)"


def status_rank(column: str) -> str:
    """A status's rank (registry.STATUS_RANK) in SQL; UNRANKED for any other status and null."""
    ranks = " ".join(
        f"WHEN {column} = {literals([status])[1:-1]} THEN {rank}"
        for status, rank in STATUS_RANK.items()
    )
    return f"CASE {ranks} ELSE {UNRANKED} END"


def current_rows(has_history: bool) -> str:
    """The condition for the rows a user sees as current: scd2 keeps retired versions too."""
    return f"{VALID_TO} IS NULL" if has_history else "TRUE"


def translate(statement: str, dialect: str | None) -> str:
    """`statement` (DuckDB's dialect) in the destination's dialect."""
    if not dialect or dialect == "duckdb":
        return statement
    return sqlglot.transpile(statement, read="duckdb", write=dialect)[0]
