"""The start-up baseline: an empty Dagster code location that imports dlt, as the project does."""

import dlt  # noqa: F401  (the import is the point: its cost is part of the baseline)
from dagster import Definitions

defs = Definitions()
