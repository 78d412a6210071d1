"""Flow: list the landing zone and say which drops are new."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.run_names import dated
from tasks.discovering import discover_drops
from tasks.lineage import no_datasets, tracked
from tasks.retrying import DISCOVER_RUN_SECONDS


@flow(
    name="discover-landing",
    flow_run_name=dated("discover", "provider"),
    timeout_seconds=DISCOVER_RUN_SECONDS,
)
def discover_landing(provider: str | None = None) -> dict[str, Any]:
    """Classify every drop under landing/ (or one provider's) by content hash."""
    with tracked(no_datasets):
        return discover_drops(provider)
