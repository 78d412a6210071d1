"""Tasks: build a product from a staged dataset in passes over partitions (plan, pass 1, pass 2).

The passes (databourse.product.partitions, databourse.product.assembly) exchange pointers, never
tables: files in the build's work folder, named by relative paths in the tasks' small JSON results,
each with the sha256 its pass recorded (`sealed`). On the local store the folder is private to this
machine (outside the store); on S3 it is `staging/products/<product>/work/<build>/`: a task
downloads what it reads and uploads what it writes, so a Dask worker in another process (or on
another machine) needs nothing but the store and configs. Every read is checked against its seal
(tasks.work_files). Keys and hierarchies are fetched by each task from its own process's resources,
never passed. Pass 3 and staging: tasks.assembling; the version and its manifest: tasks.packaging.
"""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from prefect import get_run_logger, task

from databourse.config import Config, ProductSpec
from databourse.ingest.records import load_ingest
from databourse.privacy.anonymize import Keys
from databourse.privacy.hierarchy import Hierarchy, product_hierarchies
from databourse.product import assembly
from databourse.product.partitions import (
    PARTITION_ROWS,
    Partition,
    count_partition,
    load_decision,
    merge_counts,
    output_schema,
    plan_partitions,
    save_decision,
    save_schema,
    write_partition,
)
from databourse.product.productize import decide
from databourse.storage import zones
from databourse.storage.store import ObjectStore
from tasks import resources
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


@dataclass(frozen=True)
class Build:
    """What every pass of one product needs, fetched in the process that runs it."""

    cfg: Config
    store: ObjectStore
    product: ProductSpec
    key: Keys | None
    hierarchies: dict[str, Hierarchy]
    declared: dict[str, str]
    origin: str  # the provider's jurisdiction
    important_data: bool  # the dataset is declared important data


def fetch_build(product_id: str) -> Build:
    """The build of one product, fetched from this process's resources."""
    cfg = resources.config()
    product = cfg.product(product_id)
    keyed = any(r.action in ("pseudonymize", "noise") for r in product.columns.values())
    noisy = bool(product.aggregate and product.aggregate.epsilon is not None)
    key = resources.pseudonym_keys(product) if keyed or noisy else None
    hierarchies = product_hierarchies(product, Path(cfg.files[f"product/{product_id}"]).parents[1])
    src = product.source
    dataset = cfg.dataset(src.provider, src.dataset)
    return Build(
        cfg, resources.store(), product, key, hierarchies, dataset.declared_categories,
        cfg.providers[src.provider].jurisdiction, dataset.important_data,
    )  # fmt: skip


def schema_reads(build: Build) -> list[str]:
    """The work files holding the schemas (an aggregate's cells too) that pass 3 reads."""
    return [SOURCE_SCHEMA, *([assembly.CELLS] if build.product.type == "aggregate" else [])]


def seal_written(work: Path, out: dict[str, Any]) -> dict[str, Any]:
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
    build = fetch_build(product_id)
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
    build = fetch_build(plan["product"])
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
    build = fetch_build(plan["product"])
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
    build = fetch_build(plan["product"])
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
        return seal_written(work, out)


@task(name="drop-work", task_run_name="drop work of {plan[product]}")
def drop_work(plan: dict[str, Any]) -> int:
    """Remove the build's work folder (its segments hold records not yet verified)."""
    return remove_work_folder(resources.store(), plan["work"])
