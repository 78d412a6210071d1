"""Retries for transient failures only, and the time limits of runs.

A task retries (3 times, after about 2, 10 and 30 s) only when it failed on storage, the network
or a locked database: a broken file or a failed gate fails the same way every time, so it fails
at once. Storage calls already retry throttling and 5xx inside botocore; these retries cover
what outlasts them (an outage of a minute, a restarting server).

Time limits are set on the flow runs the deployments start, never on tasks: a task that runs in
a worker thread (every `.submit`/`.map`) cannot be interrupted by its timeout (Prefect warns so
on every such task run), while a deployment's flow run runs in its process's main thread, where
Prefect's timeout is a SIGALRM: it interrupts a wait or a sleep at once and any other call as it
returns, and the run ends TimedOut, freeing its provider slot. Besides these bounds, a run whose
process dies stops beating and is marked Crashed (bourse/automations.py); the nightly marks a drop
run silent for `runs.drop_silence_seconds` Crashed, and gives up on one not ended after
`runs.nightly_wait_seconds` (its own, cooperative bound).
"""

from __future__ import annotations

from typing import Any

import httpx

from databourse.errors import (
    CatalogError,
    ObjectChanged,
    ObjectExists,
    ObjectNotFound,
    StorageError,
)

# One drop end to end (ingest, validate, build, wait for its publish run); below the default
# runs.nightly_wait_seconds (20 h), so a stuck drop run ends itself before the nightly gives up.
DROP_RUN_SECONDS = 18 * 3600
PUBLISH_RUN_SECONDS = 6 * 3600  # one version's decisions, each time its run (re)starts
DISCOVER_RUN_SECONDS = 2 * 3600  # one listing of the landing zone


def transient(error: BaseException | None) -> bool:
    """Whether another try may succeed."""
    if isinstance(error, (ObjectNotFound, ObjectExists, ObjectChanged)):
        return False
    if isinstance(error, CatalogError):
        return "unreachable or locked" in str(error)
    return isinstance(error, (StorageError, ConnectionError, TimeoutError, httpx.TransportError))


def transient_only(_task: Any, _task_run: Any, state: Any) -> bool:
    """Prefect's retry condition: retry only a transient failure."""
    return transient(state.result(raise_on_failure=False))


RETRY_TRANSIENT: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [2, 10, 30],
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": transient_only,
}
