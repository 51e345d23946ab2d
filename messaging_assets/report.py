"""`python -m messaging_assets.report`: rows per table in the warehouse, read-only."""

from __future__ import annotations

from messaging_assets.registry import ENDPOINTS, SOURCE, UNREADABLE_TABLE
from messaging_assets.settings import check_settings_files
from messaging_assets.warehouse import sql
from messaging_assets.warehouse.connection import Connection, read
from messaging_assets.warehouse.destination import database_path, destination_type


def row_counts(warehouse: Connection) -> list[tuple[str, int, int]]:
    """(table, current rows, all rows): rows retired by scd2 are history, not current."""
    names = [
        *(endpoint.name for endpoint in ENDPOINTS),
        *(f"{endpoint.name}__{field}" for endpoint in ENDPOINTS for field in endpoint.nested),
        UNREADABLE_TABLE,
        "delivery_summary",
    ]
    counts = []
    for table, columns in sorted(warehouse.columns(names).items()):
        total = warehouse.scalar(f"SELECT count(*) FROM {warehouse.table(table)}")
        current = warehouse.current_row_count(table) if sql.VALID_TO in columns else total
        counts.append((table, int(current), int(total)))
    return counts


def main() -> None:
    check_settings_files()
    with read() as warehouse:
        if destination_type() == "duckdb":
            print(f"{database_path()}:")
        else:
            print(f"{destination_type()} {warehouse.location()}, dataset {SOURCE}:")
        print(f"  {'table':<24}{'current rows':>14}{'all rows':>10}")
        for table, current, total in row_counts(warehouse):
            print(f"  {table:<24}{current:>14}{total:>10}")


if __name__ == "__main__":
    main()
