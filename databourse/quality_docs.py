"""What operators read of a validation: an HTML page, artifact rows and a markdown summary.

The HTML page is databourse's own, not GX's Data Docs renderer: GX 1.24.1's
`ValidationResultsPageRenderer` needs a GX validation result (ours combines per-batch results),
renders observed values and unexpected-value samples (cell values), and links its CSS and
JavaScript from a CDN. This page is self-contained (inline CSS, no script, no link), escapes
every string and shows the same columns: expectation, column, severity, success, counts and
unexpected %; never a cell value.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any

from databourse.quality import ExpectationResult, QualityReport
from databourse.quality_score import scores

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
th{background:#f3f3f3} td.num{text-align:right}
tr.fail-error{background:#fde2e2} tr.fail-warning{background:#fff4d6}
.ok{color:#16702e;font-weight:bold} .ko{color:#b00020;font-weight:bold}
"""


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
    lines += ["", "## Scores", "", "| dimension | score |", "|---|---|"]
    lines += [f"| {k} | {'n/a' if v is None else f'{v:.3f}'} |" for k, v in scores(report).items()]
    passed = [r for r in report.results if r.success]
    lines += ["", f"## Passed: {len(passed)}", ""]
    lines += [f"- `{r.label}`" for r in passed] or ["- none"]
    return "\n".join(lines) + "\n"


def render_html(report: QualityReport, validated_at: dt.datetime | None = None) -> str:
    """One self-contained HTML page for the validation (databourse's own renderer)."""
    when = (validated_at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    e = html.escape
    rows = []
    for r in report.results:
        css = "" if r.success else f' class="fail-{e(r.severity)}"'
        mark = '<span class="ok">passed</span>' if r.success else '<span class="ko">failed</span>'
        rows.append(
            f"<tr{css}><td>{e(r.expectation)}</td><td>{e(r.column or '')}</td>"
            f"<td>{e(r.severity)}</td><td>{mark}</td>"
            f'<td class="num">{_cell(r.element_count)}</td>'
            f'<td class="num">{_cell(r.unexpected_count)}</td>'
            f'<td class="num">{_cell(_percent(r))}</td><td>{e(r.dimension or "")}</td></tr>'
        )
    score_rows = "".join(
        f"<tr><td>{e(k)}</td><td class='num'>{'n/a' if v is None else f'{v:.3f}'}</td></tr>"
        for k, v in scores(report).items()
    )
    verdict = (
        '<span class="ok">passed</span>' if report.success else '<span class="ko">FAILED</span>'
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Quality: {e(report.dataset)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Quality of {e(report.dataset)}: {verdict}</h1>"
        f"<p>{report.rows} rows, validated {e(when)}. {e(report.summary())}</p>"
        "<p>Rendered by databourse (not GX Data Docs); counts only, never cell values.</p>"
        "<h2>Expectations</h2><table><thead><tr><th>expectation</th><th>column</th>"
        "<th>severity</th><th>result</th><th>rows</th><th>unexpected</th>"
        "<th>unexpected %</th><th>dimension</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table><h2>Scores</h2><table><thead><tr><th>dimension</th><th>score</th>"
        f"</tr></thead><tbody>{score_rows}</tbody></table></body></html>\n"
    )


def write_html(report: QualityReport, path: Path, validated_at: dt.datetime | None = None) -> Path:
    """Write the validation's HTML page to `path` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, validated_at), encoding="utf-8")
    return path


def _percent(r: ExpectationResult) -> float | None:
    return None if r.unexpected_percent is None else round(r.unexpected_percent, 4)


def _cell(value: Any) -> str:
    return "" if value is None else html.escape(str(value))


def _figures(r: ExpectationResult) -> str:
    if r.unexpected_count is None:
        return "failed" if r.element_count is None else f"failed on {r.element_count} rows"
    return f"{r.unexpected_count} unexpected of {r.element_count} rows ({_percent(r)}%)"
