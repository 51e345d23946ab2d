"""The Dagster layer: everything Dagster sees, built on the source and the warehouse.

The assets (`assets.py`: dagster-dlt's `@dlt_assets`, each body `yield from dlt.run(...)`), the
naming and policy of the translator (`translator.py`), dagster-dlt's resource with what unattended
runs need around it (`dlt_resource.py`), asset checks, jobs, schedules, sensors, automation
policies, the status plan of the sensors, and the delivery summary asset.

It may import everything below it: the source, the warehouse, the registry and the settings.
Nothing below imports it.
"""
