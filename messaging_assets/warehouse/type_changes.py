"""What the warehouse shows of a field whose type or shape changed between answers.

`variants.py` keeps a value that does not fit its column's type in dlt's variant column
`<column>__v_<type>`; dlt stores an object where a scalar was as `<column>__<field>` columns, and a
list as a child table `<table>__<column>`. Each leaves the column a user reads empty in those rows;
an object where a list was leaves the child table without items for them, and a list where an
object was leaves the `<column>__<field>` columns empty.
`findings` names every such place that holds values in current rows, with the table, the field
and the change, for the `values_keep_their_types` check.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from dlt.common.schema.typing import DLT_NAME_PREFIX

from messaging_assets.warehouse import sql
from messaging_assets.warehouse.connection import Connection

SAMPLE = 5
# (column type, variant type): numbers the column takes by type, kept aside only for their size.
SIZE_ONLY = frozenset({("decimal", "bigint"), ("decimal", "double"), ("double", "bigint")})
# dlt's name for a column that holds the values of another type: `<column>__v_<type>`.
VARIANT = re.compile(r"^(?P<column>.+)__v_(?P<type>[a-z0-9_]+)$")


@dataclass(frozen=True)
class Finding:
    # A declared field, or a mix of shapes in current rows: an error; a complete change of an
    # undeclared field's shape: a warning (nothing is empty that held values in current rows).
    error: bool
    text: str


@dataclass(frozen=True)
class _Table:
    name: str
    columns: Mapping[str, str]
    # The condition for its current rows.
    current: str


def findings(
    warehouse: Connection, root: str, key: str, declared: Mapping[str, Collection[str]]
) -> list[Finding]:
    """Every changed type or shape of a field of `root` or its child tables, in current rows.
    `declared`: the columns the registry declares, by table."""
    names = [name for name in warehouse.tables() if name == root or name.startswith(root + "__")]
    columns = warehouse.columns(names)
    if root not in columns:
        return []
    current = sql.current_rows(sql.VALID_TO in columns[root])
    tables = {root: _Table(root, columns[root], current)}
    for name, found in columns.items():
        if name != root and "_dlt_parent_id" in found:
            parent = name.rsplit("__", 1)[0]
            where = "TRUE"
            if parent == root and current != "TRUE":
                where = (
                    f"_dlt_parent_id IN (SELECT _dlt_id FROM {warehouse.table(root)} "
                    f"WHERE {current})"
                )
            tables[name] = _Table(name, found, where)
    found: list[Finding] = []
    for table in tables.values():
        sample_key = key if key in table.columns else "_dlt_id"
        found += _variants(warehouse, table, sample_key)
        found += _shapes(warehouse, table, tables, declared.get(table.name, ()))
    return found


def _count(warehouse: Connection, table: _Table, condition: str) -> int:
    return int(
        warehouse.scalar(
            f"SELECT count(*) FROM {warehouse.table(table.name)} "
            f"WHERE ({table.current}) AND ({condition})"
        )
    )


def _beyond(
    warehouse: Connection, table: _Table, variant: str, kind: str, stored: str, rows: int
) -> bool:
    """Whether the values in a variant are of a type their column takes, kept aside only for
    their size: too many digits for a decimal, beyond 2**53 for a double, beyond 64 bits for a
    bigint. Their type did not change, so the check must not say it did."""
    if kind == stored or (stored, kind) in SIZE_ONLY:
        return True
    if (stored, kind) != ("bigint", "decimal"):
        return False
    # `decimal` holds integers beyond 64 bits and, from pushed bodies, fractions (`10.5`),
    # which a bigint column does not take: only integers were kept aside for their size.
    column = warehouse.column(variant)
    integers = _count(
        warehouse,
        table,
        f"{column} IS NOT NULL AND {column} NOT LIKE '%.%' AND {column} NOT LIKE '%E%'",
    )
    return integers == rows


def _variants(warehouse: Connection, table: _Table, key: str) -> Iterator[Finding]:
    for column in sorted(table.columns):
        variant = VARIANT.match(column)
        if not variant:
            continue
        held = f"{warehouse.column(column)} IS NOT NULL"
        rows = _count(warehouse, table, held)
        if not rows:
            continue
        sample = warehouse.rows(
            f"SELECT {warehouse.column(key)} FROM {warehouse.table(table.name)} "
            f"WHERE ({table.current}) AND {held} ORDER BY 1 LIMIT {SAMPLE}"
        )
        field, kind = variant["column"], variant["type"]
        stored = table.columns.get(field, "absent")
        where = f"where the column is {stored}"
        if _beyond(warehouse, table, column, kind, stored, rows):
            where = f"beyond what its {stored} column holds"
        yield Finding(
            True,
            f"{table.name}.{field}: {kind} values in {rows} current row(s), {where}; they are "
            f"kept in {column} (e.g. {key} {', '.join(str(row[0]) for row in sample)})",
        )


def _parents(warehouse: Connection, table: _Table, child: _Table) -> int:
    """How many current rows of `table` have items in its child table."""
    return int(
        warehouse.scalar(
            f"SELECT count(DISTINCT _dlt_parent_id) FROM {warehouse.table(child.name)} "
            f"WHERE _dlt_parent_id IN (SELECT _dlt_id FROM {warehouse.table(table.name)} "
            f"WHERE {table.current})"
        )
    )


def _shapes(
    warehouse: Connection,
    table: _Table,
    tables: Mapping[str, _Table],
    declared: Collection[str],
) -> Iterator[Finding]:
    scalars = [
        column
        for column in table.columns
        if not column.startswith(DLT_NAME_PREFIX) and not VARIANT.match(column)
    ]
    for field in scalars:
        fields = [
            column
            for column in table.columns
            if column.startswith(field + "__") and not VARIANT.match(column)
        ]
        child = tables.get(f"{table.name}__{field}")
        if not fields and child is None:
            continue
        as_scalar = _count(warehouse, table, f"{warehouse.column(field)} IS NOT NULL")
        error = field in declared
        if fields:
            held = " OR ".join(f"{warehouse.column(column)} IS NOT NULL" for column in fields)
            as_object = _count(warehouse, table, held)
            if as_object:
                yield Finding(
                    error or bool(as_scalar),
                    f"{table.name}.{field}: an object in {as_object} current row(s), where the "
                    f"column holds {table.columns[field]}; its values are in "
                    f"{', '.join(fields)}, and {field} is empty there",
                )
        if child is not None:
            as_list = _parents(warehouse, table, child)
            if as_list:
                yield Finding(
                    error or bool(as_scalar),
                    f"{table.name}.{field}: a list in {as_list} current row(s), where the "
                    f"column holds {table.columns[field]}; its items are in the table "
                    f"{child.name}, and {field} is empty there",
                )
        if as_scalar and not error:
            elsewhere = [*fields, *([child.name] if child is not None else [])]
            yield Finding(
                False,
                f"{table.name}.{field}: {table.columns[field]} values in {as_scalar} current "
                f"row(s), where it was an object or a list before ({', '.join(elsewhere)})",
            )

    # A field that was an object and is a list, or the other way round, has no column of its own:
    # its `<field>__<name>` columns and its child table are the two places to compare.
    for child in tables.values():
        field = child.name.removeprefix(table.name + "__")
        if field == child.name or field in table.columns:
            continue  # not a child of this table, or a field with a column (above)
        fields = [
            column
            for column in table.columns
            if column.startswith(field + "__") and not VARIANT.match(column)
        ]
        if not fields:
            continue
        held = " OR ".join(f"{warehouse.column(column)} IS NOT NULL" for column in fields)
        as_object = _count(warehouse, table, held)
        as_list = _parents(warehouse, table, child)
        # Both shapes in current rows, or a declared field: an error, as for a scalar above.
        error = field in declared or bool(as_object and as_list)
        columns = ", ".join(fields)
        if as_list:
            yield Finding(
                error,
                f"{table.name}.{field}: a list in {as_list} current row(s), where it was an "
                f"object ({columns}); its items are in the table {child.name}, and {columns} "
                f"{'is' if len(fields) == 1 else 'are'} empty there",
            )
        if as_object:
            yield Finding(
                error,
                f"{table.name}.{field}: an object in {as_object} current row(s), where it was a "
                f"list (the table {child.name}); its values are in {columns}, and "
                f"{child.name} holds no items for them",
            )
