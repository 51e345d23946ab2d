"""The ids of the rows of a status table and of its parts' table (`status_tables.py`).

dlt's normalizer gives a merged table's rows random ids, and their nested rows ids made from
them. Here a status's `_dlt_id` is its key, and a part's its status's key, `_` and its place
(from 0): the same status loaded twice, from any path, has the same rows, which its parts are
keyed by, and a part's `_dlt_parent_id` names its status. The place follows the last `_`, so no
two parts share an id. `warehouse/upgrades.py` gives the rows an earlier version stored these
ids, in SQL.
"""

from __future__ import annotations

from typing import Any

ROW_ID = "_dlt_id"
PARENT_ID = "_dlt_parent_id"
ROOT_ID = "_dlt_root_id"
LIST_INDEX = "_dlt_list_idx"
LOAD_ID = "_dlt_load_id"


def status_id(key: Any) -> str:
    """A status's `_dlt_id`: its key, as text."""
    return str(key)


def part_id(parent_id: str, position: int) -> str:
    """The `_dlt_id` of the `position`th part (from 0) of the status `parent_id`."""
    return f"{parent_id}_{position}"


def part_ids(parent_id: str, position: int) -> dict[str, Any]:
    """dlt's columns of the `position`th part of the status `parent_id`."""
    return {
        ROOT_ID: parent_id,
        PARENT_ID: parent_id,
        LIST_INDEX: position,
        ROW_ID: part_id(parent_id, position),
    }
