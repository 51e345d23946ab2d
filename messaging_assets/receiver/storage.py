"""Where landed files go: one operation, "write this whole file atomically and durably".

A local folder for now. Object storage (through fsspec) gets its own `Storage`: a PUT of a whole
object is atomic there, and it is durable once the PUT is answered.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from messaging_assets.receiver.landing import temporary_name


class Storage(Protocol):
    def write(self, folder: str, name: str, data: bytes) -> None:
        """Write `folder/name` whole. Once this returns the file survives a crash (a power
        failure included); until then no reader sees it under `name`."""


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class LocalFolder:
    """Landed files in a local folder: each written under a temporary name, flushed with fsync,
    renamed into place, and the rename made durable by an fsync of its folder."""

    def __init__(self, root: Path, folders: tuple[str, ...]) -> None:
        self.root = Path(root)
        for folder in folders:
            path = self.root / folder
            created = [p for p in (path, *path.parents) if not p.exists()]
            path.mkdir(parents=True, exist_ok=True)
            # A new folder's entry in its parent must be on disk too, or a crash could lose the
            # folder with every file acknowledged in it.
            for directory in {path, *(p.parent for p in created)}:
                _fsync_directory(directory)
            if not os.access(path, os.W_OK | os.X_OK):
                raise PermissionError(f"{path}: not writable")

    def __str__(self) -> str:
        return str(self.root.resolve())

    def write(self, folder: str, name: str, data: bytes) -> None:
        directory = self.root / folder
        temporary = directory / temporary_name(name)
        # O_EXCL: names are unique per receiver process, so an existing file is someone else's.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(descriptor, view) :]
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.rename(temporary, directory / name)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_directory(directory)
