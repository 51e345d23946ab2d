"""Where landed files go: one operation, "write this whole file atomically and durably".

A local folder (flush, rename), or object storage through dlt's fsspec filesystem: there a PUT
of a whole object is atomic, and durable once the store answers it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from dlt.common.configuration import resolve_configuration
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.exceptions import MissingDependencyException
from dlt.common.storages.configuration import FilesystemConfiguration
from dlt.common.storages.fsspec_filesystem import fsspec_from_config
from fsspec import AbstractFileSystem

from messaging_assets.receiver.landing import temporary_name
from messaging_assets.registry import SOURCE
from messaging_assets.settings import SettingError

# Where the landing zone's credentials and fsspec arguments are read from: the section dlt's
# filesystem source resolves its own from when the loader lists the zone, so that the receiver,
# the loader and the sensor read one configuration:
# SOURCES__MESSAGING__FILESYSTEM__CREDENTIALS__AWS_ACCESS_KEY_ID, ..._ENDPOINT_URL, ...
FILESYSTEM_SECTIONS = ("sources", SOURCE, "filesystem")


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


def is_local(url: str) -> bool:
    """A folder on this machine (a path, or a `file://` URL), not object storage."""
    return FilesystemConfiguration.parse_protocol(url) == "file"


def shown(url: str) -> str:
    """The landing zone's URL as logs and errors show it: a password in it is masked (dlt's)."""
    return str(FilesystemConfiguration(bucket_url=url))


def landing_filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of the landing zone at `url` and the zone's path in it, with
    credentials the dlt way (FILESYSTEM_SECTIONS). SettingError when the credentials are missing
    (naming the variables dlt looked in first) or the store's filesystem is not installed; no
    credential is ever part of the message."""
    try:
        config = resolve_configuration(
            FilesystemConfiguration(bucket_url=url), sections=FILESYSTEM_SECTIONS
        )
        return fsspec_from_config(config)
    except ConfigFieldMissingException as error:
        # dlt's lookups per missing field of the credentials, most specific first.
        wanted = [
            lookups[0].key
            for nested in error.traces.get("credentials", [])
            for lookups in getattr(nested, "traces", {}).values()
            if lookups
        ]
        raise SettingError(
            f"the landing zone {shown(url)} needs credentials: {', '.join(wanted) or 'none found'} "
            "not set (nor in .dlt/secrets.toml, nor the store's own default chain, e.g. "
            "AWS_ACCESS_KEY_ID or an instance role)."
        ) from None
    except MissingDependencyException as error:
        raise SettingError(
            f"the landing zone {shown(url)} needs fsspec's "
            f"{FilesystemConfiguration.parse_protocol(url)}:// filesystem, not installed: pip "
            f"install {' '.join(error.dependencies)} (for s3:// the project's `s3` extra, which "
            "`make install` installs)."
        ) from None


class ObjectStore:
    """Landed files as objects: each written with one PUT of the whole file, answered only once
    the store holds it. There is no temporary name and no rename: an object is either there
    whole or not at all. The PUT creates only: on S3 (If-None-Match) the store refuses a name that
    exists already, another receiver's, rather than overwrite it; elsewhere fsspec looks first."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.filesystem, self.root = landing_filesystem(self.url)

    def __str__(self) -> str:
        return shown(self.url)

    def write(self, folder: str, name: str, data: bytes) -> None:
        self.filesystem.pipe_file(f"{self.root}/{folder}/{name}", data, mode="create")


def open_storage(url: str, folders: tuple[str, ...]) -> Storage:
    """The landing zone at `url`: a LocalFolder for a path or `file://` URL, else an
    ObjectStore."""
    if is_local(url):
        return LocalFolder(Path(url.removeprefix("file://")), folders)
    return ObjectStore(url)
