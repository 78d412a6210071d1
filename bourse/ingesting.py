"""`bourse ingest`: every file a source designates, one ingest flow run each, with progress."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bourse.display import assemble, escape_controls, safe
from bourse.runtime import Runtime
from bourse.sources import expand
from databourse.errors import GateFailed, IngestRejected


def ingest_sources(
    rt: Runtime, out: Console, err: Console, provider: str, dataset: str, source: str
) -> int:
    """Ingest each file of `source`; print one line per file; return how many failed."""
    from flows.ingest_dataset import ingest_dataset
    from tasks import ingesting, resources

    cfg = resources.config()
    cfg.dataset(provider, dataset)  # an unknown provider/dataset fails before any work
    try:
        sources = expand(source, cfg.s3_endpoint_url, cfg.settings.storage.region)
    except IngestRejected as exc:
        err.print(assemble(("refused:", "bold red"), safe(f" {exc}", keep="\n")))
        return 1
    failures = 0
    with _bar(err) as bar:
        listener = _listener(bar)
        ingesting.PROGRESS_LISTENERS.append(listener)
        try:
            for item in sources:
                try:
                    result = ingest_dataset(
                        provider, dataset, item.location, item.name, item.expected_rows
                    )
                except GateFailed as exc:
                    failures += 1
                    # a link or a missing file is refused unread: there is nothing to quarantine
                    kept = "quarantined:" if exc.context.get("quarantine_uri") else "refused:"
                    err.print(assemble((kept, "bold red"), safe(f" {exc}", keep="\n")))
                    continue
                out.print(safe(_line(result)))
        finally:
            ingesting.PROGRESS_LISTENERS.remove(listener)
    return failures


def _line(result: dict[str, Any]) -> str:
    note = " (identical bytes already ingested)" if result["duplicate"] else ""
    encoding = f", {result['encoding']}" if result.get("encoding") else ""
    return (
        f"ingested {result['source_name']} as {result['ingest_id']}: {result['rows']} rows"
        f" ({result.get('format', '?')}{encoding}){note}"
    )


def _bar(err: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}", markup=False),  # a file name is not markup
        BarColumn(),
        TextColumn("{task.fields[rows]:>12,} rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _listener(bar: Progress) -> Any:
    tasks: dict[str, TaskID] = {}

    def update(name: str, rows: int, share: float | None) -> None:
        if name not in tasks:
            total = 1.0 if share is not None else None
            tasks[name] = bar.add_task(escape_controls(name), total=total, rows=0)
        bar.update(tasks[name], completed=share or 0.0, rows=rows)

    return update
