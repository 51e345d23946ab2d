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


def paired_ratio(
    runs: Sequence[dict[str, Any]], bases: Sequence[dict[str, Any]], key: str
) -> dict[str, Any]:
    """Each run's `key` over its base's in the same repeat, pair by pair: a ratio of medians
    would pair a run with another repeat's base, which machine noise moves apart."""
    return stats([run[key] / base[key] for run, base in zip(runs, bases, strict=True)])


def ratio_text(ratio: dict[str, Any]) -> str:
    """A ratio as the tables print it: `1.28x (0.76-1.33)`, the median and its range."""
    return f"{ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f})"
