"""`bourse exchange serve`: the buyers' HTTP service, Delta Sharing over the catalog and store.

It also serves the catalog's pages, its DCAT-AP export and the manifests (exchange_pages).

Read-only over the data: a grant with a profile is a recipient whose share holds one table, its
version. Every request checks the grant again (catalog_shares.share_standing: expiry,
revocation, withdrawal, the market as the audited trail backs it, the approval in force, the
grant's rows as audited), then the version's manifest against its content hash and audited
sha256 (the same checks as `bourse grant`). This service serves every file itself, on every
store, from a private content-addressed copy (exchange_cache: copied from the store while hashed,
kept only if its sha256 is the manifest's, opened once per request), so a store writer cannot
change the bytes a buyer gets. File URLs are HMAC-signed links of this service, valid for at
most FILE_URL_SECONDS and never past the grant; each fetch checks the grant again, so revocation
and withdrawal cut every link; no machine path or presigned store URL is ever sent. Each query
is one `access` audit event; file reads are batched per query (one event per query and flush
interval, not per file part). CORS and the OpenAPI document are off; requests are rate
limited per grant and per client address, refused tokens and links per address (exchange_limits).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from bourse import exchange_pages
from bourse.exchange_cache import FileCache, warm
from bourse.exchange_limits import Rate, RateLimiter
from databourse.catalog.database import Catalog
from databourse.catalog.shares import NOT_DELIVERABLE, GrantStanding
from databourse.catalog.trail_fold import TrailCache
from databourse.config import Config
from databourse.delivery import sharing
from databourse.delivery.grants import check_manifest, decided_under_another_policy
from databourse.delivery.sharing import SharedTable
from databourse.errors import AccessRefused, DataBourseError
from databourse.product.facts import checked_facts
from databourse.product.package import read_manifest
from databourse.storage import zones
from databourse.storage.store import ObjectStore
from databourse.transfer.grant_terms import check_terms_expiry

log = logging.getLogger("bourse.exchange")
PREFIX = "/delta-sharing"
TABLE_VERSION = "0"  # one immutable version per table: the Delta table never changes
MAX_BODY = 64 * 1024  # a query's JSON body
RATE: Rate = (600, 60.0)  # requests per grant in a window of seconds
ADDRESS_RATE: Rate = (1200, 60.0)  # requests per client address, every endpoint
FAILURES: Rate = (60, 60.0)  # refused tokens and file links per client address
TOO_MANY = "too many requests: slow down"
POLICY_CHANGED = (
    "the transfer policy changed since this market was decided; ask the exchange to re-decide"
)
WILDCARDS = ("", "0.0.0.0", "::")  # listening everywhere: not an address to link to
FLUSH_SECONDS = 2.0  # how often batched file reads become audit events
WARM_SECONDS = 60.0  # how often copies of newly granted files are made ahead
NDJSON = "application/x-ndjson; charset=utf-8"
_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")  # 19 digits: any file size, never a bignum


@dataclass
class Exchange:
    """What the service reads from: configs, catalog, store; its URL key and its ledgers."""

    cfg: Config
    catalog: Catalog
    store: ObjectStore
    url_key: bytes
    cache: FileCache
    public_url: str | None = None
    listen_url: str | None = None  # the address it was started on, unless a wildcard
    limits: RateLimiter = field(default_factory=RateLimiter)
    manifests: exchange_pages.ManifestMemo = field(default_factory=exchange_pages.ManifestMemo)
    _reads: dict[tuple[int, int], list[Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def allowed(self, who: str, rate: Rate = RATE) -> bool:
        """A sliding-window rate limit per key (a grant, a client address), in bounded memory."""
        return self.limits.hit(who, rate)

    def address_allowed(self, address: str) -> bool:
        """The client address is under its request rate and has not failed too often."""
        return self.limits.under(f"fail:{address}", FAILURES) and self.allowed(
            f"addr:{address}", ADDRESS_RATE
        )

    def note_failure(self, address: str) -> None:
        """A refused token or file link counts against the address it came from."""
        self.limits.hit(f"fail:{address}", FAILURES)

    def link_base(self, request: Request) -> str:
        """Buyers' base URL: --public-url, else the address served on; never the Host header."""
        if self.public_url:
            return self.public_url
        if self.listen_url:
            return self.listen_url
        server = request.scope.get("server")  # the local address this connection came to
        if not server or server[1] is None:
            raise AccessRefused(403, "this exchange has no public URL: ask its operator")
        return http_url(str(server[0]), int(server[1]))

    def check_policy(self, standing: GrantStanding, versions: list[dict[str, Any]]) -> None:
        """403 when the market was decided under other transfer rules (as `bourse grant` asks)."""
        [row] = versions
        if decided_under_another_policy(self.cfg.policy, row["availability"], standing.market):
            log.warning("grant %s: its market's decision predates the policy", standing.grant_id)
            raise AccessRefused(403, POLICY_CHANGED, grant_id=standing.grant_id)

    def deliverable(self, standing: GrantStanding) -> dict[str, Any]:
        """The version's manifest once it checks out as `bourse grant` checks it (else 403)."""
        product, version = standing.product, standing.version
        try:
            manifest = read_manifest(self.store, product, version)
            if manifest is None:
                raise AccessRefused(403, NOT_DELIVERABLE)
            listed = self.catalog.show(product, version)
            self.check_policy(standing, listed["versions"])
            shown = listed["product"]
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

    def verified_file(self, standing: GrantStanding, entry: dict[str, Any]) -> IO[bytes]:
        """The private copy of a manifest file, its sha256 checked, open (else 403)."""
        key = f"{zones.product_prefix(standing.product, standing.version)}/{entry['path']}"
        src = self.cache.open_verified(self.store, key, str(entry["sha256"]))
        if src is None:
            log.warning("grant %s: %s differs from its manifest", standing.grant_id, entry["path"])
            raise AccessRefused(403, NOT_DELIVERABLE, grant_id=standing.grant_id)
        return src

    def check_files(self, standing: GrantStanding, manifest: dict[str, Any]) -> None:
        """Every file has its manifest's sha256 and a private copy to be served from."""
        for entry in manifest["files"]:
            self.verified_file(standing, entry).close()

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
    if token is None:  # the address's limits (create_app's middleware) count the failure
        raise AccessRefused(401, "the bearer token is not valid")
    grant_id = ex.catalog.recipient_of(sharing.token_sha256(token))
    if not ex.allowed(f"grant:{grant_id}"):
        raise AccessRefused(429, TOO_MANY)
    standing = ex.catalog.share_standing(grant_id)
    ex.check_policy(standing, ex.catalog.show(standing.product, standing.version)["versions"])
    return standing, SharedTable(standing.grant_id, standing.product, standing.version)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def http_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


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

        def warmer() -> None:  # copies made ahead of a grant's first query (exchange_cache)
            while True:
                try:
                    warm(ex.cache, ex.catalog, ex.store, ex.now())
                except Exception:  # a request makes its copies itself then
                    log.exception("copies of granted files not made ahead")
                if stop.wait(WARM_SECONDS):
                    return

        threads = [
            threading.Thread(target=flusher, name="exchange-audit", daemon=True),
            threading.Thread(target=warmer, name="exchange-warm", daemon=True),
        ]
        for thread in threads:
            thread.start()
        yield
        stop.set()
        for thread in threads:
            thread.join()
        ex.flush_reads()

    app = FastAPI(
        title="databourse exchange",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )

    @app.middleware("http")
    async def per_address(request: Request, call_next: Any) -> Response:
        """Every endpoint is limited per client address, and so are its refused credentials."""
        address = client_address(request)
        if not ex.address_allowed(address):
            return error(429, "RESOURCE_EXHAUSTED", TOO_MANY, **{"Retry-After": "1"})
        response: Response = await call_next(request)
        link = request.url.path.startswith(PREFIX + "/files/")
        if response.status_code == 401 or (link and response.status_code == 403):
            ex.note_failure(address)
        return response

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
        base = ex.link_base(request)
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
        src = ex.verified_file(standing, entry)  # opened once: never reopened by name
        try:
            return _send(ex, request, standing, src, int(entry["bytes"]), q)
        except BaseException:
            src.close()
            raise

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
    except RecursionError:
        return "the query body is nested too deeply"
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
    """The file lines: this service's signed links on every store (never a presigned URL)."""
    until = sharing.url_expiry(standing.expires_at, ex.now())
    exp = int(until.timestamp())
    lines = []
    for index, entry in enumerate(manifest["files"]):
        sig = sharing.file_signature(ex.url_key, standing.grant_id, index, query, exp)
        url = f"{base}{PREFIX}/files/{standing.grant_id}/{index}.parquet"
        url += f"?q={query}&exp={exp}&sig={sig}"
        lines.append(sharing.file_line(entry, url, until))
    return lines


