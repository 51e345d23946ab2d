"""The warehouse layer: reading and writing the destination, whichever dlt SQL destination it is.

It owns the dlt pipeline and its destination (`destination.py`), the one way to connect
(`connection.py`), the SQL written once in DuckDB's dialect (`sql.py`), each run's working
directory and the recovery of runs that died (`run_directories.py`), upgrades of tables an earlier
version loaded (`upgrades.py`), and what the tables show of a field whose type changed
(`type_changes.py`) or of deliveries (`delivery_metrics.py`).

It may import dlt, the registry and the settings; never Dagster, the source or the Dagster layer.
"""
