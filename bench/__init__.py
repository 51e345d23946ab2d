"""`make bench`: the project's ingest against the fastest way to do the same work (the floor)."""
