"""Each run's own dlt working directory, and what runs that died left in theirs.

A run works in `<PIPELINES_DIR>/runs/<run id>`, its state restored from the destination, so two
runs on one machine never finish or drop each other's load packages. The directory is locked while
its run lives; one no longer locked belongs to a run that died, and the next run loads what it had
extracted (or drops what cannot load) before its own load. dagster-dlt on its own drops such
packages, and plain dlt loads them and then ignores the new data: either way a refresh would
quietly not happen.
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dlt.pipeline.pipeline import Pipeline

from messaging_assets.registry import SOURCE
from messaging_assets.warehouse.destination import messaging_pipeline, pipelines_dir

OWNER = ".owner"


@contextmanager
def _claimed(directory: Path, wait: bool) -> Iterator[bool]:
    """Holds the directory's owner lock (True), or says a live process holds it (False)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / OWNER, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _abandoned(base: Path, own: Path) -> Iterator[Path]:
    """Working directories of runs that died (and the shared one of earlier versions)."""
    candidates = [base, *sorted((base / "runs").glob("*"))]
    for directory in candidates:
        if directory != own and (directory / SOURCE).is_dir():
            with _claimed(directory, wait=False) as mine:
                if mine:
                    yield directory


def finish_abandoned(base: Path, own: Path) -> str | None:
    """Loads what runs that died extracted, or drops it if it cannot load; says which."""
    loaded, dropped, errors = [], [], []
    for directory in _abandoned(base, own):
        pipeline = messaging_pipeline(directory)
        normalized = list(pipeline.list_normalized_load_packages())
        pending = list(dict.fromkeys([*pipeline.list_extracted_load_packages(), *normalized]))
        try:
            if normalized:
                pipeline.load()
            # A run killed just after normalizing leaves an extracted copy of what was loaded.
            if set(pipeline.list_extracted_load_packages()) - set(normalized):
                pipeline.normalize()
                pipeline.load()
            loaded += pending
        except Exception as error:
            pipeline.abort_packages()
            dropped += pending
            errors.append(str(error))
        shutil.rmtree(directory / SOURCE, ignore_errors=True)
        if directory != base:
            shutil.rmtree(directory, ignore_errors=True)
    said = []
    if loaded:
        said.append(
            f"Loaded {len(loaded)} load package(s) an earlier run left unfinished "
            f"({', '.join(loaded)}) before this run's own load."
        )
    if dropped:
        said.append(
            f"Dropped {len(dropped)} load package(s) an earlier run left unfinished "
            f"({', '.join(dropped)}), because they could not be loaded: {'; '.join(errors)}"
        )
    return " ".join(said) or None


@contextmanager
def run_pipeline(run_id: str) -> Iterator[Pipeline]:
    """The pipeline of a run, in the run's own dlt working directory: locked while the run lives,
    removed after it unless it left a load package to finish."""
    directory = pipelines_dir() / "runs" / run_id
    with _claimed(directory, wait=True):
        pipeline = messaging_pipeline(directory)
        try:
            yield pipeline
        finally:
            if not pipeline.has_pending_data:
                shutil.rmtree(directory, ignore_errors=True)
