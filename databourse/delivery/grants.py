"""Delivery: a buyer gets time-limited access to one exact version, never a copy of raw data.

Before a grant is recorded everything it rests on is checked again, not trusted from earlier:
the manifest hashes to the catalog's content hash (its transfer facts included), every file
still has its manifest's sha256, the facts agree with what the product's config and the files
make them (facts.confirmed_facts; a disagreement is audited), the market's decision was made
under today's transfer policy (else it is made again now, on those facts), and the catalog
checks the approval behind it and the expiry. The grant names a purpose the version's usage
terms permit and ends by their expiry (grant_terms). No link is returned: the buyer reads
through the exchange service with a Delta Sharing profile, whose every request is checked again.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from databourse.catalog.database import Catalog
from databourse.catalog.trail_state import manifest_problem
from databourse.config import Config, CrossBorderPolicy
from databourse.errors import (
    CatalogError,
    FactsMismatch,
    ManifestMismatch,
    TransferNotApproved,
    VersionNotFound,
)
from databourse.product.facts import checked_facts, confirmed_facts
from databourse.product.package import manifest_sha256, read_manifest
from databourse.standards.exports import refresh_listing
from databourse.storage.store import ObjectStore
from databourse.transfer.grant_terms import check_purpose
from databourse.transfer.policy import policy_fingerprint

_DURATION = re.compile(r"^(\d{1,6})([hd])$")


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
            raise CatalogError(
                f"expiry {text!r}: give 24h, 7d (at most 6 digits) or a date YYYY-MM-DD"
            ) from None
        moment = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)
    if moment <= now:
        raise CatalogError(f"expiry {text!r} is not in the future")
    return moment


def grant_access(
    cfg: Config,
    catalog: Catalog,
    store: ObjectStore,
    product: str,
    version: str,
    buyer: str,
    market: str,
    expires_at: dt.datetime,
    accepted_conditions: str | None = None,
    *,
    purpose: str | None,
) -> dict[str, Any]:
    """Record the grant once everything it rests on checks out; return it with its files.

    `accepted_conditions`: the sha256 of the approval's conditions as shown to whoever grants
    (`Catalog.grant_conditions`); a grant on an approval with conditions needs it. `purpose`:
    the buyer's, one the product's usage terms permit; the grant ends by the terms' expiry
    (grant_terms; the terms are the config's, which the manifest must agree with).
    """
    terms = cfg.product(product).terms  # ConfigError when the product is not configured
    check_purpose(product, version, terms, purpose)
    manifest = read_manifest(store, product, version)
    if manifest is None:
        raise VersionNotFound(
            f"{product}@{version} has no manifest", product=product, version=version
        )
    shown = catalog.show(product, version)
    owner, [row] = shown["product"], shown["versions"]
    provider, dataset = owner["provider"], owner["dataset"]
    spec = cfg.dataset(provider, dataset)  # ConfigError when the provider or dataset is gone
    origin = cfg.providers[provider].jurisdiction
    untrailed = catalog.trail_problems(product, version, market)
    if untrailed:  # before anything is re-decided from rows the trail does not back
        raise TransferNotApproved(
            f"no grant: the catalog contradicts the authenticated audit trail: {untrailed[0]}; "
            "run `bourse verify --all` and `bourse audit verify`",
            product=product,
            version=version,
            market=market,
        )
    checked_facts(manifest, row["content_hash"], origin, spec.important_data)  # the hash first
    check_manifest(catalog, store, product, version)
    try:
        facts = confirmed_facts(cfg, store, manifest, row["content_hash"], "no grant")
    except FactsMismatch as exc:
        detail = {"stage": "grant", "error": type(exc).__name__, "message": str(exc)}
        catalog.audit_append(
            "quarantine", product=product, version=version, market=market, detail=detail
        )
        raise
    redecide = decided_under_another_policy(cfg.policy, row["availability"], market)
    if redecide and row["status"] == "published":
        # Decided under another policy (or before decisions named theirs): decide it again now,
        # do not trust it. A market never decided stays so: only the publish run offers one.
        [now] = catalog.apply_transfer_policy(
            product, version, cfg.policy, facts, [market], provider, carry_over=False
        )
        if now["status"] != _status_of(row["availability"], market):
            refresh_listing(catalog, store)  # the public files offer what the catalog does
    grant = catalog.record_grant(
        product,
        version,
        buyer,
        market,
        expires_at,
        max_days=cfg.settings.grant_max_days,
        accepted_conditions=accepted_conditions,
        purpose=purpose,
        terms_expire=terms.expires,
    )
    # No link is handed out here: a presigned URL or a path could not be revoked, nor cut by a
    # withdrawal or the grant's end. The buyer reads through the exchange with a profile.
    grant["files"] = [{k: f[k] for k in ("path", "bytes", "sha256")} for f in manifest["files"]]
    return grant


def _status_of(availability: list[dict[str, Any]], market: str) -> str | None:
    return next((str(a["status"]) for a in availability if a["market"] == market), None)


def decided_under_another_policy(
    policy: CrossBorderPolicy, availability: list[dict[str, Any]], market: str
) -> bool:
    """Whether the market's decision was made under other transfer rules than `policy`.

    `availability`: a version's markets as `Catalog.show` gives them. A decision made before
    decisions named their policy counts as another policy; a market never decided does not.
    """
    decided = {a["market"]: (a.get("detail") or {}).get("policy_sha256") for a in availability}
    return market in decided and decided[market] != policy_fingerprint(policy)


def check_manifest(catalog: Catalog, store: ObjectStore, product: str, version: str) -> None:
    """The manifest's bytes hash to the sha256 the audit trail recorded at packaging."""
    audited = catalog.audited_manifests().get((product, version))
    found = manifest_sha256(store, product, version)
    problem = manifest_problem(audited, found, f"{product}@{version}")
    if problem is not None:
        raise ManifestMismatch(
            f"{problem}; no grant. Run `bourse verify {product}@{version}`",
            product=product,
            version=version,
        )
