"""Exports of the catalog for outside consumers, written atomically to the `catalog/` zone."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from databourse import zones
from databourse.catalog import Catalog
from databourse.catalog_page import render
from databourse.dcat import catalog_jsonld
from databourse.errors import ManifestMismatch
from databourse.package import manifest_sha256, read_manifest
from databourse.storage import ObjectStore
from databourse.trail_state import manifest_problem

JSONLD_KEY = "catalog/dcat.jsonld"
PAGE_KEY = "catalog/index.html"


def gather(catalog: Catalog, store: ObjectStore) -> list[dict[str, Any]]:
    """Every product with its versions (newest first), their manifests and file URLs."""
    entries = []
    for listed in catalog.list_products():
        shown = catalog.show(listed["id"])
        versions = []
        audited = catalog.audited_manifests()
        for record in shown["versions"]:
            name = (listed["id"], record["version"])
            problem = manifest_problem(
                audited.get(name), manifest_sha256(store, *name), "@".join(name)
            )
            if problem is not None:  # the published terms must be the ones packaged
                raise ManifestMismatch(f"{problem}; not exported", product=name[0], version=name[1])
            manifest = read_manifest(store, listed["id"], record["version"])
            prefix = zones.product_prefix(listed["id"], record["version"])
            files = {
                f["path"]: store.uri(f"{prefix}/{f['path']}")
                for f in (manifest or {}).get("files", [])
            }
            versions.append({"record": record, "manifest": manifest, "files": files})
        entries.append({"product": shown["product"], "versions": versions})
    return entries


def export_catalog(
    catalog: Catalog, store: ObjectStore, title: str = "databourse data product catalog"
) -> dict[str, str]:
    """Write the DCAT-AP 3 JSON-LD and the HTML page; return their URIs."""
    entries = gather(catalog, store)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    store.put_bytes(
        JSONLD_KEY,
        json.dumps(catalog_jsonld(entries, title), indent=2, ensure_ascii=False).encode(),
    )
    store.put_bytes(PAGE_KEY, render(entries, title, now).encode())
    return {"dcat": store.uri(JSONLD_KEY), "page": store.uri(PAGE_KEY)}
