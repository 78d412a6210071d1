"""OpenLineage events of a flow run: START on entry, COMPLETE or FAIL on exit (see
databourse/standards/lineage.py for the names and facets).

A flow wraps its body in `tracked(...)` with the datasets its runs read and write. The run id is
the Prefect flow run's, a subflow's parent is the flow run that called it. A paused or suspended
run ends nothing: resumed, it runs again from the start and says so with a RUNNING event (the
run has one START; Prefect keeps the keys of the pauses a run went through until it ends).
Events go where settings `lineage` says: by default one JSON line each, appended with fsync under
an exclusive lock to `<state_dir>/lineage/events.jsonl` (mode 0644, for other readers); or POSTed
to an HTTP endpoint. An event that cannot be built or sent logs a warning and the run goes on.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.transport import Transport
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpConfig,
    HttpTransport,
    TokenProvider,
)
from openlineage.client.transport.http_common import DEFAULT_RETRY_CONFIG
from prefect import get_run_logger
from prefect.context import FlowRunContext
from prefect.exceptions import PrefectSignal

from databourse.config import Config
from databourse.ingest.records import load_ingest
from databourse.standards import lineage
from databourse.storage import zones
from tasks import reporting, resources

EVENTS = Path("lineage") / "events.jsonl"  # under the state folder
# The client adds nothing of its own: no environment variables, no git remote (it may hold a
# token) in the events.
_CLIENT_CONFIG: dict[str, Any] = {
    "facets": {"environment_variables": [], "source_code_location": {"disabled": True}}
}

Datasets = tuple[list[InputDataset], list[OutputDataset]]


@dataclass
class Tracked:
    """One tracked flow run: the flow sets `result` before it returns."""

    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    result: Any = None


DatasetsOf = Callable[[str, lineage.Phase, Tracked], Datasets]


def no_datasets(ns: str, phase: lineage.Phase, state: Tracked) -> Datasets:
    """An orchestrating run (process-drop, nightly, discover-landing) reads and writes nothing
    itself: its subflows' events carry the datasets and name it as their parent."""
    return [], []


class JsonLinesTransport(Transport):
    """Appends each event as one line: one write under an exclusive lock, then fsync."""

    kind = "databourse-jsonl"

    def __init__(self, path: Path) -> None:
        self.path = path

    def emit(self, event: Any) -> None:
        line = (lineage.to_json(event) + "\n").encode()
        self.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # writers of other processes wait: lines never mix
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)  # releases the lock


def client(cfg: Config) -> OpenLineageClient | None:
    """The client settings `lineage` asks for (None: no events)."""
    settings = cfg.settings.lineage
    transport: Transport
    if settings.transport == "none":
        return None
    if settings.transport == "file":
        transport = JsonLinesTransport(cfg.state_dir / EVENTS)
    else:
        auth = TokenProvider({})
        if settings.api_key_env:
            key = os.environ.get(settings.api_key_env)
            if not key:
                raise KeyError(f"lineage API key: ${settings.api_key_env} is not set")
            auth = ApiKeyTokenProvider({"apiKey": key})
        url, endpoint = str(settings.url), settings.endpoint
        timeout = settings.timeout_seconds
        tries = settings.retries
        retry = DEFAULT_RETRY_CONFIG | {
            "total": tries, "read": tries, "connect": tries, "backoff_factor": 0.2,
        }  # fmt: skip
        transport = HttpTransport(
            HttpConfig(url=url, endpoint=endpoint, timeout=timeout, auth=auth, retry=retry)
        )
    return OpenLineageClient(transport=transport, config=_CLIENT_CONFIG)


def namespace(cfg: Config) -> str:
    return lineage.namespace(cfg.settings.lineage.namespace or reporting.namespace_of(cfg))


def this_run(ns: str) -> tuple[lineage.JobRun, lineage.JobRun | None]:
    """The current flow run and the flow run that started it as a subflow (None: top level)."""
    from prefect.client.orchestration import get_client

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None or ctx.flow is None:
        raise RuntimeError("not in a flow run")
    run = lineage.JobRun(str(ctx.flow_run.id), ns, ctx.flow.name)
    if ctx.flow_run.parent_task_run_id is None:
        return run, None
    with get_client(sync_client=True) as api:
        caller = api.read_task_run(ctx.flow_run.parent_task_run_id)
        if caller.flow_run_id is None:
            return run, None
        parent = api.read_flow_run(caller.flow_run_id)
        flow = api.read_flow(parent.flow_id)
    return run, lineage.JobRun(str(parent.id), ns, flow.name)


