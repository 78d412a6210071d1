"""Tasks: build a product from a staged dataset in passes over partitions (plan, pass 1, pass 2).

The passes (databourse.steps.building) exchange pointers, never tables: files in the build's work
folder, named by relative paths in the tasks' small JSON results, each with the sha256 its pass
recorded (`sealed`). On the local store the folder is private to this machine (outside the
store); on S3 it is `staging/products/<product>/work/<build>/`: a task downloads what it reads
and uploads what it writes, so a Dask worker in another process (or on another machine) needs
nothing but the store and configs. Every read is checked against its seal (tasks.work_files).
On S3 the plan reads the staged file whole once and records its blocks' hashes; the passes read
only their byte ranges, each block checked (databourse.storage.ranges).
Keys and hierarchies are fetched by each task from its own process's resources, never passed.
Pass 3 and staging: tasks.assembling; the version and its manifest: tasks.packaging.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from databourse.ingest.records import IngestResult, load_ingest
from databourse.privacy.pseudonyms import needs_key
from databourse.product.partitions import Partition
from databourse.steps import building
from databourse.steps.building import Build, Counted, Decided, Plan, expected
from databourse.storage.store import ObjectStore
from tasks import resources
from tasks.retrying import RETRY_TRANSIENT
from tasks.staged import audited_refusal, local_copy, trusted_staged
from tasks.work_files import (
    SOURCE_DATA,
    private_folder,
    private_source,
    remove_work_folder,
    source_file,
    work_folder,
)


def fetch_build(product_id: str) -> Build:
    """The build of one product, fetched from this process's resources."""
    cfg = resources.config()
    product = cfg.product(product_id)
    key = resources.pseudonym_keys(product) if needs_key(product) else None
    return building.open_build(cfg, resources.store(), product_id, key)


@contextmanager
def planned_files(
    store: ObjectStore, work: str, record: IngestResult, trusted: dict[str, Any]
) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """What the plan reads and writes: the staged file (the build's private copy on the local
    store, checked; else a download the plan checks in the read that hashes its blocks), the
    work folder, and the seal of the private copy."""
    seals = private_source(store, work, record.staged_key, trusted)
    private = private_folder(store, work)
    with (
        nullcontext(private / SOURCE_DATA)
        if private is not None
        else local_copy(store, record.staged_key) as path,
        work_folder(store, work, {}) as folder,
    ):
        yield path, folder, seals


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
    rows = building.partition_rows(build.cfg, partition_rows)
    work = building.work_prefix(product_id, ingest_id)
    trusted = trusted_staged(build.store, record)  # `_ingest.json` agrees with the trail
    try:
        plan = planned(build, record, trusted, work, rows)
    except BaseException:  # a retry plans a new work folder: this one would never be dropped
        remove_work_folder(build.store, work)
        raise
    log_planned(plan, rows)
    return plan.to_json()


def planned(
    build: Build, record: IngestResult, trusted: dict[str, Any], work: str, rows: int
) -> Plan:
    """The plan of the build on its staged file (`planned_files`); on S3 (no seals: the passes
    read byte ranges checked against the plan's hashes) the download is checked in the read
    that hashes its blocks, a refusal audited."""
    with planned_files(build.store, work, record, trusted) as (path, folder, seals):
        uri = None if seals else build.store.uri(record.staged_key)
        with audited_refusal(record.provider, record.dataset):
            return building.plan_build(build, record, trusted, work, path, folder, seals, rows, uri)


def log_planned(plan: Plan, rows: int) -> None:
    """How the plan cut the staged dataset."""
    get_run_logger().info(
        "%s: %d partition(s) of up to ~%d rows (%d rows)",
        plan.product, len(plan.partitions), rows, sum(p.rows for p in plan.partitions),
    )  # fmt: skip


@task(
    name="count-classes",
    task_run_name="count {plan[product]} part {part[index]}",
    **RETRY_TRANSIENT,
)
def count_classes(plan: dict[str, Any], part: dict[str, int]) -> dict[str, Any] | None:
    """Pass 1: grouped counts of the privacy model's columns in one partition."""
    build = fetch_build(plan["product"])
    with (
        source_file(build.store, plan) as source,
        work_folder(build.store, plan["work"], {}) as work,
    ):
        out = building.count_classes(build, Partition.from_json(part), source, work)
        return None if out is None else out.to_json()


@task(
    name="decide-privacy",
    task_run_name="decide privacy of {plan[product]}",
    **RETRY_TRANSIENT,
)
def decide_privacy(plan: dict[str, Any], counted: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Merge the partitions' counts and decide the privacy model (PrivacyModelFailed stops it)."""
    build = fetch_build(plan["product"])
    done = [Counted.from_json(c) for c in counted if c is not None]
    reads = expected([c.counts for c in done], *(c.sealed for c in done))
    with work_folder(build.store, plan["work"], reads) as work:
        return building.decide_privacy(build, done, work).to_json()


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
    decision = Decided.from_json(decided)
    reads = expected(decision.names(), decision.sealed)
    with (
        source_file(build.store, plan) as source,
        work_folder(build.store, plan["work"], reads) as work,
    ):
        out = building.write_records(build, Partition.from_json(part), decision, source, work)
        return out.to_json()


@task(name="drop-work", task_run_name="drop work of {plan[product]}")
def drop_work(plan: dict[str, Any]) -> int:
    """Remove the build's work folder (its segments hold records not yet verified)."""
    return remove_work_folder(resources.store(), plan["work"])
