"""Markets pending approval that no question asks for: the catalog against the Prefect API.

A market stays `pending_approval` until a person answers its form. The publish run that decides
a version asks the first gated market and starts a run for each other one (tasks.asking). When
no run that asks a market is live any more (cancelled from the UI or the API, failed on a
timeout, crashed, completed by force, or deleted), nobody will ever be asked: `unasked`
names every such market, whatever its run's state, with the command that asks again. `bourse
approvals list` and `approvals sweep` print them and `bourse verify --all` warns about them.
`close_abandoned` closes the questions still marked waiting on runs that were cancelled or
deleted (status `cancelled`, audited `question_closed`), so that no answer forced onto such a
run later counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound

from bourse.approvals import subject
from bourse.prefect_runs import created, runs_in_states
from databourse.catalog.database import Catalog
from tasks.publishing import PUBLISH_FLOW

# A run in one of these states still asks (or will): it is not given up on.
LIVE = (
    StateType.SCHEDULED,
    StateType.PENDING,
    StateType.RUNNING,
    StateType.PAUSED,
    StateType.CANCELLING,
)


@dataclass(frozen=True)
class Unasked:
    """A market pending approval with no live publish run to ask for it."""

    product: str
    version: str
    market: str
    run_id: str | None  # the version's latest publish run (None: none exists in Prefect)
    run_name: str | None
    state: str | None  # that run's state name
    why: str
    then: str  # the command that asks again

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def unasked(catalog: Catalog) -> list[Unasked]:
    """Every market pending approval on a version not withdrawn that no live run asks for."""
    pending = [p for p in catalog.pending_approvals() if p["version_status"] != "withdrawn"]
    if not pending:
        return []
    with get_client(sync_client=True) as client:
        runs = runs_in_states(client, None, flow_name=PUBLISH_FLOW)
    by_version: dict[tuple[str, str], list[FlowRun]] = defaultdict(list)
    for run in runs:
        by_version[subject(catalog, run)].append(run)
    out = []
    for p in pending:
        mine = sorted(
            (r for r in by_version[(p["product_id"], p["version"])] if _may_ask(r, p["market"])),
            key=created,
        )
        if any(r.state is not None and r.state.type in LIVE for r in mine):
            continue  # it asks, or will
        out.append(_unasked(catalog, p, mine[-1] if mine else None))
    return out


def _may_ask(run: FlowRun, market: str) -> bool:
    """Whether the run asks (or starts the run that asks) `market`: the run that decides a
    version asks every market; a run started for one market asks that one alone."""
    alone = (run.parameters or {}).get("market")
    return alone is None or alone == market


def _unasked(catalog: Catalog, pending: dict[str, Any], run: FlowRun | None) -> Unasked:
    product, version, market = pending["product_id"], pending["version"], pending["market"]
    asked = [q for q in catalog.pending_of_version(product, version) if q["market"] == market]
    if run is None:
        source = catalog.show(product)["product"]
        gone = (
            f"its publish run {asked[-1]['flow_run_id']} was deleted from Prefect" if asked else ""
        )
        return Unasked(
            product, version, market, None, None, None,
            why=gone or "no publish run of this version exists in Prefect",
            then=f"re-run its drop: bourse run {source['provider']} {source['dataset']} SOURCE",
        )  # fmt: skip
    state = run.state
    name = state.name if state is not None else "unknown"
    said = ((state.message if state is not None else None) or "").splitlines()
    why = f"its publish run {run.name} ({run.id}) is {name}" + (
        f" ({said[0][:200]})" if said else ""
    )
    mine = [q for q in asked if q["flow_run_id"] == str(run.id)]
    why += f"; its question is marked {mine[-1]['status']}" if mine else "; it was never asked"
    return Unasked(
        product, version, market, str(run.id), run.name, name, why,
        then=f"bourse approvals retry {run.id}",
    )  # fmt: skip


def close_abandoned(catalog: Catalog) -> list[dict[str, Any]]:
    """Close the waiting questions of runs cancelled or deleted in Prefect (audited); returns
    the questions closed."""
    runs = sorted({str(p["flow_run_id"]) for p in catalog.waiting_pending()})
    closed: list[dict[str, Any]] = []
    with get_client(sync_client=True) as client:
        for run_id in runs:
            try:
                state = client.read_flow_run(UUID(run_id)).state
            except ValueError:
                continue  # not a Prefect run id: nothing to ask Prefect
            except ObjectNotFound:
                closed += catalog.close_abandoned(
                    run_id, "its publish run was deleted from Prefect"
                )
                continue
            if state is not None and state.type == StateType.CANCELLED:
                closed += catalog.close_abandoned(run_id, "its publish run was cancelled")
    return closed


def describe(u: Unasked) -> str:
    """One line an operator can act on."""
    return (
        f"not asked: {u.product}@{u.version} -> {u.market} waits for approval but no publish run "
        f"asks for it: {u.why}; to ask again: {u.then}"
    )
