"""Task: take one provider file into the raw zone and staging."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from databourse.errors import GateFailed
from databourse.ingest import fetched_source, ingest_file
from tasks import reporting, resources


@task(name="ingest-file", task_run_name="ingest {provider}/{dataset}")
def ingest(provider: str, dataset: str, source: str) -> dict[str, Any]:
    """Ingest `source` (a path or s3:// URI); returns the `_ingest.json` record."""
    logger = get_run_logger()
    cfg = resources.config()
    spec = cfg.dataset(provider, dataset)
    store = resources.store()
    with fetched_source(source, cfg.s3_endpoint_url, cfg.settings.storage.region) as path:
        try:
            result = ingest_file(store, provider, dataset, spec, path)
        except GateFailed as exc:
            resources.audit("quarantine", exc, provider=provider, dataset=dataset)
            raise
    if not result.duplicate:
        resources.catalog().audit_append(
            "ingest",
            detail={
                "provider": provider,
                "dataset": dataset,
                "ingest_id": result.ingest_id,
                "sha256": result.sha256,
                "rows": result.rows,
                "file": result.source_name,
            },
        )
    if result.duplicate:
        logger.info(
            "%s: identical bytes already ingested as %s; nothing stored again",
            result.source_name,
            result.ingest_id,
        )
    else:
        logger.info("%s: %d rows ingested as %s", result.source_name, result.rows, result.ingest_id)
    reporting.markdown(
        f"ingest-{provider}-{dataset}",
        f"### Ingest `{provider}/{dataset}`\n\n| | |\n|---|---|\n"
        f"| file | `{result.source_name}` |\n| ingest id | `{result.ingest_id}` |\n"
        f"| sha256 | `{result.sha256}` |\n| bytes | {result.size} |\n| rows | {result.rows} |\n"
        f"| duplicate | {result.duplicate} |\n| raw | `{store.uri(result.raw_key)}` |\n",
        "Ingest record",
    )
    return {**result.to_json(), "duplicate": result.duplicate}
