"""Flow: every new drop in the landing zone, each processed as its own deployment run.

The nightly run discovers and dispatches; it does no data work. Each new drop runs as a run of
the `drop` deployment (`process-drop/drop`) on whichever worker of the pool is free (or the
embedded runner of `bourse serve`), shown in the UI as a child of this run. At most
`runs.nightly_parallel` drops are started and not yet ended, and at most a provider's limit of
one provider's: the pool's queue never fills with drops that would hold worker slots while they
wait for a provider slot. This run waits by reading the runs' states every
`runs.nightly_poll_seconds`, holding no provider slot and no data.

A drop run whose process died (a killed worker: the zombie automation marks it Crashed; a run
Pending or Running with neither a state change nor a heartbeat for `runs.drop_silence_seconds`,
which the automation never sees, the nightly marks Crashed itself) is started anew, at most
`runs.drop_restarts` times; one drop's failure stops no other. A run is
keyed by the catalog, dataset and content hash (`tasks/dispatching.py`): a re-run nightly meets
the same runs, never a second one. The summary artifact lists every drop's outcome, the worker
that ran it and a link to its run.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventResourceFilter,
)
from prefect.states import Crashed
from prefect.utilities.urls import url_for

from databourse.ingest.landing_drops import DiscoverResult, Drop
from databourse.storage import zones
from flows.run_names import dated
from tasks import reporting, resources
from tasks.discovering import discover_drops
from tasks.dispatching import DROP_DEPLOYMENT, WORKER_TAG, start_keyed
from tasks.limits import ensure_provider_limits, limit_name
from tasks.lineage import no_datasets, tracked


@dataclass
class Dispatch:
    """One new drop and the runs started for it (the last is its current run)."""

    drop: Drop
    runs: list[FlowRun] = field(default_factory=list)
    error: str | None = None  # why no run could be started

    @property
    def current(self) -> FlowRun | None:
        return self.runs[-1] if self.runs else None

    def ended(self) -> bool:
        run = self.current
        return self.error is not None or (
            run is not None and run.state is not None and run.state.is_final()
        )

    def _state(self) -> str:
        """The run's state name; Completed only when the store shows the drop ingested (a run's
        state is whatever an API holder last set)."""
        run = self.current
        if run is None or run.state is None:
            return "Unknown"
        if run.state.is_completed() and not ingested(self.drop):
            return "Completed without an ingest"
        return str(run.state.name)

    def outcome(self) -> dict[str, Any]:
        """A row of the summary: names, states, links; no data."""
        run = self.current
        tags = {t for r in self.runs for t in r.tags}
        workers = sorted(t.removeprefix(WORKER_TAG) for t in tags if t.startswith(WORKER_TAG))
        return {
            "key": self.drop.key,
            "provider": self.drop.provider,
            "dataset": self.drop.dataset,
            "ingest_id": self.drop.ingest_id,
            "state": self.error or self._state(),
            "run": run.name if run else None,
            "run_id": str(run.id) if run else None,
            "link": url_for(run) if run else None,
            "worker": ", ".join(workers) or None,
            "attempts": len(self.runs),
        }


def ingested(drop: Drop) -> bool:
    """The store holds the drop's ingest record (what a Completed drop run leaves behind)."""
    if drop.ingest_id is None:
        return False
    record = f"{zones.raw_prefix(drop.provider, drop.dataset, drop.ingest_id)}/_ingest.json"
    return resources.store().exists(record)


def _drop_key(drop: Drop) -> str:
    return f"{resources.catalog().identity}/drop/{drop.provider}/{drop.dataset}#{drop.sha256}"


def _start(dispatch: Dispatch, publish_wait_seconds: float) -> None:
    """Start (or meet again) the drop's run; a failure to start is the drop's outcome."""
    drop = dispatch.drop
    store = resources.store()
    local = store.local_path(drop.key)
    parameters = {
        "provider": drop.provider,
        "dataset": drop.dataset,
        "source": str(local) if local is not None else store.uri(drop.key),
        "publish_wait_seconds": publish_wait_seconds,
        "source_name": drop.name,
        "expected_rows": drop.expected_rows,
        "expected_sha256": drop.sha256,  # the ingest refuses other bytes (swapped since discovery)
    }
    try:
        run = start_keyed(
            DROP_DEPLOYMENT,
            parameters,
            _drop_key(drop),
            ["nightly-drop", f"provider:{drop.provider}", f"dataset:{drop.dataset}"],
            as_subflow=True,  # shown under this run in the UI; it runs on its own worker
            what=f"drop {drop.key}",
            done=lambda: ingested(drop),
        )
    except Exception as exc:  # one drop's failure to start stops no other
        dispatch.error = f"not started: {type(exc).__name__}"
        get_run_logger().error("drop %s could not be started: %s", drop.key, exc)
        return
    dispatch.runs.append(run)


