"""The transfer facts of a version: bound to its content hash, derived from its config and files.

A version's manifest states the facts the cross-border gate decides on (origin, personal data
remaining by category, sensitive categories, distinct individuals, declared important data), and
since manifest version 2 its content hash covers them. `checked_facts` refuses a manifest that
does not hash to the catalog's content hash (ManifestMismatch). A hash only proves that nothing
changed after hashing, so no fact is taken from what the manifest carries: `recount` derives them
from the product's config (which output columns hold personal data, the privacy model's
quasi-identifiers, k, l, t) and from the version's files (the columns they hold, distinct
individuals, class sizes), and `disagreements` names every place where the manifest (its schema
tags, personal_data, privacy) says otherwise. The gate and the grant decide on `confirmed_facts`
(FactsMismatch on any disagreement); `verify` reports `rederived_problems`, which adds a re-scan.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from databourse.config import Config, PrivacyModel, ProductSpec
from databourse.errors import DataBourseError, FactsMismatch, ManifestMismatch
from databourse.pii.detect import scan_table
from databourse.pii.dirty_columns import DIRTY_THRESHOLD
from databourse.privacy.k_anonymity import KAnonymityReport, verify
from databourse.product.corpus_facts import TEXT, corpus_problems, remaining_of, rescan
from databourse.product.manifest_terms import terms_problems
from databourse.product.package import fetch_files, manifest_hash, transfer_facts
from databourse.product.productize import remaining_columns
from databourse.storage.store import ObjectStore
from databourse.transfer.policy import TransferFacts, facts_for

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


@dataclass(frozen=True)
class Recount:
    """The facts of a version as its product's config and its files make them."""

    remaining: dict[str, str]  # columns of the files holding personal data -> category
    individuals: int
    facts: dict[str, Any]  # as the content hash covers them (package.transfer_facts)
    privacy: KAnonymityReport | None  # the config's model on the files; None: nothing to check


def files_remaining(
    product: ProductSpec, declared: dict[str, str], columns: Sequence[str]
) -> dict[str, str]:
    """The files' columns that hold personal data, by the config's rules and declared categories.

    The config's remaining columns that the files hold, and any column named after a declared
    personal source column that the config does not output (dropped or renamed by the rules, but
    in the files all the same).
    """
    configured = remaining_columns(product, declared)
    outputs = set(product.output_columns)
    found = {c: configured[c] for c in columns if c in configured}
    found |= {c: declared[c] for c in columns if c in declared and c not in outputs}
    return dict(sorted(found.items()))


def files_model(product: ProductSpec, columns: Sequence[str]) -> PrivacyModel | None:
    """The config's privacy model over the quasi-identifiers and sensitive attributes the files
    hold (a column the files lack cannot single anyone out); None for an aggregate, a product
    without a model, or files holding none of its quasi-identifiers."""
    model = product.privacy
    if model is None or product.type == "aggregate":
        return None
    qis = [q for q in model.quasi_identifiers if q in columns]
    sensitive = [s for s in model.sensitive_attributes if s in columns]
    if not qis:
        return None
    update: dict[str, Any] = {"quasi_identifiers": qis, "sensitive_attributes": sensitive}
    if not sensitive:
        update.update(l=None, t=None)
    return model.model_copy(update=update)


def recount(
    folder: Path,
    product: ProductSpec,
    declared: dict[str, str],
    origin: str,
    important_data: bool,
) -> Recount:
    """The facts from the config (`product`, the source's `declared` categories, the provider's
    `origin` and `important_data`) and the version's files in `folder` (hive folders included);
    a corpus's from what the re-scan of its text finds (corpus_facts)."""
    if product.type == "corpus":
        remaining, individuals = remaining_of(*rescan(folder))
        facts = transfer_facts(origin, remaining, individuals, important_data)
        return Recount(remaining, facts["individuals"], facts, None)
    data = ds.dataset(str(folder), format="parquet", partitioning="hive")
    columns = data.schema.names
    remaining = files_remaining(product, declared, columns)
    counts = [
        pc.count_distinct(data.to_table(columns=[c]).column(c), mode="only_valid").as_py()
        for c in remaining
    ]
    individuals = max(counts, default=0)  # as the build counts them: the most of any column
    model = files_model(product, columns)
    return Recount(
        remaining=remaining,
        individuals=individuals,
        facts=transfer_facts(origin, remaining, individuals, important_data),
        privacy=verify(folder, model) if model is not None else None,
    )


def disagreements(manifest: dict[str, Any], product: ProductSpec, counted: Recount) -> list[str]:
    """Where the manifest's tags, personal data and privacy figures differ from `counted`."""
    personal = manifest.get("personal_data") or {}
    stated = dict(personal.get("remaining") or {})
    tagged = {c["name"]: c["personal_data"] for c in manifest["schema"] if "personal_data" in c}
    expected, facts = counted.remaining, counted.facts
    if product.type == "corpus":  # no column is tagged: what is left is counted per category
        tagged = expected
    problems = []
    if tagged != stated:
        problems.append(
            f"personal_data.remaining names {sorted(stated)}, the schema marks {sorted(tagged)} "
            "as personal data"
        )
    if tagged != expected:
        problems.append(
            f"the schema marks {tagged or 'no column'} as personal data; the product's config "
            f"makes it {expected or 'no column'} of the files' columns"
        )
    if stated != expected:
        problems.append(
            f"personal_data.remaining is {stated or 'empty'}; the product's config makes it "
            f"{expected or 'empty'}"
        )
    if counted.individuals != personal.get("individuals"):
        problems.append(
            f"the files hold {counted.individuals} distinct individuals, "
            f"personal_data.individuals says {personal.get('individuals')}"
        )
    lineage = manifest.get("lineage") or {}
    if lineage.get("origin") != facts["origin"]:
        problems.append(
            f"lineage.origin is {lineage.get('origin')}, the provider's is {facts['origin']}"
        )
    if manifest.get("manifest_version", 1) >= 2:
        if personal.get("sensitive_categories") != facts["sensitive_categories"]:
            problems.append(
                f"personal_data.sensitive_categories is {personal.get('sensitive_categories')}, "
                f"the categories remaining make it {facts['sensitive_categories']}"
            )
        if facts["important_data"] and not personal.get("important_data"):
            problems.append("the dataset is declared important data, the manifest says it is not")
    return problems + _privacy_disagreements(manifest, product, counted.privacy)


