"""Exports of the catalog for outside consumers, written atomically to the `catalog/` zone.

The DCAT-AP JSON-LD, the HTML page and a Croissant 1.1 card per listed version that has a
manifest (`catalog/croissant/<product>/<version>.json`, croissant.py). What is exported is
`Catalog.listing`: a market the authenticated audit trail does not back is
listed as "unverified", never as available, and named in a warning. The objects are sealed with
the audit key after they are written (listing_seal), so a rewritten listing is found by
`bourse verify --all`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from databourse.catalog.database import Catalog
from databourse.catalog.listing import unverified_markets
from databourse.catalog.page import render
from databourse.catalog.trail_state import manifest_problem
from databourse.config import Config, load_config
from databourse.errors import ManifestMismatch
from databourse.product.package import manifest_sha256, read_manifest
from databourse.standards.corpus_card import published_card
from databourse.standards.croissant import card, card_key
from databourse.standards.dcat import CatalogInfo, catalog_jsonld
from databourse.standards.listing_seal import SEAL_KEY, write_sealed
from databourse.storage import zones
from databourse.storage.store import ObjectStore

log = logging.getLogger(__name__)

JSONLD_KEY = "catalog/dcat.jsonld"
PAGE_KEY = "catalog/index.html"


@dataclass(frozen=True)
class Export:
    """What an export wrote (kind -> URI) and the markets it listed as unverified."""

    uris: dict[str, str]
    unverified: list[tuple[str, str, str, str]]  # (product, version, market, stored status)

    def warnings(self) -> list[str]:
        """One line per unverified market: product@version, market and stored status only."""
        return [
            f"{product}@{version} market {market}: stored as {stored}, not backed by the "
            "authenticated audit trail: listed as unverified (`bourse verify --all` says why)"
            for product, version, market, stored in self.unverified
        ]


def gather(
    catalog: Catalog,
    store: ObjectStore,
    listing: list[dict[str, Any]] | None = None,
    public: str | None = None,
) -> list[dict[str, Any]]:
    """Every product of the listing with its versions (newest first), manifests and file URLs.

    `public`: the exchange's public base URL; a version's files and card are then reached at
    its page there (`/products/ID/VERSION`, as the exchange serves them), not at store URIs."""
    entries = []
    audited = catalog.audited_manifests()
    for shown in catalog.listing() if listing is None else listing:
        product_id = shown["product"]["id"]
        versions = []
        for record in shown["versions"]:
            name = (product_id, record["version"])
            problem = manifest_problem(
                audited.get(name), manifest_sha256(store, *name), "@".join(name)
            )
            if problem is not None:  # the published terms must be the ones packaged
                raise ManifestMismatch(f"{problem}; not exported", product=name[0], version=name[1])
            manifest = read_manifest(store, *name)
            prefix = zones.product_prefix(*name)
            paths = [f["path"] for f in (manifest or {}).get("files", [])]
            if public is None:
                files = {path: store.uri(f"{prefix}/{path}") for path in paths}
                card = store.uri(card_key(*name)) if manifest else None
            else:
                page = version_page(public, *name)
                files = dict.fromkeys(paths, page)
                card = f"{page}/croissant.json" if manifest else None
            versions.append({"record": record, "manifest": manifest, "files": files, "card": card})
        entries.append({"product": shown["product"], "versions": versions})
    return entries


def version_page(base: str, product: str, version: str) -> str:
    """A version's page on the exchange at `base` (each part percent-quoted)."""
    return f"{base}/products/{quote(product, safe='')}/{quote(version, safe='')}"


def export_listing(
    catalog: Catalog,
    store: ObjectStore,
    title: str = "databourse data product catalog",
    info: CatalogInfo | None = None,
) -> Export:
    """Write the DCAT-AP 3 JSON-LD, the HTML page and the versions' Croissant cards, then their
    seal; what was written.

    `info`: what the configs say about the catalog (publisher, products' descriptions, the
    markets' laws); None loads the project's configs (`load_config`), whose providers' declared
    personal-data categories the cards then name."""
    signing = catalog.listing_signing_key()  # SecretMissing before anything is written
    cfg = None
    if info is None:
        cfg = load_config()
        info = CatalogInfo.of(cfg)
    listing = catalog.listing()
    entries = gather(catalog, store, listing, info.export.public_base_url)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    objects = {
        JSONLD_KEY: json.dumps(
            catalog_jsonld(entries, title, info), indent=2, ensure_ascii=False
        ).encode(),
        PAGE_KEY: render(entries, title, now).encode(),
    }
    cards = croissant_cards(entries, info, cfg)
    uris = write_sealed(store, signing, objects | cards, now)
    export = Export(
        {"dcat": uris[JSONLD_KEY], "page": uris[PAGE_KEY]}
        | {f"croissant {name}": uris[key] for key, name in _card_names(cards).items()}
        | {"seal": uris[SEAL_KEY]},
        unverified_markets(listing),
    )
    for line in export.warnings():
        log.warning("%s", line)
    return export


def croissant_cards(
    entries: list[dict[str, Any]], info: CatalogInfo, cfg: Config | None = None
) -> dict[str, bytes]:
    """A Croissant 1.1 card (object key -> bytes) for each version of `gather` with a manifest;
    `cfg` gives the providers' declared personal-data categories (none without it)."""
    cards = {}
    for entry in entries:
        product = entry["product"]
        for item in entry["versions"]:
            manifest = item["manifest"]
            if manifest is None:
                continue
            lineage = manifest.get("lineage") or {}
            source = cfg.providers.get(str(lineage.get("provider"))) if cfg else None
            dataset = source.datasets.get(str(lineage.get("dataset"))) if source else None
            spec = info.products.get(product["id"])
            provider = info.providers.get(product["provider"], product["provider"])
            made = spec is not None and spec.fingerprint() == lineage.get("product_config_sha256")
            if made and spec is not None and spec.corpus is not None and "corpus" in manifest:
                # a corpus version's card states its rules: only those that built it
                doc = published_card(
                    manifest, spec.corpus, item["files"], name=product["name"], creator=provider
                )
            else:
                doc = card(
                    manifest,
                    item["record"],
                    item["files"],
                    title=product["name"],
                    provider=provider,
                    publisher=info.export.publisher,
                    spec=spec,
                    declared=dataset.declared_categories if dataset else None,
                )
            key = card_key(product["id"], item["record"]["version"])
            cards[key] = json.dumps(doc, indent=2, ensure_ascii=False).encode()
    return cards


def _card_names(cards: dict[str, bytes]) -> dict[str, str]:
    """product@version of each card's key."""
    return {
        key: "@".join(key.removeprefix("catalog/croissant/").removesuffix(".json").split("/"))
        for key in cards
    }


def export_catalog(
    catalog: Catalog, store: ObjectStore, title: str = "databourse data product catalog"
) -> dict[str, str]:
    """Write and seal the catalog's listing (export_listing); return the URIs written."""
    return export_listing(catalog, store, title).uris


def refresh_listing(catalog: Catalog, store: ObjectStore) -> Export | None:
    """Re-export a listing that exists, after a change that takes an offer away (a withdrawal, an
    expiry), so the public files never offer what the catalog no longer does; None if none yet."""
    from databourse.standards.listing_seal import SEAL_KEY

    if not store.exists(SEAL_KEY) and not store.exists(JSONLD_KEY):
        return None
    return export_listing(catalog, store)
