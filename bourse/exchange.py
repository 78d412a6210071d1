"""`bourse exchange serve`: the buyers' HTTP service, Delta Sharing over the catalog and store.

It also serves the catalog's pages, its DCAT-AP export and the manifests (exchange_pages).

Read-only over the data: a grant with a profile is a recipient whose share holds one table, its
version. Every request checks the grant again (catalog_shares.share_standing: expiry,
revocation, withdrawal, the market as the audited trail backs it, the approval in force, the
grant's rows as audited), then the version's manifest against its content hash and audited
sha256 (the same checks as `bourse grant`), and a query hashes the files against the manifest.
File URLs: presigned GETs on S3, HMAC-signed links of this service on the embedded store, each
valid for at most FILE_URL_SECONDS and never past the grant; no path of this machine is ever
sent. Each query is one `access` audit event; file reads are batched per query (one event per
query and flush interval, not per file part). CORS is off; tokens are rate limited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from bourse import exchange_pages
from databourse import sharing, zones
from databourse.catalog import Catalog
from databourse.catalog_shares import NOT_DELIVERABLE, GrantStanding
from databourse.config import Config
from databourse.delivery import check_manifest
from databourse.errors import DataBourseError
from databourse.facts import checked_facts
from databourse.grant_terms import check_terms_expiry
from databourse.package import read_manifest
from databourse.sharing import AccessRefused, SharedTable
from databourse.storage import ObjectStore

log = logging.getLogger("bourse.exchange")
PREFIX = "/delta-sharing"
TABLE_VERSION = "0"  # one immutable version per table: the Delta table never changes
MAX_BODY = 64 * 1024  # a query's JSON body
RATE = (600, 60.0)  # requests per token (or per address without one) in a window of seconds
FLUSH_SECONDS = 2.0  # how often batched file reads become audit events
NDJSON = "application/x-ndjson; charset=utf-8"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Exchange:
    """What the service reads from: configs, catalog, store; its URL key and its ledgers."""

    cfg: Config
    catalog: Catalog
    store: ObjectStore
    url_key: bytes
    public_url: str | None = None
    _hashes: dict[tuple[str, int, str | None, Any], str] = field(default_factory=dict)
    _reads: dict[tuple[int, int], list[Any]] = field(default_factory=dict)
    _hits: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def allowed(self, who: str) -> bool:
        """A sliding-window rate limit per token hash (or client address)."""
        limit, window = RATE
        moment = time.monotonic()
        with self._lock:
            hits = self._hits[who]
            while hits and hits[0] <= moment - window:
                hits.popleft()
            if len(hits) >= limit:
                return False
            hits.append(moment)
            return True

    def deliverable(self, standing: GrantStanding) -> dict[str, Any]:
        """The version's manifest once it checks out as `bourse grant` checks it (else 403)."""
        product, version = standing.product, standing.version
        try:
            manifest = read_manifest(self.store, product, version)
            if manifest is None:
                raise AccessRefused(403, NOT_DELIVERABLE)
            shown = self.catalog.show(product, version)["product"]
            provider, dataset = shown["provider"], shown["dataset"]
            origin = self.cfg.providers[provider].jurisdiction
            important = self.cfg.dataset(provider, dataset).important_data
            checked_facts(manifest, standing.content_hash, origin, important)
            check_manifest(self.catalog, self.store, product, version)
            terms = self.cfg.product(product).terms
            check_terms_expiry(product, version, terms.expires, standing.expires_at, self.now())
        except AccessRefused:
            raise
        except (DataBourseError, KeyError) as exc:
            log.warning("grant %s not delivered: %s", standing.grant_id, exc)
            raise AccessRefused(403, NOT_DELIVERABLE, grant_id=standing.grant_id) from None
        return manifest

    def file_sha256(self, key: str) -> str:
        """The object's sha256, read once per (key, size, etag, modified): files are immutable."""
        info = self.store.head(key)
        if info is None:
            return "missing"
        ident = (key, info.size, info.etag, info.modified)
        with self._lock:
            known = self._hashes.get(ident)
        if known is None:
            digest = hashlib.sha256()
            with self.store.open(key) as src:
                while block := src.read(1 << 20):
                    digest.update(block)
            known = digest.hexdigest()
            with self._lock:
                self._hashes[ident] = known
        return known

    def check_files(self, standing: GrantStanding, manifest: dict[str, Any]) -> None:
        """Every file still has its manifest's sha256 (403 naming nothing else otherwise)."""
        prefix = zones.product_prefix(standing.product, standing.version)
        for entry in manifest["files"]:
            if self.file_sha256(f"{prefix}/{entry['path']}") != entry["sha256"]:
                log.warning("grant %s: %s differs from its manifest", standing.grant_id, entry)
                raise AccessRefused(403, NOT_DELIVERABLE, grant_id=standing.grant_id)

    def note_read(self, standing: GrantStanding, query: int, size: int) -> None:
        with self._lock:
            entry = self._reads.setdefault((standing.grant_id, query), [standing, 0, 0])
            entry[1] += 1
            entry[2] += size

    def flush_reads(self) -> None:
        """One `access` event per query's file reads since the last flush."""
        with self._lock:
            batch, self._reads = self._reads, {}
        for (_, query), (standing, parts, size) in batch.items():
            try:
                self.catalog.record_access(standing, "files", parts, size, query)
            except DataBourseError as exc:
                log.error("file reads of grant %s not audited: %s", standing.grant_id, exc)


