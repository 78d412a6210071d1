"""Tasks: ask every market that waits for a person at once, each in a publish run of its own.

The run that decides a version's markets asks the first that waits; each other one is asked by
a publish run started for that market alone (`publish_product(..., market=XX)`), so an operator
sees every waiting market at once (`bourse approvals list`, the UI) and answers them in any order.
"""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.runtime import deployment

from databourse.catalog.database import Catalog
from databourse.errors import VersionNotFound
from tasks import resources
from tasks.dispatching import start_keyed
from tasks.publishing import PUBLISH_DEPLOYMENT, PUBLISH_FLOW, catalog_tag, publish_key

WAIT_SECONDS = 120  # for the other markets' runs to wait on their forms


@task(name="ask-beside", task_run_name="ask {markets} beside this run")
def ask_beside(product: str, version: str, markets: list[str]) -> dict[str, str]:
    """Start the run that asks each market alone, from this run's own deployment, and wait
    (bounded) until each waits on its form. A run started before (this run resumed) is the
    same run: it is keyed."""
    served = f"{PUBLISH_FLOW}/{deployment.name}" if deployment.name else PUBLISH_DEPLOYMENT
    runs = {m: start_market_question(product, version, m, served) for m in markets}
    states = wait_until_asked(runs)
    get_run_logger().info("asked beside this run: %s", states)
    return states


def wait_until_asked(runs: dict[str, FlowRun]) -> dict[str, str]:
    """Each market's run state (and run name), once every run is paused or final, or after
    WAIT_SECONDS; a state still moving ends with " ..."."""
    deadline = time.monotonic() + WAIT_SECONDS
    states: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        while True:
            for m, run in runs.items():
                state = client.read_flow_run(run.id).state
                settled = state is not None and (state.is_paused() or state.is_final())
                states[m] = f"{state.name if state else 'Scheduled'} ({run.name})" + (
                    "" if settled else " ..."
                )
            if not any(v.endswith("...") for v in states.values()) or time.monotonic() > deadline:
                return states
            time.sleep(1)


def start_market_question(
    product: str, version: str, market: str, served: str = PUBLISH_DEPLOYMENT
) -> FlowRun:
    """The publish run that asks `market` alone, beside the run that decided every market, so
    that every market waiting for a person is asked at once, each on its own run and form.

    Keyed per market after the version's publish key: started once; a failed one is followed."""
    catalog = resources.catalog()
    content_hash = catalog.get_version(product, version).content_hash
    return start_keyed(
        served,
        {"product": product, "version": version, "market": market},
        f"{publish_key(catalog, product, version, content_hash)}#market-{market}",
        [f"product:{product}", f"market:{market}", "awaiting-approval", catalog_tag(catalog)],
        as_subflow=False,  # it suspends
        what=f"{product}@{version} -> {market}: approval",
        done=lambda: _market_decided(catalog, product, version, market),
    )


def _market_decided(catalog: Catalog, product: str, version: str, market: str) -> bool:
    """The catalog shows the market no longer waiting for a person."""
    try:
        shown = catalog.show(product, version)["versions"][0]["availability"]
    except VersionNotFound:
        return False
    return any(a["market"] == market and a["status"] != "pending_approval" for a in shown)
