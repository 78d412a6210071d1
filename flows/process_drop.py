"""Flow: one provider drop end to end: ingest, validate, build each product, request publication."""

from __future__ import annotations

import os
import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run

from flows.build_product import build_product
from flows.ingest_dataset import ingest_dataset
from flows.run_names import dated, drop_tags
from flows.runners import partition_runner
from flows.validate_dataset import validate_dataset
from tasks import reporting, resources
from tasks.dispatching import WORKER_ENV, WORKER_TAG
from tasks.limits import provider_slot
from tasks.lineage import no_datasets, tracked
from tasks.publishing import start_publication
from tasks.retrying import DROP_RUN_SECONDS

NO_PUBLICATION = {"publish_run_id": None, "publish_run_name": "-", "publish_state": "nothing new"}


@flow(
    name="process-drop",
    flow_run_name=dated("process", "provider", "dataset"),
    timeout_seconds=DROP_RUN_SECONDS,  # the real bound: tasks have none (tasks/retrying.py)
)
def process_drop(
    provider: str,
    dataset: str,
    source: str,
    publish_wait_seconds: float = 300,
    source_name: str | None = None,
    expected_rows: int | None = None,
    expected_sha256: str | None = None,
) -> dict[str, Any]:
    """Process one drop; publication runs as its own deployment run, which may suspend.

    The heavy part holds a slot of the provider's global concurrency limit (see tasks/limits.py):
    50 drops of one provider never run 50 at once. The limit is created when missing; a wait
    for a slot logs who holds them and ends at a bound (settings `runs.slot_*`).
    """
    _name_the_worker()
    with tracked(no_datasets):
        with provider_slot(provider), drop_tags(provider, dataset):
            ingested = ingest_dataset(
                provider, dataset, source, source_name, expected_rows, expected_sha256
            )
            runner = partition_runner(resources.config().settings.runs)
            validate = validate_dataset.with_options(task_runner=runner)
            validate(provider, dataset, ingested["ingest_id"])
            built_all = [
                _builder(spec.type)(spec.id, ingested["ingest_id"])
                for spec in resources.config().products_of(provider, dataset)
            ]
        products = []
        for built in built_all:  # waiting for a publish run holds no provider slot
            if built["version"] is None:  # a corpus build that kept no document
                products.append({**built, **NO_PUBLICATION})
                continue
            publication = request_publication(  # the publish run is tagged with the product
                built["product"], built["version"], built["content_hash"], publish_wait_seconds
            )
            products.append({**built, **publication})
    result = {
        "provider": provider,
        "dataset": dataset,
        "ingest_id": ingested["ingest_id"],
        "duplicate": ingested["duplicate"],
        "products": products,
    }
    reporting.markdown(f"drop-{provider}-{dataset}", _summary(result), "What this drop produced")
    return result


def _builder(product_type: str) -> Any:
    """The subflow that builds a product of this type. The corpus stack (language identification,
    near-duplicate index: 0.13 s to import) is imported by the drops that build a corpus."""
    if product_type != "corpus":
        return build_product
    from flows.build_corpus import build_corpus

    return build_corpus


def _name_the_worker() -> None:
    """Tag this run with the worker (or runner) that started it, for the nightly's summary."""
    name = os.environ.get(WORKER_ENV)
    if not name or flow_run.id is None:
        return
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run.id)
        client.update_flow_run(flow_run.id, tags=sorted({*run.tags, WORKER_TAG + name}))


@task(name="request-publication", task_run_name="publish {product}@{version}")
def request_publication(
    product: str, version: str, content_hash: str, wait_seconds: float
) -> dict[str, Any]:
    """Start (once per content hash; anew after a failed one) the gated publish run, wait."""
    run = start_publication(product, version, content_hash, [f"product:{product}"])
    state = _wait(run.id, wait_seconds)
    get_run_logger().info("publish run %s of %s@%s: %s", run.name, product, version, state)
    return {"publish_run_id": str(run.id), "publish_run_name": run.name, "publish_state": state}


def _wait(run_id: Any, seconds: float) -> str:
    """The publish run's state once it ends or waits for a person (or `seconds` pass): read
    every 0.25 s for its first 10 s (a run that needs no one ends within them, and is seen at
    once), then every 2 s."""
    started = time.monotonic()
    deadline = started + seconds
    with get_client(sync_client=True) as client:
        while True:
            state = client.read_flow_run(run_id).state
            if state is not None and (state.is_final() or state.is_paused()):
                return str(state.name)
            if time.monotonic() > deadline:
                return str(state.name) if state else "Unknown"
            time.sleep(0.25 if time.monotonic() - started < 10 else 2.0)


def _summary(result: dict[str, Any]) -> str:
    lines = [
        f"### Drop `{result['provider']}/{result['dataset']}` (ingest "
        f"`{result['ingest_id']}`{', identical bytes seen before' if result['duplicate'] else ''})",
        "",
        "| product | version | new | publish run | state |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {p['product']} | {p['version'] or '-'} | {p['new']} | {p['publish_run_name']} | "
        f"{p['publish_state']} |"
        for p in result["products"]
    ]
    return "\n".join(lines) + "\n"
