"""Publish runs stopped after an answer: found from the Prefect API alone, for the operator.

A resumed publish run must record its answer. When the runner dies around the resume (SIGKILL,
machine lost) the run is left Scheduled, Pending or Running with nobody executing it, or Crashed
(by the zombie automation, bourse/automations.py) with the answer consumed and nothing recorded.
`stuck_runs` finds both kinds: an answer exists on one of the run's approval forms, and either
the run is neither paused nor final and has shown no state change and no heartbeat for `quiet`,
or it crashed and the caller's `recorded(run_id, product, version, market)` says an answered
market has no decision (from that run, or a standing one from any run). `bourse approvals
sweep` marks a stopped Pending or Running one Crashed (what the zombie automation does once
heartbeats stop; a Pending run never beat) and both it and `bourse approvals list` report
them: the operator retries (`bourse approvals retry RUN_ID`).
A Scheduled one is left for the runner (`bourse server start`) to pick up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.events.filters import (
    EventFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventResourceFilter,
)
from prefect.states import Crashed

from bourse.prefect_runs import newest_runs_of, runs_in_states
from tasks.publishing import PUBLISH_FLOW, market_of

FORM_PREFIX = "suspended-"  # Prefect stores a suspend form's answer as suspended-<key>-response
RESPONSE = "-response"
_LIVE = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
_NEXT = {
    "SCHEDULED": "no runner picked it up: is `bourse serve` running?",
    "PENDING": "its runner died while starting it",
    "RUNNING": "its process died (no heartbeat)",
    "CANCELLING": "its process died while cancelling",
    "CRASHED": "it crashed after the answer",
}


@dataclass(frozen=True)
class Stuck:
    """A publish run that will not record its answer by itself."""

    run_id: str
    run_name: str
    product: str
    version: str
    state: str
    state_type: str  # SCHEDULED, PENDING, RUNNING, CANCELLING or CRASHED
    since: str
    markets: list[str]  # answered on a form, no decision recorded from this run
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "markets": list(self.markets)}


def stuck_runs(
    client: SyncPrefectClient,
    quiet: dt.timedelta,
    recorded: Callable[[str, str, str, str], bool] = lambda _r, _p, _v, _m: False,
    now: dt.datetime | None = None,
) -> list[Stuck]:
    """Publish runs holding an answer that nothing is recording, oldest first."""
    now = now or dt.datetime.now(dt.UTC)
    runs = runs_in_states(client, [*_LIVE, StateType.CRASHED], flow_name=PUBLISH_FLOW)
    newest = {v: r.id for v, r in newest_runs_of(client, PUBLISH_FLOW, _version).items()}
    out = []
    for run in runs:
        if run.state is None:
            continue
        product, version = _version(run)
        if run.state.type == StateType.CRASHED and newest.get((product, version)) != run.id:
            continue  # retried since: the newer run asks again
        answered = answered_markets(client, run)
        markets = [m for m in answered if not recorded(str(run.id), product, version, m)]
        if not markets:
            continue
        last = last_sign_of_life(client, run)
        if run.state.type != StateType.CRASHED and now - last < quiet:
            continue  # still moving
        out.append(
            Stuck(
                run_id=str(run.id),
                run_name=run.name,
                product=product,
                version=version,
                state=str(run.state.name),
                state_type=run.state.type.value,
                since=last.isoformat(timespec="seconds"),
                markets=markets,
                reason=_NEXT.get(run.state.type.value, "it stopped"),
            )
        )
    return sorted(out, key=lambda s: s.since)


def _version(run: FlowRun) -> tuple[str, str]:
    """The (product, version) a publish run's parameters name."""
    return str(run.parameters.get("product")), str(run.parameters.get("version"))


def answered_markets(client: SyncPrefectClient, run: FlowRun) -> list[str]:
    """The markets whose approval form of this run holds an answer."""
    inputs = client.filter_flow_run_input(run.id, FORM_PREFIX, 100, set())
    markets = []
    for item in inputs:
        if not item.key.endswith(RESPONSE):
            continue
        market = market_of(item.key.removeprefix(FORM_PREFIX).removesuffix(RESPONSE))
        if market is not None and market not in markets:
            markets.append(market)
    return markets


def last_sign_of_life(client: SyncPrefectClient, run: FlowRun) -> dt.datetime:
    """The later of the run's last state change and its last heartbeat."""
    assert run.state is not None
    last = run.state.timestamp
    page = client.read_events(
        EventFilter(
            occurred=EventOccurredFilter(since=last),
            event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run.id}"]),
        ),
        limit=1,
    )
    for event in page.events:  # newest first
        last = max(last, event.occurred)
    return last


def find(decisions: list[dict[str, Any]], quiet_seconds: float, crash: bool = False) -> list[Stuck]:
    """Stuck publish runs, given the recorded decisions (dicts with flow_run_id and market).

    With `crash`, a stopped Pending, Running or Cancelling run is marked Crashed, so that it
    reads as what it is and `approvals retry` accepts it.
    """
    by_run = {(str(d.get("flow_run_id")), str(d.get("market"))) for d in decisions}
    by_version = {  # a later run answered it: an expiry does not count, the market asks again
        (str(d.get("product_id")), str(d.get("version")), str(d.get("market")))
        for d in decisions
        if d.get("decision") != "expired"
    }

    def recorded(run_id: str, product: str, version: str, market: str) -> bool:
        return (run_id, market) in by_run or (product, version, market) in by_version

    found = []
    with get_client(sync_client=True) as client:
        for s in stuck_runs(client, dt.timedelta(seconds=quiet_seconds), recorded):
            if crash and s.state_type not in ("CRASHED", "SCHEDULED"):
                message = f"stopped after an answer ({', '.join(s.markets)}): {s.reason}"
                client.set_flow_run_state(UUID(s.run_id), Crashed(message=message), force=True)
                s = replace(s, state="Crashed", state_type="CRASHED")
            found.append(s)
    return found


def describe(s: Stuck) -> str:
    """One line an operator can act on."""
    then = (
        "start the runner: bourse server start"
        if s.state_type == "SCHEDULED"
        else f"retry: bourse approvals retry {s.run_id}"
    )
    return (
        f"stuck: {s.run_name} ({s.run_id}) {s.product}@{s.version}, {s.state} since {s.since}: "
        f"answer for {', '.join(s.markets)} not recorded, {s.reason}; {then}"
    )
