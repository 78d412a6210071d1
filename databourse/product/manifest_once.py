"""A version's `manifest.json` is the one this run built, never one found in its place.

The content hash covers a version's files, schema, config and transfer facts, not its usage
terms, ODRL policy or lineage: anyone who can write the store could put a manifest with the same
content hash but other terms at `products/<p>/<version>/manifest.json` before the pipeline
writes it. So the manifest is built in memory and written if absent; a manifest already there is
kept only when it is, byte for byte, what this run built (its build time `created_at` aside: a
run that died after writing it is re-run with the same inputs and code). Anything else is
refused (ObjectChanged, naming product@version and the key, never the contents), and the sha256
recorded for the version is that of the bytes the pipeline built.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from databourse.errors import ObjectChanged, ObjectExists
from databourse.storage.store import ObjectStore

__all__ = ["manifest_bytes", "write_manifest_once"]

BUILD_TIME = "created_at"  # the one field a re-run of the same build writes differently


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The bytes of a manifest as the pipeline writes them."""
    return json.dumps(manifest, indent=2, default=str).encode()


def write_manifest_once(store: ObjectStore, key: str, manifest: dict[str, Any]) -> str:
    """Write `manifest` at `key` unless one is there; the sha256 of the bytes kept.

    A manifest already at `key` is kept only if it is what this run built (see module doc);
    otherwise ObjectChanged.
    """
    built = manifest_bytes(manifest)
    try:
        store.put_bytes(key, built, if_absent=True)
        return hashlib.sha256(built).hexdigest()
    except ObjectExists:
        found = store.get_bytes(key)
    if found == built or _same_build(found, manifest):
        return hashlib.sha256(found).hexdigest()
    name = f"{manifest.get('product')}@{manifest.get('version')}"
    raise ObjectChanged(
        f"{key}: a manifest this run did not write is in place of {name}'s (its terms, policy, "
        "lineage or other fields differ from what the product's config and this build make "
        f"them); {name} is not packaged. Remove the version folder after investigating "
        "who wrote it, then re-run the build",
        key=key,
        product=manifest.get("product"),
        version=manifest.get("version"),
    )


def _same_build(found: bytes, manifest: dict[str, Any]) -> bool:
    """`found` is this build's manifest written at another time (by a run that died after it)."""
    try:
        stated = json.loads(found)
        when = stated[BUILD_TIME]
        dt.datetime.fromisoformat(when)
    except (ValueError, TypeError, KeyError):
        return False
    return manifest_bytes({**manifest, BUILD_TIME: when}) == found
