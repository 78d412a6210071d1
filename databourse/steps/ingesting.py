"""Take drops in: which landing drops are new, and one file into raw and staging, audited."""

from __future__ import annotations

from collections.abc import Callable

from databourse.catalog.database import Catalog
from databourse.errors import GateFailed, IngestRejected, ObjectChanged
from databourse.ingest.files import fetched_source, ingest_file
from databourse.ingest.landing import DiscoverResult, discover
from databourse.ingest.landing_bounds import SourceBounds
from databourse.ingest.records import IngestResult
from databourse.ingest.staging import Progress
from databourse.steps.resources import Resources, audit_failure

ProgressOf = Callable[[str], Progress]  # given the file's name, what its progress is reported to


def discover_drops(res: Resources, provider: str | None = None) -> DiscoverResult:
    """List the landing zone (or a provider's folder), classify every drop; each refused one
    (a link) is audited as a quarantine, every time it is seen."""
    result = discover(res.store, res.config.providers, provider)
    for drop in (d for d in result.drops if d.status == "refused"):
        refused = IngestRejected(f"{drop.key}: {drop.reason}", file=drop.key)
        audit_failure(
            res.catalog, "quarantine", refused, provider=drop.provider, dataset=drop.dataset
        )
    return result


def ingest_source(
    res: Resources,
    provider: str,
    dataset: str,
    source: str,
    bounds: SourceBounds,
    *,
    source_name: str | None = None,
    expected_rows: int | None = None,
    expected_sha256: str | None = None,
    progress_of: ProgressOf | None = None,
) -> IngestResult:
    """Ingest `source` (a path or s3:// URI that `bounds` lets be read) into raw and staging,
    and record the `ingest` audit event; returns the `_ingest.json` record."""
    cfg = res.config
    spec = cfg.dataset(provider, dataset)
    try:  # a refused source (a link, a missing file) is audited like a quarantined one
        where = (cfg.s3_endpoint_url, cfg.settings.storage.region)
        with fetched_source(source, bounds, *where) as path:
            name = source_name or path.name
            progress = progress_of(name) if progress_of is not None else None
            result = ingest_file(
                res.store,
                provider,
                dataset,
                spec,
                path,
                source_name=name,
                limits=spec.limits or cfg.settings.ingest,
                expected_rows=expected_rows,
                expected_sha256=expected_sha256,
                progress=progress,
            )
    except GateFailed as exc:
        audit_failure(res.catalog, "quarantine", exc, provider=provider, dataset=dataset)
        raise
    except ObjectChanged as exc:  # a duplicate whose record or staged bytes are not those ingested
        audit_failure(
            res.catalog, "quarantine", exc, provider=provider, dataset=dataset, stage="staged"
        )
        raise
    if not result.duplicate and progress is not None:
        progress(result.rows, 1.0)  # the file is read whole: show it done
    if not result.duplicate or not _audited(res.catalog, result.ingest_id):
        # a crash between `_ingest.json` and this event leaves a completed ingest unaudited:
        # the next run of the same bytes (a duplicate) records it
        _audit_ingest(res.catalog, provider, dataset, result)
    return result


def _audit_ingest(catalog: Catalog, provider: str, dataset: str, result: IngestResult) -> None:
    """The `ingest` audit event: what later gates trust the raw and staged files by."""
    catalog.audit_append(
        "ingest",
        detail={
            "provider": provider,
            "dataset": dataset,
            "ingest_id": result.ingest_id,
            "sha256": result.sha256,
            "size": result.size,
            "staged_sha256": result.staged_sha256,
            "staged_size": result.staged_size,
            "rows": result.rows,
            "file": result.source_name,
        },
    )


def _audited(catalog: Catalog, ingest_id: str) -> bool:
    """Whether the audit trail holds the ingest event of `ingest_id`."""
    return any(
        event["kind"] == "ingest" and event["detail"].get("ingest_id") == ingest_id
        for event in catalog.audit_history()
    )
