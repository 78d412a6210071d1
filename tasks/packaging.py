"""Tasks: give a built product's staged content a version, write its files and manifest."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.events import emit_event

from databourse.errors import ObjectChanged
from databourse.ingest.records import load_ingest
from databourse.ingest.staged_integrity import file_digest
from databourse.product.package import (
    FileEntry,
    build_manifest,
    manifest_sha256,
    publish_version,
    read_manifest,
)
from databourse.storage import zones
from databourse.storage.store import ObjectStore
from databourse.transfer.odrl import usage_policy
from tasks import reporting, resources
from tasks.retrying import RETRY_TRANSIENT
from tasks.staged import trusted_staged


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


@task(
    name="package-version",
    task_run_name="package {product_id}",
    **RETRY_TRANSIENT,
)
def package_version(product_id: str, anonymized: dict[str, Any]) -> dict[str, Any]:
    """Give the staged content a version (or find the one it already has) and write it."""
    logger = get_run_logger()
    cfg = resources.config()
    store = resources.store()
    catalog = resources.catalog()
    product = cfg.product(product_id)
    src = product.source
    catalog.ensure_product(product_id, product.name, src.provider, src.dataset)
    rec = catalog.reserve_version(
        product_id, anonymized["content_hash"], anonymized["schema"], anonymized["rows"]
    )
    manifest_key = f"{zones.product_prefix(product_id, rec.version)}/manifest.json"
    recorded = rec.manifest_sha256  # set once the pipeline recorded the bytes it wrote
    manifest = None
    if recorded is not None and recorded == manifest_sha256(store, product_id, rec.version):
        manifest = read_manifest(store, product_id, rec.version)
    if manifest is not None and recorded is not None:
        logger.info("%s@%s already holds this content: nothing new", product_id, rec.version)
        packaged = recorded
    else:
        # No manifest the pipeline recorded: build it, write it if absent, and keep one found
        # in place only if it is this build's (a manifest planted there is refused, audited).
        manifest_uri, manifest, packaged = _write_version(
            store, product_id, rec.version, rec.schema_diff, anonymized
        )
        logger.info("%s@%s packaged (%s)", product_id, rec.version, manifest_uri)
    # Recorded whenever the catalog lacks them, not only when the manifest was just written:
    # a run killed between the manifest and these writes is completed by the next one.
    if rec.manifest_uri != store.uri(manifest_key) or recorded is None:
        catalog.set_manifest(product_id, rec.version, store.uri(manifest_key), packaged)
    scores = manifest["quality"].get("scores")
    if scores and rec.quality_scores is None:
        catalog.set_quality_scores(product_id, rec.version, scores)
        _signal_quality_drop(product_id, rec.version, scores)
    if rec.privacy is None:
        catalog.set_privacy(product_id, rec.version, privacy_figures(anonymized["privacy"]))
    reporting.link(
        f"product-{product_id}", store.uri(manifest_key), f"Manifest of {product_id}@{rec.version}"
    )
    return {
        "product": product_id,
        "version": rec.version,
        "content_hash": rec.content_hash,
        "new": rec.new,
        "manifest_uri": store.uri(manifest_key),
        "rows": anonymized["rows"],
    }


def _write_version(
    store: Any, product_id: str, version: str, schema_diff: Any, anonymized: dict[str, Any]
) -> tuple[str, dict[str, Any], str]:
    """Write the version's files and manifest; its URI, the manifest and its bytes' sha256."""
    cfg = resources.config()
    product = cfg.product(product_id)
    src = product.source
    record = load_ingest(store, src.provider, src.dataset, anonymized["ingest_id"])
    staged = trusted_staged(store, record)["sha256"]  # the lineage names what the trail holds
    reports = zones.reports_prefix(src.provider, src.dataset, record.ingest_id)
    quality = json.loads(store.get_bytes(f"{reports}/quality.json"))
    pii = json.loads(store.get_bytes(f"{reports}/pii.json"))
    files = [FileEntry(**f) for f in anonymized["files"]]
    manifest = build_manifest(
        product=product_id,
        version=version,
        content_hash=anonymized["content_hash"],
        schema=anonymized["schema"],
        rows=anonymized["rows"],
        files=files,
        lineage={
            "provider": src.provider,
            "dataset": src.dataset,
            "origin": cfg.providers[src.provider].jurisdiction,
            "ingests": [
                {
                    "ingest_id": record.ingest_id,
                    "sha256": record.sha256,
                    "raw": store.uri(record.raw_key),
                    "staged_sha256": anonymized.get("staged_sha256", staged),
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
        privacy=anonymized["privacy"],
        personal_data={
            **anonymized["personal_data"],
            "pii_report": store.uri(f"{reports}/pii.json"),
            "declared_not_found": pii.get("declared_not_found", []),
        },
        usage_terms=product.terms.model_dump(mode="json"),
        usage_policy=usage_policy(
            product_id, version, anonymized["content_hash"], product.terms, list(product.markets)
        ),
        markets=list(product.markets),
        schema_diff=schema_diff,
    )
    with tempfile.TemporaryDirectory(prefix="databourse-pub-") as tmp:
        for f in files:
            store.download(f"{anonymized['staged_prefix']}/{f.path}", Path(tmp) / f.path)
        try:
            for f in files:  # the private copies are what is published: checked, race-free
                _check_built(store, f"{anonymized['staged_prefix']}/{f.path}", Path(tmp), f)
            uri, sha256 = publish_version(store, product_id, version, Path(tmp), files, manifest)
        except ObjectChanged as exc:  # a manifest this run did not write is in place: audited
            resources.audit("quarantine", exc, product=product_id, version=version)
            raise
    return uri, manifest, sha256


def _check_built(store: ObjectStore, key: str, folder: Path, entry: FileEntry) -> None:
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


QUALITY_DROP = 0.01  # a fall of the overall score by more than this is an operator's concern


def _signal_quality_drop(product_id: str, version: str, now: dict[str, Any]) -> None:
    """Emit `databourse.product.quality-dropped` when this version scores below the previous one."""
    versions = resources.catalog().show(product_id)["versions"]  # newest first
    older = [v for v in versions if v["version"] != version and v.get("quality_scores")]
    before = older[0]["quality_scores"].get("overall") if older else None
    after = now.get("overall")
    if before is None or after is None or after >= before - QUALITY_DROP:
        return
    get_run_logger().warning(
        "%s@%s: overall quality %.3f, down from %.3f in %s",
        product_id,
        version,
        after,
        before,
        older[0]["version"],
    )
    emit_event(
        event="databourse.product.quality-dropped",
        resource={
            "prefect.resource.id": f"databourse.product.{product_id}",
            "prefect.resource.name": product_id,
        },
        payload={
            "version": version,
            "overall": after,
            "previous_version": older[0]["version"],
            "previous_overall": before,
        },
    )
