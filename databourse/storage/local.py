"""LocalStore: the ObjectStore on a local folder, with crash-safe atomic writes.

A write goes to a temp file under `<root>/.tmp/` (same filesystem), is flushed and fsynced, then
published with `os.replace` (overwrite) or `os.link` (if-absent: the kernel refuses an existing
name, so the check and the write are one atomic step). A crash mid-write leaves at most an orphan
temp file under `.tmp/`, which `list()` never shows and `sweep_tmp()` removes.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from databourse.errors import ObjectExists, ObjectNotFound, StorageError
from databourse.storage.store import (
    ObjectInfo,
    ObjectStore,
    check_source_file,
    os_errors,
    replacing_file,
    validate_key,
    validate_prefix,
)

logger = logging.getLogger(__name__)

TMP_DIR = ".tmp"
_CHUNK = 1024 * 1024
_NOT_A_FILE = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


def _os_errors(key: str) -> AbstractContextManager[None]:
    """OSError becomes StorageError carrying the key and the errno name as `code`."""
    return os_errors(f"local storage failed for {key!r}", key=key)


def _fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (POSIX); skipped where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _info(key: str, stat: os.stat_result) -> ObjectInfo:
    modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
    return ObjectInfo(key=key, size=stat.st_size, modified=modified)


class LocalStore(ObjectStore):
    """Objects as files under one root folder; keys map to relative paths."""

    def __init__(self, root: Path) -> None:
        root = Path(root).expanduser()
        with _os_errors(str(root)):
            root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.root_uri = self.root.as_uri()
        self._tmp = self.root / TMP_DIR

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        """The file of `key`; StorageError if the key is invalid or resolves outside the root."""
        validate_key(key)
        path = self.root / key
        resolved = path.resolve()
        if resolved == self.root or not resolved.is_relative_to(self.root):
            raise StorageError(f"object key {key!r} resolves outside the store root", key=key)
        return path

    def _write(self, key: str, fill: Callable[[BinaryIO], None], *, if_absent: bool) -> ObjectInfo:
        """Write through a fsynced temp file in .tmp/, then publish it by rename or link."""
        dest = self._path(key)
        with _os_errors(key):
            if if_absent and dest.exists():
                raise ObjectExists(f"object {key!r} already exists", key=key)
            self._tmp.mkdir(exist_ok=True)
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
            tmp = Path(name)
            try:
                with os.fdopen(fd, "wb") as out:
                    fill(out)
                    out.flush()
                    os.fsync(out.fileno())
                size = tmp.stat().st_size
                if if_absent:
                    try:
                        os.link(tmp, dest)
                    except FileExistsError:
                        raise ObjectExists(f"object {key!r} already exists", key=key) from None
                else:
                    os.replace(tmp, dest)
                _fsync_dir(dest.parent)
            finally:
                tmp.unlink(missing_ok=True)
        logger.debug("wrote %s (%d bytes)", key, size)
        return ObjectInfo(key=key, size=size)

    def put_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> ObjectInfo:
        """Write `data` under `key` atomically; with `if_absent`, raise ObjectExists if taken."""

        def fill(out: BinaryIO) -> None:
            out.write(data)

        return self._write(key, fill, if_absent=if_absent)

    def put_file(self, key: str, path: Path, *, if_absent: bool = False) -> ObjectInfo:
        """Stream a local file to `key` atomically; `if_absent` as put_bytes."""
        self._path(key)
        check_source_file(key, path)

        def fill(out: BinaryIO) -> None:
            with open(path, "rb") as src:
                _copy(src, out)

        return self._write(key, fill, if_absent=if_absent)

    def _existing(self, key: str) -> Path:
        """The file of an existing object; ObjectNotFound otherwise."""
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(f"no object {key!r} in {self.root_uri}", key=key)
        return path

    def get_bytes(self, key: str) -> bytes:
        """The whole object in memory; ObjectNotFound if missing."""
        path = self._existing(key)
        with _os_errors(key):
            try:
                return path.read_bytes()
            except _NOT_A_FILE:
                raise ObjectNotFound(f"no object {key!r} in {self.root_uri}", key=key) from None

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """`length` bytes of the object from byte `start` (fewer at its end)."""
        with self.open(key) as fh, _os_errors(key):
            fh.seek(start)
            return fh.read(length)

    def download(self, key: str, path: Path) -> None:
        """Copy the object to a local file, atomically (temp file beside it, then rename)."""
        with (
            self.open(key) as src,
            _os_errors(key),
            replacing_file(Path(path)) as tmp,
            open(tmp, "wb") as out,
        ):
            shutil.copyfileobj(src, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())

    def open(self, key: str) -> BinaryIO:
        """A streaming binary reader of the object (close it, or use it as a context manager)."""
        path = self._existing(key)
        with _os_errors(key):
            try:
                return open(path, "rb")
            except _NOT_A_FILE:
                raise ObjectNotFound(f"no object {key!r} in {self.root_uri}", key=key) from None

    def head(self, key: str) -> ObjectInfo | None:
        """The object's size, or None if there is no object under `key`."""
        path = self._path(key)
        with _os_errors(key):
            try:
                if not path.is_file():
                    return None
                return _info(key, path.stat())
            except _NOT_A_FILE:
                return None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix` (a plain string prefix), sorted by key."""
        validate_prefix(prefix)
        folder = prefix.rpartition("/")[0]
        base = self.root / folder
        if folder and not base.resolve().is_relative_to(self.root):
            raise StorageError(f"prefix {prefix!r} resolves outside the store root", key=prefix)
        return iter(sorted(self._walk(base, prefix), key=lambda info: info.key))

    def _walk(self, base: Path, prefix: str) -> Iterator[ObjectInfo]:
        """Files under `base` whose key starts with `prefix`, skipping .tmp and escaping links."""
        for dirpath, dirnames, filenames in os.walk(base):
            here = Path(dirpath)
            if here == self.root and TMP_DIR in dirnames:
                dirnames.remove(TMP_DIR)
            for name in filenames:
                path = here / name
                key = path.relative_to(self.root).as_posix()
                if not key.startswith(prefix):
                    continue
                if path.is_symlink() and not path.resolve().is_relative_to(self.root):
                    continue
                try:
                    yield _info(key, path.stat())
                except OSError:
                    continue  # deleted or dangling while we walked

    def copy(self, src: str, dst: str, *, if_absent: bool = False) -> ObjectInfo:
        """Copy object `src` to `dst` through a temp file; `if_absent` as put_bytes."""
        source = self._existing(src)
        self._path(dst)

        def fill(out: BinaryIO) -> None:
            with open(source, "rb") as reader:
                shutil.copyfileobj(reader, out, _CHUNK)

        return self._write(dst, fill, if_absent=if_absent)

    def delete(self, key: str) -> None:
        """Remove the object if present (idempotent)."""
        path = self._path(key)
        with _os_errors(key):
            try:
                path.unlink()
            except _NOT_A_FILE:
                return
            except PermissionError:
                if path.is_dir():  # macOS reports unlink(dir) as EPERM
                    return
                raise

    def uri(self, key: str) -> str:
        """file:///root/key."""
        return self._path(key).as_uri()

    def local_path(self, key: str) -> Path | None:
        """The object's file (it may not exist yet)."""
        return self._path(key)

    def access_url(self, key: str, expires_seconds: int) -> str:
        """The file's URI: the embedded store has no expiring links (the grant records expiry)."""
        return self.uri(key)

    def sweep_tmp(self, older_than_seconds: float = 24 * 3600) -> int:
        """Remove temp files left in .tmp/ by crashed writers; returns how many were removed."""
        removed = 0
        cutoff = time.time() - older_than_seconds
        if not self._tmp.is_dir():
            return 0
        for entry in self._tmp.iterdir():
            try:
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
            except OSError:
                continue
        if removed:
            logger.info("removed %d orphan temp file(s) from %s", removed, self._tmp)
        return removed


def _copy(src: BinaryIO, out: BinaryIO) -> None:
    """Copy a file in the kernel (copy_file_range: no trip through Python, a reflink where the
    file system can), else through a buffer from wherever the kernel copy stopped."""
    out.flush()
    try:
        while os.copy_file_range(src.fileno(), out.fileno(), 1 << 30):
            pass
        return
    except (AttributeError, OSError):  # other file systems, old kernels, not Linux
        pass
    shutil.copyfileobj(src, out, _CHUNK)
