"""Starting deployment runs once per key, and anew after a run of that key failed.

A run started with `run_deployment(..., idempotency_key=key)` is the same run whoever asks again
with the same key: a re-run nightly, a retried task, two operators. A failed, crashed or cancelled
run is not an answer, though: it is followed by the run keyed after it (`key#after-<run id>`), so
everyone who asks again reaches the same fresh run, never the failed one again, and never two.
A run that holds the key but is not the work asked for (another deployment's, other parameters,
or Completed while the store and catalog show nothing done: created first by someone who
guessed the key) is passed over the same way, named in a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from databourse.errors import CatalogError

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.schemas.objects import FlowRun

log = logging.getLogger(__name__)
_MISSING = object()

DROP_DEPLOYMENT = "process-drop/drop"
# Set by `bourse worker` and `bourse serve` for the runs they start: a drop run tags itself with
# the name (flows/process_drop.py), which the nightly's summary shows.
WORKER_ENV = "DATABOURSE_WORKER_NAME"
WORKER_TAG = "worker:"
CHAIN_LIMIT = 50  # failed runs of one key followed before giving up


def after(key: str, run_id: str) -> str:
    """The key of the run that replaces the failed run `run_id` of `key`."""
    return f"{key}#after-{run_id}"


def ended_badly(run: FlowRun) -> bool:
    """The run failed, crashed or was cancelled (its key then names the run after it)."""
    state = run.state
    return state is not None and (state.is_failed() or state.is_crashed() or state.is_cancelled())


def start_keyed(
    deployment: str,
    parameters: dict[str, Any],
    key: str,
    tags: list[str],
    *,
    as_subflow: bool,
    what: str,
    done: Callable[[], bool],
) -> FlowRun:
    """The current run of `key`: started once, followed past every run of it that ended badly.

    `as_subflow`: shown as a child of the calling flow run (a subflow cannot suspend: a run that
    may wait for approvals must not be one). `what` names the work in the error. `done`: whether
    the store or the catalog shows the work done; a Completed run of the key is taken only then
    (an API holder can create a run under the key with our very parameters and set it
    Completed: its state proves nothing).
    """
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    with get_client(sync_client=True) as client:
        deployment_id = client.read_deployment_by_name(deployment).id
    for _ in range(CHAIN_LIMIT):
        run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync call: the FlowRun
            deployment,
            parameters=parameters,
            timeout=0,
            idempotency_key=key,
            tags=tags,
            as_subflow=as_subflow,
        )
        if squatted(run, deployment_id, parameters) or (
            run.state is not None and run.state.is_completed() and not done()
        ):
            log.warning(
                "%s: run %s holds the key %s but is not this work (another deployment, other "
                "parameters, or Completed with nothing done): starting the run after it",
                what,
                run.id,
                key,
            )
        elif not ended_badly(run):
            return run
        key = after(key, str(run.id))
    raise CatalogError(
        f"{what}: {CHAIN_LIMIT} runs of its key failed or were not its own in a row; see the last"
    )


def squatted(run: FlowRun, deployment_id: UUID, parameters: dict[str, Any]) -> bool:
    """The run holds the key but is another deployment's, or was created with other parameters.

    Whoever may create flow runs (every holder of the API auth string) can create one with a
    key before we ask for it: the run must be of the deployment we start and carry every
    parameter we pass, with our values (defaults of the deployment may add others)."""
    given = run.parameters or {}
    return run.deployment_id != deployment_id or any(
        given.get(name, _MISSING) != value for name, value in parameters.items()
    )