@contextmanager
def tracked(datasets: DatasetsOf) -> Iterator[Tracked]:
    """START now; COMPLETE when the body returns, FAIL (the error's type only) when it raises."""
    state = Tracked()
    runs = _safely("START", lambda: _start(datasets, state))
    try:
        yield state
    except PrefectSignal:  # paused or suspended (resumed later, from the start): not ended
        raise
    except BaseException as exc:
        error = type(exc).__name__
        _safely("FAIL", lambda: _end(runs, datasets, state, "FAIL", error))
        raise
    _safely("COMPLETE", lambda: _end(runs, datasets, state, "COMPLETE", None))


def _start(datasets: DatasetsOf, state: Tracked) -> tuple[lineage.JobRun, lineage.JobRun | None]:
    cfg = resources.config()
    ns = namespace(cfg)
    run, parent = this_run(ns)
    phase: lineage.Phase = "RUNNING" if _resumed() else "START"
    _emit(cfg, lineage.run_event(phase, run, *datasets(ns, "START", state), parent=parent))
    return run, parent


def _resumed() -> bool:
    """Whether this flow run went through a pause or suspension before this start."""
    ctx = FlowRunContext.get()
    run = ctx.flow_run if ctx is not None else None
    return bool(run is not None and run.empirical_policy.pause_keys)


def _end(
    runs: tuple[lineage.JobRun, lineage.JobRun | None] | None,
    datasets: DatasetsOf,
    state: Tracked,
    phase: lineage.Phase,
    error: str | None,
) -> None:
    cfg = resources.config()
    ns = namespace(cfg)
    run, parent = runs or this_run(ns)
    inputs, outputs = datasets(ns, phase, state)
    _emit(cfg, lineage.run_event(phase, run, inputs, outputs, parent=parent, error=error))


def _emit(cfg: Config, event: Any) -> None:
    emitter = client(cfg)
    if emitter is not None:
        emitter.emit(event)


def _safely(phase: str, step: Callable[[], Any]) -> Any:
    """Run `step`; an error is logged (its type, and our own KeyError's variable name) only."""
    try:
        return step()
    except Exception as exc:
        detail = str(exc) if isinstance(exc, KeyError) else type(exc).__name__
        try:
            logger: Any = get_run_logger()
        except Exception:
            logger = logging.getLogger(__name__)
        logger.warning("OpenLineage %s event not emitted (%s); the run goes on", phase, detail)
        return None


def ingested(provider: str, dataset: str) -> DatasetsOf:
    """ingest-dataset writes the raw ingest and the staged table (known once it is done)."""

    def datasets(ns: str, phase: lineage.Phase, state: Tracked) -> Datasets:
        if phase != "COMPLETE":
            return [], []
        record = state.result
        return [], [lineage.raw_dataset(ns, record), lineage.staged_output(ns, record)]

    return datasets


def validated(provider: str, dataset: str, ingest_id: str) -> DatasetsOf:
    """validate-dataset reads the staged table; at its end, with this run's quality outcomes."""

    def datasets(ns: str, phase: lineage.Phase, state: Tracked) -> Datasets:
        store = resources.store()
        record = load_ingest(store, provider, dataset, ingest_id).to_json()
        quality = None if phase == "START" else _quality(provider, dataset, ingest_id, state)
        return [lineage.staged_input(ns, record, quality)], []

    return datasets


def built(product_id: str, ingest_id: str) -> DatasetsOf:
    """build-product, anonymize-product and build-corpus read the staged table and write a
    product version (the result's `schema` and `content_hash`)."""

    def datasets(ns: str, phase: lineage.Phase, state: Tracked) -> Datasets:
        product = resources.config().product(product_id)
        src = product.source
        record = load_ingest(resources.store(), src.provider, src.dataset, ingest_id).to_json()
        outputs = []
        if phase == "COMPLETE" and state.result.get("content_hash"):  # a corpus may make none
            schema, content_hash = state.result["schema"], state.result["content_hash"]
            outputs = [lineage.product_output(ns, product, schema, content_hash)]
        return [lineage.staged_input(ns, record)], outputs

    return datasets


def published(product_id: str, version: str) -> DatasetsOf:
    """publish-product reads a product version (decisions and approvals go to the catalog)."""

    def datasets(ns: str, phase: lineage.Phase, state: Tracked) -> Datasets:
        [shown] = resources.catalog().show(product_id, version)["versions"]
        return [lineage.product_input(ns, product_id, shown["content_hash"])], []

    return datasets


def _quality(provider: str, dataset: str, ingest_id: str, state: Tracked) -> dict[str, Any] | None:
    """This run's `quality.json` (None when the run wrote none: an earlier run's is not this)."""
    store = resources.store()
    key = f"{zones.reports_prefix(provider, dataset, ingest_id)}/quality.json"
    if not store.exists(key):
        return None
    quality: dict[str, Any] = json.loads(store.get_bytes(key))
    written = dt.datetime.fromisoformat(quality["validated_at"])
    return quality if written >= state.started.replace(microsecond=0) else None