def error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    """The protocol's error body."""
    return JSONResponse({"errorCode": code, "message": message}, status, headers=headers)


def refused(exc: AccessRefused) -> JSONResponse:
    code = "UNAUTHENTICATED" if exc.status == 401 else "PERMISSION_DENIED"
    return error(int(exc.status), code, str(exc))


def authorized(ex: Exchange, request: Request) -> tuple[GrantStanding, SharedTable]:
    """The caller's grant, checked now; AccessRefused (401, 403 or 429) otherwise."""
    token = sharing.bearer_token(request.headers.get("authorization"))
    who = sharing.token_sha256(token) if token else f"ip:{request.client and request.client.host}"
    if not ex.allowed(who):
        raise AccessRefused(429, "too many requests: slow down")
    if token is None:
        raise AccessRefused(401, "the bearer token is not valid")
    standing = ex.catalog.share_standing(ex.catalog.recipient_of(who))
    return standing, SharedTable(standing.grant_id, standing.product, standing.version)


def own(table: SharedTable, share: str, schema: str | None = None, name: str | None = None) -> None:
    """403 unless the names are the grant's own share, schema and table (nothing else exists)."""
    if (
        share != table.share
        or (schema is not None and schema != table.schema)
        or (name is not None and name != table.table)
    ):
        raise AccessRefused(403, "this share holds no such share, schema or table")


