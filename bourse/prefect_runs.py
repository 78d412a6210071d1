"""Reads of flow runs through the Prefect API the CLI shares: by state, paused, newest; polling."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType

# The server's PREFECT_SERVER_API_DEFAULT_LIMIT (200): a read without a limit stops there, and a
# larger limit is refused, so every read goes page by page.
PAGE = 200
_OLDEST = dt.datetime.min.replace(tzinfo=dt.UTC)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def runs_in_states(
    client: SyncPrefectClient,
    states: Iterable[StateType] | None,
    *,
    flow_name: str | None = None,
    page: int = PAGE,
) -> list[FlowRun]:
    """Every flow run (of `flow_name`) in one of `states` (None: any), in the API's order."""
    flows = FlowFilter(name=FlowFilterName(any_=[flow_name])) if flow_name is not None else None
    in_states = (
        FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(states))))
        if states is not None
        else None
    )
    out: list[FlowRun] = []
    seen: set[object] = set()
    read = 0
    while True:
        got = client.read_flow_runs(
            flow_filter=flows, flow_run_filter=in_states, limit=page, offset=read
        )
        read += len(got)
        # A run created, or changing state, between two pages shifts the next one: never twice.
        out += [run for run in got if run.id not in seen]
        seen.update(run.id for run in got)
        if len(got) < page:
            return out


def paused_runs(client: SyncPrefectClient, flow_name: str) -> list[FlowRun]:
    """The runs of `flow_name` paused or suspended now (on a form or not), in the API's order."""
    return runs_in_states(client, [StateType.PAUSED], flow_name=flow_name)


def newest_runs_of(
    client: SyncPrefectClient, flow_name: str, key: Callable[[FlowRun], K]
) -> dict[K, FlowRun]:
    """The newest run (by creation) of `flow_name` for each `key(run)`, keys oldest first."""
    newest: dict[K, FlowRun] = {}
    for run in sorted(runs_in_states(client, None, flow_name=flow_name), key=created):
        newest[key(run)] = run
    return newest


def created(run: FlowRun) -> dt.datetime:
    """When the run was created (a run without the time sorts first)."""
    return run.created or _OLDEST


def wait_until(
    read: Callable[[], T],
    done: Callable[[T], bool],
    seconds: float,
    interval: float,
    *,
    delay: float = 0,
) -> T:
    """Call `read` every `interval` seconds, after `delay`, until `done` says its value is final
    or `seconds` (from the call, the delay included) have passed; the last value read."""
    deadline = time.monotonic() + seconds
    if delay:
        time.sleep(delay)
    while True:
        value = read()
        if done(value) or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
