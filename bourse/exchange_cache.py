"""The exchange's private, content-addressed copies of product files: what buyers are served from.

A file is copied from the store into a temp file of the cache folder (mode 0700, outside the
store) while it is hashed; only when its sha256 is the manifest's is it renamed, atomically, to
`<cache>/<sha256>` (mode 0400), else the temp is deleted and the caller refuses. A request opens
that copy once and streams from the open file, never from the store by name, so a store writer
who swaps a part (even with its size and mtime restored, or an S3 object replaced) cannot change
the bytes a buyer gets. The store is hashed again whenever its object's size, ETag or mtime
changed since the last check, so a visible change is refused. The cache is bounded: beyond its
size the least recently used copies are deleted (open ones stay readable until closed). `warm`
makes the copies of live grants' files ahead of their first query (at start, then each minute).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from databourse.catalog.database import Catalog
from databourse.errors import ConfigError, DataBourseError
from databourse.product.package import read_manifest
from databourse.storage import zones
from databourse.storage.store import ObjectStore

log = logging.getLogger("bourse.exchange")
DEFAULT_LIMIT = 20 * 1024**3  # bytes; $DATABOURSE_EXCHANGE_CACHE_BYTES overrides
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TEMP = ".part-"


@dataclass
class FileCache:
    """A folder of verified copies named by sha256, least recently used evicted beyond `limit`."""

    root: Path
    limit: int = DEFAULT_LIMIT
    _checked: dict[str, tuple[Any, str]] = field(default_factory=dict)
    _used: dict[str, int] = field(default_factory=dict)  # sha256 -> last use (a counter)
    _uses: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        for stale in self.root.glob(_TEMP + "*"):  # a copy cut short by a crash
            stale.unlink(missing_ok=True)

    @classmethod
    def from_env(cls, state_dir: Path) -> FileCache:
        """`$DATABOURSE_EXCHANGE_CACHE_DIR` (default `<state_dir>/exchange-cache`) and its size."""
        folder = os.environ.get("DATABOURSE_EXCHANGE_CACHE_DIR") or str(
            state_dir / "exchange-cache"
        )
        size = os.environ.get("DATABOURSE_EXCHANGE_CACHE_BYTES", str(DEFAULT_LIMIT))
        if not size.isdigit() or int(size) <= 0:
            problem = "$DATABOURSE_EXCHANGE_CACHE_BYTES: must be a positive whole number of bytes"
            raise ConfigError([problem])
        return cls(Path(folder).resolve(), int(size))

    def check_outside(self, store: ObjectStore) -> None:
        """Refuse a cache folder inside a local store (its writers could reach the copies)."""
        inside = store.local_path("products")
        if inside is not None and self.root.is_relative_to(inside.parent.resolve()):
            problem = "$DATABOURSE_EXCHANGE_CACHE_DIR: must be outside the store's root"
            raise ConfigError([problem])

    def verified(self, store: ObjectStore, key: str, sha256: str) -> Path | None:
        """The copy of `key` whose sha256 is `sha256`, made if needed; None if the store differs."""
        if not _SHA256.match(sha256):
            return None
        info = store.head(key)
        if info is None:
            return None
        ident = (info.size, info.etag, info.modified)
        copy = self.root / sha256
        with self._lock:
            known = self._checked.get(key)
        if known == (ident, sha256) and self._touch(copy):
            return copy
        if not self._copy(store, key, sha256):
            with self._lock:
                self._checked.pop(key, None)
            return None
        with self._lock:
            self._checked[key] = (ident, sha256)
            self._used[sha256] = next(self._uses) + 1
        self._evict(keep=copy)
        return copy

    def open_verified(self, store: ObjectStore, key: str, sha256: str) -> IO[bytes] | None:
        """The verified copy of `key`, opened (read from this file object only); None if not."""
        for _ in range(2):  # a copy evicted between its check and its opening is made again
            copy = self.verified(store, key, sha256)
            if copy is None:
                return None
            try:
                return copy.open("rb")
            except FileNotFoundError:
                continue
        return None

    def _touch(self, copy: Path) -> bool:
        try:
            os.utime(copy)  # its mtime is its last use for the next run of the service
        except FileNotFoundError:  # evicted: copy it again
            return False
        with self._lock:
            self._used[copy.name] = next(self._uses) + 1
        return True

    def _copy(self, store: ObjectStore, key: str, sha256: str) -> bool:
        """Stream `key` into a temp file while hashing; rename it to its sha256 if it matches."""
        fd, name = tempfile.mkstemp(prefix=_TEMP, dir=self.root)
        temp = Path(name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, store.open(key) as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                log.warning("%s differs from its manifest's sha256: not served", key)
                return False
            os.chmod(temp, 0o400)
            os.replace(temp, self.root / sha256)
            return True
        finally:
            temp.unlink(missing_ok=True)

    def _evict(self, keep: Path) -> None:
        """Delete the least recently used copies while the cache is larger than its limit."""
        with self._lock:
            used = dict(self._used)
        entries = []
        for path in self.root.iterdir():
            if path.name.startswith(_TEMP) or path == keep:
                continue
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            # copies of an earlier run of the service first, by mtime; then this run's, by use
            entries.append((used.get(path.name, 0), info.st_mtime_ns, info.st_size, path))
        try:
            total = sum(entry[2] for entry in entries) + keep.stat().st_size
        except FileNotFoundError:  # evicted by another request meanwhile: it is copied again
            return
        for _, _, size, path in sorted(entries):
            if total <= self.limit:
                break
            path.unlink(missing_ok=True)  # an open copy stays readable until it is closed
            total -= size


def warm(cache: FileCache, catalog: Catalog, store: ObjectStore, now: dt.datetime) -> int:
    """Make the copies of every live grant's files ahead of its first query, so that a large
    version is copied and hashed here and not inside a buyer's request; returns the files made
    or found. Which copy a request uses is still decided by the audited manifest then."""
    done = 0
    for grant in catalog.grant_list():
        if not grant["profile"] or grant["revoked"]:
            continue
        if dt.datetime.fromisoformat(grant["expires_at"]) <= now:
            continue
        try:
            manifest = read_manifest(store, grant["product"], grant["version"]) or {}
        except DataBourseError as exc:
            log.warning("grant %s: no copies made ahead: %s", grant["id"], exc)
            continue
        prefix = zones.product_prefix(grant["product"], grant["version"])
        for entry in manifest.get("files", []):
            if cache.verified(store, f"{prefix}/{entry['path']}", str(entry["sha256"])):
                done += 1
    return done
