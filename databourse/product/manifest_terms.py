"""A manifest's terms, ODRL policy, markets and lineage, re-derived from what they were built from.

The content hash leaves out a version's usage terms, its ODRL policy, its markets and its lineage,
so a manifest whose files, schema, config and facts are right can still offer the data under
other terms. `terms_problems` derives them again from the product's config (when the manifest's
config fingerprint is that config's: a version built under an earlier config cannot be compared
with today's), and checks each ingest the lineage names against the audited ingest events
(`lineage_problems`). Problems name fields, versions and ingest ids, never a cell value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from databourse.config import ProductSpec
from databourse.transfer.odrl import usage_policy

__all__ = ["lineage_problems", "terms_problems"]


def terms_problems(
    product: ProductSpec,
    manifest: dict[str, Any],
    ingest_events: Iterable[dict[str, Any]] | None = None,
) -> list[str]:
    """Where the manifest's usage terms, ODRL policy, markets and source differ from `product`'s
    config, and (given the audited `ingest_events`) its lineage from the trail; nothing when the
    manifest was built under another config (its fingerprint)."""
    lineage = manifest.get("lineage") or {}
    if lineage.get("product_config_sha256") != product.fingerprint():
        return []
    name, version = manifest.get("product"), manifest.get("version")
    markets = list(product.markets)
    expected = {
        "usage_terms": product.terms.model_dump(mode="json"),
        "usage_policy": usage_policy(
            str(name), str(version), str(manifest.get("content_hash")), product.terms, markets
        ),
        "markets": markets,
    }
    problems = [
        f"{field} of {name}@{version} differs from what its product's config makes it"
        for field, value in expected.items()
        if manifest.get(field) != value
    ]
    source = (product.source.provider, product.source.dataset)
    if (lineage.get("provider"), lineage.get("dataset")) != source:
        problems.append(f"lineage of {name}@{version} names another source than its config's")
    if ingest_events is not None:
        problems += lineage_problems(manifest, ingest_events)
    return problems


def lineage_problems(
    manifest: dict[str, Any], ingest_events: Iterable[dict[str, Any]]
) -> list[str]:
    """Each ingest the manifest's lineage names that no audited ingest event of its source with
    the same sha256 records."""
    lineage = manifest.get("lineage") or {}
    source = (lineage.get("provider"), lineage.get("dataset"))
    audited = {
        (d.get("provider"), d.get("dataset"), d.get("ingest_id")): d.get("sha256")
        for d in (e.get("detail") or {} for e in ingest_events)
    }
    name = f"{manifest.get('product')}@{manifest.get('version')}"
    problems = []
    for n, ingest in enumerate(lineage.get("ingests") or []):
        found = audited.get((*source, ingest.get("ingest_id")), "missing")
        if found != ingest.get("sha256"):
            problems.append(
                f"lineage.ingests[{n}] of {name} names an ingest the audit trail does not "
                "record for its source with that sha256"
            )
    return problems
