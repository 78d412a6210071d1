"""Flow: every new drop in the landing zone, each processed as a child run."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.task_runners import ThreadPoolTaskRunner

from databourse.landing import DiscoverResult
from flows.process_drop import process_drop
from flows.run_names import dated
from tasks import reporting, resources
from tasks.discovering import discover_drops
from tasks.limits import ensure_provider_limits


@task(name="process-new-drop", task_run_name="drop {key}")
def process_new_drop(key: str, drop: dict[str, Any], publish_wait_seconds: float) -> dict[str, Any]:
    """One new drop as a child run of the nightly run (its failure fails this task only)."""
    store = resources.store()
    local = store.local_path(key)
    state = process_drop(
        drop["provider"],
        drop["dataset"],
        str(local) if local is not None else store.uri(key),
        publish_wait_seconds,
        drop["name"],
        drop["expected_rows"],
        drop.get("sha256"),  # the ingest refuses other bytes (a file swapped since discovery)
        return_state=True,
    )
    if state.is_failed():
        get_run_logger().warning("drop %s: %s (see its run)", key, state.name)
    return {"key": key, "state": state.name, "ingest_id": drop["ingest_id"]}


@flow(
    name="nightly",
    flow_run_name=dated("nightly", "provider"),
    task_runner=ThreadPoolTaskRunner(max_workers=8),  # type: ignore[arg-type]  # generic Never
)
def nightly(provider: str | None = None, publish_wait_seconds: float = 60) -> dict[str, Any]:
    """Discover what is new by content hash; process each new drop; one failure stops no other."""
    logger = get_run_logger()
    ensure_provider_limits()
    found = DiscoverResult.from_json(discover_drops(provider))
    parallel = resources.config().settings.runs.nightly_parallel
    outcomes: list[dict[str, Any]] = []
    new = found.new
    for start in range(0, len(new), parallel):  # at most `parallel` child runs at once
        futures = [
            process_new_drop.submit(d.key, asdict(d), publish_wait_seconds)
            for d in new[start : start + parallel]
        ]
        outcomes += [f.result() for f in futures]
    reporting.table(f"nightly-{provider or 'all'}", outcomes, "Drops processed by this run")
    failed = [o for o in outcomes if o["state"] != "Completed"]
    logger.info("nightly: %d new drop(s), %d not completed", len(outcomes), len(failed))
    return {"processed": outcomes, "summary": found.summary(), "failed": len(failed)}
