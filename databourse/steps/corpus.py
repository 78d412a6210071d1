"""Build a corpus product's version from an ingest's documents and give it a version.

The same version, catalog record, manifest and gate as a table product: the documents of the
staged Parquet (its `text` and metadata columns) go through the product's `corpus:` rules
(`corpus.build.build_version`: opt-out, licence, language, quality, de-duplication against this
product's earlier versions, redaction, the leftover re-scan) into Parquet shards, which are the
version's files. The content hash covers them, the config and the transfer facts: what the
re-scan still finds in the text (`corpus_facts.remaining_of`). A version over its leftover
limit is refused before it has a version (PersonalDataFound, audited). Beside the version, in
its reports: the Croissant card (`croissant.json`) and the de-duplication index the next
version is built against (`dedup_index.npz`), neither listed to buyers.

An ingest already built into a version is that version (a second build would find every
document a duplicate of it); a build that keeps no document makes no version.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from databourse.config import ProductSpec
from databourse.config.corpus import CorpusRules
from databourse.corpus.build import INDEX_NAME, OUTPUT, CorpusStats, build_version, leftover_gate
from databourse.corpus.documents import read_documents
from databourse.corpus.opt_out import with_requests
from databourse.corpus.pseudonyms import TextPseudonyms
from databourse.delivery.grants import check_manifest
from databourse.errors import ObjectChanged, PersonalDataFound
from databourse.ingest.records import IngestResult, load_ingest
from databourse.ingest.staged_integrity import file_digest
from databourse.product.corpus_facts import TEXT, corpus_facts
from databourse.product.package import (
    FileEntry,
    build_manifest,
    content_hash,
    publish_version,
    read_manifest,
    schema_of,
)
from databourse.standards.corpus_card import CARD_NAME, write_card
from databourse.steps.resources import Resources, audit_failure, catalogued
from databourse.steps.validating import IngestedCopy
from databourse.storage import zones
from databourse.storage.store import ObjectStore
from databourse.transfer.odrl import usage_policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorpusVersion:
    """The version holding an ingest's documents (None when the build kept none)."""

    product: str
    version: str | None
    content_hash: str | None
    new: bool
    manifest_uri: str | None
    rows: int
    stats: dict[str, Any]  # counts only (CorpusStats.to_dict), never a value

    def to_json(self) -> dict[str, Any]:
        """What the build task returns."""
        keep = ("product", "version", "content_hash", "new", "manifest_uri", "rows")
        return {name: getattr(self, name) for name in keep}


def build_corpus(
    res: Resources,
    product_id: str,
    ingest_id: str,
    copy: IngestedCopy,
    pseudonyms: TextPseudonyms | None = None,
) -> CorpusVersion:
    """Build the ingest's documents into a version of the corpus product (or find it);
    `pseudonyms` under the product's key where its rules say `redaction: pseudonym`."""
    store = res.store
    product = catalogued(res, product_id)
    record = load_ingest(store, product.source.provider, product.source.dataset, ingest_id)
    published = manifests(res, product_id)
    built = version_of_ingest(res.store, published, ingest_id)
    if built is not None:
        return built
    rules, keys = rules_now(res, product)
    with tempfile.TemporaryDirectory(prefix="databourse-corpus-") as tmp:
        earlier = earlier_index(res, published, Path(tmp) / "earlier")
        out = Path(tmp) / "version"
        with copy(record) as path:
            documents = read_documents(path, "text")
            stats = build_version(documents, rules, out, earlier, keys, pseudonyms)
        return version_of(res, Built(product, record, out, stats, rules, pseudonyms))


def rules_now(res: Resources, product: ProductSpec) -> tuple[CorpusRules, dict[str, bytes]]:
    """The product's rules with the opt-out requests recorded so far, and the keys (key id ->
    material) their author digests were made under."""
    events, keys = res.catalog.opt_out_requests(product.id)
    configured = rules_of(product)
    opt_out = with_requests(configured.opt_out, events)
    return configured.model_copy(update={"opt_out": opt_out}), dict(keys)


@dataclass(frozen=True)
class Built:
    """A build's output folder (shards, index, stats) and what made it."""

    product: ProductSpec
    record: IngestResult
    out: Path
    stats: CorpusStats
    rules: CorpusRules
    pseudonyms: TextPseudonyms | None


def version_of(res: Resources, built: Built) -> CorpusVersion:
    """The version of a build's output folder: refused over its leftover limit (audited), none
    when it kept no document, else packaged and given a version."""
    product, stats = built.product, built.stats
    try:
        leftover_gate(stats)
    except PersonalDataFound as exc:
        where = {"product": product.id, "ingest_id": built.record.ingest_id}
        audit_failure(res.catalog, "quarantine", exc, **where)
        raise
    if stats.kept == 0:
        return CorpusVersion(product.id, None, None, False, None, 0, stats.to_dict())
    return _package(res, built)


