"""The shared reads of flow runs (bourse.prefect_runs): every page read, none cut at the
server's limit of 200 a call, and the one polling helper the CLI's waits share."""

from __future__ import annotations

import time
from typing import Any
from uuid import uuid4

import pytest

from bourse.prefect_runs import PAGE, newest_runs_of, paused_runs, runs_in_states, wait_until


def test_wait_until_returns_the_first_final_value() -> None:
    values = iter([1, 2, 3, 4])
    assert wait_until(lambda: next(values), lambda v: v == 3, 5, 0) == 3


def test_wait_until_gives_up_with_the_last_value_read() -> None:
    reads: list[float] = []
    started = time.monotonic()
    last = wait_until(lambda: reads.append(time.monotonic()) or len(reads), bool_never, 0.3, 0.05)
    assert last == len(reads) >= 2
    assert 0.3 <= time.monotonic() - started < 2


def test_wait_until_counts_its_delay_in_its_seconds() -> None:
    reads: list[float] = []
    started = time.monotonic()
    wait_until(lambda: reads.append(time.monotonic()), bool_never, 0.2, 0.05, delay=0.2)
    assert reads[0] - started >= 0.2
    assert len(reads) == 1  # the delay used the time: read once, then given up


def test_wait_until_reads_once_with_no_time() -> None:
    reads: list[int] = []
    assert wait_until(lambda: reads.append(1) or False, bool, 0, 1) is False
    assert reads == [1]


def bool_never(_value: object) -> bool:
    return False


@pytest.fixture(scope="module")
def runs_of_a_flow(prefect_api: str) -> tuple[str, list[Any], list[Any]]:
    """A flow of its own with PAGE + 3 runs: every other one paused; (name, all, paused)."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Paused

    name = f"prefect-runs-{uuid4().hex[:8]}"

    @flow(name=name)
    def idle(product: str, version: str) -> None:
        pass

    made, paused = [], []
    with get_client(sync_client=True) as client:
        for i in range(PAGE + 3):
            run = client.create_flow_run(idle, parameters={"product": "p", "version": str(i % 3)})
            made.append(run.id)
            if i % 2:
                client.set_flow_run_state(run.id, Paused(timeout_seconds=600), force=True)
                paused.append(run.id)
    return name, made, paused


@pytest.mark.prefect
def test_every_run_is_read_past_the_servers_limit(
    runs_of_a_flow: tuple[str, list[Any], list[Any]],
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    name, made, paused = runs_of_a_flow
    with get_client(sync_client=True) as client:
        one_call = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[name])))
        assert len(one_call) == PAGE  # what a read without paging saw: cut silently
        found = runs_in_states(client, None, flow_name=name)
        assert sorted(r.id for r in found) == sorted(made)
        assert [r.id for r in found[:PAGE]] == [r.id for r in one_call]  # the API's order
        assert sorted(r.id for r in paused_runs(client, name)) == sorted(paused)


@pytest.mark.prefect
def test_small_pages_read_the_same_runs_in_the_same_order(
    runs_of_a_flow: tuple[str, list[Any], list[Any]],
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    name, _, paused = runs_of_a_flow
    with get_client(sync_client=True) as client:
        whole = runs_in_states(client, [StateType.PAUSED], flow_name=name)
        paged = runs_in_states(client, [StateType.PAUSED], flow_name=name, page=7)
    assert [r.id for r in paged] == [r.id for r in whole]
    assert len(whole) == len(paused)


@pytest.mark.prefect
def test_the_newest_run_of_each_key_is_the_last_created(
    runs_of_a_flow: tuple[str, list[Any], list[Any]],
) -> None:
    from prefect.client.orchestration import get_client

    name, made, _ = runs_of_a_flow
    with get_client(sync_client=True) as client:
        newest = newest_runs_of(client, name, lambda r: r.parameters["version"])
    assert list(newest) == ["0", "1", "2"]  # keys in the order their first run was created
    assert {v: run.id for v, run in newest.items()} == {
        str(i % 3): made[i] for i in range(len(made))
    }
