"""Tasks: the quality suite and the personal-data scan of a staged dataset."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow.parquet as pq
from prefect import get_run_logger, task

from databourse.errors import PersonalDataFound, QualityFailed
from databourse.ingest.quarantine import quarantine_ingest
from databourse.ingest.records import load_ingest
from databourse.pii.detect import SCAN_BATCH_ROWS, scan_batches
from databourse.pii.screening import check_declarations
from databourse.storage import zones
from tasks import reporting, resources
from tasks.retrying import RETRY_TRANSIENT
from tasks.staged import ingested_copy

# The quality suite is Great Expectations, whose import (scipy.stats, altair, its expectation
# registry) was 72% of importing flows/process_drop.py: 18.6 of 25.9 s on the loaded 2-core
# benchmark machine (python -X importtime, issue 18), paid by every process that imports a flow
# (the runner, `bourse serve`, too). It is imported when a dataset is validated: see load_quality.


def load_quality() -> None:
    """Import the quality suite now, before the checks start: imported inside check_quality
    instead, beside the PII scan on the other thread, it made both slower (at 1M rows quality
    16.4 s and PII 11.7 s against 5.7 and 8.8 s: the import holds the GIL), and on a thread during
    the ingest it made the ingest 2-3x slower."""
    import databourse.quality.docs  # noqa: F401  (imports databourse.quality.suite and quality_score)


@task(
    name="check-quality",
    task_run_name="quality {provider}/{dataset}/{ingest_id}",
    **RETRY_TRANSIENT,
)
def check_quality(provider: str, dataset: str, ingest_id: str) -> dict[str, Any]:
    """Run the dataset's suite; quarantine the ingest when an error-severity expectation fails."""
    from databourse.quality.batches import validate_parquet
    from databourse.quality.docs import artifact_rows, markdown_summary, render_html
    from databourse.quality.history import read_history
    from databourse.quality.page import Suite
    from databourse.quality.score import scores
    from databourse.quality.suite import check_suite, suite_from_contract

    logger = get_run_logger()
    store = resources.store()
    spec = resources.config().dataset(provider, dataset)
    check_suite(spec)  # a bad expectation is a config error, found before any data is read
    record = load_ingest(store, provider, dataset, ingest_id)
    validated_at = dt.datetime.now(dt.UTC)
    specs = suite_from_contract(spec, now=validated_at)
    suite = Suite(f"{provider}.{dataset}", specs, configured=len(spec.expectations))
    with ingested_copy(store, record) as path:
        report = validate_parquet(path, f"{provider}/{dataset}", specs)
    prefix = zones.reports_prefix(provider, dataset, ingest_id)
    quality = {
        **report.to_json(),
        "scores": scores(report),
        "validated_at": validated_at.isoformat(timespec="seconds"),
        "suite": suite.to_json(),
    }
    # quality.json first: the history the page shows is the dataset's quality.json files
    store.put_bytes(f"{prefix}/quality.json", json.dumps(quality, indent=2, default=str).encode())
    history = read_history(store, provider, dataset)
    page = render_html(report, validated_at, suite=suite, history=history, ingest_id=ingest_id)
    store.put_bytes(f"{prefix}/quality.html", page.encode())
    name = f"quality-{provider}-{dataset}"
    reporting.table(name, artifact_rows(report), f"Quality: {report.summary()}")
    reporting.markdown(f"{name}-summary", markdown_summary(report), "Quality summary")
    reporting.link(f"{name}-docs", store.uri(f"{prefix}/quality.html"), "Quality report (HTML)")
    logger.info("quality of %s/%s: %s", provider, dataset, report.summary())
    if not report.success:
        error = quarantine_ingest(
            store,
            record,
            QualityFailed(report.summary(), report_uri=store.uri(f"{prefix}/quality.json")),
            "quality",
        )
        resources.audit("quarantine", error, provider=provider, dataset=dataset)
        raise error
    return {
        "success": True,
        "summary": report.summary(),
        "scores": quality["scores"],
        "report_uri": store.uri(f"{prefix}/quality.json"),
        "html_uri": store.uri(f"{prefix}/quality.html"),
        "warnings": len(report.failed_warnings),
    }


@task(
    name="scan-personal-data",
    task_run_name="pii {provider}/{dataset}/{ingest_id}",
    **RETRY_TRANSIENT,
)
def scan_personal_data(provider: str, dataset: str, ingest_id: str) -> dict[str, Any]:
    """Classify every column by content; undeclared personal data quarantines the ingest."""
    logger = get_run_logger()
    cfg = resources.config()
    store = resources.store()
    record = load_ingest(store, provider, dataset, ingest_id)
    with ingested_copy(store, record) as path:
        pfile = pq.ParquetFile(path)
        findings = scan_batches(
            reporting.progress(
                f"pii-progress-{provider}-{dataset}",
                f"Personal-data scan of {provider}/{dataset}: rows done",
                pfile.iter_batches(batch_size=SCAN_BATCH_ROWS),
                pfile.metadata.num_rows,
            ),
            pfile.schema_arrow,
            threshold=cfg.settings.pii_threshold,
            sample_rows=cfg.settings.pii_sample_rows,
            dirty_threshold=cfg.settings.pii_dirty_threshold,
        )
    check = check_declarations(
        findings,
        cfg.dataset(provider, dataset).declared_categories,
        min_share=cfg.settings.pii_undeclared_min_share,
    )
    report = {"findings": [f.to_json() for f in findings], **check.to_json()}
    key = f"{zones.reports_prefix(provider, dataset, ingest_id)}/pii.json"
    store.put_bytes(key, json.dumps(report, indent=2).encode())
    reporting.table(
        f"pii-{provider}-{dataset}",
        [{k: v for k, v in f.to_json().items() if k != "embedded"} for f in findings],
        "Personal data found by content (column, category, confidence; never values)",
    )
    for miss in check.not_found:
        logger.warning(
            "declared %s in column %s was not detected", miss["declared"], miss["column"]
        )
    if not check.ok:
        cols = ", ".join(f"{u['column']} ({u['found']})" for u in check.undeclared)
        found = PersonalDataFound(
            f"undeclared personal data in {len(check.undeclared)} column(s): {cols}",
            report_uri=store.uri(key),
        )
        error = quarantine_ingest(store, record, found, "pii")
        resources.audit("quarantine", error, provider=provider, dataset=dataset)
        raise error
    logger.info("personal data of %s/%s matches the declaration", provider, dataset)
    return {"ok": True, "report_uri": store.uri(key), "declared_not_found": check.not_found}
