"""Publish a version and decide its markets through the transfer gate, or one market again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from databourse.errors import ManifestMismatch, VersionNotFound
from databourse.product.facts import confirmed_facts
from databourse.product.package import read_manifest
from databourse.steps.resources import Resources
from databourse.transfer.policy import TransferFacts


def version_facts(res: Resources, product_id: str, version: str) -> tuple[TransferFacts, str]:
    """The facts the rules need, as the product's config and the version's files make them (the
    manifest must hash to the catalog's content hash and agree), and its exporter (the provider).
    """
    manifest = read_manifest(res.store, product_id, version)
    if manifest is None:
        raise VersionNotFound(
            f"{product_id}@{version} has no manifest: it was never packaged",
            product=product_id,
            version=version,
        )
    facts = confirmed_facts(  # ManifestMismatch, FactsMismatch: nothing is decided on it
        res.config,
        res.store,
        manifest,
        res.catalog.get_version(product_id, version).content_hash,
        "nothing is decided on it",
    )
    return facts, res.config.product(product_id).source.provider


def decide_transfers(res: Resources, product_id: str, version: str) -> list[dict[str, Any]]:
    """Publish the version and run the transfer gate on every market of the product: the
    decisions as the catalog stored them. A manifest that does not hash to the catalog's content
    hash is quarantined (audited) and the version is offered nowhere (ManifestMismatch)."""
    try:
        facts, exporter = version_facts(res, product_id, version)
    except ManifestMismatch as exc:  # the version is offered nowhere; the refusal is audited
        detail = {"stage": "gate", "error": type(exc).__name__, "message": str(exc)}
        res.catalog.audit_append("quarantine", product=product_id, version=version, detail=detail)
        raise
    res.catalog.publish_version(product_id, version)
    return res.catalog.apply_transfer_policy(
        product_id,
        version,
        res.config.policy,
        facts,
        list(res.config.product(product_id).markets),
        exporter,
        carry_over_max_age_days=res.config.settings.carry_over_max_age_days,
    )


@dataclass(frozen=True)
class MarketDecision:
    """One market of a published version decided again, or why nothing was asked."""

    decision: dict[str, Any] | None
    skipped: str | None = None  # why nothing was decided (a sentence for the log)


def decide_market(res: Resources, product_id: str, version: str, market: str) -> MarketDecision:
    """Decide one market of a published version again, as `decide_transfers` decides each
    (nothing when it is not a market of the product, or the version is not published)."""
    if market not in res.config.product(product_id).markets:
        return MarketDecision(None, f"{market} is not a market of {product_id}: nothing asked")
    if res.catalog.get_version(product_id, version).status != "published":
        return MarketDecision(None, f"{product_id}@{version} is not published: nothing asked")
    facts, exporter = version_facts(res, product_id, version)
    [decision] = res.catalog.apply_transfer_policy(
        product_id,
        version,
        res.config.policy,
        facts,
        [market],
        exporter,
        carry_over_max_age_days=res.config.settings.carry_over_max_age_days,
    )
    return MarketDecision(decision)
