"""Task: take one provider file into the raw zone and staging."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, cast
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from databourse.ingest.landing_bounds import SourceBounds
from databourse.ingest.records import IngestResult
from databourse.steps import ingesting
from tasks import reporting, resources
from tasks.retrying import RETRY_TRANSIENT

# Called with (source name, rows done, share read or None): the CLI draws its progress bar here.
PROGRESS_LISTENERS: list[Callable[[str, int, float | None], None]] = []
_ARTIFACT_EVERY_SECONDS = 2.0


class _Progress:
    """Feeds a Prefect progress artifact (at most every 2 s) and any local listeners."""

    def __init__(self, name: str, key: str) -> None:
        self.name, self.key = name, key
        self.artifact: UUID | None = None
        self.last = 0.0

    def __call__(self, rows: int, share: float | None) -> None:
        for listener in PROGRESS_LISTENERS:
            listener(self.name, rows, share)
        now = time.monotonic()
        if share is None or (now - self.last < _ARTIFACT_EVERY_SECONDS and share < 1.0):
            return
        self.last = now
        percent = round(100 * min(share, 1.0), 1)
        if self.artifact is None:
            self.artifact = cast(  # called from sync code: returns the id
                UUID,
                create_progress_artifact(
                    percent, key=self.key, description=f"{self.name}: share of the file read"
                ),
            )
        else:
            update_progress_artifact(self.artifact, percent)


@task(
    name="ingest-file",
    task_run_name="ingest {provider}/{dataset}",
    **RETRY_TRANSIENT,
)
def ingest(
    provider: str,
    dataset: str,
    source: str,
    source_name: str | None = None,
    expected_rows: int | None = None,
    expected_sha256: str | None = None,
) -> dict[str, Any]:
    """Ingest `source` (a path or s3:// URI); returns the `_ingest.json` record."""
    res = resources.bundle()
    key = reporting.artifact_key("ingest-progress", provider, dataset)
    result = ingesting.ingest_source(
        res,
        provider,
        dataset,
        source,
        source_bounds(provider, dataset),
        source_name=source_name,
        expected_rows=expected_rows,
        expected_sha256=expected_sha256,
        progress_of=lambda name: _Progress(name, key),
    )
    report_ingest(provider, dataset, result, res.store.uri(result.raw_key))
    return {**result.to_json(), "duplicate": result.duplicate}


def report_ingest(provider: str, dataset: str, result: IngestResult, raw_uri: str) -> None:
    """Log what became of the file and publish its ingest record."""
    if result.duplicate:
        get_run_logger().info(
            "%s: identical bytes already ingested as %s; nothing stored again",
            result.source_name,
            result.ingest_id,
        )
    else:
        get_run_logger().info(
            "%s: %d rows ingested as %s", result.source_name, result.rows, result.ingest_id
        )
    text = ingest_markdown(provider, dataset, result, raw_uri)
    reporting.markdown(f"ingest-{provider}-{dataset}", text, "Ingest record")


def ingest_markdown(provider: str, dataset: str, result: IngestResult, raw_uri: str) -> str:
    """The ingest record as the artifact shows it."""
    sheet = f"| sheet read | `{result.sheet}` |\n" if result.sheet else ""
    return (
        f"### Ingest `{provider}/{dataset}`\n\n| | |\n|---|---|\n"
        f"| file | `{result.source_name}` |\n| ingest id | `{result.ingest_id}` |\n"
        f"| sha256 | `{result.sha256}` |\n| bytes | {result.size} |\n| rows | {result.rows} |\n"
        f"| format | {result.format} ({result.compression}) |\n"
        f"{sheet}"
        f"| encoding | {result.encoding or '-'}{' with BOM' if result.bom else ''} |\n"
        f"| schema drift | {_drift_text(result.drift)} |\n"
        f"| duplicate | {result.duplicate} |\n| raw | `{raw_uri}` |\n"
    )


def source_bounds(provider: str, dataset: str) -> SourceBounds:
    """Where this process may read `provider`'s `dataset` from: its own landing folder,
    source_roots, its caller's paths.

    A flow run a deployment started (a runner or worker: `started_by_a_deployment`) runs
    parameters anyone with the API may have set: it reads only the landing zone and source_roots.
    Called in a process of its own (`bourse ingest`/`run`, a script), the caller named the path.
    """
    cfg = resources.config()
    store = resources.store()
    landing = store.local_path("landing")
    keys = {str(resources.key_place(p).key_dir) for p in ("audit", "pseudonym")}
    zone = str(landing) if landing is not None else store.uri("landing")
    return SourceBounds(
        landing=zone,
        own=f"{zone.rstrip('/')}/{provider}/{dataset}",
        roots=tuple(cfg.settings.roots_of(provider)),
        denied=(str(cfg.state_dir), cfg.store_root, str(cfg.root / "configs"), *sorted(keys)),
        caller_named=not started_by_a_deployment(),
    )


def started_by_a_deployment() -> bool:
    """Whether this flow run came through a deployment (API, schedule, event), not a caller.

    A runner sets PREFECT__FLOW_RUN_ID for `python -m prefect.engine`, or PREFECT__DEPLOYMENT_NAME
    for a flow it starts directly; the run's own deployment id says it wherever it runs.
    """
    if os.environ.get("PREFECT__FLOW_RUN_ID") or os.environ.get("PREFECT__DEPLOYMENT_NAME"):
        return True
    from prefect.runtime import deployment

    return deployment.id is not None


def _drift_text(drift: dict[str, Any]) -> str:
    parts = [f"added {drift['added']}"] if drift.get("added") else []
    parts += [f"missing {drift['missing']}"] if drift.get("missing") else []
    parts += [f"retyped {[r['column'] for r in drift['retyped']]}"] if drift.get("retyped") else []
    parts += [f"renamed {len(drift['renamed'])}"] if drift.get("renamed") else []
    return "; ".join(parts) or "none"
