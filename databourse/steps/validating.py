"""Validate an ingest: its quality suite and its personal-data scan, gates that quarantine."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from databourse.errors import PersonalDataFound, QualityFailed
from databourse.ingest.quarantine import quarantine_ingest
from databourse.ingest.records import IngestResult, load_ingest
from databourse.pii.counts import ColumnState
from databourse.pii.detect import SCAN_BATCH_ROWS, count_columns, decide_columns
from databourse.pii.findings import ColumnFinding
from databourse.pii.screening import DeclarationCheck, check_declarations
from databourse.steps.resources import Resources, audit_failure
from databourse.storage import zones

if TYPE_CHECKING:  # the quality suite is imported when a dataset is validated (tasks.validating)
    from databourse.quality.report import QualityReport
    from databourse.quality.tally import Tally

IngestedCopy = Callable[[IngestResult], AbstractContextManager[Path]]  # the staged Parquet of an
# ingest as a local file, checked against the audit trail and its hash (tasks.staged.ingested_copy)
StagedSource = Callable[[IngestResult], AbstractContextManager[Path | pa.NativeFile]]  # the same,
# or read in byte ranges checked against a validation plan's block hashes (tasks.validating)
Watch = Callable[[Iterator[pa.RecordBatch], int], Iterable[pa.RecordBatch]]  # yields the batches
# unchanged (given their total rows), showing how far the scan is


@dataclass(frozen=True)
class QualityChecked:
    """The quality report of an ingest, and where its quality.json and quality.html are."""

    provider: str
    dataset: str
    report: QualityReport
    scores: dict[str, Any]
    report_uri: str
    html_uri: str

    def to_json(self) -> dict[str, Any]:
        """What the check-quality task returns (once the gate passed)."""
        return {
            "success": True,
            "summary": self.report.summary(),
            "scores": self.scores,
            "report_uri": self.report_uri,
            "html_uri": self.html_uri,
            "warnings": len(self.report.failed_warnings),
        }


@dataclass(frozen=True)
class PersonalDataScanned:
    """What the scan classified in each column, the check against the declaration, pii.json."""

    provider: str
    dataset: str
    findings: list[ColumnFinding]
    check: DeclarationCheck
    report_uri: str

    def to_json(self) -> dict[str, Any]:
        """What the scan-personal-data task returns (once the gate passed)."""
        return {
            "ok": True,
            "report_uri": self.report_uri,
            "declared_not_found": self.check.not_found,
        }


def check_quality(
    res: Resources,
    provider: str,
    dataset: str,
    ingest_id: str,
    copy: StagedSource,
    *,
    show: Callable[[QualityChecked], None] = lambda checked: None,
    validated_at: dt.datetime | None = None,
    tallies: list[Tally] | None = None,
) -> QualityChecked:
    """Run the dataset's suite and write quality.json and quality.html; `show` gets the result
    before the gate decides: an error-severity failure quarantines the ingest (audited) and
    raises QualityFailed.

    `tallies`: what the partitions tallied (`steps.scanning.tally_partition`, with the suite of
    `validated_at`), finished here on the whole file; None: the suite runs here in one pass."""
    from databourse.quality.batches import validate_parquet
    from databourse.quality.docs import render_html
    from databourse.quality.history import read_history
    from databourse.quality.page import Suite
    from databourse.quality.score import scores
    from databourse.quality.suite import check_suite, suite_from_contract

    store = res.store
    spec = res.config.dataset(provider, dataset)
    check_suite(spec)  # a bad expectation is a config error, found before any data is read
    record = load_ingest(store, provider, dataset, ingest_id)
    validated_at = validated_at or dt.datetime.now(dt.UTC)
    specs = suite_from_contract(spec, now=validated_at)
    suite = Suite(f"{provider}.{dataset}", specs, configured=len(spec.expectations))
    with copy(record) as path:
        report = validate_parquet(path, f"{provider}/{dataset}", specs, tallies=tallies)
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
    checked = QualityChecked(
        provider,
        dataset,
        report,
        quality["scores"],
        store.uri(f"{prefix}/quality.json"),
        store.uri(f"{prefix}/quality.html"),
    )
    show(checked)
    if not report.success:
        failed = QualityFailed(report.summary(), report_uri=checked.report_uri)
        error = quarantine_ingest(store, record, failed, "quality")
        audit_failure(res.catalog, "quarantine", error, provider=provider, dataset=dataset)
        raise error
    return checked


def scan_personal_data(
    res: Resources,
    provider: str,
    dataset: str,
    ingest_id: str,
    copy: IngestedCopy,
    *,
    watch: Watch = lambda batches, rows: batches,
    show: Callable[[PersonalDataScanned], None] = lambda scanned: None,
) -> PersonalDataScanned:
    """Classify every column by content, reading the staged file whole (see
    `judge_personal_data`)."""
    record = load_ingest(res.store, provider, dataset, ingest_id)
    with copy(record) as path:
        pfile = pq.ParquetFile(path)
        states = count_columns(
            watch(pfile.iter_batches(batch_size=SCAN_BATCH_ROWS), pfile.metadata.num_rows),
            pfile.schema_arrow,
            sample_rows=res.config.settings.pii_sample_rows,
        )
    return judge_personal_data(res, record, states, show=show)


def judge_personal_data(
    res: Resources,
    record: IngestResult,
    states: list[ColumnState],
    *,
    show: Callable[[PersonalDataScanned], None] = lambda scanned: None,
) -> PersonalDataScanned:
    """Decide every column's category on the counts of the whole staged dataset (one scan, or
    the partitions' scans merged: `steps.scanning`) and write pii.json; `show` gets the result
    before the gate decides: undeclared personal data quarantines the ingest (audited) and
    raises PersonalDataFound."""
    cfg, store = res.config, res.store
    provider, dataset = record.provider, record.dataset
    findings = decide_columns(
        states,
        threshold=cfg.settings.pii_threshold,
        dirty_threshold=cfg.settings.pii_dirty_threshold,
    )
    check = check_declarations(
        findings,
        cfg.dataset(provider, dataset).declared_categories,
        min_share=cfg.settings.pii_undeclared_min_share,
    )
    report = {"findings": [f.to_json() for f in findings], **check.to_json()}
    key = f"{zones.reports_prefix(provider, dataset, record.ingest_id)}/pii.json"
    store.put_bytes(key, json.dumps(report, indent=2).encode())
    scanned = PersonalDataScanned(provider, dataset, findings, check, store.uri(key))
    show(scanned)
    if not check.ok:
        cols = ", ".join(f"{u['column']} ({u['found']})" for u in check.undeclared)
        found = PersonalDataFound(
            f"undeclared personal data in {len(check.undeclared)} column(s): {cols}",
            report_uri=scanned.report_uri,
        )
        error = quarantine_ingest(store, record, found, "pii")
        audit_failure(res.catalog, "quarantine", error, provider=provider, dataset=dataset)
        raise error
    return scanned
