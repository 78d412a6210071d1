"""Task: which provider drops in the landing zone are new (by content hash)."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from databourse.errors import IngestRejected
from databourse.ingest.landing import discover
from tasks import reporting, resources
from tasks.retrying import RETRY_TRANSIENT


@task(
    name="discover",
    task_run_name="discover {provider}",
    **RETRY_TRANSIENT,
)
def discover_drops(provider: str | None = None) -> dict[str, Any]:
    """List the landing zone, classify every drop; returns `DiscoverResult.to_json()`."""
    result = discover(resources.store(), resources.config().providers, provider)
    summary = {k: v for k, v in result.summary().items() if v}
    get_run_logger().info("landing: %s", summary or "empty")
    for drop in (d for d in result.drops if d.status == "refused"):  # a link: recorded each time
        refused = IngestRejected(f"{drop.key}: {drop.reason}", file=drop.key)
        resources.audit("quarantine", refused, provider=drop.provider, dataset=drop.dataset)
    rows = [
        {
            "key": d.key,
            "status": d.status,
            "reason": d.reason or "",
            "duplicate of": d.duplicate_of or "",
            "expected rows": d.expected_rows if d.expected_rows is not None else "",
        }
        for d in result.drops
    ]
    reporting.table(f"landing-{provider or 'all'}", rows, "Drops in the landing zone")
    return result.to_json()
