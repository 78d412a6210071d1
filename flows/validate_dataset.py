"""Flow: quality suite and personal-data scan of an ingested dataset."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.run_names import untagged_tasks
from tasks.lineage import tracked, validated
from tasks.validating import check_quality, load_quality, scan_personal_data


@flow(name="validate-dataset", flow_run_name="validate/{provider}/{dataset}/{ingest_id}")
def validate_dataset(provider: str, dataset: str, ingest_id: str) -> dict[str, Any]:
    """Both gates run, concurrently; either failing quarantines the ingest and fails the run."""
    with untagged_tasks(), tracked(validated(provider, dataset, ingest_id)):
        load_quality()  # before the two threads start (see load_quality)
        quality = check_quality.submit(provider, dataset, ingest_id)
        pii = scan_personal_data.submit(provider, dataset, ingest_id)
        return {"quality": quality.result(), "pii": pii.result()}
