"""Task: which provider drops in the landing zone are new (by content hash)."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from databourse.ingest.landing import DiscoverResult
from databourse.steps import ingesting
from tasks import reporting, resources
from tasks.retrying import RETRY_TRANSIENT


@task(
    name="discover",
    task_run_name="discover {provider}",
    **RETRY_TRANSIENT,
)
def discover_drops(provider: str | None = None) -> dict[str, Any]:
    """List the landing zone, classify every drop; returns `DiscoverResult.to_json()`."""
    result = ingesting.discover_drops(resources.bundle(), provider)
    summary = {k: v for k, v in result.summary().items() if v}
    get_run_logger().info("landing: %s", summary or "empty")
    reporting.table(f"landing-{provider or 'all'}", drop_rows(result), "Drops in the landing zone")
    return result.to_json()


def drop_rows(result: DiscoverResult) -> list[dict[str, Any]]:
    """One row per drop, as the landing-zone artifact lists them."""
    return [
        {
            "key": d.key,
            "status": d.status,
            "reason": d.reason or "",
            "duplicate of": d.duplicate_of or "",
            "expected rows": d.expected_rows if d.expected_rows is not None else "",
        }
        for d in result.drops
    ]
