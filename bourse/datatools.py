"""Bodies of the data commands (profile, anonymize, verify): the CLI only wires them."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from databourse.catalog.database import Catalog
from databourse.config import Config
from databourse.consistency.report import ConsistencyReport
from databourse.consistency.verify import check_all
from databourse.errors import DataBourseError, IngestRejected
from databourse.ingest.staging import read_contract_table
from databourse.pii.detect import scan_table
from databourse.pii.screening import check_embedded, direct_identifiers
from databourse.privacy.hierarchy import product_hierarchies
from databourse.privacy.pseudonyms import Keys
from databourse.product.facts import configured_problems, configured_terms_problems
from databourse.product.package import manifest_hash, read_manifest, validate_manifest
from databourse.product.productize import productize, rescan_written
from databourse.quality.profile import profile_yaml
from databourse.storage import zones
from databourse.storage.store import ObjectStore


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
        settings = cfg.settings
        rescan = rescan_written(
            tmp, product, settings.pii_threshold, settings.pii_sample_rows,
            settings.pii_embedded_max_share, dirty_threshold=settings.pii_dirty_threshold,
        )  # fmt: skip
        made.privacy["verified"] = rescan.privacy
        made.personal_data["embedded"] = rescan.embedded
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


def privacy_lines(report: dict[str, Any]) -> list[str]:
    """`anonymize_file`'s report in a few lines of text (names and figures, no values)."""
    from databourse.standards.croissant import privacy_statements

    privacy, personal = report["privacy"], report["personal_data"]
    lines = [
        f"{report['product']}: {report['rows_in']} rows in, {report['rows_out']} out -> "
        f"{report['out']}"
    ]
    lines += privacy_statements(privacy) or ["no privacy model (the product's rules alone)"]
    if verified := privacy.get("verified"):
        again = "met" if verified.get("satisfied") else "NOT met"
        lines.append(f"checked again on the written file: {again}")
    remaining = personal.get("remaining") or {}
    kinds = ", ".join(f"{c} ({k})" for c, k in remaining.items()) or "none"
    lines.append(f"personal data left: {kinds}; {personal.get('individuals')} individual(s)")
    lines.append("the whole report: --json")
    return lines


def verify_version(
    cfg: Config, store: ObjectStore, product: str, version: str, catalog: Catalog | None = None
) -> list[str]:
    """Re-check a published version from its files alone; the list of failures (empty: ok).

    The content hash is recomputed over the files, schema, config and transfer facts, and
    compared with the manifest's and the catalog's; the facts are recounted from the files.
    A missing or changed file is a failure named here, never a crash.
    """
    manifest = read_manifest(store, product, version)
    if manifest is None:
        return [f"{product}@{version}: no manifest (not a visible version)"]
    key = f"{zones.product_prefix(product, version)}/manifest.json"
    try:
        validate_manifest(manifest)
    except DataBourseError as exc:  # CatalogError with the schema problems
        return [f"{key}: {exc}"]
    problems = _hash_problems(manifest, key, catalog, product, version)
    ingests = None
    if catalog is not None:  # the chain itself is `bourse audit verify`'s
        ingests = [e for e in catalog.audit_history() if e.get("kind") == "ingest"]
    problems += [f"{key}: {p}" for p in configured_terms_problems(cfg, manifest, ingests)]
    prefix = zones.product_prefix(product, version)
    before_files = len(problems)
    with tempfile.TemporaryDirectory() as tmp:
        for f in manifest["files"]:
            path = Path(tmp) / f["path"]
            try:
                store.download(f"{prefix}/{f['path']}", path)
            except (DataBourseError, OSError):
                problems.append(f"{prefix}/{f['path']}: listed in the manifest, missing")
                continue
            if hashlib.sha256(path.read_bytes()).hexdigest() != f["sha256"]:
                problems.append(f"{prefix}/{f['path']}: sha256 differs from the manifest")
        if len(problems) > before_files:  # the files are not the version's: nothing more to say
            return problems
        table = pq.read_table(tmp)
        settings = cfg.settings
        findings = scan_table(
            table,
            threshold=settings.pii_threshold,
            sample_rows=settings.pii_sample_rows,
            dirty_threshold=settings.pii_dirty_threshold,
        )
        found = direct_identifiers(findings)
        problems += [f"direct identifier in column {f['column']} ({f['category']})" for f in found]
        problems += _embedded_problems(findings, manifest, cfg.settings.pii_embedded_max_share)
        problems += [f"{key}: {p}" for p in _facts_problems(cfg, Path(tmp), manifest)]
    return problems


def _hash_problems(
    manifest: dict[str, Any], key: str, catalog: Catalog | None, product: str, version: str
) -> list[str]:
    """The recomputed content hash against the manifest's and the catalog's."""
    problems = []
    recomputed = manifest_hash(manifest)
    if recomputed != manifest["content_hash"]:
        problems.append(
            f"{key}: content hash does not match the files, schema, config and transfer facts "
            "listed (the manifest was edited)"
        )
    if catalog is not None:
        try:
            held = catalog.get_version(product, version).content_hash
        except DataBourseError:
            return [*problems, f"{product}@{version}: not in the catalog"]
        if held != recomputed or held != manifest["content_hash"]:
            problems.append(f"{key}: the catalog holds content hash {held[:16]}, not this one")
    return problems


def _facts_problems(cfg: Config, folder: Path, manifest: dict[str, Any]) -> list[str]:
    """The facts and the privacy model from the product's config and the files (see facts.py)."""
    found = configured_problems(cfg, folder, manifest)
    if found is None:
        return [f"product {manifest['product']} is not configured: facts not re-derived"]
    return found


def _embedded_problems(
    findings: list[Any], manifest: dict[str, Any], max_share: float
) -> list[str]:
    """Identifiers inside the files' text beyond the build's limits (counts, never values)."""
    redacted = (manifest["personal_data"].get("embedded") or {}).get("redacted") or {}
    check = check_embedded(findings, list(redacted), max_share)
    return [] if check.ok else [f"identifiers inside text: {check.reason()}"]


def verify_all(
    store: ObjectStore, catalog: Catalog, grace_hours: float, deep: bool, cfg: Config | None = None
) -> tuple[ConsistencyReport, list[str]]:
    """Check the whole store against the catalog; the report and its lines for a terminal.

    With `cfg`, also the transfer facts re-derived from each version's files and every approval
    cross-checked with the Prefect run that answered it (bourse.evidence).
    """
    from bourse.evidence import gate_evidence

    evidence = gate_evidence(cfg, catalog) if cfg is not None else None
    report = check_all(
        store, catalog, grace_seconds=grace_hours * 3600, deep=deep, evidence=evidence
    )
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
