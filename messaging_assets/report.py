"""`python -m messaging_assets.report`: rows per table in the DuckDB file, read-only."""

from __future__ import annotations

import duckdb

from messaging_assets.pipeline import database_path
from messaging_assets.source import SOURCE_NAME

TABLES = f"""
    SELECT table_name, bool_or(column_name = '_dlt_valid_to') AS has_history
    FROM information_schema.columns
    WHERE table_schema = '{SOURCE_NAME}' AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\'
    GROUP BY table_name ORDER BY table_name
"""


def row_counts(path: str) -> list[tuple[str, int, int]]:
    """(table, current rows, all rows): rows retired by scd2 are history, not current."""
    with duckdb.connect(path, read_only=True) as con:
        counts = []
        for table, has_history in con.execute(TABLES).fetchall():
            qualified = f"{SOURCE_NAME}.{table}"
            total = con.execute(f"SELECT count(*) FROM {qualified}").fetchone()[0]
            current = total
            if has_history:
                current = con.execute(
                    f"SELECT count(*) FROM {qualified} WHERE _dlt_valid_to IS NULL"
                ).fetchone()[0]
            counts.append((table, current, total))
    return counts


def main() -> None:
    path = database_path()
    print(f"{path}:")
    print(f"  {'table':<24}{'current rows':>14}{'all rows':>10}")
    for table, current, total in row_counts(path):
        print(f"  {table:<24}{current:>14}{total:>10}")


if __name__ == "__main__":
    main()
