"""Bodies of the data commands (profile, anonymize, verify): the CLI only wires them."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from databourse import zones
from databourse.anonymize import Keys
from databourse.catalog import Catalog
from databourse.config import Config, PrivacyModel
from databourse.consistency import ConsistencyReport, check_all
from databourse.errors import DataBourseError, IngestRejected
from databourse.hierarchy import product_hierarchies
from databourse.ingest import read_contract_table
from databourse.package import content_hash, read_manifest, validate_manifest
from databourse.pii import scan_table
from databourse.privacy import verify
from databourse.productize import productize, verify_written
from databourse.quality_profile import profile_yaml
from databourse.screening import direct_identifiers
from databourse.storage import ObjectStore


def latest_staged(store: ObjectStore, provider: str, dataset: str) -> str:
    """The staged Parquet key of the dataset's most recent ingest."""
    records = [
        json.loads(store.get_bytes(o.key))
        for o in store.list(f"raw/{provider}/{dataset}/")
        if o.key.endswith("/_ingest.json")
    ]
    if not records:
        raise IngestRejected(f"{provider}/{dataset}: nothing ingested yet; give --file")
    return str(max(records, key=lambda r: r["ingested_at"])["staged_key"])


def profile(
    cfg: Config, store: ObjectStore, provider: str, dataset: str, file: Path | None, rows: int
) -> str:
    """YAML proposing a starting suite from a sample (personal columns: no values)."""
    spec = cfg.dataset(provider, dataset)
    personal = list(spec.declared_categories)
    name = f"{provider}/{dataset}"
    if file is not None:
        return profile_yaml(read_contract_table(file, spec), name, personal, rows)
    key = latest_staged(store, provider, dataset)
    with tempfile.TemporaryDirectory() as tmp:
        path = store.local_path(key) or Path(tmp) / "data.parquet"
        if store.local_path(key) is None:
            store.download(key, path)
        batches = pq.ParquetFile(path).iter_batches(batch_size=65_536)
        return profile_yaml(batches, name, personal, rows)


def anonymize_file(
    cfg: Config, product_id: str, source: Path, out: Path, key: Keys | None
) -> dict[str, Any]:
    """Apply a product's rules to any file of its source dataset; write Parquet; the report."""
    product = cfg.product(product_id)
    spec = cfg.dataset(product.source.provider, product.source.dataset)
    hierarchies = product_hierarchies(product, Path(cfg.files[f"product/{product_id}"]).parents[1])
    made = productize(
        read_contract_table(source, spec),
        product,
        spec.declared_categories,
        key,
        hierarchies,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    pq.write_table(made.table, tmp, compression="zstd")
    try:  # the same last checks as the pipeline, on the written file; a refused one never appears
        made.privacy["verified"] = verify_written(
            tmp, product, cfg.settings.pii_threshold, cfg.settings.pii_sample_rows
        )
    except DataBourseError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    return {
        "product": product_id,
        "rows_in": made.privacy.get("rows_in"),
        "rows_out": made.table.num_rows,
        "out": str(out),
        "privacy": made.privacy,
        "personal_data": made.personal_data,
    }


def verify_version(cfg: Config, store: ObjectStore, product: str, version: str) -> list[str]:
    """Re-check a published version from its files alone; the list of failures (empty: ok)."""
    manifest = read_manifest(store, product, version)
    if manifest is None:
        return [f"{product}@{version}: no manifest (not a visible version)"]
    problems: list[str] = []
    try:
        validate_manifest(manifest)
    except Exception as exc:  # CatalogError with the schema problems
        problems.append(str(exc))
    prefix = zones.product_prefix(product, version)
    with tempfile.TemporaryDirectory() as tmp:
        for f in manifest["files"]:
            path = Path(tmp) / f["path"]
            store.download(f"{prefix}/{f['path']}", path)
            if hashlib.sha256(path.read_bytes()).hexdigest() != f["sha256"]:
                problems.append(f"{f['path']}: sha256 differs from the manifest")
        schema = manifest["schema"]
        config_sha = manifest["lineage"]["product_config_sha256"]
        from databourse.package import FileEntry

        files = [FileEntry(**f) for f in manifest["files"]]
        if content_hash(files, schema, config_sha) != manifest["content_hash"]:
            problems.append("content hash does not match the files, schema and config")
        problems += _privacy_problems(manifest, Path(tmp))
        table = pq.read_table(tmp)
        found = direct_identifiers(scan_table(table, threshold=cfg.settings.pii_threshold))
        problems += [f"direct identifier in column {f['column']} ({f['category']})" for f in found]
    return problems


def _privacy_problems(manifest: dict[str, Any], folder: Path) -> list[str]:
    privacy = manifest.get("privacy") or {}
    if not privacy.get("quasi_identifiers") or "aggregate" in privacy:
        return []
    fields = set(PrivacyModel.model_fields)
    model = PrivacyModel(**{k: v for k, v in privacy.items() if k in fields and v is not None})
    report = verify(folder, model)
    if not report.satisfied:
        return [
            f"privacy model not met by the files: k={report.k}, smallest class "
            f"{report.smallest_class}"
        ]
    return []


def verify_all(
    store: ObjectStore, catalog: Catalog, grace_hours: float, deep: bool
) -> tuple[ConsistencyReport, list[str]]:
    """Check the whole store against the catalog; the report and its lines for a terminal."""
    report = check_all(store, catalog, grace_seconds=grace_hours * 3600, deep=deep)
    lines = []
    for f in report.findings:
        where = f.key or "@".join(x for x in (f.product, f.version) if x) or "-"
        lines.append(f"{f.severity.upper():<8} {f.kind:<28} {where}: {f.message}")
    counts = report.to_json()["counts"]
    checked = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in report.checked.items())
    verdict = "store and catalog agree" if report.ok else "store and catalog DISAGREE"
    lines.append(
        f"{verdict}: {counts['error']} error(s), {counts['warning']} warning(s), "
        f"{counts['info']} info; checked {checked}"
    )
    return report, lines
