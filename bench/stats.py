"""How a figure measured several times is reported: its median, range and every run."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def stats(values: Sequence[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": list(values),
    }
