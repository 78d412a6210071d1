"""Give a built product's staged content a version: its files, manifest and catalog record."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from databourse.catalog.database import Catalog
from databourse.errors import ObjectChanged
from databourse.ingest.records import IngestResult, load_ingest
from databourse.ingest.staged_integrity import file_digest
from databourse.product.package import (
    FileEntry,
    build_manifest,
    manifest_sha256,
    publish_version,
    read_manifest,
)
from databourse.steps.assembling import Anonymized
from databourse.steps.resources import Resources, audit_failure, catalogued
from databourse.storage import zones
from databourse.storage.store import ObjectStore
from databourse.transfer.odrl import usage_policy

QUALITY_DROP = 0.01  # a fall of the overall score by more than this is an operator's concern

TrustedStaged = Callable[[IngestResult], dict[str, Any]]  # the staged file's sha256 and size,
# once `_ingest.json` agrees with the audit trail (tasks.staged.trusted_staged)


@dataclass(frozen=True)
class QualityDrop:
    """A version whose overall quality score fell by more than QUALITY_DROP from the previous."""

    version: str
    overall: float
    previous_version: str
    previous_overall: float


@dataclass(frozen=True)
class Packaged:
    """The version holding the content; how this run found or wrote it."""

    product: str
    version: str
    content_hash: str
    new: bool
    manifest_uri: str
    rows: int
    written: str | None = None  # the manifest's URI when this run wrote it
    quality_drop: QualityDrop | None = None  # set when this run recorded a lower quality score

    def to_json(self) -> dict[str, Any]:
        """What the package task returns."""
        keep = ("product", "version", "content_hash", "new", "manifest_uri", "rows")
        return {name: getattr(self, name) for name in keep}


def privacy_figures(privacy: dict[str, Any]) -> dict[str, Any]:
    """What the catalog keeps of the privacy evidence (figures; the manifest has all of it)."""
    keep = (
        "model",
        "k",
        "l",
        "t",
        "quasi_identifiers",
        "classes",
        "smallest_class",
        "suppressed",
        "suppression_rate",
        "satisfied",
        "risk",
        "verified",
    )
    return {k: privacy[k] for k in keep if privacy.get(k) is not None}


def package_version(
    res: Resources, product_id: str, anonymized: Anonymized, trusted_staged: TrustedStaged
) -> Packaged:
    """Give the staged content a version (or find the one it already has) and write it."""
    store, catalog = res.store, res.catalog
    catalogued(res, product_id)
    rec = catalog.reserve_version(
        product_id, anonymized.content_hash, anonymized.schema, anonymized.rows
    )
    manifest_uri = store.uri(f"{zones.product_prefix(product_id, rec.version)}/manifest.json")
    recorded = rec.manifest_sha256  # set once the pipeline recorded the bytes it wrote
    manifest, written = None, None
    if recorded is not None and recorded == manifest_sha256(store, product_id, rec.version):
        manifest = read_manifest(store, product_id, rec.version)
    if manifest is not None and recorded is not None:
        packaged = recorded
    else:
        # No manifest the pipeline recorded: build it, write it if absent, and keep one found
        # in place only if it is this build's (a manifest planted there is refused, audited).
        written, manifest, packaged = write_version(
            res, product_id, rec.version, rec.schema_diff, anonymized, trusted_staged
        )
    # Recorded whenever the catalog lacks them, not only when the manifest was just written:
    # a run killed between the manifest and these writes is completed by the next one.
    if rec.manifest_uri != manifest_uri or recorded is None:
        catalog.set_manifest(product_id, rec.version, manifest_uri, packaged)
    scores = manifest["quality"].get("scores")
    drop = None
    if scores and rec.quality_scores is None:
        catalog.set_quality_scores(product_id, rec.version, scores)
        drop = quality_drop(catalog, product_id, rec.version, scores)
    if rec.privacy is None:
        catalog.set_privacy(product_id, rec.version, privacy_figures(anonymized.privacy))
    return Packaged(
        product_id, rec.version, rec.content_hash, rec.new, manifest_uri, anonymized.rows,
        written, drop,
    )  # fmt: skip


def write_version(
    res: Resources,
    product_id: str,
    version: str,
    schema_diff: Any,
    anonymized: Anonymized,
    trusted_staged: TrustedStaged,
) -> tuple[str, dict[str, Any], str]:
    """Write the version's files and manifest; its URI, the manifest and its bytes' sha256."""
    store, product = res.store, res.config.product(product_id)
    src = product.source
    record = load_ingest(store, src.provider, src.dataset, anonymized.ingest_id)
    staged = trusted_staged(record)["sha256"]  # the lineage names what the trail holds
    reports = zones.reports_prefix(src.provider, src.dataset, record.ingest_id)
    quality = json.loads(store.get_bytes(f"{reports}/quality.json"))
    pii = json.loads(store.get_bytes(f"{reports}/pii.json"))
    files = anonymized.files
    manifest = build_manifest(
        product=product_id,
        version=version,
        content_hash=anonymized.content_hash,
        schema=anonymized.schema,
        rows=anonymized.rows,
        files=files,
        lineage={
            "provider": src.provider,
            "dataset": src.dataset,
            "origin": res.config.providers[src.provider].jurisdiction,
            "ingests": [
                {
                    "ingest_id": record.ingest_id,
                    "sha256": record.sha256,
                    "raw": store.uri(record.raw_key),
                    "staged_sha256": anonymized.staged_sha256 or staged,
                }
            ],
            "product_config_sha256": product.fingerprint(),
        },
        quality={
            "success": quality["success"],
            "summary": quality.get("summary"),
            "scores": quality.get("scores"),
            "report": store.uri(f"{reports}/quality.json"),
            "html": store.uri(f"{reports}/quality.html"),
        },
        privacy=anonymized.privacy,
        personal_data={
            **anonymized.personal_data,
            "pii_report": store.uri(f"{reports}/pii.json"),
            "declared_not_found": pii.get("declared_not_found", []),
        },
        usage_terms=product.terms.model_dump(mode="json"),
        usage_policy=usage_policy(
            product_id, version, anonymized.content_hash, product.terms, list(product.markets)
        ),
        markets=list(product.markets),
        schema_diff=schema_diff,
    )
    with tempfile.TemporaryDirectory(prefix="databourse-pub-") as tmp:
        for f in files:
            store.download(f"{anonymized.staged_prefix}/{f.path}", Path(tmp) / f.path)
        try:
            for f in files:  # the private copies are what is published: checked, race-free
                check_built(store, f"{anonymized.staged_prefix}/{f.path}", Path(tmp), f)
            uri, sha256 = publish_version(store, product_id, version, Path(tmp), files, manifest)
        except ObjectChanged as exc:  # a manifest this run did not write is in place: audited
            audit_failure(res.catalog, "quarantine", exc, product=product_id, version=version)
            raise
    return uri, manifest, sha256


def check_built(store: ObjectStore, key: str, folder: Path, entry: FileEntry) -> None:
    """ObjectChanged naming the staged file when its copy is not the file the build hashed."""
    found = file_digest(folder / entry.path)[0]
    if found != entry.sha256:
        raise ObjectChanged(
            f"{store.uri(key)}: staged product file changed after the build: sha256 "
            f"{found[:16]}... differs from {entry.sha256[:16]}... the build wrote; not"
            " published: investigate who writes the store's staging zone, then build it again",
            key=store.uri(key),
            expected=entry.sha256,
            found=found,
        )


def quality_drop(
    catalog: Catalog, product_id: str, version: str, now: dict[str, Any]
) -> QualityDrop | None:
    """This version's fall in overall quality score from the previous scored version, when it
    is more than QUALITY_DROP; None otherwise."""
    versions = catalog.show(product_id)["versions"]  # newest first
    older = [v for v in versions if v["version"] != version and v.get("quality_scores")]
    before = older[0]["quality_scores"].get("overall") if older else None
    after = now.get("overall")
    if before is None or after is None or after >= before - QUALITY_DROP:
        return None
    return QualityDrop(version, after, older[0]["version"], before)
