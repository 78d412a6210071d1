"""Flow: one provider file into the raw zone and staging."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.run_names import dated, untagged_tasks
from tasks.anchoring import anchor_audit
from tasks.ingesting import ingest
from tasks.lineage import ingested, tracked


@flow(name="ingest-dataset", flow_run_name=dated("ingest", "provider", "dataset"))
def ingest_dataset(
    provider: str,
    dataset: str,
    source: str,
    source_name: str | None = None,
    expected_rows: int | None = None,
    expected_sha256: str | None = None,
) -> dict[str, Any]:
    """Ingest `source` (local path or s3:// URI) for a provider's dataset."""
    with untagged_tasks(), tracked(ingested(provider, dataset)) as run:
        result = ingest(provider, dataset, source, source_name, expected_rows, expected_sha256)
        anchor_audit()
        run.result = result
    return result
