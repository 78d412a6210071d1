"""Per-provider concurrency: a Prefect global concurrency limit per provider, and taking a slot.

The limits are created when the runner starts (bourse/localserver.py `recover`, through
`create_provider_limits`) and by the nightly, before any run takes a slot; a drop's heavy part
runs inside `provider_slot(provider)`, which also creates its limit if still missing,
the slot's lease names the flow run that holds it, and a wait never goes silent: after
`runs.slot_notice_seconds` it logs who holds the slots and how to free them, frees those whose
holders are gone (tasks/leases.py), and after `runs.slot_wait_seconds` gives up with an error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from uuid import UUID

from prefect import get_run_logger, task
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound
from prefect.runtime import flow_run

from databourse.errors import SlotWaitTimeout
from tasks import leases, resources

FREE_HINT = (
    "`bourse server reclaim` frees slots whose holders are gone; a live holder's slot frees "
    "when its run ends (cancel it in the UI to end it now)"
)


def limit_name(provider: str) -> str:
    """The global concurrency limit that bounds one provider's heavy runs."""
    return f"{leases.PREFIX}{provider}"


def _ensure(client: SyncPrefectClient, provider: str, wanted: int) -> int:
    """The provider's limit, created when it does not exist (an operator may have changed one)."""
    name = limit_name(provider)
    try:
        return int(client.read_global_concurrency_limit_by_name(name).limit)
    except ObjectNotFound:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=name, limit=wanted)
        )
        return wanted


def create_provider_limits(client: SyncPrefectClient) -> dict[str, int]:
    """Each configured provider's limit (created when it does not exist) and its slots."""
    wanted = resources.config().settings.runs.provider_concurrency
    return {limit_name(p): _ensure(client, p, wanted) for p in sorted(resources.config().providers)}


@task(name="ensure-provider-limits", retries=2, retry_delay_seconds=5)
def ensure_provider_limits() -> dict[str, int]:
    """Create each provider's limit when it does not exist."""
    with get_client(sync_client=True) as client:
        return create_provider_limits(client)


@contextmanager
def provider_slot(provider: str) -> Iterator[None]:
    """Hold one slot of the provider's limit for the block; wait loudly, give up at the bound."""
    runs = resources.config().settings.runs
    state = resources.config().state_dir
    logger = get_run_logger()
    with get_client(sync_client=True) as client:
        _ensure(client, provider, runs.provider_concurrency)
    holder = ConcurrencyLeaseHolder(type="flow_run", id=UUID(flow_run.id)) if flow_run.id else None
    started = time.monotonic()
    with ExitStack() as stack:
        if flow_run.id:  # before taking it: a holder killed right after is known dead too
            stack.callback(leases.register(state, str(flow_run.id)).unlink, missing_ok=True)
        while True:
            waited = time.monotonic() - started
            step = min(runs.slot_notice_seconds, max(runs.slot_wait_seconds - waited, 0.001))
            try:
                stack.enter_context(
                    concurrency(
                        limit_name(provider),
                        occupy=1,
                        timeout_seconds=step,
                        lease_duration=runs.slot_lease_seconds,
                        strict=True,
                        holder=holder,
                        raise_on_lease_renewal_failure=False,
                    )
                )
                break
            except TimeoutError:
                _still_waiting(provider, time.monotonic() - started, runs.slot_wait_seconds, state)
        logger.info("holding a slot of %s", limit_name(provider))
        yield


def _still_waiting(provider: str, waited: float, bound: float, state: Any) -> None:
    """Log who holds the slots and free the dead ones; past the bound, raise naming them."""
    name = limit_name(provider)
    with get_client(sync_client=True) as client:
        freed = leases.reclaim(client, state)
        limit = client.read_global_concurrency_limit_by_name(name)
        held = leases.holders(client, limit)
    who = "; ".join(_holder_text(h) for h in held) or "no lease readable from here"
    text = f"{name}: {limit.active_slots} of {limit.limit} slot(s) held (by {who})"
    if freed:
        get_run_logger().warning("%s; freed: %s", text, "; ".join(freed))
        return
    if waited >= bound:
        raise SlotWaitTimeout(
            f"gave up waiting for a slot of {name} after {waited:.0f}s "
            f"(runs.slot_wait_seconds): {text}. {FREE_HINT}",
            provider=provider,
            limit=name,
            holders=held,
        )
    get_run_logger().warning("still waiting after %.0fs: %s. %s", waited, text, FREE_HINT)


def _holder_text(h: dict[str, Any]) -> str:
    run = f"flow run {h['run']} ({h['run_id']}, {h['state']})" if h["run_id"] else "no run named"
    return f"{run}, lease {h['lease']} until {h['expires']}"
