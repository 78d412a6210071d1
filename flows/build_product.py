"""Flow: anonymize an ingested dataset by a product's rules and package it as a version.

The anonymization runs as the subflow `anonymize-product`: passes over partitions of the staged
dataset mapped as tasks (count, decide, write, lay out, write files, verify and stage). Its task
runner is the configured one (`settings.runs.task_runner`): a flow's task runner is fixed when
it is decorated, so `build_product` resolves it at call time and runs the subflow
`with_options(task_runner=...)`. Callers (process_drop, nightly, a deployment run) need do
nothing; a Dask cluster lives only while the subflow runs (or is reached at `dask_address`).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, unmapped

from flows.run_names import tags_of_this_run, untagged_tasks
from flows.runners import partition_runner
from tasks import resources
from tasks.assembling import finish_build, lay_out_files, write_file
from tasks.building import (
    count_classes,
    decide_privacy,
    drop_work,
    plan_build,
    write_records,
)
from tasks.lineage import built, tracked
from tasks.packaging import package_version


@flow(name="build-product", flow_run_name="build/{product}/{ingest_id}")
def build_product(
    product: str, ingest_id: str, partition_rows: int | None = None
) -> dict[str, Any]:
    """Returns the version (new, or the existing one with the same content hash).

    `partition_rows` overrides the configured partition size for this run."""
    with untagged_tasks(), tracked(built(product, ingest_id)) as run:
        runner = partition_runner(resources.config().settings.runs)
        anonymize = anonymize_product.with_options(task_runner=runner)
        with tags_of_this_run():
            anonymized = anonymize(product, ingest_id, partition_rows)
        run.result = {"schema": anonymized["schema"], **package_version(product, anonymized)}
    return run.result


@flow(name="anonymize-product", flow_run_name="anonymize/{product}/{ingest_id}")
def anonymize_product(
    product: str, ingest_id: str, partition_rows: int | None = None
) -> dict[str, Any]:
    """The product's files staged by content hash, and the figures for its manifest."""
    with untagged_tasks(), tracked(built(product, ingest_id)) as run:
        plan = plan_build(product, ingest_id, partition_rows)
        try:
            parts = plan["partitions"]
            counted = count_classes.map(unmapped(plan), parts).result() if plan["counts"] else []
            decided = decide_privacy(plan, counted)
            written = write_records.map(unmapped(plan), parts, unmapped(decided)).result()
            layout = lay_out_files(plan, decided, written)
            entries = write_file.map(unmapped(plan), unmapped(decided), layout["files"]).result()
            run.result = finish_build(plan, decided, layout, entries)
        finally:
            drop_work(plan)
    return run.result
