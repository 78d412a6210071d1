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
interval, not per file part), spooled to disk and fsynced before a byte is sent, so a killed
service loses none (exchange_spool). CORS and the OpenAPI document are off; requests are rate
limited per grant and per client address, refused tokens and links per address (exchange_limits).
The app is put together here: exchange_grants (its state and the grant checks), exchange_sharing
(the protocol's routes), exchange_files (the signed file links), exchange_protocol (the wire).
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from bourse import exchange_pages
from bourse.exchange_cache import FileCache, warm
from bourse.exchange_files import add_files
from bourse.exchange_grants import TOO_MANY, Exchange, http_url
from bourse.exchange_protocol import PREFIX, error, refused
from bourse.exchange_sharing import add_sharing
from bourse.exchange_spool import ReadSpool
from databourse.catalog.database import Catalog
from databourse.catalog.trail_fold import TrailCache
from databourse.delivery import sharing
from databourse.errors import AccessRefused, ConfigError

log = logging.getLogger("bourse.exchange")
WILDCARDS = ("", "0.0.0.0", "::")  # listening everywhere: not an address to link to
FLUSH_SECONDS = 2.0  # how often batched file reads become audit events
READS_FOLDER = "exchange-reads"  # file reads spooled until audited (exchange_spool)
WARM_SECONDS = 60.0  # how often copies of newly granted files are made ahead


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def flush_seconds() -> float:
    """$DATABOURSE_EXCHANGE_FLUSH_SECONDS, else FLUSH_SECONDS: how often reads are audited."""
    named = os.environ.get("DATABOURSE_EXCHANGE_FLUSH_SECONDS", "")
    try:
        seconds = float(named) if named else FLUSH_SECONDS
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        problem = "$DATABOURSE_EXCHANGE_FLUSH_SECONDS: a number of seconds, above 0, at most 3600"
        raise ConfigError([problem])
    return seconds


def create_app(ex: Exchange, flush_every: float = FLUSH_SECONDS) -> FastAPI:
    """The FastAPI app of the exchange (no CORS middleware: browsers of other sites get nothing)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        stop = threading.Event()

        def flusher() -> None:
            while not stop.wait(flush_every):
                try:
                    ex.flush_reads()
                except Exception:  # the spool keeps the reads: the next flush tries again
                    log.exception("file reads not audited this time")

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
        ex.flush_reads()  # reads a killed service spooled and did not audit, before any new
        for thread in threads:
            thread.start()
        yield
        stop.set()
        for thread in threads:
            thread.join()
        ex.flush_reads(seal=True)
        ex.spool.close()

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
    add_sharing(app, ex)  # the Delta Sharing routes
    add_files(app, ex)  # the signed file links
    return app


def serve(host: str, port: int, public_url: str | None = None) -> None:
    """Run the exchange with uvicorn until interrupted."""
    import uvicorn

    from tasks import resources

    every = flush_seconds()
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
        spool=ReadSpool(cfg.state_dir / READS_FOLDER),
        public_url=public_url.rstrip("/") if public_url else None,
        listen_url=None if host in WILDCARDS else http_url(host, port),
    )
    ex.cache.check_outside(ex.store)
    catalog.audited_manifests()  # the trail's first fold, before the first buyer waits for it
    log.info("exchange serving on %s:%s", host, port)
    uvicorn.run(create_app(ex, every), host=host, port=port, access_log=False, log_level="info")
