"""Tasks: build a product from a staged dataset in passes over partitions, then package it.

The passes (databourse.partitions, databourse.assembly) exchange pointers, never tables: files
in the build's work folder, named by relative paths in the tasks' small JSON results, each with
the sha256 its pass recorded (`sealed`). On the local store the folder is private to this machine
(outside the store); on S3 it is `staging/products/<product>/work/<build>/`: a task downloads what
it reads and uploads what it writes, so a Dask worker in another process (or on another machine)
needs nothing but the store and configs. Every read is checked against its seal (tasks.work_files).
Keys and hierarchies are fetched by each task from its own process's resources, never passed.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.events import emit_event

from databourse import assembly, zones
from databourse.anonymize import Keys
from databourse.config import Config, ProductSpec
from databourse.errors import ObjectChanged, PersonalDataFound
from databourse.hierarchy import Hierarchy, product_hierarchies
from databourse.ingest_records import load_ingest
from databourse.odrl import usage_policy
from databourse.package import (
    FileEntry,
    build_manifest,
    manifest_sha256,
    publish_version,
    read_manifest,
)
from databourse.partitions import (
    PARTITION_ROWS,
    Partition,
    count_partition,
    load_decision,
    load_schema,
    merge_counts,
    output_schema,
    plan_partitions,
    save_decision,
    save_schema,
    write_partition,
)
from databourse.productize import decide
from databourse.staged_integrity import file_digest, stream_digest
from databourse.storage import ObjectStore, put_file_once
from tasks import reporting, resources
from tasks.retrying import RETRY_TRANSIENT
from tasks.staged import staged_copy, trusted_staged
from tasks.work_files import (
    SEALED,
    SOURCE_DATA,
    expected,
    private_folder,
    private_source,
    remove_work_folder,
    sealed,
    source_file,
    work_folder,
)

SOURCE_SCHEMA = "source.arrow"
FILES = "files"


@dataclass(frozen=True)
class _Build:
    """What every pass of one product needs, fetched in the process that runs it."""

    cfg: Config
    store: ObjectStore
    product: ProductSpec
    key: Keys | None
    hierarchies: dict[str, Hierarchy]
    declared: dict[str, str]
    origin: str  # the provider's jurisdiction
    important_data: bool  # the dataset is declared important data


def _build(product_id: str) -> _Build:
    cfg = resources.config()
    product = cfg.product(product_id)
    keyed = any(r.action in ("pseudonymize", "noise") for r in product.columns.values())
    noisy = bool(product.aggregate and product.aggregate.epsilon is not None)
    key = resources.pseudonym_keys(product) if keyed or noisy else None
    hierarchies = product_hierarchies(product, Path(cfg.files[f"product/{product_id}"]).parents[1])
    src = product.source
    dataset = cfg.dataset(src.provider, src.dataset)
    return _Build(
        cfg, resources.store(), product, key, hierarchies, dataset.declared_categories,
        cfg.providers[src.provider].jurisdiction, dataset.important_data,
    )  # fmt: skip


def _schema_reads(build: _Build) -> list[str]:
    return [SOURCE_SCHEMA, *([assembly.CELLS] if build.product.type == "aggregate" else [])]


def _seal_written(work: Path, out: dict[str, Any]) -> dict[str, Any]:
    """A pass-2 result (or an aggregate's cells) with the sha256 of its segments and values."""
    names = [s["segment"] for s in out["segments"]] + [d["path"] for d in out["distinct"].values()]
    return {**out, SEALED: sealed(work, names)}


@task(
    name="plan-build",
    task_run_name="plan {product_id} from {ingest_id}",
    **RETRY_TRANSIENT,
)
def plan_build(
    product_id: str, ingest_id: str, partition_rows: int | None = None
) -> dict[str, Any]:
    """Check the product against the staged dataset and cut it into partitions."""
    build = _build(product_id)
    src = build.product.source
    record = load_ingest(build.store, src.provider, src.dataset, ingest_id)
    runs = build.cfg.settings.runs
    rows = int(partition_rows or getattr(runs, "partition_rows", None) or PARTITION_ROWS)
    work = zones.join(
        "staging", "products", product_id, "work", f"{ingest_id}-{uuid.uuid4().hex[:12]}"
    )
    trusted = trusted_staged(build.store, record)  # `_ingest.json` agrees with the trail
    try:
        seals = private_source(build.store, work, record.staged_key, trusted)
        private = private_folder(build.store, work)
        with (
            nullcontext(private / SOURCE_DATA)
            if private is not None
            else staged_copy(build.store, record.staged_key, trusted)
        ) as path:
            staged = pq.read_schema(path)
            output_schema(staged, build.product, build.key, build.hierarchies, {})  # bad columns
            partitions = plan_partitions(path, rows)
        with work_folder(build.store, work, {}) as folder:
            save_schema(staged, folder / SOURCE_SCHEMA)
            seals.update(sealed(folder, [SOURCE_SCHEMA]))
    except BaseException:  # a retry plans a new work folder: this one would never be dropped
        remove_work_folder(build.store, work)
        raise
    get_run_logger().info(
        "%s: %d partition(s) of up to ~%d rows (%d rows)",
        product_id, len(partitions), rows, sum(p.rows for p in partitions),
    )  # fmt: skip
    return {
        "product": product_id,
        "ingest_id": ingest_id,
        "staged_key": record.staged_key,
        "staged": trusted,  # every partition read checks the staged file's sha256 first (S3)
        "work": work,
        SEALED: seals,  # the sha256 of every work file travels with its pointer, never the store
        "partitions": [p.to_json() for p in partitions],
        "counts": build.product.privacy is not None,  # pass 1 feeds the privacy model only
    }


@task(
    name="count-classes",
    task_run_name="count {plan[product]} part {part[index]}",
    **RETRY_TRANSIENT,
)
def count_classes(plan: dict[str, Any], part: dict[str, int]) -> dict[str, Any] | None:
    """Pass 1: grouped counts of the privacy model's columns in one partition."""
    build = _build(plan["product"])
    part_ = Partition.from_json(part)
    with (
        source_file(build.store, plan) as source,
        work_folder(build.store, plan["work"], {}) as work,
    ):
        out = count_partition(source, part_, build.product, build.key, build.hierarchies, work)
        return None if out is None else {**out, SEALED: sealed(work, [out["counts"]])}


@task(
    name="decide-privacy",
    task_run_name="decide privacy of {plan[product]}",
    **RETRY_TRANSIENT,
)
def decide_privacy(plan: dict[str, Any], counted: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Merge the partitions' counts and decide the privacy model (PrivacyModelFailed stops it)."""
    build = _build(plan["product"])
    done = [c for c in counted if c is not None]
    reads = expected([c["counts"] for c in done], *(c[SEALED] for c in done))
    with work_folder(build.store, plan["work"], reads) as work:
        decision = decide(merge_counts(work, counted), build.product, build.hierarchies)
        decided = save_decision(decision, work)
        names = [decided["decision"], *([decided["kept"]] if decided["kept"] else [])]
        return {**decided, SEALED: sealed(work, names)}


@task(
    name="write-records",
    task_run_name="write {plan[product]} part {part[index]}",
    **RETRY_TRANSIENT,
)
def write_records(
    plan: dict[str, Any], part: dict[str, int], decided: dict[str, Any]
) -> dict[str, Any]:
    """Pass 2: one partition's published records as segments (pointers returned)."""
    build = _build(plan["product"])
    names = [decided["decision"], *([decided["kept"]] if decided["kept"] else [])]
    reads = expected(names, decided[SEALED])
    part_ = Partition.from_json(part)
    with (
        source_file(build.store, plan) as source,
        work_folder(build.store, plan["work"], reads) as work,
    ):
        decision = load_decision(work, decided)
        out = write_partition(
            source,
            part_,
            build.product,
            build.key,
            build.hierarchies,
            decision,
            work,
            build.declared,
        )
        return _seal_written(work, out)


@task(
    name="lay-out-files",
    task_run_name="lay out {plan[product]}",
    **RETRY_TRANSIENT,
)
def lay_out_files(
    plan: dict[str, Any], decided: dict[str, Any], written: list[dict[str, Any]]
) -> dict[str, Any]:
    """The product's files cut from the segments (an aggregate's cells computed first)."""
    build = _build(plan["product"])
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
            cells = _seal_written(work, cells)
            cells[SEALED][assembly.CELLS] = sealed(work, [assembly.CELLS])[assembly.CELLS]
        written = [cells]
    pack = build.product.packaging
    files = assembly.plan_files(written, pack.max_rows_per_file, pack.partition_by)
    seals = [out[SEALED] for out in written]
    extra = [assembly.CELLS] if build.product.type == "aggregate" else []
    for file in files:  # what pass 3 reads of this file, with the sha256 their passes recorded
        file[SEALED] = expected(sorted({s["segment"] for s in file["slices"]}) + extra, *seals)
    return {"files": files, "written": written, "privacy": privacy}


def _schemas(build: _Build, work: Path, decided: dict[str, Any]) -> Any:
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
    build = _build(plan["product"])
    names = sorted({s["segment"] for s in file["slices"]}) + _schema_reads(build)
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
    build = _build(plan["product"])
    product_id = plan["product"]
    files = [FileEntry(**e) for e in entries]
    written = layout["written"]
    distinct = [d["path"] for out in written for d in out["distinct"].values()]
    names = [f"{FILES}/{f.path}" for f in files] + distinct + _schema_reads(build)
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


@task(name="drop-work", task_run_name="drop work of {plan[product]}")
def drop_work(plan: dict[str, Any]) -> int:
    """Remove the build's work folder (its segments hold records not yet verified)."""
    return remove_work_folder(resources.store(), plan["work"])


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
        catalog.set_privacy(product_id, rec.version, _privacy_figures(anonymized["privacy"]))
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
