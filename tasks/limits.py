"""Per-provider concurrency: a Prefect global concurrency limit per provider, created if missing."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.exceptions import ObjectNotFound

from tasks import resources


def limit_name(provider: str) -> str:
    """The global concurrency limit that bounds one provider's heavy runs."""
    return f"databourse-provider-{provider}"


@task(name="ensure-provider-limits", retries=2, retry_delay_seconds=5)
def ensure_provider_limits() -> dict[str, int]:
    """Create each provider's limit when it does not exist (an operator may have changed one)."""
    wanted = resources.config().settings.runs.provider_concurrency
    found: dict[str, int] = {}
    with get_client(sync_client=True) as client:
        for provider in sorted(resources.config().providers):
            name = limit_name(provider)
            try:
                found[name] = client.read_global_concurrency_limit_by_name(name).limit
            except ObjectNotFound:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=wanted)
                )
                found[name] = wanted
                get_run_logger().info("created concurrency limit %s = %d", name, wanted)
    return found