def create_app(ex: Exchange) -> FastAPI:
    """The FastAPI app of the exchange (no CORS middleware: browsers of other sites get nothing)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        stop = threading.Event()

        def flusher() -> None:
            while not stop.wait(FLUSH_SECONDS):
                ex.flush_reads()

        thread = threading.Thread(target=flusher, name="exchange-audit", daemon=True)
        thread.start()
        yield
        stop.set()
        thread.join()
        ex.flush_reads()

    app = FastAPI(title="databourse exchange", docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.exception_handler(AccessRefused)
    async def on_refused(_request: Request, exc: AccessRefused) -> JSONResponse:
        if exc.status == 429:
            return error(429, "RESOURCE_EXHAUSTED", str(exc), **{"Retry-After": "1"})
        return refused(exc)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    exchange_pages.add_pages(app, ex)  # the catalog's pages, DCAT and manifests (read-only)

    @app.get(PREFIX + "/shares")
    def list_shares(request: Request) -> dict[str, Any]:
        _, table = authorized(ex, request)
        return {"items": [{"name": table.share, "id": table.share}]}

    @app.get(PREFIX + "/shares/{share}")
    def get_share(request: Request, share: str) -> dict[str, Any]:
        _, table = authorized(ex, request)
        own(table, share)
        return {"share": {"name": table.share, "id": table.share}}

    @app.get(PREFIX + "/shares/{share}/schemas")
    def list_schemas(request: Request, share: str) -> dict[str, Any]:
        _, table = authorized(ex, request)
        own(table, share)
        return {"items": [{"name": table.schema, "share": table.share}]}

    @app.get(PREFIX + "/shares/{share}/schemas/{schema}/tables")
    def list_tables(request: Request, share: str, schema: str) -> dict[str, Any]:
        _, table = authorized(ex, request)
        own(table, share, schema)
        return {"items": [table.table_json()]}

    @app.get(PREFIX + "/shares/{share}/all-tables")
    def all_tables(request: Request, share: str) -> dict[str, Any]:
        _, table = authorized(ex, request)
        own(table, share)
        return {"items": [table.table_json()]}

    tables = PREFIX + "/shares/{share}/schemas/{schema}/tables/{name}"

    @app.api_route(tables + "/version", methods=["GET", "HEAD"])
    def table_version(request: Request, share: str, schema: str, name: str) -> Response:
        standing, table = authorized(ex, request)
        own(table, share, schema, name)
        ex.deliverable(standing)
        return Response(headers={"delta-table-version": TABLE_VERSION})

    @app.get(tables + "/metadata")
    def metadata(request: Request, share: str, schema: str, name: str) -> Response:
        standing, table = authorized(ex, request)
        own(table, share, schema, name)
        fmt = _format(request)
        if fmt is None:
            return error(400, "INVALID_PARAMETER_VALUE", "responseformat=parquet only")
        manifest = ex.deliverable(standing)
        body = sharing.protocol_line() + sharing.metadata_line(table, manifest)
        return Response(body, media_type=NDJSON, headers=_protocol_headers(fmt))

    @app.post(tables + "/query")
    async def query(request: Request, share: str, schema: str, name: str) -> Response:
        standing, table = authorized(ex, request)
        own(table, share, schema, name)
        fmt = _format(request)
        problem = await _query_problem(request)
        if fmt is None or problem:
            return error(400, "INVALID_PARAMETER_VALUE", problem or "responseformat=parquet only")
        manifest = ex.deliverable(standing)
        ex.check_files(standing, manifest)
        size = sum(int(f["bytes"]) for f in manifest["files"])
        seq = ex.catalog.record_access(standing, "query", len(manifest["files"]), size)
        base = ex.public_url or str(request.base_url).rstrip("/")
        lines = [sharing.protocol_line(), sharing.metadata_line(table, manifest)]
        lines += _file_lines(ex, standing, manifest, seq, base)
        return Response("".join(lines), media_type=NDJSON, headers=_protocol_headers(fmt))

    @app.api_route(PREFIX + "/files/{grant_id}/{index}.parquet", methods=["GET", "HEAD"])
    def file(request: Request, grant_id: int, index: int, q: int, exp: int, sig: str) -> Response:
        problem = sharing.signature_problem(ex.url_key, grant_id, index, q, exp, sig, ex.now())
        if problem:
            return error(403, "PERMISSION_DENIED", problem)
        standing = ex.catalog.share_standing(grant_id)
        manifest = ex.deliverable(standing)
        if not 0 <= index < len(manifest["files"]):
            return error(404, "NOT_FOUND", "no such file in this grant's table")
        entry = manifest["files"][index]
        key = f"{zones.product_prefix(standing.product, standing.version)}/{entry['path']}"
        if ex.file_sha256(key) != entry["sha256"]:
            raise AccessRefused(403, NOT_DELIVERABLE, grant_id=grant_id)
        return _send(ex, request, standing, key, int(entry["bytes"]), q)

    return app


def _format(request: Request) -> str | None:
    try:
        return sharing.response_format(request.headers.get("delta-sharing-capabilities"))
    except DataBourseError:
        return None


def _protocol_headers(fmt: str) -> dict[str, str]:
    return {
        "delta-table-version": TABLE_VERSION,
        "delta-sharing-capabilities": f"responseformat={fmt}",
    }


async def _query_problem(request: Request) -> str | None:
    """Why a query's body is refused: too large, not JSON, or asks for what is not served."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        return f"the query body is larger than {MAX_BODY} bytes"
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return f"the query body is larger than {MAX_BODY} bytes"
    try:
        asked = json.loads(body or b"{}")
    except ValueError:
        return "the query body is not JSON"
    if not isinstance(asked, dict):
        return "the query body is not a JSON object"
    if asked.get("version") not in (None, 0) or any(
        asked.get(k) is not None for k in ("timestamp", "startingVersion", "endingVersion")
    ):
        return "this table has one version, 0: no time travel or change feed"
    return None