def _package(res: Resources, built: Built) -> CorpusVersion:
    product, record, out, stats = built.product, built.record, built.out, built.stats
    rules, pseudonyms = built.rules, built.pseudonyms
    store, catalog, src = res.store, res.catalog, product.source
    files = [_entry(out, name) for name in stats.shards]
    schema = schema_of(OUTPUT.empty_table())
    origin = res.config.providers[src.provider].jurisdiction
    important = res.config.dataset(src.provider, src.dataset).important_data
    personal, facts = corpus_facts(stats.leftover, stats.pseudonyms, origin, important)
    if pseudonyms is not None:
        personal["pseudonym_keys"] = {TEXT: pseudonyms.described()}
    chash = content_hash(files, schema, product.fingerprint(), facts)
    rec = catalog.reserve_version(product.id, chash, schema, stats.kept)
    summary = stats.to_dict()
    manifest = build_manifest(
        product=product.id,
        version=rec.version,
        content_hash=chash,
        schema=schema,
        rows=stats.kept,
        files=files,
        lineage={
            "provider": src.provider,
            "dataset": src.dataset,
            "origin": origin,
            "ingests": [
                {
                    "ingest_id": record.ingest_id,
                    "sha256": record.sha256,
                    "raw": store.uri(record.raw_key),
                }
            ],
            "product_config_sha256": product.fingerprint(),
        },
        quality=_quality(res, record, summary),
        privacy={"model": "corpus", "redaction": rules.redaction},
        personal_data=personal,
        usage_terms=product.terms.model_dump(mode="json"),
        usage_policy=usage_policy(
            product.id, rec.version, chash, product.terms, list(product.markets)
        ),
        markets=list(product.markets),
        schema_diff=rec.schema_diff,
        corpus={**_corpus_section(summary), "dedup_index_sha256": _entry(out, INDEX_NAME).sha256},
    )
    reports = zones.product_reports_prefix(product.id, rec.version)
    provider = res.config.providers[src.provider].name
    write_card(out, stats, rules, product.name, rec.version, provider)
    store.put_file(f"{reports}/{INDEX_NAME}", out / INDEX_NAME)  # before the version is seen
    store.put_file(f"{reports}/{CARD_NAME}", out / CARD_NAME)
    uri, sha256 = publish_version(store, product.id, rec.version, out, files, manifest)
    catalog.set_manifest(product.id, rec.version, uri, sha256)
    return CorpusVersion(product.id, rec.version, chash, rec.new, uri, stats.kept, summary)


def _quality(res: Resources, record: IngestResult, summary: dict[str, Any]) -> dict[str, Any]:
    """The ingest's quality report, and what the corpus rules removed."""
    reports = zones.reports_prefix(record.provider, record.dataset, record.ingest_id)
    removed = dict(summary["removed"])
    return {
        "success": True,
        "report": res.store.uri(f"{reports}/quality.json"),
        "html": res.store.uri(f"{reports}/quality.html"),
        "summary": {"documents_in": summary["documents_in"], "kept": summary["kept"], **removed},
    }


def _corpus_section(summary: dict[str, Any]) -> dict[str, Any]:
    """The manifest's measurements of the version (counts and rates, no value)."""
    keep = (
        "documents_in", "kept", "removed", "languages", "languages_identified",
        "duplicate_clusters", "redacted", "leftover", "pseudonyms", "leftover_rate",
        "leftover_per_million_characters", "leftover_limit", "bytes_in", "bytes_out",
        "characters_out",
    )  # fmt: skip
    return {name: summary[name] for name in keep}


def _entry(folder: Path, name: str) -> FileEntry:
    sha256, size = file_digest(folder / name)
    return FileEntry(name, size, sha256)


def rules_of(product: ProductSpec) -> CorpusRules:
    """A corpus product's rules (a ValueError for any other product)."""
    if product.corpus is None:
        raise ValueError(f"{product.id} is no corpus product")
    return product.corpus


def manifests(res: Resources, product_id: str) -> list[dict[str, Any]]:
    """The product's visible versions' manifests, newest first."""
    versions = res.catalog.show(product_id)["versions"]
    found = (read_manifest(res.store, product_id, v["version"]) for v in versions)
    return [m for m in found if m is not None]


def version_of_ingest(
    store: ObjectStore, published: list[dict[str, Any]], ingest_id: str
) -> CorpusVersion | None:
    """The version (of the product's `published` manifests) an ingest was built into, if any."""
    for manifest in published:
        if any(i["ingest_id"] == ingest_id for i in manifest["lineage"]["ingests"]):
            product, version = manifest["product"], manifest["version"]
            uri = store.uri(f"{zones.product_prefix(product, version)}/manifest.json")
            return CorpusVersion(
                product, version, manifest["content_hash"], False, uri, manifest["row_count"],
                manifest.get("corpus", {}),
            )  # fmt: skip
    return None


def earlier_index(res: Resources, published: list[dict[str, Any]], folder: Path) -> Path | None:
    """The newest version's de-duplication index (of the product's `published` manifests,
    newest first), copied into `folder` and checked; None for a first version.

    Its manifest must hash to the sha256 the audit trail recorded (ManifestMismatch), and the
    index to the sha256 that manifest records (`corpus.dedup_index_sha256`: ObjectChanged,
    audited). A store writer who swapped the index would make new documents look seen (removed
    from the version) or old ones new. A manifest written before the index was sealed records
    none: its index is taken as it is (a warning)."""
    for manifest in published:
        product, version = manifest["product"], manifest["version"]
        key = f"{zones.product_reports_prefix(product, version)}/{INDEX_NAME}"
        if not res.store.exists(key):
            continue
        check_manifest(res.catalog, res.store, product, version)
        folder.mkdir(parents=True, exist_ok=True)
        res.store.download(key, folder / INDEX_NAME)
        sealed = manifest.get("corpus", {}).get("dedup_index_sha256")
        found = file_digest(folder / INDEX_NAME)[0]
        if sealed is None:
            log.warning(
                "%s@%s: its dedup index is not sealed (an older manifest)", product, version
            )
        elif found != sealed:
            uri = res.store.uri(key)
            error = ObjectChanged(
                f"{uri}: the dedup index differs from the one {product}@{version}'s manifest"
                f" records (sha256 {found[:16]}..., not {sealed[:16]}...); the build stops:"
                " investigate who writes the store's reports zone",
                key=uri, expected=sealed, found=found,
            )  # fmt: skip
            audit_failure(res.catalog, "quarantine", error, product=product, stage="dedup-index")
            raise error
        return folder
    return None
