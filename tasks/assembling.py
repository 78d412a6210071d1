"""Tasks: pass 3 of a product build (lay out and write its files), then verify and stage them."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from databourse.errors import PersonalDataFound
from databourse.ingest.staged_integrity import stream_digest
from databourse.product import assembly
from databourse.product.package import FileEntry
from databourse.product.partitions import load_schema, output_schema
from databourse.storage import zones
from databourse.storage.store import ObjectStore, put_file_once
from tasks import reporting, resources
from tasks.building import SOURCE_SCHEMA, Build, fetch_build, schema_reads, seal_written
from tasks.retrying import RETRY_TRANSIENT
from tasks.work_files import SEALED, expected, sealed, work_folder

FILES = "files"


@task(
    name="lay-out-files",
    task_run_name="lay out {plan[product]}",
    **RETRY_TRANSIENT,
)
def lay_out_files(
    plan: dict[str, Any], decided: dict[str, Any], written: list[dict[str, Any]]
) -> dict[str, Any]:
    """The product's files cut from the segments (an aggregate's cells computed first)."""
    build = fetch_build(plan["product"])
    privacy = dict(decided["privacy"])
    segments = [s["segment"] for out in written for s in out["segments"]]
    if build.product.type == "aggregate":
        reads = expected(
            [*segments, SOURCE_SCHEMA], plan[SEALED], *(out[SEALED] for out in written)
        )
        with work_folder(build.store, plan["work"], reads) as work:
            records = output_schema(
                load_schema(work / SOURCE_SCHEMA), build.product, build.key,
                build.hierarchies, decided["levels"],
            )  # fmt: skip
            cells, privacy["aggregate"] = assembly.aggregate_segments(
                work, written, records, build.product, build.key
            )
            cells = seal_written(work, cells)
            cells[SEALED][assembly.CELLS] = sealed(work, [assembly.CELLS])[assembly.CELLS]
        written = [cells]
    pack = build.product.packaging
    files = assembly.plan_files(written, pack.max_rows_per_file, pack.partition_by)
    seals = [out[SEALED] for out in written]
    extra = [assembly.CELLS] if build.product.type == "aggregate" else []
    for file in files:  # what pass 3 reads of this file, with the sha256 their passes recorded
        file[SEALED] = expected(sorted({s["segment"] for s in file["slices"]}) + extra, *seals)
    return {"files": files, "written": written, "privacy": privacy}


def _schemas(build: Build, work: Path, decided: dict[str, Any]) -> Any:
    staged = load_schema(work / SOURCE_SCHEMA)
    levels = decided["levels"]
    return assembly.schemas(staged, work, build.product, build.key, build.hierarchies, levels)


@task(
    name="write-file",
    task_run_name="write {plan[product]} {file[path]}",
    **RETRY_TRANSIENT,
)
def write_file(
    plan: dict[str, Any], decided: dict[str, Any], file: dict[str, Any]
) -> dict[str, Any]:
    """Pass 3: one file of the product, from its slices of segments."""
    build = fetch_build(plan["product"])
    names = sorted({s["segment"] for s in file["slices"]}) + schema_reads(build)
    reads = expected(names, plan[SEALED], file[SEALED])
    with work_folder(build.store, plan["work"], reads) as work:
        _, schema = _schemas(build, work, decided)
        rows = build.product.packaging.row_group_rows
        return asdict(assembly.write_file(work, file, schema, rows, work / FILES))


@task(
    name="finish-build",
    task_run_name="verify and stage {plan[product]}",
    **RETRY_TRANSIENT,
)
def finish_build(
    plan: dict[str, Any],
    decided: dict[str, Any],
    layout: dict[str, Any],
    entries: list[dict[str, Any]],
) -> dict[str, Any]:
    """Verify the written files, compute the content hash, stage the files under it."""
    logger = get_run_logger()
    build = fetch_build(plan["product"])
    product_id = plan["product"]
    files = [FileEntry(**e) for e in entries]
    written = layout["written"]
    distinct = [d["path"] for out in written for d in out["distinct"].values()]
    names = [f"{FILES}/{f.path}" for f in files] + distinct + schema_reads(build)
    built_files = {f"{FILES}/{f.path}": f.sha256 for f in files}  # pass 3 hashed what it wrote
    reads = expected(names, plan[SEALED], built_files, *(out[SEALED] for out in written))
    settings = build.cfg.settings
    pii = (settings.pii_threshold, settings.pii_sample_rows, settings.pii_dirty_threshold)
    with work_folder(build.store, plan["work"], reads) as work:
        full, _ = _schemas(build, work, decided)
        try:
            built = assembly.finish(
                work, work / FILES, files, written, layout["privacy"], full,
                build.product, build.declared, build.key, pii,
                origin=build.origin, important_data=build.important_data,
                embedded_max_share=build.cfg.settings.pii_embedded_max_share,
            )  # fmt: skip
        except PersonalDataFound as exc:  # nothing staged: the work folder is dropped after
            resources.audit("quarantine", exc, product=product_id, ingest_id=plan["ingest_id"])
            raise
        prefix = zones.product_staging_prefix(product_id, built.content_hash)
        for f in built.files:
            _stage(build.store, f"{prefix}/{f.path}", work / FILES / f.path, f.sha256)
    if built.privacy.get("model"):
        reporting.table(
            f"privacy-{product_id}",
            [_privacy_row(built.privacy)],
            f"Privacy model of {product_id} (figures only)",
        )
    logger.info(
        "%s: %d rows anonymized (%s), content hash %s",
        product_id, built.rows, built.privacy.get("model"), built.content_hash[:12],
    )  # fmt: skip
    return {
        "product": product_id,
        "ingest_id": plan["ingest_id"],
        "staged_sha256": plan["staged"]["sha256"],  # what the lineage names
        "content_hash": built.content_hash,
        "staged_prefix": prefix,
        "files": [asdict(f) for f in built.files],
        "schema": built.schema,
        "rows": built.rows,
        "privacy": built.privacy,
        "personal_data": built.personal_data,
    }


def _stage(store: ObjectStore, key: str, path: Path, sha256: str) -> None:
    """Stage a built file under its content hash; one found there with other bytes (planted by
    a store writer) is replaced. Publishing checks the bytes again (`_write_version`)."""
    if put_file_once(store, key, path):
        return
    with store.open(key) as fh:
        found = stream_digest(fh)[0]
    if found != sha256:
        get_run_logger().warning("%s: held other bytes than the built file: replaced", key)
        store.put_file(key, path)


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
