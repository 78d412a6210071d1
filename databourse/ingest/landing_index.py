"""The landing hash cache: object key -> size, change stamp, sha256, so discovery reads each
landing object once, not every night."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from databourse.errors import ObjectNotFound
from databourse.storage import zones
from databourse.storage.store import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)


class HashIndex:
    """A provider's hash cache: object key -> size, stamp, sha256.

    Entries are facts, so concurrent runs may overwrite each other's file (last writer wins, and
    `save` merges what is there first); an entry is used only when the object's size and stamp are
    exactly those it was hashed with.
    """

    def __init__(self, key: str, entries: dict[str, dict[str, Any]]) -> None:
        self.key = key
        self.entries = entries
        self._fresh: dict[str, dict[str, Any]] = {}

    @classmethod
    def load(cls, store: ObjectStore, provider: str) -> HashIndex:
        """The provider's cache, or an empty one if it is missing or unreadable."""
        key = zones.join("staging", "landing-index", f"{provider}.json")
        return cls(key, _read_entries(store, key))

    def lookup(self, info: ObjectInfo, stamp: str | None) -> str | None:
        """The cached sha256 of `info`, only if its size and stamp are unchanged."""
        entry = self.entries.get(info.key)
        if stamp is None or entry is None:
            return None
        if entry.get("size") != info.size or entry.get("stamp") != stamp:
            return None
        sha = entry.get("sha256")
        return sha if isinstance(sha, str) and len(sha) == 64 else None

    def record(self, info: ObjectInfo, stamp: str | None, sha256: str) -> None:
        """Remember a hash just computed (not when the store gives no stamp to check it by)."""
        if stamp is not None:
            self._fresh[info.key] = {"size": info.size, "stamp": stamp, "sha256": sha256}

    def save(self, store: ObjectStore, listed: Iterable[str]) -> None:
        """Merge with the current cache (a concurrent run's entries), keep listed keys, write."""
        keep = set(listed)
        if not self._fresh and keep >= set(self.entries):
            return  # nothing learned, nothing to prune: spare the write
        merged = {**_read_entries(store, self.key), **self._fresh}
        entries = {k: v for k, v in sorted(merged.items()) if k in keep}
        body = {"format": 1, "entries": entries}
        store.put_bytes(self.key, json.dumps(body, indent=1, sort_keys=True).encode())
        self.entries, self._fresh = entries, {}


def _read_entries(store: ObjectStore, key: str) -> dict[str, dict[str, Any]]:
    """The entries of the cache object `key`; none if it is missing or not in our format."""
    try:
        data = json.loads(store.get_bytes(key))
    except ObjectNotFound:
        return {}
    except ValueError:
        log.warning("hash cache %s is unreadable; rebuilding it", key)
        return {}
    if not isinstance(data, dict) or data.get("format") != 1:
        data = {}
    entries = data.get("entries")
    if not isinstance(entries, dict):
        log.warning("hash cache %s has an unknown format; rebuilding it", key)
        return {}
    return {k: v for k, v in entries.items() if isinstance(v, dict)}


def stamp_of(store: ObjectStore, info: ObjectInfo) -> str | None:
    """What changes whenever the object's bytes may have: its ETag, else its file's inode and
    times (LocalStore lists no ETag); None when the store offers neither (never cached)."""
    if info.etag:
        return f"etag:{info.etag}"
    path = store.local_path(info.key)
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return f"file:{st.st_ino}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_size}"