def _send(
    ex: Exchange, request: Request, standing: GrantStanding, src: IO[bytes], size: int, query: int
) -> Response:
    """The file or one byte range of it from its open private copy (Parquet footers first)."""
    start, end, status = 0, size - 1, 200
    wanted = request.headers.get("range")
    if wanted:
        m = _RANGE.match(wanted.strip())
        if m is None or (not m.group(1) and not m.group(2)):
            src.close()
            return error(416, "INVALID_PARAMETER_VALUE", "one byte range: bytes=START-END")
        if m.group(1):
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
        else:
            start = max(0, size - int(m.group(2)))
        if start > end or start >= size:
            src.close()
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        status = 206
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)}
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD":
        src.close()
        return Response(status_code=status, headers=headers)
    ex.note_read(standing, query, end - start + 1)
    return StreamingResponse(_chunks(src, start, end), status, headers, "application/octet-stream")


def _chunks(src: IO[bytes], start: int, end: int) -> Iterator[bytes]:
    with src:
        src.seek(start)
        remaining = end - start + 1
        while remaining > 0 and (block := src.read(min(remaining, 1 << 20))):
            remaining -= len(block)
            yield block


def serve(host: str, port: int, public_url: str | None = None) -> None:
    """Run the exchange with uvicorn until interrupted."""
    import uvicorn

    from tasks import resources

    keys = resources.audit_keys()
    cfg = resources.config()
    resources.catalog()  # its tables created if missing
    # Asked on every request: the trail's fold is kept and extended event by event (trail_fold).
    catalog = Catalog(
        cfg.catalog_url,
        audit_keys=resources.audit_keys,
        anchor_store=resources.store,
        trail_cache=TrailCache(),
    )
    ex = Exchange(
        cfg=cfg,
        catalog=catalog,
        store=resources.store(),
        url_key=sharing.url_signing_key(keys[0].material),
        cache=FileCache.from_env(cfg.state_dir),
        public_url=public_url.rstrip("/") if public_url else None,
        listen_url=None if host in WILDCARDS else http_url(host, port),
    )
    ex.cache.check_outside(ex.store)
    catalog.audited_manifests()  # the trail's first fold, before the first buyer waits for it
    log.info("exchange serving on %s:%s", host, port)
    uvicorn.run(create_app(ex), host=host, port=port, access_log=False, log_level="info")
