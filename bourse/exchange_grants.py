"""The exchange's state and the checks of a grant every request passes, and its reads' audit.

`Exchange` holds what the service reads from (configs, catalog, store, its URL key, its private
file cache) and its ledgers: the rate limits (exchange_limits) and the file reads not yet audited.
`authorized` finds the caller's grant and checks it now (catalog_shares.share_standing: expiry,
revocation, withdrawal, the market as the audited trail backs it, the approval in force, the
grant's rows as audited); `Exchange.deliverable` checks the version's manifest as `bourse grant`
checks it; `own` refuses any share, schema or table but the grant's own.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fastapi import Request

from bourse import exchange_pages
from bourse.exchange_cache import FileCache
from bourse.exchange_limits import Rate, RateLimiter
from bourse.exchange_spool import ReadSpool, batch_id, summed
from databourse.catalog.access_anchors import ANCHOR_EVERY
from databourse.catalog.database import Catalog
from databourse.catalog.shares import NOT_DELIVERABLE, GrantStanding
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
RATE: Rate = (600, 60.0)  # requests per grant in a window of seconds
ADDRESS_RATE: Rate = (1200, 60.0)  # requests per client address, every endpoint
FAILURES: Rate = (60, 60.0)  # refused tokens and file links per client address
TOO_MANY = "too many requests: slow down"
POLICY_CHANGED = (
    "the transfer policy changed since this market was decided; ask the exchange to re-decide"
)


@dataclass
class Exchange:
    """What the service reads from: configs, catalog, store; its URL key and its ledgers."""

    cfg: Config
    catalog: Catalog
    store: ObjectStore
    url_key: bytes
    cache: FileCache
    spool: ReadSpool
    public_url: str | None = None
    listen_url: str | None = None  # the address it was started on, unless a wildcard
    limits: RateLimiter = field(default_factory=RateLimiter)
    manifests: exchange_pages.ManifestMemo = field(default_factory=exchange_pages.ManifestMemo)
    _retry: set[str] = field(default_factory=set)  # batches whose audit failed part way
    _anchored: tuple[int, float] = (0, float("-inf"))  # the last row anchored, and when

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
        """Spool a file read (fsynced) before its first byte is sent (exchange_spool)."""
        self.spool.note({
            "grant_id": standing.grant_id, "product": standing.product,
            "version": standing.version, "market": standing.market, "buyer": standing.buyer,
            "query": query, "size": size,
        })  # fmt: skip

    def flush_reads(self, *, seal: bool = False) -> None:
        """One access log row per query's file reads since the last flush (a batch whose
        logging failed is tried again, its recorded rows not twice); then dead services'; then
        the log sealed into the audit trail when a seal is due (`seal`: now, whatever is left),
        and its newest row anchored in the store when an anchor is due (`seal`: now)."""
        self.spool.take()
        mine = self.spool.batches()
        self._audit(mine, {batch_id(b) for b in mine} & self._retry)
        with self.spool.orphans() as batches:  # one not audited now stays for the next flush
            self._audit(batches, {batch_id(b) for b in batches})
        try:
            self.catalog.seal_access(force=seal)
        except DataBourseError as exc:  # the rows stay chained; the next flush seals them
            log.error("access log not sealed yet: %s", exc)
        self._anchor(force=seal)

    def _anchor(self, *, force: bool) -> None:
        """The access log's newest row anchored in the store, at most every ANCHOR_EVERY
        (`force`: now), when rows were logged since the last anchor."""
        last, at = self._anchored
        if not force and time.monotonic() - at < ANCHOR_EVERY.total_seconds():
            return
        try:
            body = self.catalog.anchor_access(self.store, last)
        except DataBourseError as exc:  # the next flush tries again
            log.error("access log not anchored in the store yet: %s", exc)
            return
        if body is not None:
            self._anchored = (int(body["last"]), time.monotonic())

    def _audit(self, batches: list[Path], recorded_before: set[str]) -> None:
        """Record each batch's reads the trail does not hold yet, then delete the batch; one
        whose audit fails is kept and tried again."""
        try:
            done = self.catalog.audited_batches(recorded_before)
        except DataBourseError as exc:
            log.error("file reads not audited yet: %s", exc)
            self._retry |= {batch_id(b) for b in batches}
            return
        for batch in batches:
            name = batch_id(batch)
            try:
                for r in summed(batch):
                    if (r.batch, r.grant_id, r.query) not in done:
                        self.catalog.record_access(r, "files", r.files, r.size, r.query, r.batch)
            except (DataBourseError, OSError) as exc:
                log.error("file reads of batch %s not audited yet: %s", name, exc)
                self._retry.add(name)
                continue
            self.spool.done(batch)
            self._retry.discard(name)


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