def _refresh(dispatches: list[Dispatch], silence: float) -> None:
    """Read the current state of every started run that has not ended; a silent one is dead."""
    open_runs = {str(d.current.id): d for d in dispatches if d.current and not d.ended()}
    if not open_runs:
        return
    with get_client(sync_client=True) as client:
        found = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(open_runs)))
        )
        for run in found:
            if is_silent(client, run, silence):
                run = crash_silent_run(client, run, silence)
                get_run_logger().warning("drop run %s: %s", run.name, run.state.message)  # type: ignore[union-attr]
            open_runs[str(run.id)].runs[-1] = run


def is_silent(client: SyncPrefectClient, run: FlowRun, silence: float) -> bool:
    """Pending or Running, and neither a state change nor a heartbeat for `silence` seconds.

    A live worker starts a Pending run within seconds, and a running drop beats every
    `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` seconds (30: `bourse worker` and `bourse serve` set it).
    """
    state = run.state
    if state is None or not (state.is_pending() or state.is_running()):
        return False
    now = dt.datetime.now(dt.UTC)
    if (now - state.timestamp).total_seconds() < silence:
        return False
    if state.is_pending():
        return True
    beats = client.read_events(
        EventFilter(
            occurred=EventOccurredFilter(since=now - dt.timedelta(seconds=silence), until=now),
            event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run.id}"]),
        ),
        limit=1,
    )
    return not beats.events


def crash_silent_run(client: SyncPrefectClient, run: FlowRun, silence: float) -> FlowRun:
    """Mark a silent run Crashed (as the zombie automation would), so that it is started again."""
    state = run.state.name if run.state else "?"
    message = f"{state} without a state change or a heartbeat for {silence:.0f} s: taken for dead"
    client.set_flow_run_state(run.id, Crashed(message=message), force=True)
    return client.read_flow_run(run.id)


def _restartable(dispatch: Dispatch, restarts: int) -> bool:
    run = dispatch.current
    return (
        run is not None
        and run.state is not None
        and run.state.is_crashed()
        and len(dispatch.runs) <= restarts
    )


def _dispatch_all(
    new: list[Drop], publish_wait_seconds: float, limits: dict[str, int]
) -> list[Dispatch]:
    """Start every new drop within the bounds, restart crashed ones, until all have ended."""
    settings = resources.config().settings.runs
    logger = get_run_logger()
    dispatches = [Dispatch(d) for d in new]
    waiting = list(dispatches)
    deadline = time.monotonic() + settings.nightly_wait_seconds
    while True:
        running = [d for d in dispatches if d.runs and not d.ended()]
        for dispatch in list(waiting):
            provider = dispatch.drop.provider
            of_provider = sum(1 for d in running if d.drop.provider == provider)
            bound = limits.get(limit_name(provider), settings.provider_concurrency)
            if len(running) >= settings.nightly_parallel or of_provider >= bound:
                continue
            waiting.remove(dispatch)
            _start(dispatch, publish_wait_seconds)
            if dispatch.runs and not dispatch.ended():
                running.append(dispatch)
        if not waiting and all(d.ended() for d in dispatches):
            return dispatches
        if time.monotonic() > deadline:
            for dispatch in dispatches:
                if not dispatch.ended():
                    dispatch.error = "given up at runs.nightly_wait_seconds"
            return dispatches
        time.sleep(settings.nightly_poll_seconds)
        _refresh(dispatches, settings.drop_silence_seconds)
        for dispatch in dispatches:
            if dispatch.ended() and _restartable(dispatch, settings.drop_restarts):
                logger.warning(
                    "drop %s: run %s crashed (its process is gone); starting it again",
                    dispatch.drop.key,
                    dispatch.current.name if dispatch.current else "?",
                )
                _start(dispatch, publish_wait_seconds)  # the key's chain: the run after it


@flow(name="nightly", flow_run_name=dated("nightly", "provider"))
def nightly(provider: str | None = None, publish_wait_seconds: float = 60) -> dict[str, Any]:
    """Discover what is new by content hash; run each new drop on a worker; one failure stops
    no other. `publish_wait_seconds`: how long each drop run waits for its publish run."""
    logger = get_run_logger()
    with tracked(no_datasets):
        limits = ensure_provider_limits()
        found = DiscoverResult.from_json(discover_drops(provider))
        outcomes = [d.outcome() for d in _dispatch_all(found.new, publish_wait_seconds, limits)]
    reporting.table(f"nightly-{provider or 'all'}", outcomes, "Drops processed by this run")
    failed = [o for o in outcomes if o["state"] != "Completed"]
    logger.info("nightly: %d new drop(s), %d not completed", len(outcomes), len(failed))
    return {"processed": outcomes, "summary": found.summary(), "failed": len(failed)}
