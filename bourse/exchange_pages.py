"""The exchange's catalog pages: what the audited listing offers, read-only, for buyers.

`/` (every listed product), `/products/{id}` and `/products/{id}/{version}` (description, schema
with each column's personal-data status, usage terms in words, quality and privacy figures,
markets and their legal basis, how to get access), `/catalog/dcat.jsonld` (DCAT-AP 3, dcat.py)
`/products/{id}/{version}/manifest.json` and `croissant.json` (the version's Croissant 1.1 card).
What is listed is `Catalog.listing` (markets as the
authenticated audit trail backs them, catalog_listing) and what is offered is
`dcat.available_markets`; a manifest is shown only when `exports.gather` finds it is the packaged
one. Staged versions are never listed; withdrawn ones say so and offer nothing. Every name is
HTML-escaped (exchange_html), pages run no script (CSP), and no location of this machine or
its store is ever sent: a manifest's internal locations (raw ingests, reports) are withheld.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from bourse import exchange_html as html
from bourse.exchange_html import HEADERS, NOT_LISTED, TITLE, href
from databourse.errors import AccessRefused, ManifestMismatch, VersionNotFound
from databourse.product.package import MANIFEST
from databourse.standards.dcat import CatalogInfo, available_markets, catalog_jsonld
from databourse.standards.exports import croissant_cards, gather
from databourse.storage import zones

if TYPE_CHECKING:
    from bourse.exchange_grants import Exchange

log = logging.getLogger("bourse.exchange")
LISTED = ("published", "withdrawn")  # staged versions are work in progress: never listed
HYDRA = "http://www.w3.org/ns/hydra/core#"
PAGE = 100  # products per page of the index and of the DCAT export
PAGES = Query(1, ge=1, le=1_000_000, description="the page, from 1")
WITHHELD = "withheld"  # what a manifest shows instead of a location inside the exchange
_LOCATION = re.compile(r"^(?:file:|s3:|/|\\|[A-Za-z]:[\\/])", re.I)

Listing = list[dict[str, Any]]
Manifests = dict[tuple[str, str], dict[str, Any]]


def listed(ex: Exchange, product: str | None = None, version: str | None = None) -> Listing:
    """The listing (catalog_listing) without staged versions or products with nothing listed."""
    try:
        return _shown(ex.catalog.listing(product, version))
    except VersionNotFound:
        return []


def listed_page(ex: Exchange, page: int) -> tuple[Listing, bool]:
    """Page `page` (from 1) of the listing, PAGE products in id order, and whether more follow.

    Measured with 1,000 products and 10,000 versions: the whole listing took 6.5 s a request
    and the whole DCAT export 16 s (59 MB); a page of 100 products is a tenth of that."""
    listing = ex.catalog.listing(offset=(page - 1) * PAGE, limit=PAGE + 1)
    return _shown(listing[:PAGE]), len(listing) > PAGE


def _shown(listing: Listing) -> Listing:
    out = []
    for entry in listing:
        versions = [v for v in entry["versions"] if v["status"] in LISTED]
        if versions:
            out.append({"product": entry["product"], "versions": versions})
    return out


@dataclass
class ManifestMemo:
    """The public manifests the pages showed, kept per version with the audited sha256 they were
    checked against and the store object's size, ETag and mtime then: a request whose version
    still has both is answered from here, without reading and hashing the store's manifest again
    (measured: two reads a version made the DCAT export of 10,000 versions take seconds). Any
    change of the object or of the audited hash is checked again by `exports.gather`."""

    limit: int = 20_000
    _memo: dict[tuple[str, str], tuple[Any, str, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, name: tuple[str, str], ident: Any, audited: str | None) -> dict[str, Any] | None:
        with self._lock:
            hit = self._memo.get(name)
        if hit is None or audited is None or hit[:2] != (ident, audited):
            return None
        return hit[2]

    def put(
        self, name: tuple[str, str], ident: Any, audited: str | None, manifest: dict[str, Any]
    ) -> None:
        if ident is None or audited is None:
            return  # nothing to tell a later change by
        with self._lock:
            self._memo.pop(name, None)
            self._memo[name] = (ident, audited, manifest)
            while len(self._memo) > self.limit:  # the oldest first
                self._memo.pop(next(iter(self._memo)))


def _ident(ex: Exchange, name: tuple[str, str]) -> Any:
    info = ex.store.head(f"{zones.product_prefix(*name)}/{MANIFEST}")
    return None if info is None else (info.size, info.etag, info.modified)


def checked_manifests(ex: Exchange, listing: Listing) -> Manifests:
    """The published versions' manifests that are the packaged ones (exports.gather), public.

    A version whose manifest is not the audited one is left out (it offers nothing), logged by
    product and version only. Versions unchanged since a request checked them come from
    `ex.manifests` (ManifestMemo).
    """
    audited = ex.catalog.audited_manifests()
    known: Manifests = {}
    idents: dict[tuple[str, str], Any] = {}
    todo = []
    for e in listing:
        versions = []
        for v in e["versions"]:
            name = (e["product"]["id"], v["version"])
            if v["status"] != "published":
                continue
            idents[name] = _ident(ex, name)
            hit = ex.manifests.get(name, idents[name], audited.get(name))
            if hit is not None:
                known[name] = hit
            else:
                versions.append(v)
        todo.append({"product": e["product"], "versions": versions})
    left_out: set[tuple[str, str]] = set()
    while True:
        try:
            entries = gather(ex.catalog, ex.store, todo)
        except ManifestMismatch as exc:
            name = (str(exc.context.get("product")), str(exc.context.get("version")))
            log.warning("%s@%s not offered by the pages: %s", *name, exc)
            if name in left_out:  # not one of the versions asked about: offer nothing
                return {}
            left_out.add(name)
            todo = [
                {
                    **e,
                    "versions": [
                        v for v in e["versions"] if (e["product"]["id"], v["version"]) != name
                    ],
                }
                for e in todo
            ]
            continue
        break
    for e in entries:
        for v in e["versions"]:
            if v["manifest"] is not None:
                name = (e["product"]["id"], v["record"]["version"])
                known[name] = public_manifest(ex, v["manifest"])
                ex.manifests.put(name, idents.get(name), audited.get(name), known[name])
    return known


def public_manifest(ex: Exchange, manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with every location inside the exchange (store URIs, paths) withheld."""
    probe = "catalog/probe"
    roots = {ex.store.uri(probe)[: -len(probe)], str(ex.cfg.root), str(ex.cfg.state_dir)}
    local = ex.store.local_path(probe)
    if local is not None:
        roots.add(str(local)[: -len(probe)])

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str) and (_LOCATION.match(value) or any(r in value for r in roots)):
            return WITHHELD
        return value

    # the schema's column names and the files' paths are the data's own names, not locations
    return {k: v if k in ("schema", "files") else clean(v) for k, v in manifest.items()}


