"""Delivery: a buyer gets time-limited access to one exact version, never a copy of raw data."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from databourse import zones
from databourse.catalog import Catalog
from databourse.errors import CatalogError, VersionNotFound
from databourse.package import read_manifest
from databourse.storage import ObjectStore

_DURATION = re.compile(r"^(\d+)([hd])$")


def expiry(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """'24h', '7d' or an ISO date (end of that day, UTC) -> an aware UTC datetime in the future."""
    now = now or dt.datetime.now(dt.UTC)
    if m := _DURATION.match(text.strip()):
        amount, unit = int(m.group(1)), m.group(2)
        moment = now + (dt.timedelta(hours=amount) if unit == "h" else dt.timedelta(days=amount))
    else:
        try:
            day = dt.date.fromisoformat(text.strip())
        except ValueError:
            raise CatalogError(f"expiry {text!r}: give 24h, 7d or a date YYYY-MM-DD") from None
        moment = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)
    if moment <= now:
        raise CatalogError(f"expiry {text!r} is not in the future")
    return moment


def grant_access(
    catalog: Catalog,
    store: ObjectStore,
    product: str,
    version: str,
    buyer: str,
    market: str,
    expires_at: dt.datetime,
) -> dict[str, Any]:
    """Record the grant (refused unless offered in that market) and return the file URLs."""
    manifest = read_manifest(store, product, version)
    if manifest is None:
        raise VersionNotFound(
            f"{product}@{version} has no manifest", product=product, version=version
        )
    grant = catalog.record_grant(product, version, buyer, market, expires_at)
    seconds = int((expires_at - dt.datetime.now(dt.UTC)).total_seconds())
    prefix = zones.product_prefix(product, version)
    grant["files"] = [
        {
            "path": f["path"],
            "bytes": f["bytes"],
            "sha256": f["sha256"],
            "url": store.access_url(f"{prefix}/{f['path']}", seconds),
        }
        for f in manifest["files"]
    ]
    grant["manifest_url"] = store.access_url(f"{prefix}/manifest.json", seconds)
    grant["url_expires_in_seconds"] = min(seconds, 7 * 24 * 3600)
    return grant
