"""Tasks: anonymize a staged dataset by a product's rules, then package it as a version."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect import get_run_logger, task

from databourse import zones
from databourse.anonymize import apply_rules, key_fingerprint
from databourse.errors import PersonalDataFound
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
from databourse.pii import scan_table
from databourse.privacy import enforce_k_anonymity
from databourse.screening import direct_identifiers
from databourse.storage import put_file_once
from databourse.transfer import remaining_personal_data
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
    needs_key = any(r.action == "pseudonymize" for r in product.columns.values())
    key = resources.pseudonym_key() if needs_key else None
    with local_copy(store, record.staged_key) as path:
        table = apply_rules(pq.read_table(path), product, key)
    privacy: dict[str, Any] = {"model": None}
    if product.privacy is not None:
        table, k_report = enforce_k_anonymity(table, product.privacy)
        privacy = {"model": "k-anonymity", **k_report.to_json()}
        logger.info(
            "k=%d: %d classes, smallest %d, %d record(s) suppressed",
            k_report.k,
            k_report.classes,
            k_report.smallest_class,
            k_report.suppressed,
        )
    rescan = direct_identifiers(
        scan_table(
            table, threshold=cfg.settings.pii_threshold, sample_rows=cfg.settings.pii_sample_rows
        )
    )
    if rescan:
        raise PersonalDataFound(
            f"{product_id}: direct identifiers remain after anonymization in "
            f"{[r['column'] for r in rescan]}; no version is made",
            product=product_id,
        )
    remaining = remaining_personal_data(
        product, cfg.dataset(src.provider, src.dataset).declared_categories
    )
    pseudonyms = [c for c in remaining if c in table.column_names]
    individuals = max((pc.count_distinct(table[c]).as_py() for c in pseudonyms), default=0)
    personal = {
        "remaining": remaining,
        "individuals": individuals if remaining else 0,
        "pseudonym_key_id": key_fingerprint(key) if key else None,
        "rescan_direct_identifiers": 0,
    }
    with tempfile.TemporaryDirectory(prefix="databourse-pkg-") as tmp:
        files = write_parquet(table, Path(tmp))
        schema = [
            {**c, "personal_data": remaining[c["name"]]} if c["name"] in remaining else c
            for c in schema_of(table)
        ]
        chash = content_hash(files, schema, product.fingerprint())
        prefix = zones.product_staging_prefix(product_id, chash)
        for f in files:
            put_file_once(store, f"{prefix}/{f.path}", Path(tmp) / f.path)
    logger.info("%s: %d rows anonymized, content hash %s", product_id, table.num_rows, chash[:12])
    return {
        "product": product_id,
        "ingest_id": ingest_id,
        "content_hash": chash,
        "staged_prefix": prefix,
        "files": [f.__dict__ for f in files],
        "schema": schema,
        "rows": table.num_rows,
        "privacy": privacy,
        "personal_data": personal,
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
        manifest_uri = _write_version(store, product_id, rec.version, rec.schema_diff, anonymized)
        catalog.set_manifest(product_id, rec.version, manifest_uri)
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
) -> str:
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
            "report": store.uri(f"{reports}/quality.json"),
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
        return publish_files(store, product_id, version, Path(tmp), files, manifest)