def offered_in(record: dict[str, Any], manifest: dict[str, Any] | None) -> list[str]:
    """The markets a version is offered in: published, its manifest checked, available there."""
    return available_markets(record) if manifest is not None else []


def description(ex: Exchange, product: str) -> str:
    """The product's description from its config ("" when the config no longer has it)."""
    spec = ex.cfg.products.get(product)
    return spec.description if spec is not None else ""


def add_pages(app: FastAPI, ex: Exchange) -> None:
    """Mount the catalog's pages on the exchange's app (GET only; rate limited per address)."""

    def limited(request: Request) -> None:
        if not ex.allowed(f"ip:{request.client and request.client.host}"):
            raise AccessRefused(429, "too many requests: slow down")

    def base(request: Request) -> str:
        return ex.link_base(request)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, page: int = PAGES) -> Response:
        limited(request)
        listing, more = listed_page(ex, page)
        return html.page(TITLE, html.index(listing) + html.pager("/", page, more))

    @app.get("/products/{product}", response_class=HTMLResponse)
    def product_page(request: Request, product: str) -> Response:
        limited(request)
        found = listed(ex, product)
        if not found:
            return html.not_found()
        [entry] = found
        manifests = checked_manifests(ex, found)
        offered = {
            v["version"]: offered_in(v, manifests.get((product, v["version"])))
            for v in entry["versions"]
        }
        body = html.product_head(entry, description(ex, product)) + html.versions(entry, offered)
        newest = next((v for v in entry["versions"] if (product, v["version"]) in manifests), None)
        if newest is not None:
            manifest = manifests[product, newest["version"]]
            markets = offered[newest["version"]]
            body += html.details(entry["product"], newest, manifest, markets, base(request))
        return html.page(entry["product"]["name"], body)

    @app.get("/products/{product}/{version}", response_class=HTMLResponse)
    def version_page(request: Request, product: str, version: str) -> Response:
        limited(request)
        found = listed(ex, product, version)
        if not found:
            return html.not_found()
        [entry] = found
        [record] = entry["versions"]
        manifest = checked_manifests(ex, found).get((product, version))
        markets = offered_in(record, manifest)
        body = html.product_head(entry, description(ex, product))
        body += html.details(entry["product"], record, manifest, markets, base(request))
        return html.page(f"{entry['product']['name']} {version}", body)

    @app.get("/products/{product}/{version}/manifest.json")
    def manifest_json(request: Request, product: str, version: str) -> Response:
        limited(request)
        found = listed(ex, product, version)
        if not found:
            return JSONResponse({"error": NOT_LISTED}, 404, headers=HEADERS)
        if found[0]["versions"][0]["status"] == "withdrawn":
            gone = {"error": "this version is withdrawn: it is not offered"}
            return JSONResponse(gone, 410, headers=HEADERS)
        manifest = checked_manifests(ex, found).get((product, version))
        if manifest is None:
            return JSONResponse({"error": "this version is not offered now"}, 404, headers=HEADERS)
        return JSONResponse(manifest, headers=HEADERS)

    @app.get("/products/{product}/{version}/croissant.json")
    def croissant_json(request: Request, product: str, version: str) -> Response:
        """The version's Croissant 1.1 card, made as the export makes it, from what is offered:
        its files point at the version's page (the bytes go only through Delta Sharing)."""
        limited(request)
        found = listed(ex, product, version)
        if not found:
            return JSONResponse({"error": NOT_LISTED}, 404, headers=HEADERS)
        [entry], record = found, found[0]["versions"][0]
        manifest = checked_manifests(ex, found).get((product, version))
        if record["status"] != "published" or manifest is None:
            return JSONResponse({"error": "this version is not offered now"}, 404, headers=HEADERS)
        shown = base(request) + href("products", product, version)
        files = {f["path"]: shown for f in manifest["files"]}
        item = {"record": record, "manifest": manifest, "files": files}
        [doc] = croissant_cards(
            [{"product": entry["product"], "versions": [item]}], CatalogInfo.of(ex.cfg), ex.cfg
        ).values()
        return Response(doc, media_type="application/ld+json", headers=HEADERS)

    @app.get("/catalog/dcat.jsonld")
    def dcat(request: Request, page: int = PAGES) -> Response:
        limited(request)
        listing, more = listed_page(ex, page)
        manifests = checked_manifests(ex, listing)
        url = base(request)
        entries = []
        for entry in listing:
            pid, versions = entry["product"]["id"], []
            for record in entry["versions"]:
                manifest = manifests.get((pid, record["version"]))
                if record["status"] == "published" and manifest is None:
                    continue  # published, but not the packaged manifest: nothing to describe
                shown = url + href("products", pid, record["version"])
                files = {f["path"]: shown for f in (manifest or {}).get("files", [])}
                card = f"{shown}/croissant.json" if manifest else None
                versions.append(
                    {"record": record, "manifest": manifest, "files": files, "card": card}
                )
            entries.append({"product": entry["product"], "versions": versions})
        body = catalog_jsonld(entries, TITLE, CatalogInfo.of(ex.cfg))
        if page > 1 or more:  # a page of the catalog, as Hydra pages a collection
            here = f"{url}/catalog/dcat.jsonld"
            body["@context"] = {**body["@context"], "hydra": HYDRA}
            body["hydra:view"] = {
                "@id": f"{here}?page={page}",
                "@type": "hydra:PartialCollectionView",
                "hydra:first": {"@id": f"{here}?page=1"},
                **({"hydra:next": {"@id": f"{here}?page={page + 1}"}} if more else {}),
                **({"hydra:previous": {"@id": f"{here}?page={page - 1}"}} if page > 1 else {}),
            }
        return JSONResponse(body, media_type="application/ld+json", headers=HEADERS)
