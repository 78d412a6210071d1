"""Flow: every new drop in the landing zone, each processed as a child run."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from databourse.landing import DiscoverResult
from flows.process_drop import process_drop
from tasks import reporting, resources
from tasks.discovering import discover_drops


@flow(name="nightly", flow_run_name="nightly/{provider}")
def nightly(provider: str | None = None, publish_wait_seconds: float = 60) -> dict[str, Any]:
    """Discover what is new by content hash; process each new drop; one failure stops no other."""
    logger = get_run_logger()
    found = DiscoverResult.from_json(discover_drops(provider))
    store = resources.store()
    outcomes = []
    for drop in found.new:
        source = store.local_path(drop.key)
        state = process_drop(
            drop.provider,
            drop.dataset,
            str(source) if source is not None else store.uri(drop.key),
            publish_wait_seconds,
            drop.name,
            drop.expected_rows,
            return_state=True,
        )
        outcomes.append({"key": drop.key, "state": state.name, "ingest_id": drop.ingest_id})
        if state.is_failed():
            logger.warning("drop %s failed: %s (see its run)", drop.key, state.name)
    reporting.table(f"nightly-{provider or 'all'}", outcomes, "Drops processed by this run")
    failed = [o for o in outcomes if o["state"] != "Completed"]
    logger.info("nightly: %d new drop(s), %d not completed", len(outcomes), len(failed))
    return {"processed": outcomes, "summary": found.summary(), "failed": len(failed)}
