"""`python -I -m bourse.worker_run [FLOW_RUN_ID]`: one flow run, from the flow imported here.

The fixed command of the databourse worker (bourse/worker.py) and of the Kubernetes flow-run
pods. It does what Prefect's `python -m prefect.engine` does, except where the flow comes from:
never the deployment's pull steps or entrypoint as the API stores them (nor
`PREFECT__FLOW_ENTRYPOINT`), only the flow this project imports for the run's deployment in
deploy/prefect.yaml (the map `bourse serve` uses). A run of any other deployment is marked Failed
with a message naming it, and nothing of it runs. `-I` keeps the current folder and the PYTHON*
variables out of the import path.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any
from uuid import UUID

from databourse.errors import DataBourseError

FLOW_RUN_ENV = "PREFECT__FLOW_RUN_ID"


class RunRefused(DataBourseError):
    """A flow run names a deployment or flow this project does not serve: it is not started."""


def run_command(flow_run_id: UUID | str | None = None) -> list[str]:
    """The one command a databourse flow run is started with (the id is also in the env)."""
    tail = [str(flow_run_id)] if flow_run_id is not None else []
    return [sys.executable, "-I", "-m", "bourse.worker_run", *tail]


def project_flows() -> dict[tuple[str, str], Any]:
    """(flow name, deployment name) -> the flow imported from flows/ for that deployment."""
    from bourse.serving import served_flows

    return {(flow.name, options["name"]): flow for flow, options in served_flows()}


def _shown(name: str | None) -> str:
    """A name the API holder chose: quoted, controls escaped, cut short."""
    return repr((name or "")[:80])


def choose_flow(flow_run: Any, deployment: Any | None, deployment_flow_name: str | None) -> Any:
    """The imported flow for this run's deployment, or RunRefused naming what it asked for."""
    run_id = str(flow_run.id)
    if deployment is None:
        raise RunRefused(
            f"flow run {run_id} has no deployment: this worker runs only the deployments of "
            "deploy/prefect.yaml; it was not started",
            flow_run_id=run_id,
        )
    flows = project_flows()
    flow = flows.get((deployment_flow_name or "", deployment.name))
    if flow is None or deployment.flow_id != flow_run.flow_id:
        served = ", ".join(sorted(f"{f}/{d}" for f, d in flows))
        raise RunRefused(
            f"flow run {run_id}: deployment {_shown(deployment_flow_name)}/"
            f"{_shown(deployment.name)} is not one this project serves ({served}); "
            "it was not started",
            flow_run_id=run_id,
            deployment=str(deployment.name)[:80],
        )
    return flow


async def imported_flow(flow_run: Any, client: Any) -> Any:
    """`choose_flow` with the deployment and its flow read through an async Prefect client."""
    if flow_run.deployment_id is None:
        return choose_flow(flow_run, None, None)
    deployment = await client.read_deployment(flow_run.deployment_id)
    api_flow = await client.read_flow(deployment.flow_id)
    return choose_flow(flow_run, deployment, api_flow.name)


def _imported_flow_sync(flow_run: Any) -> Any:
    from prefect.client.orchestration import get_client

    if flow_run.deployment_id is None:
        return choose_flow(flow_run, None, None)
    client = get_client(sync_client=True)
    deployment = client.read_deployment(flow_run.deployment_id)
    return choose_flow(flow_run, deployment, client.read_flow(deployment.flow_id).name)


def _flow_run_id(argv: list[str]) -> UUID:
    given = {v for v in (argv[0] if argv else None, os.environ.get(FLOW_RUN_ENV)) if v}
    if len(given) != 1:
        raise SystemExit(
            "bourse.worker_run: give one flow run id (argument or PREFECT__FLOW_RUN_ID)"
        )
    return UUID(given.pop())


def _fail(flow_run: Any, message: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Failed

    get_client(sync_client=True).set_flow_run_state(flow_run.id, Failed(message=message))


def main(argv: list[str] | None = None) -> None:
    """Run the flow run named by the argument or PREFECT__FLOW_RUN_ID, as `prefect.engine` would."""
    flow_run_id = _flow_run_id(sys.argv[1:] if argv is None else argv)
    from prefect._internal.control_listener import configure_from_env
    from prefect.engine import handle_engine_signals

    configure_from_env()  # the runner's control channel, as prefect.engine does first
    with handle_engine_signals(flow_run_id):
        from prefect.flow_engine import flow_run_logger, load_flow_run, run_flow

        flow_run = load_flow_run(flow_run_id=flow_run_id)
        run_logger = flow_run_logger(flow_run=flow_run)
        try:
            flow = _imported_flow_sync(flow_run)
        except RunRefused as exc:
            run_logger.error("%s", exc)
            _fail(flow_run, str(exc))
            return
        result = run_flow(flow, flow_run=flow_run, error_logger=run_logger)  # type: ignore[arg-type]  # prefect.engine passes its adapter too
        if asyncio.iscoroutine(result):  # an async flow: run it on this main thread's loop
            asyncio.run(result)


if __name__ == "__main__":
    main()
