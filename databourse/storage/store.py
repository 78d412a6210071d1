"""Object storage: one `ObjectStore` interface, a local-disk store and an S3 store.

    ObjectStore (ABC)
    ├── LocalStore   databourse.storage.local   a folder; atomic writes via <root>/.tmp + rename
    └── S3Store      databourse.storage.s3      s3://bucket/prefix via boto3 (any S3 endpoint)

`open_store(root)` picks one from a root string. Keys are '/'-separated and validated on every call
(`validate_key`); both stores raise the same errors from `databourse.errors`: `StorageError` (with
`key` and, for S3, `code` attributes), `ObjectNotFound` and `ObjectExists`.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from databourse.errors import ObjectExists, StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "ObjectInfo",
    "ObjectStore",
    "parse_s3_uri",
    "s3_client",
    "validate_key",
    "validate_prefix",
]

MAX_KEY_BYTES = 1024  # S3's limit on a whole key
MAX_SEGMENT_BYTES = 255  # most filesystems' limit on one name
RESERVED_FIRST_SEGMENT = ".tmp"  # LocalStore's staging folder; refused on both stores alike
_S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/?(?P<prefix>.*)$")


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object: key (relative to the root), size, ETag, last change."""

    key: str
    size: int
    etag: str | None = None
    # When the object was last written (UTC), where the store reports it; not part of equality.
    modified: datetime | None = field(default=None, compare=False)


def validate_key(key: str) -> str:
    """Return `key` if it is a safe object key, else raise StorageError naming it."""
    problem = _key_problem(key)
    if problem:
        raise StorageError(f"invalid object key {key!r}: {problem}", key=key)
    return key


def validate_prefix(prefix: str) -> str:
    """Return `prefix` if it is '' or a safe key, optionally ending in '/'; else StorageError."""
    body = prefix[:-1] if prefix.endswith("/") else prefix
    if prefix and _key_problem(body):
        raise StorageError(f"invalid prefix {prefix!r}: {_key_problem(body)}", key=prefix)
    return prefix


def _key_problem(key: object) -> str:
    if not isinstance(key, str):
        return "not a string"
    if not key:
        return "empty"
    if key.startswith("/"):
        return "leading '/'"
    if "\\" in key:
        return "backslash"
    if "\x00" in key:
        return "NUL character"
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return f"longer than {MAX_KEY_BYTES} bytes"
    segments = key.split("/")
    if segments[0] == RESERVED_FIRST_SEGMENT:
        return f"'{RESERVED_FIRST_SEGMENT}' is reserved"
    for segment in segments:
        if segment in ("", ".", ".."):
            return f"segment {segment!r} not allowed"
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            return f"segment longer than {MAX_SEGMENT_BYTES} bytes"
    return ""


class ObjectStore(ABC):
    """A flat key -> bytes store with atomic writes; see the module docstring for the family."""

    root_uri: str

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> ObjectInfo:
        """Write `data` under `key` atomically; with `if_absent`, raise ObjectExists if taken."""

    @abstractmethod
    def put_file(self, key: str, path: Path, *, if_absent: bool = False) -> ObjectInfo:
        """Stream a local file to `key` atomically (multipart on S3); `if_absent` as put_bytes."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The whole object in memory; ObjectNotFound if missing."""

    @abstractmethod
    def download(self, key: str, path: Path) -> None:
        """Stream the object to a local file, atomically (temp file beside it, then rename)."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A streaming, closable binary reader of the object; ObjectNotFound if missing."""

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """`length` bytes of the object from byte `start` (fewer at its end); ObjectNotFound if
        missing. S3 and local disk read only those bytes; this fallback streams up to them."""
        with self.open(key) as reader:
            while start > 0 and (skipped := len(reader.read(min(start, 1 << 20)))):
                start -= skipped
            return reader.read(length)

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """The object's info, or None if there is no object under `key`."""

    def exists(self, key: str) -> bool:
        """True if an object exists under `key`."""
        return self.head(key) is not None

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix` (plain string prefix), sorted by key."""

    @abstractmethod
    def copy(self, src: str, dst: str, *, if_absent: bool = False) -> ObjectInfo:
        """Copy object `src` to `dst` inside this store; `if_absent` as put_bytes."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object if present (idempotent); meant for staging cleanup only."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """The absolute URI of `key`: file:///... or s3://bucket/prefix/key."""

    @abstractmethod
    def local_path(self, key: str) -> Path | None:
        """The object's file on local disk when the store is local, else None."""

    @abstractmethod
    def access_url(self, key: str, expires_seconds: int) -> str:
        """A URL a buyer reads the object with: presigned on S3, the file's URI when local."""


def check_source_file(key: str, path: Path) -> None:
    """Raise StorageError unless `path` is an existing regular file (put_file's source)."""
    if not Path(path).is_file():
        raise StorageError(
            f"source for {key!r} is not a readable file: {path}", key=key, path=str(path)
        )


@contextmanager
def os_errors(what: str, key: str | None = None) -> Iterator[None]:
    """Turn OSError into StorageError: `what` and the reason, the errno name as `code`."""
    try:
        yield
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        raise StorageError(
            f"{what}: {exc.strerror or type(exc).__name__}", key=key, code=code
        ) from exc


@contextmanager
def replacing_file(dest: Path) -> Iterator[Path]:
    """Yield a temp path beside `dest`; if the block succeeds it atomically replaces `dest`.

    On any error the temp file is removed and `dest` is left as it was (no partial file).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def put_file_once(store: ObjectStore, key: str, path: Path) -> bool:
    """Write a content-addressed object unless it is there; True when this call wrote it.

    Only for keys derived from the content (hash, ingest id): an existing object under such a key
    holds the same bytes, so finding it taken is success, not a conflict.
    """
    try:
        store.put_file(key, path, if_absent=True)
    except ObjectExists:
        return False
    return True


def parse_s3_uri(root: str) -> tuple[str, str]:
    """Split 's3://bucket/prefix/' into ('bucket', 'prefix'); StorageError if malformed."""
    match = _S3_URI.match(root)
    if not match:
        raise StorageError(f"not an s3:// root: {root!r}", key=root)
    prefix = match["prefix"].strip("/")
    if prefix:
        validate_key(prefix)
    return match["bucket"], prefix


def s3_client(endpoint_url: str | None, region: str) -> S3Client:
    """A boto3 S3 client that also works against S3-compatible endpoints (moto, MinIO, Ceph)."""
    import boto3
    import botocore.session
    from botocore.config import Config

    config = Config(
        region_name=region,
        # Non-AWS endpoints reject the newer default checksums; send/verify them only when required.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": 8},
        s3={"addressing_style": "path"},
        signature_version="s3v4",  # presigned links too; SigV2 is deprecated everywhere
    )
    # A fresh session per client (sessions are not thread-safe, and each one re-reads credentials
    # from the environment), sharing one loader so the service model JSON is parsed only once.
    core = botocore.session.get_session()
    core.register_component("data_loader", _shared_loader())
    session = boto3.session.Session(botocore_session=core)
    return session.client("s3", endpoint_url=endpoint_url, config=config)


@functools.cache
def _shared_loader() -> Any:
    """One botocore data loader for the process; it caches the parsed service models."""
    import botocore.loaders

    return botocore.loaders.create_loader()
