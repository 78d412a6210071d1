"""Flow: quality suite and personal-data scan of an ingested dataset.

A plan checks the staged file against the audit trail once, hashing its blocks; the quality
suite and the scan then read it in byte ranges, each block checked. Both run in partitions of
the staged dataset mapped as tasks on the flow's task runner: the scan counts each partition,
then merges and decides; the quality suite tallies each partition (`quality.tally`: counts,
extremes, key hashes), then finishes on the whole file what needs it (schema, row count, the
values of repeated key hashes, expectations that are not row-wise). process_drop runs this flow
on the configured runner (flows.runners: threads, or Dask workers), so partitions of one drop
may be checked in other processes or on other machines. The findings and the quality report do
not depend on the partitioning or the runner.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, unmapped
from prefect.futures import PrefectFuture, wait

from flows.run_names import untagged_tasks
from tasks import reporting
from tasks.lineage import tracked, validated
from tasks.validating import (
    check_quality,
    drop_validation_work,
    load_quality,
    plan_validation,
    scan_partition,
    scan_personal_data,
    tally_quality,
)


@flow(name="validate-dataset", flow_run_name="validate/{provider}/{dataset}/{ingest_id}")
def validate_dataset(
    provider: str, dataset: str, ingest_id: str, partition_rows: int | None = None
) -> dict[str, Any]:
    """Both gates run, concurrently; either failing quarantines the ingest and fails the run.

    `partition_rows` overrides the configured partition size for this run."""
    with untagged_tasks(), tracked(validated(provider, dataset, ingest_id)):
        load_quality()  # before the threads start (see load_quality)
        plan = plan_validation(provider, dataset, ingest_id, partition_rows)
        started: list[PrefectFuture[Any]] = []
        try:
            parts = plan["partitions"]
            tallies = tally_quality.map(unmapped(plan), parts)
            scans = scan_partition.map(unmapped(plan), parts)
            started += [*tallies, *scans]
            rows = [p["rows"] for p in parts]
            for gate, futures, what in (
                ("pii", scans, "Personal-data scan"),
                ("quality", tallies, "Quality suite"),
            ):
                reporting.partitions_progress(
                    f"{gate}-progress-{provider}-{dataset}",
                    f"{what} of {provider}/{dataset}: rows done",
                    list(futures),
                    rows,
                )
            pii = scan_personal_data.submit(plan, scans.result())  # a failed part raises here
            started.append(pii)  # waited for, even when a tally raises on the next line
            quality = check_quality.submit(plan, tallies.result())
            started.append(quality)
            quality.wait()
            pii.wait()
        finally:
            wait(started)  # a part still running when another failed writes no work files after
            drop_validation_work(plan)
        return {"quality": quality.result(), "pii": pii.result()}
