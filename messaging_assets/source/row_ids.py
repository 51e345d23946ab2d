"""The ids of the rows of a status table and of its parts' table (`status_tables.py`).

dlt's normalizer gives a merged table's rows random ids, and their nested rows ids made from
them. Here a status's `_dlt_id` is the md5 of its key, and a part's the md5 of its status's id
and place, so that the same status loaded twice, from any path, has the same rows, which its
parts are keyed by; both destinations compute the same (`warehouse/upgrades.py` gives rows an
earlier version stored these ids in SQL).
"""

from __future__ import annotations

import hashlib
from typing import Any

ROW_ID = "_dlt_id"
PARENT_ID = "_dlt_parent_id"
ROOT_ID = "_dlt_root_id"
LIST_INDEX = "_dlt_list_idx"
LOAD_ID = "_dlt_load_id"


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def status_id(key: Any) -> str:
    """A status's `_dlt_id`: the md5 of its key, as text."""
    return md5(str(key))


def part_ids(parent_id: str, position: int) -> dict[str, Any]:
    """dlt's columns of the `position`th part (from 0) of the status `parent_id`."""
    return {
        ROOT_ID: parent_id,
        PARENT_ID: parent_id,
        LIST_INDEX: position,
        ROW_ID: md5(f"{parent_id}_{position}"),
    }
