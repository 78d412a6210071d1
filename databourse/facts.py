"""The transfer facts of a version: read back only through its content hash, re-derived from files.

A version's manifest states the facts the cross-border gate decides on (origin, personal data
remaining by category, sensitive categories, distinct individuals, declared important data), and
since manifest version 2 its content hash covers them. `checked_facts` is the one way the gate,
the grant and `transfer explain` read them: the manifest must hash to the catalog's content hash
(the hash approvals are bound to), else ManifestMismatch. `rederived_problems` is what `verify`
adds: the same facts recounted from the product files themselves.
"""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from databourse.config import Config
from databourse.errors import DataBourseError, ManifestMismatch
from databourse.package import manifest_hash, transfer_facts
from databourse.pii import scan_table
from databourse.transfer import TransferFacts, facts_for

log = logging.getLogger(__name__)


def checked_facts(
    manifest: dict[str, Any], catalog_hash: str, origin: str, important_data: bool
) -> TransferFacts:
    """The manifest's transfer facts, refused (ManifestMismatch) unless its hash is the catalog's.

    `origin` and `important_data` are the provider's config today: a version built under another
    jurisdiction is refused (rebuild it); a dataset declared important data since counts as such.
    """
    product, version = manifest.get("product"), manifest.get("version")
    where = {"product": product, "version": version}
    recomputed = manifest_hash(manifest)
    if recomputed != catalog_hash or manifest.get("content_hash") != catalog_hash:
        raise ManifestMismatch(
            f"the manifest of {product}@{version} hashes to {recomputed[:16]}, the catalog holds "
            f"{catalog_hash[:16]}: manifest.json was edited after packaging (its files, schema "
            "or transfer facts); nothing is decided on it. Run `bourse verify "
            f"{product}@{version}` and restore or rebuild the version",
            **where,
            content_hash=catalog_hash,
            recomputed=recomputed,
        )
    stated = manifest["lineage"]["origin"]
    if stated != origin:
        raise ManifestMismatch(
            f"{product}@{version} was built for origin {stated}; its provider's jurisdiction is "
            f"{origin} now: build a new version",
            **where,
        )
    personal = manifest["personal_data"]
    declared = bool(personal.get("important_data")) or important_data
    return facts_for(stated, personal["remaining"], personal["individuals"], declared)


def rederived_problems(
    table: pa.Table,
    manifest: dict[str, Any],
    origin: str,
    important_data: bool,
    threshold: float = 0.8,
) -> list[str]:
    """Where the manifest's transfer facts differ from the files and the provider's config."""
    personal = manifest.get("personal_data") or {}
    stated = dict(personal.get("remaining") or {})
    problems = []
    tagged = {c["name"]: c["personal_data"] for c in manifest["schema"] if "personal_data" in c}
    if tagged != stated:
        problems.append(
            f"personal_data.remaining names {sorted(stated)}, the schema marks {sorted(tagged)} "
            "as personal data"
        )
    for finding in scan_table(table, threshold=threshold):
        if finding.category and finding.column not in stated | tagged:
            problems.append(
                f"re-scan finds {finding.category} in column {finding.column}, which the "
                "manifest does not count as personal data remaining"
            )
    counted = individuals(table, stated | tagged)
    if counted != personal.get("individuals"):
        problems.append(
            f"the files hold {counted} distinct individuals, personal_data.individuals says "
            f"{personal.get('individuals')}"
        )
    expected = transfer_facts(origin, stated | tagged, counted, important_data)
    lineage = manifest.get("lineage") or {}
    if lineage.get("origin") != origin:
        problems.append(f"lineage.origin is {lineage.get('origin')}, the provider's is {origin}")
    if manifest.get("manifest_version", 1) >= 2:
        if personal.get("sensitive_categories") != expected["sensitive_categories"]:
            problems.append(
                f"personal_data.sensitive_categories is {personal.get('sensitive_categories')}, "
                f"the categories remaining make it {expected['sensitive_categories']}"
            )
        if important_data and not personal.get("important_data"):
            problems.append("the dataset is declared important data, the manifest says it is not")
    return problems


def configured_problems(cfg: Config, table: pa.Table, manifest: dict[str, Any]) -> list[str] | None:
    """`rederived_problems` with the provider's config; None when the product is not configured."""
    try:
        src = cfg.product(manifest["product"]).source
    except DataBourseError:
        return None
    return rederived_problems(
        table,
        manifest,
        cfg.providers[src.provider].jurisdiction,
        cfg.dataset(src.provider, src.dataset).important_data,
        cfg.settings.pii_threshold,
    )


def individuals(table: pa.Table, remaining: dict[str, str]) -> int:
    """Distinct individuals as the build counts them: the most distinct values of any personal
    column (nulls not counted); 0 when no personal data remains."""
    columns = [c for c in remaining if c in table.column_names]
    counts = [pc.count_distinct(table[c], mode="only_valid").as_py() for c in columns]
    return max(counts, default=0)
