"""Tasks: anonymize a staged dataset by a product's rules, then package it as a version."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.events import emit_event

from databourse import zones
from databourse.hierarchy import product_hierarchies
from databourse.ingest import load_ingest
from databourse.odrl import usage_policy
from databourse.package import (
    FileEntry,
    build_manifest,
    content_hash,
    publish_files,
    read_manifest,
    schema_of,
    write_parquet,
)
from databourse.productize import productize, verify_written
from databourse.storage import put_file_once
from tasks import reporting, resources
from tasks.staged import local_copy


@task(name="anonymize", task_run_name="anonymize {product_id} from {ingest_id}")
def anonymize(product_id: str, ingest_id: str) -> dict[str, Any]:
    """Apply the product's column rules and privacy model; stage the result by content hash."""
    logger = get_run_logger()
    cfg = resources.config()
    store = resources.store()
    product = cfg.product(product_id)
    src = product.source
    record = load_ingest(store, src.provider, src.dataset, ingest_id)
    keyed = {"pseudonymize", "noise"}
    needs_key = any(r.action in keyed for r in product.columns.values()) or bool(
        product.aggregate and product.aggregate.epsilon is not None
    )
    key = resources.pseudonym_keys(product) if needs_key else None
    hierarchies = product_hierarchies(product, Path(cfg.files[f"product/{product_id}"]).parents[1])
    with local_copy(store, record.staged_key) as path:
        made = productize(
            pq.read_table(path),
            product,
            cfg.dataset(src.provider, src.dataset).declared_categories,
            key,
            hierarchies,
        )
    table, remaining = made.table, made.personal_data["remaining"]
    with tempfile.TemporaryDirectory(prefix="databourse-pkg-") as tmp:
        pack = product.packaging
        files = write_parquet(
            table, Path(tmp), pack.partition_by, pack.max_rows_per_file, pack.row_group_rows
        )
        made.privacy["verified"] = verify_written(
            Path(tmp), product, cfg.settings.pii_threshold, cfg.settings.pii_sample_rows
        )
        schema = [
            {**c, "personal_data": remaining[c["name"]]} if c["name"] in remaining else c
            for c in schema_of(table)
        ]
        chash = content_hash(files, schema, product.fingerprint())
        prefix = zones.product_staging_prefix(product_id, chash)
        for f in files:
            put_file_once(store, f"{prefix}/{f.path}", Path(tmp) / f.path)
    if made.privacy.get("model"):
        reporting.table(
            f"privacy-{product_id}",
            [_privacy_row(made.privacy)],
            f"Privacy model of {product_id} (figures only)",
        )
    logger.info(
        "%s: %d rows anonymized (%s), content hash %s",
        product_id,
        table.num_rows,
        made.privacy.get("model"),
        chash[:12],
    )
    return {
        "product": product_id,
        "ingest_id": ingest_id,
        "content_hash": chash,
        "staged_prefix": prefix,
        "files": [f.__dict__ for f in files],
        "schema": schema,
        "rows": table.num_rows,
        "privacy": made.privacy,
        "personal_data": made.personal_data,
    }


def _privacy_figures(privacy: dict[str, Any]) -> dict[str, Any]:
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


def _privacy_row(privacy: dict[str, Any]) -> dict[str, Any]:
    risk = privacy.get("risk") or {}
    return {
        "model": privacy.get("model"),
        "k": privacy.get("k"),
        "classes": privacy.get("classes"),
        "smallest class": privacy.get("smallest_class"),
        "suppressed": privacy.get("suppressed"),
        "highest prosecutor risk": risk.get("highest_risk"),
        "average risk": risk.get("average_risk"),
    }


@task(name="package-version", task_run_name="package {product_id}")
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
    if read_manifest(store, product_id, rec.version) is None:
        manifest_uri, manifest = _write_version(
            store, product_id, rec.version, rec.schema_diff, anonymized
        )
        catalog.set_manifest(product_id, rec.version, manifest_uri)
        if manifest["quality"].get("scores"):
            catalog.set_quality_scores(product_id, rec.version, manifest["quality"]["scores"])
            _signal_quality_drop(product_id, rec.version, manifest["quality"]["scores"])
        catalog.set_privacy(product_id, rec.version, _privacy_figures(anonymized["privacy"]))
        logger.info("%s@%s packaged (%s)", product_id, rec.version, manifest_uri)
    else:
        logger.info("%s@%s already holds this content: nothing new", product_id, rec.version)
    manifest_key = f"{zones.product_prefix(product_id, rec.version)}/manifest.json"
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
) -> tuple[str, dict[str, Any]]:
    """Write the version's files and manifest; its URI and the manifest."""
    cfg = resources.config()
    product = cfg.product(product_id)
    src = product.source
    record = load_ingest(store, src.provider, src.dataset, anonymized["ingest_id"])
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
        return publish_files(store, product_id, version, Path(tmp), files, manifest), manifest


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
