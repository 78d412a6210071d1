"""Gated transfers through the Prefect API: list suspended publish runs, answer them, sweep."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus

from tasks.publishing import PUBLISH_FLOW, market_of


class ApprovalError(RuntimeError):
    """An answer could not be given (no such run, not waiting, refused by the server)."""


@dataclass(frozen=True)
class Waiting:
    run_id: str
    run_name: str
    product: str
    version: str
    market: str
    since: str
    timeout_at: str | None

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def waiting(now: dt.datetime | None = None) -> list[Waiting]:
    """Publish runs suspended on an approval form and still in time, oldest first."""
    now = now or dt.datetime.now(dt.UTC)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[PUBLISH_FLOW])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            ),
        )
    out = []
    for run in runs:
        details = run.state.state_details if run.state else None
        market = market_of(details.pause_key if details else None)
        timeout = details.pause_timeout if details else None
        if market is None or (timeout is not None and timeout < now):
            continue  # another kind of pause, or expired (the sweep records it)
        out.append(
            Waiting(
                run_id=str(run.id),
                run_name=run.name,
                product=str(run.parameters.get("product")),
                version=str(run.parameters.get("version")),
                market=market,
                since=run.state.timestamp.isoformat() if run.state else "",
                timeout_at=timeout.isoformat() if timeout else None,
            )
        )
    return sorted(out, key=lambda w: w.since)


def answer(run_id: str, form: dict[str, Any], wait_seconds: float = 120) -> str:
    """Resume a suspended publish run with the form's answer; return the run's next state."""
    try:
        uuid = UUID(run_id)
    except ValueError:
        raise ApprovalError(f"{run_id!r} is not a flow run id") from None
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(uuid)
        if run.state is None or not run.state.is_paused():
            state = run.state.name if run.state else "unknown"
            raise ApprovalError(f"run {run.name} ({run_id}) is not waiting for approval: {state}")
        result = client.resume_flow_run(uuid, run_input=_jsonable(form))
        if result.status != SetStateStatus.ACCEPT:
            reason = getattr(result.details, "reason", None) or "no reason given"
            raise ApprovalError(f"the Prefect API refused the answer: {reason}")
        return _wait_settled(client, uuid, wait_seconds)


def _wait_settled(client: Any, run_id: UUID, seconds: float) -> str:
    """Wait until the resumed run completes, fails, or suspends again (next market)."""
    deadline = time.monotonic() + seconds
    time.sleep(1)
    while True:
        state = client.read_flow_run(run_id).state
        settled = state is not None and (
            state.is_final() or (state.is_paused() and state.name == "Suspended")
        )
        if settled or time.monotonic() > deadline:
            return state.name if state else "unknown"
        time.sleep(1)


def _jsonable(form: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, dt.date) else v for k, v in form.items() if v is not None
    }