def _file_lines(
    ex: Exchange, standing: GrantStanding, manifest: dict[str, Any], query: int, base: str
) -> list[str]:
    """The file lines: presigned S3 GETs, or this service's signed links on the embedded store."""
    now = ex.now()
    until = sharing.url_expiry(standing.expires_at, now)
    prefix = zones.product_prefix(standing.product, standing.version)
    lines = []
    for index, entry in enumerate(manifest["files"]):
        key = f"{prefix}/{entry['path']}"
        if ex.store.local_path(key) is None:  # S3: presigned, never past the grant
            url = ex.store.access_url(key, max(1, int((until - now).total_seconds())))
        else:
            exp = int(until.timestamp())
            sig = sharing.file_signature(ex.url_key, standing.grant_id, index, query, exp)
            url = f"{base}{PREFIX}/files/{standing.grant_id}/{index}.parquet"
            url += f"?q={query}&exp={exp}&sig={sig}"
        lines.append(sharing.file_line(entry, url, until))
    return lines


def _send(
    ex: Exchange, request: Request, standing: GrantStanding, key: str, size: int, query: int
) -> Response:
    """The file or one byte range of it (readers of Parquet ask for the footer first)."""
    start, end, status = 0, size - 1, 200
    wanted = request.headers.get("range")
    if wanted:
        m = _RANGE.match(wanted.strip())
        if m is None or (not m.group(1) and not m.group(2)):
            return error(416, "INVALID_PARAMETER_VALUE", "one byte range: bytes=START-END")
        if m.group(1):
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
        else:
            start = max(0, size - int(m.group(2)))
        if start > end or start >= size:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        status = 206
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)}
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    ex.note_read(standing, query, end - start + 1)
    return StreamingResponse(
        _chunks(ex.store, key, start, end), status, headers, "application/octet-stream"
    )


def _chunks(store: ObjectStore, key: str, start: int, end: int) -> Iterator[bytes]:
    with store.open(key) as src:
        if src.seekable():
            src.seek(start)
        else:  # an S3 body is a stream: read up to the range
            left = start
            while left > 0 and (skipped := src.read(min(left, 1 << 20))):
                left -= len(skipped)
        remaining = end - start + 1
        while remaining > 0 and (block := src.read(min(remaining, 1 << 20))):
            remaining -= len(block)
            yield block


def serve(host: str, port: int, public_url: str | None = None) -> None:
    """Run the exchange with uvicorn until interrupted."""
    import uvicorn

    from tasks import resources

    keys = resources.audit_keys()
    ex = Exchange(
        cfg=resources.config(),
        catalog=resources.catalog(),
        store=resources.store(),
        url_key=sharing.url_signing_key(keys[0].material),
        public_url=public_url.rstrip("/") if public_url else None,
    )
    log.info("exchange serving on %s:%s", host, port)
    uvicorn.run(create_app(ex), host=host, port=port, access_log=False, log_level="info")
