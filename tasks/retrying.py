"""Retries for transient failures only, and a time limit on every task.

A task retries (3 times, after about 2, 10 and 30 s) only when it failed on storage, the network
or a locked database: a broken file or a failed gate fails the same way every time, so it fails
at once. Storage calls already retry throttling and 5xx inside botocore; these retries cover
what outlasts them (an outage of a minute, a restarting server).
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

# Outer bounds: tasks run in worker threads, where Prefect's timeout binds only once a blocking
# call returns (a hung call is found by the runs' heartbeats and the zombie automation).
HEAVY_SECONDS = 6 * 3600  # a whole file through one stage
LIGHT_SECONDS = 15 * 60  # catalog and bookkeeping steps


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
