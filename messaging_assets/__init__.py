"""messaging-assets: a warehouse copy of a messaging provider's data, kept fresh by Dagster and dlt.

The layers, each importing only those below it (`messaging_assets_tests/test_layers.py` holds
them to that):

    definitions.py   the Definitions: what `dagster dev` and the CLI load
    defs/            the Dagster layer: assets, translator, checks, jobs, schedules, sensors
    source/          the dlt source: everything that talks to the API (never imports Dagster)
    warehouse/       reading and writing the destination (never imports Dagster or the source)
    registry.py      the API as data, one entry per endpoint; settings.py, column_hints.py

Beside them, not part of the product: `sandbox/` (a local imitation of the provider's API) and
`dev/` (`make dev`). `report.py` prints rows per table (`python -m messaging_assets.report`).
"""
