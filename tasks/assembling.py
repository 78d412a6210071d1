"""Tasks: pass 3 of a product build (lay out and write its files), then verify and stage them."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import get_run_logger, task

from databourse.product.package import FileEntry
from databourse.steps import assembling
from databourse.steps.assembling import Anonymized, Layout
from databourse.steps.building import Decided, Plan, Written
from tasks import reporting, resources
from tasks.building import fetch_build
from tasks.retrying import RETRY_TRANSIENT
from tasks.work_files import work_folder


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
    decision = Decided.from_json(decided)
    outs = [Written.from_json(out) for out in written]
    if build.product.type != "aggregate":
        return assembling.lay_out_files(build, decision, outs).to_json()
    reads = assembling.cells_reads(Plan.from_json(plan), outs)
    with work_folder(build.store, plan["work"], reads) as work:
        layout = assembling.lay_out_files(build, decision, outs, work)
    return layout.to_json()


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
    reads = assembling.file_reads(build, Plan.from_json(plan), file)
    with work_folder(build.store, plan["work"], reads) as work:
        return asdict(assembling.write_file(build, Decided.from_json(decided), file, work))


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
    build = fetch_build(plan["product"])
    planned, laid_out = Plan.from_json(plan), Layout.from_json(layout)
    files = [FileEntry(**e) for e in entries]
    reads = assembling.finish_reads(build, planned, laid_out, files)
    with work_folder(build.store, planned.work, reads) as work:
        anonymized = assembling.finish_build(
            build, resources.catalog(), planned, Decided.from_json(decided), laid_out, files, work
        )
    report_finished(anonymized)
    return anonymized.to_json()


def report_finished(anonymized: Anonymized) -> None:
    """The privacy model's figures as an artifact (when there is a model), and the log line."""
    product_id, privacy = anonymized.product, anonymized.privacy
    if privacy.get("model"):
        reporting.table(
            f"privacy-{product_id}",
            [privacy_row(privacy)],
            f"Privacy model of {product_id} (figures only)",
        )
    get_run_logger().info(
        "%s: %d rows anonymized (%s), content hash %s",
        product_id, anonymized.rows, privacy.get("model"), anonymized.content_hash[:12],
    )  # fmt: skip


def privacy_row(privacy: dict[str, Any]) -> dict[str, Any]:
    """The privacy model's figures as one row of the artifact's table."""
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
