"""`bourse ingest`: every file a source designates, one ingest flow run each, with progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bourse.display import escape_controls
from bourse.runtime import Runtime
from bourse.sources import expand
from databourse.errors import GateFailed, IngestRejected


def ingest_sources(
    rt: Runtime,
    err: Console,
    provider: str,
    dataset: str,
    source: str,
    report: Callable[[Outcome], None],
) -> int:
    """Ingest each file of `source`, reporting each one's outcome as it ends (the progress bar
    on `err`); return how many failed."""
    from flows.ingest_dataset import ingest_dataset
    from tasks import ingesting, resources

    cfg = resources.config()
    cfg.dataset(provider, dataset)  # an unknown provider/dataset fails before any work
    try:
        sources = expand(source, cfg.s3_endpoint_url, cfg.settings.storage.region)
    except IngestRejected as exc:
        report(Outcome(source, "refused", reason=str(exc)))
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
                    kept = exc.context.get("quarantine_uri")
                    status = "quarantined" if kept else "refused"
                    report(Outcome(item.name, status, reason=str(exc), quarantine=kept))
                    continue
                report(Outcome(item.name, "ingested", record=result))
        finally:
            ingesting.PROGRESS_LISTENERS.remove(listener)
    return failures


@dataclass(frozen=True)
class Outcome:
    """What became of one file: `ingested` (with its ingest record) or `quarantined`/`refused`
    (with the reason, and where the quarantined copy is kept)."""

    file: str
    status: str
    reason: str | None = None
    quarantine: str | None = None
    record: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The outcome as `bourse ingest --json` lists it."""
        if self.record is None:
            return {"file": self.file, "status": self.status, "reason": self.reason,
                    "quarantine_uri": self.quarantine}  # fmt: skip
        kept = (
            "ingest_id",
            "rows",
            "format",
            "encoding",
            "sha256",
            "size",
            "raw_key",
            "staged_key",
        )
        shown = {k: self.record[k] for k in kept if k in self.record}
        return {"file": self.file, "status": self.status, **shown,
                "duplicate": bool(self.record.get("duplicate"))}  # fmt: skip

    def line(self) -> str:
        """The outcome as one line of text (file names escaped by the caller's `safe`)."""
        if self.record is None:
            return f"{self.status}: {self.reason}"
        result = self.record
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
