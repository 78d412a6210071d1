"""Starting deployment runs once per key, and anew after a run of that key failed.

A run started with `run_deployment(..., idempotency_key=key)` is the same run whoever asks again
with the same key: a re-run nightly, a retried task, two operators. A failed, crashed or cancelled
run is not an answer, though: it is followed by the run keyed after it (`key#after-<run id>`), so
everyone who asks again reaches the same fresh run, never the failed one again, and never two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from databourse.errors import CatalogError

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

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
) -> FlowRun:
    """The current run of `key`: started once, followed past every run of it that ended badly.

    `as_subflow`: shown as a child of the calling flow run (a subflow cannot suspend: a run that
    may wait for approvals must not be one). `what` names the work in the error.
    """
    from prefect.deployments import run_deployment

    for _ in range(CHAIN_LIMIT):
        run = run_deployment(  # called from sync code: returns the FlowRun
            deployment,
            parameters=parameters,
            timeout=0,
            idempotency_key=key,
            tags=tags,
            as_subflow=as_subflow,
        )
        if not ended_badly(run):  # type: ignore[arg-type]
            return run  # type: ignore[return-value]
        key = after(key, str(run.id))  # type: ignore[union-attr]
    raise CatalogError(f"{what}: {CHAIN_LIMIT} runs failed in a row; see the last one")
