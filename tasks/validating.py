"""Tasks: the quality suite and the personal-data scan of a staged dataset."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from prefect import get_run_logger, task

from databourse.steps import validating
from databourse.steps.validating import PersonalDataScanned, QualityChecked
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
    import databourse.quality.docs  # the report, page, history and score modules
    import databourse.quality.suite  # noqa: F401  (GX itself, through quality.gx_inputs)


@task(
    name="check-quality",
    task_run_name="quality {provider}/{dataset}/{ingest_id}",
    **RETRY_TRANSIENT,
)
def check_quality(provider: str, dataset: str, ingest_id: str) -> dict[str, Any]:
    """Run the dataset's suite; quarantine the ingest when an error-severity expectation fails."""
    res = resources.bundle()
    copy = partial(ingested_copy, res.store)
    checked = validating.check_quality(res, provider, dataset, ingest_id, copy, show=report_quality)
    return checked.to_json()


def report_quality(checked: QualityChecked) -> None:
    """The quality artifacts (table, summary, link to the HTML page) and the log line."""
    from databourse.quality.docs import artifact_rows, markdown_summary

    report, name = checked.report, f"quality-{checked.provider}-{checked.dataset}"
    reporting.table(name, artifact_rows(report), f"Quality: {report.summary()}")
    reporting.markdown(f"{name}-summary", markdown_summary(report), "Quality summary")
    reporting.link(f"{name}-docs", checked.html_uri, "Quality report (HTML)")
    get_run_logger().info(
        "quality of %s/%s: %s", checked.provider, checked.dataset, report.summary()
    )


@task(
    name="scan-personal-data",
    task_run_name="pii {provider}/{dataset}/{ingest_id}",
    **RETRY_TRANSIENT,
)
def scan_personal_data(provider: str, dataset: str, ingest_id: str) -> dict[str, Any]:
    """Classify every column by content; undeclared personal data quarantines the ingest."""
    res = resources.bundle()
    scanned = validating.scan_personal_data(
        res,
        provider,
        dataset,
        ingest_id,
        partial(ingested_copy, res.store),
        watch=scan_progress(provider, dataset),
        show=report_personal_data,
    )
    get_run_logger().info("personal data of %s/%s matches the declaration", provider, dataset)
    return scanned.to_json()


def scan_progress(provider: str, dataset: str) -> Callable[..., Any]:
    """The scan's batches, counted into a progress artifact as they go by."""
    return partial(
        reporting.progress,
        f"pii-progress-{provider}-{dataset}",
        f"Personal-data scan of {provider}/{dataset}: rows done",
    )


def report_personal_data(scanned: PersonalDataScanned) -> None:
    """The findings table (column, category, confidence; never values) and a warning for each
    declared category the scan did not find."""
    reporting.table(
        f"pii-{scanned.provider}-{scanned.dataset}",
        [{k: v for k, v in f.to_json().items() if k != "embedded"} for f in scanned.findings],
        "Personal data found by content (column, category, confidence; never values)",
    )
    for miss in scanned.check.not_found:
        get_run_logger().warning(
            "declared %s in column %s was not detected", miss["declared"], miss["column"]
        )
