"""Every value kept as it came, whatever its field's type does between answers.

A column has the type the registry declares, or else the type of its field's first value. dlt
converts a later value of another type into the column's type where it can, and some of those
conversions change the value silently: "12" becomes 12, 5 becomes true, true becomes "True", 10
becomes a date in 1970. So a value whose JSON type does not fit its column is not handed to dlt
under its own name: it goes into dlt's variant column `<column>__v_<type>` beside it (the name dlt
gives a value it cannot convert), stored exactly, and the `values_keep_their_types` check names
it. An object or a list where a scalar was is left to dlt (`<column>__<field>` columns, a child
table), and the check names that too.

A value of the right type can still be one its column cannot hold: a number with more digits or
decimals than its DECIMAL(precision, scale), an integer beyond 64 bits, a timestamp whose offset
takes it outside the years 1 to 9999, text that parses into such a number. dlt would fail the whole
load on it, and every later load that reads it again. Such a value goes into its variant too. JSON
numbers have no bounds and neither destination's decimals hold every one, so a number kept aside
is kept as its exact text: `<column>__v_decimal` is a text column.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from dlt.common.arithmetics import DEFAULT_NUMERIC_PRECISION, DEFAULT_NUMERIC_SCALE
from dlt.common.data_types.type_helpers import coerce_value
from dlt.common.schema import Schema
from dlt.common.schema.typing import DLT_NAME_PREFIX, TColumnSchema

from messaging_assets.column_hints import Hint

# The column dlt stores a list's scalar items in, in the list's child table.
ITEM = "value"
# The variant column's name as dlt builds it: `shorten_fragments(column, "v_" + type)`.
VARIANT_FIELD = "v_{}"
# dlt's preferred types (a schema setting) for the variants that hold text: without them dlt's
# timestamp detection would type a timestamp kept aside as the timestamp it could not store.
TEXT_VARIANTS = {"re:__v_text$": "text", "re:__v_decimal$": "text"}
# Doubles hold integers exactly up to here; pyarrow reads larger JSON integers as doubles.
EXACT_LIMIT = 2**53
# Column types that take text and parse it; what dlt cannot parse it keeps in its own variant.
PARSED_FROM_TEXT = frozenset({"timestamp", "decimal", "date", "time", "binary"})
# Pushed bodies are read with their fractional numbers as exact decimals (`Decimal`).
NUMBERS = frozenset({"bigint", "double", "decimal"})
BIGINT = range(-(2**63), 2**63)
# A decimal column without a stated precision gets dlt's default on both destinations.
DEFAULT_DIGITS = (DEFAULT_NUMERIC_PRECISION, DEFAULT_NUMERIC_SCALE)
# Years no offset (at most a day) moves out of 1 to 9999: text that starts with one is not parsed
# here, only by dlt, which keeps what it cannot parse in its own variant.
SAFE_YEARS = frozenset(f"{year:04d}" for year in range(2, 9999))
# The types JSON gives, looked up before the isinstance chain: route sees millions of values.
_EXACT_TYPES: dict[type, str] = {bool: "bool", float: "double", Decimal: "decimal", str: "text"}
# A value of one of these JSON types in a column of the same type is stored as it is.
_STORED_AS_IS = frozenset({"text", "bool", "double", "bigint"})
# A timestamp with its offset, in the forms `datetime.fromisoformat` and dlt read alike.
_ISO_STAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?(?:Z|[+-]\d\d:?\d\d)")


def json_type(value: Any) -> str | None:
    """dlt's name for a JSON scalar's type; None for null, objects and lists."""
    kind = _EXACT_TYPES.get(type(value))
    if kind is not None:
        return kind
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        # Beyond 64 bits an integer is a number like any other: only a decimal could hold it.
        return "bigint" if value in BIGINT else "decimal"
    if isinstance(value, float):
        return "double"
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, str):
        return "text"
    return None


def fits(value_type: str, column_type: str, declared: bool) -> bool:
    """Whether a value of `value_type` is stored in a `column_type` column unchanged."""
    if value_type == column_type:
        return True
    if column_type == "double" and value_type == "bigint":
        return True  # `fitting` checks the magnitude
    if column_type in PARSED_FROM_TEXT:
        return value_type == "text" or (column_type == "decimal" and value_type in NUMBERS)
    # The provider documents some identifiers as text and sends them as numbers (`ttid`).
    return declared and column_type == "text" and value_type in NUMBERS


def within(number: Decimal, digits: tuple[int, int]) -> bool:
    """Whether a DECIMAL(precision, scale) holds `number` exactly (trailing zeros aside)."""
    if not number.is_finite():
        return False  # "NaN" and "Infinity" parse as decimals; no column holds them
    precision, scale = digits
    _, figures, exponent = number.as_tuple()
    text = "".join(map(str, figures))
    significant = text.rstrip("0")
    if not significant:
        return True
    exponent += len(text) - len(significant)
    return -exponent <= scale and len(significant) + exponent <= precision - scale


@functools.lru_cache(maxsize=4096, typed=True)
def stored_decimal(value: Any, kind: str, digits: tuple[int, int]) -> Decimal | None:
    """The decimal dlt stores for `value` in a DECIMAL(precision, scale) column, or None where
    the column cannot hold it. Cached: a run sees the same few prices again and again."""
    try:
        # As dlt converts it: a float by its shortest text (0.045, not its binary value).
        number = coerce_value("decimal", kind, value)
        # An integer beyond 64 bits is of kind `decimal`, which dlt leaves as it is: an int.
        number = Decimal(number) if isinstance(number, int) else number
        return number if within(number, digits) else None
    except (ValueError, ArithmeticError):
        return None


def holds(value: Any, kind: str, column_type: str, digits: tuple[int, int]) -> bool:
    """Whether a column of a type that takes `value` stores it without failing the load: numbers
    within its digits, text that parses into a value it can store."""
    if column_type == "decimal":
        return stored_decimal(value, kind, digits) is not None
    try:
        if column_type == "timestamp" and kind == "text" and value[:4] not in SAFE_YEARS:
            coerce_value("timestamp", "text", value).astimezone(timezone.utc)
    except (ValueError, ArithmeticError):
        return False
    return True


def fitting(
    value: Any, column_type: str | None, declared: bool, digits: tuple[int, int] = DEFAULT_DIGITS
) -> tuple[str, str | None]:
    """(The value's JSON type, the variant it belongs in, or None where its column takes it.)"""
    kind = json_type(value)
    if kind is None:
        return str(kind), None
    if column_type is None:
        # A new column: its type is the first value's, with dlt's default digits for a decimal.
        column_type, declared = kind, False
    if (
        fits(kind, column_type, declared)
        and not (column_type == "double" and kind == "bigint" and abs(value) > EXACT_LIMIT)
        and holds(value, kind, column_type, digits)
    ):
        return kind, None
    return kind, VARIANT_FIELD.format(kind)


class Columns:
    """The type of every column of a resource's tables: as stored, as declared, or as this run's
    first value of a new field made it."""

    def __init__(
        self,
        schema: Schema,
        declared: Mapping[str, Mapping[str, Hint]] | None = None,
        typed: bool = False,
    ) -> None:
        """`typed`: text that a timestamp or decimal column takes is handed to dlt as the
        datetime or Decimal dlt would make of it, which spares its normalizer the parsing (most
        of its time on status objects). Not for tables whose row versions hash the values."""
        self.naming = schema.naming
        self._typed = typed
        self._types: dict[str, dict[str, str]] = {}
        # (precision, scale) of the decimal columns that state them.
        self._digits: dict[tuple[str, str], tuple[int, int]] = {}
        self._declared: dict[str, set[str]] = {}
        # Field paths to column names: the same few fields come in every record.
        self._columns: dict[tuple[str, ...], str] = {}
        for table, found in schema.tables.items():
            for column, spec in found.get("columns", {}).items():
                if spec.get("data_type"):
                    self._types.setdefault(table, {})[column] = spec["data_type"]
                    self._keep_digits(table, column, spec)
        # After the stored types: the resource applies its declared hints over them, so a column
        # an earlier version typed otherwise (`upgrades.py`) takes the declared type.
        for field_path, hints in (declared or {}).items():
            # `inbound_messages__contentList` is the table `inbound_messages__content_list`.
            table = self.naming.normalize_path(field_path)
            known = self._types.setdefault(table, {})
            for name, hint in hints.items():
                column = self.naming.normalize_path(name)
                known[column] = hint["data_type"]
                self._digits.pop((table, column), None)
                self._keep_digits(table, column, hint)
                self._declared.setdefault(table, set()).add(column)

    def _keep_digits(self, table: str, column: str, hint: Hint | TColumnSchema) -> None:
        if hint.get("data_type") == "decimal" and hint.get("precision") is not None:
            self._digits[table, column] = (hint["precision"], hint.get("scale") or 0)

    def column(self, *path: str) -> str:
        """The column a field (a path of names, for fields inside objects) is stored in."""
        column = self._columns.get(path)
        if column is None:
            column = "__".join(self.naming.normalize_identifier(name) for name in path)
            self._columns[path] = column
        return column

    def type_of(self, table: str, column: str) -> str | None:
        return self._types.get(table, {}).get(column)

    def is_declared(self, table: str, column: str) -> bool:
        return column in self._declared.get(table, ())

    def learn(self, table: str, column: str, data_type: str) -> None:
        """A new column's type, from its first value (the type dlt gives it)."""
        self._types.setdefault(table, {}).setdefault(column, data_type)

    def route(self, record: dict[str, Any], table: str, path: tuple[str, ...] = ()) -> None:
        """Moves each value that does not fit its column into its variant, in place."""
        types = self._types.setdefault(table, {})
        # Only existing keys are assigned to, which iterating over the items allows.
        for name, value in record.items():
            if value is None or name.startswith(DLT_NAME_PREFIX):
                continue
            field = (*path, name)
            # The cache `column` keeps, read without its call: this loop sees every value.
            column = self._columns.get(field) or self.column(*field)
            # What `fitting` says of the common case, without its calls: a value of its column's
            # type, or text dated in the safe years in a timestamp column, stays where it is.
            kind = json_type(value)
            column_type = types.get(column)
            if kind == column_type and kind in _STORED_AS_IS:
                continue
            if column_type == "timestamp" and kind == "text" and value[:4] in SAFE_YEARS:
                if self._typed and _ISO_STAMP.fullmatch(value):
                    # A 13th month or a 25th hour stays text, for dlt to keep in its variant.
                    with contextlib.suppress(ValueError):
                        record[name] = datetime.fromisoformat(value)
                continue
            if column_type == "decimal" and kind in ("text", "decimal"):
                digits = self._digits.get((table, column), DEFAULT_DIGITS)
                number = stored_decimal(value, kind, digits)
                if number is not None:
                    if self._typed:
                        record[name] = number
                    continue
            if isinstance(value, dict):
                if self.type_of(table, column) != "json":
                    self.route(value, table, field)
                continue
            if isinstance(value, list):
                child = f"{table}__{column}"
                for index, item in enumerate(value):
                    if isinstance(item, dict):
                        self.route(item, child)
                    elif item is not None and not isinstance(item, list):
                        # dlt stores a scalar item as {"value": item}; as such a row it is
                        # routed like any field ("12" after integers would become 12).
                        row = {ITEM: item}
                        self.route(row, child)
                        value[index] = row if isinstance(row[ITEM], dict) else item
                continue
            record[name] = self._fitted(value, table, column)

    def _fitted(self, value: Any, table: str, column: str) -> Any:
        """The value, or `{variant: value}` where it does not fit its column."""
        kind, variant = fitting(
            value,
            self.type_of(table, column),
            self.is_declared(table, column),
            self._digits.get((table, column), DEFAULT_DIGITS),
        )
        if variant is None:
            self.learn(table, column, kind)
            return value
        self.learn(table, f"{column}__{variant}", "text" if kind == "decimal" else kind)
        # Nested, so that dlt's normalizer names the column `<column>__v_<type>`.
        return {variant: str(value) if kind == "decimal" else value}
