"""What operators read of a validation: an HTML page, artifact rows and a markdown summary.

The HTML page (`databourse.quality.page`) is databourse's own, not GX's Data Docs renderer:
GX 1.24.1's `ValidationResultsPageRenderer` needs a GX validation result (ours combines
per-batch results), renders observed values and unexpected-value samples (cell values), and
links its CSS and JavaScript from a CDN. The page shows what Data Docs would (the suite, every
expectation with its parameters, the results, the dataset's history) and never a cell value.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from databourse.quality.expectations import ExpectationResult
from databourse.quality.history import History
from databourse.quality.page import Suite, render_page, score_text
from databourse.quality.report import QualityReport
from databourse.quality.score import not_measured, scores


def artifact_rows(report: QualityReport) -> list[dict[str, Any]]:
    """One row per expectation for a Prefect table artifact; failures first, errors first."""
    order = sorted(report.results, key=lambda r: (r.success, r.severity != "error", r.expectation))
    return [
        {
            "expectation": r.expectation,
            "column": r.column or "",
            "severity": r.severity,
            "success": r.success,
            "unexpected_percent": _percent(r),
            "unexpected_count": r.unexpected_count,
            "dimension": r.dimension or "",
        }
        for r in order
    ]


def markdown_summary(report: QualityReport) -> str:
    """Markdown for a Prefect artifact: the verdict, failures by severity, scores, what passed."""
    verdict = "passed" if report.success else "FAILED"
    lines = [
        f"# Quality of `{report.dataset}`: {verdict}",
        "",
        f"{report.rows} rows; {report.summary()}.",
    ]
    for severity, failed in (("error", report.failed_errors), ("warning", report.failed_warnings)):
        lines += ["", f"## Failed ({severity}): {len(failed)}", ""]
        lines += [f"- `{r.label}`: {_figures(r)}" for r in failed] or ["- none"]
    scored = scores(report)
    missing = not_measured(scored)
    lines += ["", "## Scores", "", "| dimension | score |", "|---|---|"]
    lines += [f"| {k} | {score_text(v)} |" for k, v in scored.items()]
    if missing:
        lines += [
            "",
            f"Overall is over the measured dimensions only; not measured: {', '.join(missing)}.",
        ]
    passed = [r for r in report.results if r.success]
    lines += ["", f"## Passed: {len(passed)}", ""]
    lines += [f"- `{r.label}`" for r in passed] or ["- none"]
    return "\n".join(lines) + "\n"


def render_html(
    report: QualityReport,
    validated_at: dt.datetime | None = None,
    *,
    suite: Suite | None = None,
    history: History | None = None,
    ingest_id: str | None = None,
) -> str:
    """One self-contained HTML page for the validation (see `databourse.quality.page`)."""
    return render_page(report, validated_at, suite=suite, history=history, ingest_id=ingest_id)


def write_html(
    report: QualityReport,
    path: Path,
    validated_at: dt.datetime | None = None,
    *,
    suite: Suite | None = None,
    history: History | None = None,
) -> Path:
    """Write the validation's HTML page to `path` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page = render_html(report, validated_at, suite=suite, history=history)
    path.write_text(page, encoding="utf-8")
    return path


def _percent(r: ExpectationResult) -> float | None:
    return None if r.unexpected_percent is None else round(r.unexpected_percent, 4)


def _figures(r: ExpectationResult) -> str:
    if r.unexpected_count is None:
        return "failed" if r.element_count is None else f"failed on {r.element_count} rows"
    return f"{r.unexpected_count} unexpected of {r.element_count} rows ({_percent(r)}%)"
