"""Tasks: the quality suite and the personal-data scan of a staged dataset."""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from typing import Any

from prefect import get_run_logger, task

from databourse.ingest.records import IngestResult, load_ingest
from databourse.product.partitions import Partition, Source
from databourse.steps import building, scanning, validating
from databourse.steps.building import expected
from databourse.steps.validating import PersonalDataScanned, QualityChecked, StagedSource
from databourse.storage.store import ObjectStore
from tasks import reporting, resources
from tasks.retrying import RETRY_TRANSIENT
from tasks.staged import audited_refusal, local_copy, trusted_staged
from tasks.work_files import remove_work_folder, source_file, work_folder

# The quality suite is Great Expectations, whose import (scipy.stats, altair, its expectation
# registry) was 72% of importing flows/process_drop.py: 18.6 of 25.9 s on the loaded 2-core
# benchmark machine (python -X importtime, issue 18), paid by every process that imports a flow
# (the runner, `bourse serve`, too). It is imported when a dataset is validated: see load_quality.


def load_quality() -> None:
    """Import the quality suite now, before the checks start: imported inside check_quality
    instead, beside the PII scan on the other thread, it made both slower (at 1M rows quality
    16.4 s and PII 11.7 s against 5.7 and 8.8 s: the import holds the GIL), and on a thread during
    the ingest it made the ingest 2-3x slower."""
    import databourse.quality.docs  # the report, page, history and score modules
    import databourse.quality.suite  # noqa: F401  (GX itself, through quality.gx_inputs)


@task(
    name="check-quality",
    task_run_name="quality {plan[provider]}/{plan[dataset]}/{plan[ingest_id]}",
    **RETRY_TRANSIENT,
)
def check_quality(plan: dict[str, Any], tallied: list[dict[str, Any]]) -> dict[str, Any]:
    """The dataset's suite finished on the partitions' tallies; quarantine the ingest when an
    error-severity expectation fails."""
    res = resources.bundle()
    parts = [scanning.Tallied.from_json(t) for t in tallied]
    reads = {name: sha256 for t in parts for name, sha256 in t.sealed.items()}  # all checked
    with work_folder(res.store, plan["work"], reads) as work:
        checked = validating.check_quality(
            res, plan["provider"], plan["dataset"], plan["ingest_id"],
            planned_source(res.store, plan), show=report_quality,
            validated_at=dt.datetime.fromisoformat(plan["validated_at"]),
            tallies=scanning.load_tallies(work, parts),
        )  # fmt: skip
    return checked.to_json()


@task(
    name="tally-quality",
    task_run_name="quality {plan[provider]}/{plan[dataset]} part {part[index]}",
    **RETRY_TRANSIENT,
)
def tally_quality(plan: dict[str, Any], part: dict[str, int]) -> dict[str, Any]:
    """The quality suite's counts, extremes and key hashes over one partition (work files)."""
    res = resources.bundle()
    spec = res.config.dataset(plan["provider"], plan["dataset"])
    with source_file(res.store, plan) as source, work_folder(res.store, plan["work"], {}) as work:
        tallied = scanning.tally_partition(
            spec, scanning.ValidationPlan.from_json(plan), Partition.from_json(part), source, work
        )
    return tallied.to_json()


def planned_source(store: ObjectStore, plan: dict[str, Any]) -> StagedSource:
    """The staged file as the plan's passes read it (checked byte ranges), for a step that
    opens it by its ingest record."""

    def opened(record: IngestResult) -> AbstractContextManager[Source]:
        return source_file(store, plan)

    return opened


def report_quality(checked: QualityChecked) -> None:
    """The quality artifacts (table, summary, link to the HTML page) and the log line."""
    from databourse.quality.docs import artifact_rows, markdown_summary

    report, name = checked.report, f"quality-{checked.provider}-{checked.dataset}"
    reporting.table(name, artifact_rows(report), f"Quality: {report.summary()}")
    reporting.markdown(f"{name}-summary", markdown_summary(report), "Quality summary")
    reporting.link(f"{name}-docs", checked.html_uri, "Quality report (HTML)")
    get_run_logger().info(
        "quality of %s/%s: %s", checked.provider, checked.dataset, report.summary()
    )


@task(
    name="plan-validation",
    task_run_name="plan validation of {provider}/{dataset}/{ingest_id}",
    **RETRY_TRANSIENT,
)
def plan_validation(
    provider: str, dataset: str, ingest_id: str, partition_rows: int | None = None
) -> dict[str, Any]:
    """Check the staged file against the audit trail and cut it into partitions; the passes
    read it in byte ranges checked against the hashes of this checked read's blocks."""
    res = resources.bundle()
    record = load_ingest(res.store, provider, dataset, ingest_id)
    rows = building.partition_rows(res.config, partition_rows)
    work = scanning.work_prefix(provider, dataset, ingest_id)
    trusted = trusted_staged(res.store, record)
    uri = res.store.uri(record.staged_key)
    with local_copy(res.store, record.staged_key) as path, audited_refusal(provider, dataset):
        plan = scanning.plan_validation(record, trusted, work, path, uri, rows)
    get_run_logger().info(
        "%s/%s: %d partition(s) of up to ~%d rows", provider, dataset, len(plan.partitions), rows
    )
    return plan.to_json()


@task(
    name="scan-partition",
    task_run_name="pii {plan[provider]}/{plan[dataset]} part {part[index]}",
    **RETRY_TRANSIENT,
)
def scan_partition(plan: dict[str, Any], part: dict[str, int]) -> dict[str, Any]:
    """Every column's personal-data counts over one partition (a sealed work file)."""
    store = resources.store()
    with source_file(store, plan) as source, work_folder(store, plan["work"], {}) as work:
        scanned = scanning.scan_partition(
            resources.config(), Partition.from_json(part), source, work
        )
    return scanned.to_json()


@task(
    name="scan-personal-data",
    task_run_name="pii {plan[provider]}/{plan[dataset]}/{plan[ingest_id]}",
    **RETRY_TRANSIENT,
)
def scan_personal_data(plan: dict[str, Any], scanned: list[dict[str, Any]]) -> dict[str, Any]:
    """Classify every column on the partitions' merged counts; undeclared personal data
    quarantines the ingest."""
    res = resources.bundle()
    scans = [scanning.Scanned.from_json(s) for s in scanned]
    reads = expected([s.counts for s in scans], *(s.sealed for s in scans))
    with work_folder(res.store, plan["work"], reads) as work:
        states = scanning.load_scans(work, scans)
    record = load_ingest(res.store, plan["provider"], plan["dataset"], plan["ingest_id"])
    judged = validating.judge_personal_data(res, record, states, show=report_personal_data)
    get_run_logger().info(
        "personal data of %s/%s matches the declaration", record.provider, record.dataset
    )
    return judged.to_json()


@task(name="drop-validation-work", task_run_name="drop work of {plan[work]}", **RETRY_TRANSIENT)
def drop_validation_work(plan: dict[str, Any]) -> None:
    """Remove the validation's work folder (the partitions' counts)."""
    remove_work_folder(resources.store(), plan["work"])


def report_personal_data(scanned: PersonalDataScanned) -> None:
    """The findings table (column, category, confidence; never values) and a warning for each
    declared category the scan did not find."""
    reporting.table(
        f"pii-{scanned.provider}-{scanned.dataset}",
        [{k: v for k, v in f.to_json().items() if k != "embedded"} for f in scanned.findings],
        "Personal data found by content (column, category, confidence; never values)",
    )
    for miss in scanned.check.not_found:
        get_run_logger().warning(
            "declared %s in column %s was not detected", miss["declared"], miss["column"]
        )