_MODEL_FIELDS = ("k", "quasi_identifiers", "sensitive_attributes", "l", "t", "max_suppression")


def _privacy_disagreements(
    manifest: dict[str, Any], product: ProductSpec, report: KAnonymityReport | None
) -> list[str]:
    """The manifest's privacy figures against the config's model, and the model on the files."""
    model = product.privacy if product.type != "aggregate" else None
    if model is None:
        return []
    stated = manifest.get("privacy") or {}
    configured = model.model_dump(mode="json")
    problems = [
        f"privacy.{name} is {stated[name]}, the product's config says {configured[name]}"
        for name in _MODEL_FIELDS
        if name in stated and stated[name] != configured[name]
    ]
    if report is not None and not report.satisfied:
        figures = f"smallest class {report.smallest_class}"
        if report.l is not None:
            figures += f", lowest l {report.lowest_l}"
        if report.t is not None:
            figures += f", highest t {report.highest_t}"
        problems.append(
            f"privacy model not met by the files: k={report.k} over {report.quasi_identifiers} "
            f"(the product's config), {figures}"
        )
    return problems


def rederived_problems(
    folder: Path,
    manifest: dict[str, Any],
    product: ProductSpec,
    declared: dict[str, str],
    origin: str,
    important_data: bool,
    threshold: float = 0.8,
    sample_rows: int = 2000,
    dirty_threshold: float = DIRTY_THRESHOLD,
) -> list[str]:
    """Where the manifest differs from the config and the files, and personal data the re-scan
    finds in a column the config does not count as personal data remaining (the scan's
    settings: pii_threshold, pii_sample_rows, pii_dirty_threshold)."""
    counted = recount(folder, product, declared, origin, important_data)
    problems = disagreements(manifest, product, counted)
    if product.type == "corpus":  # its text was re-scanned by `recount`; its metadata here
        data = ds.dataset(str(folder), format="parquet")
        table = data.to_table(columns=[c for c in data.schema.names if c != TEXT])
        problems += corpus_problems(manifest, table)
    else:
        table = pq.read_table(folder)
    scanned = scan_table(
        table,
        threshold=threshold,
        sample_rows=sample_rows,
        dirty_threshold=dirty_threshold,
    )
    for finding in scanned:
        if finding.category and finding.column not in counted.remaining:
            problems.append(
                f"re-scan finds {finding.category} in column {finding.column}, which the "
                "product's config does not count as personal data remaining"
            )
    return problems


def configured_problems(cfg: Config, folder: Path, manifest: dict[str, Any]) -> list[str] | None:
    """`rederived_problems` under `cfg`; None when the product is not configured."""
    try:
        product = cfg.product(manifest["product"])
    except DataBourseError:
        return None
    src = product.source
    spec = cfg.dataset(src.provider, src.dataset)
    return rederived_problems(
        folder,
        manifest,
        product,
        spec.declared_categories,
        cfg.providers[src.provider].jurisdiction,
        spec.important_data,
        cfg.settings.pii_threshold,
        cfg.settings.pii_sample_rows,
        cfg.settings.pii_dirty_threshold,
    )


def configured_terms_problems(
    cfg: Config, manifest: dict[str, Any], ingest_events: list[dict[str, Any]] | None = None
) -> list[str]:
    """`manifest_terms.terms_problems` under `cfg`; nothing when the product is not configured."""
    try:
        product = cfg.product(manifest["product"])
    except DataBourseError:
        return []
    return terms_problems(product, manifest, ingest_events)


def confirmed_facts(
    cfg: Config,
    store: ObjectStore,
    manifest: dict[str, Any],
    catalog_hash: str,
    consequence: str,
) -> TransferFacts:
    """The facts a gate or a grant decides on, as the product's config and files make them.

    The manifest must hash to `catalog_hash` (ManifestMismatch), every file must have its
    manifest's sha256 as it is copied for reading (ManifestMismatch), and the manifest must
    agree with the config and the files, its usage terms, ODRL policy and markets included
    (manifest_terms; FactsMismatch listing every disagreement);
    `consequence` ends each message ("no grant").
    """
    name = f"{manifest.get('product')}@{manifest.get('version')}"
    product = cfg.product(manifest["product"])
    src = product.source
    origin = cfg.providers[src.provider].jurisdiction
    spec = cfg.dataset(src.provider, src.dataset)
    stated = checked_facts(manifest, catalog_hash, origin, spec.important_data)
    with tempfile.TemporaryDirectory(prefix="databourse-facts-") as tmp:
        fetch_files(store, manifest, Path(tmp), consequence)
        counted = recount(Path(tmp), product, spec.declared_categories, origin, spec.important_data)
    problems = disagreements(manifest, product, counted) + terms_problems(product, manifest)
    if problems:
        raise FactsMismatch(
            f"{name}: the manifest disagrees with the product's config and files: "
            f"{'; '.join(problems)}; {consequence}. Run `bourse verify {name}`",
            product=manifest.get("product"),
            version=manifest.get("version"),
            problems=problems,
        )
    return facts_for(origin, counted.remaining, counted.individuals, stated.important_data)
