"""The quality page of one validation: its suite with every parameter, scores and history.

It is databourse's own page, not GX's Data Docs renderer (see `databourse.quality.docs` for
why), and shows what Data Docs would: the suite (name, count, each expectation with its type,
column, parameters and severity), each result (counts, unexpected %, the observations
`databourse.quality.report` keeps: counts, type names, column names), the scores of the dimensions
that were measured with those that were not named, and the dataset's earlier validations.
Parameters come from the suite (the contract and the dataset's config), never from the data;
no cell value and no unexpected value reaches the page. It is self-contained: inline CSS, no
script, no link out, every string escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from databourse.quality.score import DIMENSION_NAMES, not_measured, scores

if TYPE_CHECKING:
    from databourse.quality.expectations import ExpectationResult, ExpectationSpec
    from databourse.quality.history import History
    from databourse.quality.report import QualityReport

LIST_SHOWN = 20  # items of a list parameter shown before "… n more"
_COLUMN_KEYS = ("column", "column_list", "column_A", "column_B")  # shown in the column cell
_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.num{text-align:right} td.params{font-family:monospace}
tr.fail-error{background:#fde2e2} tr.fail-warning{background:#fff4d6} tr.this{font-weight:bold}
.ok{color:#16702e;font-weight:bold} .ko{color:#b00020;font-weight:bold} .na{color:#777}
"""
_e = html.escape


@dataclass(frozen=True)
class Suite:
    """The suite a report ran: a name and its specs, the last `configured` from `expectations:`."""

    name: str
    specs: list[ExpectationSpec]
    configured: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description: name, counts and each expectation with its parameters."""
        return {
            "name": self.name,
            "expectations": len(self.specs),
            "from_contract": len(self.specs) - self.configured,
            "configured": self.configured,
            "expectation_list": [
                {
                    "type": s.name,
                    "column": _column(s),
                    "severity": s.severity,
                    "parameters": parameters(s),
                }
                for s in self.specs
            ],
        }


def parameters(spec: ExpectationSpec) -> dict[str, Any]:
    """The spec's keyword arguments but its columns, JSON-ready (dates as ISO strings)."""
    return {k: _plain(v) for k, v in spec.kwargs.items() if k not in _COLUMN_KEYS}


def render_page(
    report: QualityReport,
    validated_at: dt.datetime | None = None,
    *,
    suite: Suite | None = None,
    history: History | None = None,
    ingest_id: str | None = None,
) -> str:
    """One self-contained HTML page for the validation; see the module doc."""
    if suite is not None and len(suite.specs) != len(report.results):
        raise ValueError(
            f"suite {suite.name} has {len(suite.specs)} expectations, "
            f"the report {len(report.results)} results"
        )
    when = (validated_at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    run = f", ingest {_e(ingest_id)}" if ingest_id else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Quality: {_e(report.dataset)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Quality of {_e(report.dataset)}: {_verdict(report.success, 'FAILED')}</h1>"
        f"<p>{report.rows} rows, validated {_e(when)}{run}. {_e(report.summary())}</p>"
        "<p>Counts, parameters and names only: no value of the data appears on this page.</p>"
        + _scores_section(report)
        + _suite_section(report, suite)
        + _history_section(report, history, ingest_id)
        + "</body></html>\n"
    )


def _scores_section(report: QualityReport) -> str:
    scored = scores(report)
    missing = not_measured(scored)
    counts = {name: 0 for name in DIMENSION_NAMES}
    for r in report.results:
        counts[r.dimension or "validity"] = counts.get(r.dimension or "validity", 0) + 1
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td class='num'>{_score(scored.get(name))}</td>"
        f"<td class='num'>{counts.get(name, 0)}</td></tr>"
        for name in DIMENSION_NAMES
    )
    measured = [n for n in DIMENSION_NAMES if n not in missing]
    overall = (
        f"<tr><td>overall: mean of the {len(measured)} measured "
        f"dimension{'s' if len(measured) != 1 else ''} ({_e(', '.join(measured) or 'none')})</td>"
        f"<td class='num'>{_score(scored.get('overall'))}</td><td></td></tr>"
    )
    left_out = (
        f"<p>Not measured (no expectation of the suite measures them; left out of overall): "
        f"{_e(', '.join(missing))}.</p>"
        if missing
        else "<p>Every dimension was measured.</p>"
    )
    return (
        '<h2 id="scores">Scores</h2><table><thead><tr><th>dimension</th><th>score</th>'
        f"<th>expectations</th></tr></thead><tbody>{rows}{overall}</tbody></table>{left_out}"
    )


def _suite_section(report: QualityReport, suite: Suite | None) -> str:
    if suite is None:
        head = "<p>Suite not given: parameters are not shown.</p>"
        params: list[str | None] = [None] * len(report.results)
    else:
        head = (
            f"<p>Suite <b>{_e(suite.name)}</b>: {len(suite.specs)} expectations "
            f"({len(suite.specs) - suite.configured} from the contract, "
            f"{suite.configured} configured).</p>"
        )
        params = [_params_text(s) for s in suite.specs]
    rows = "".join(_result_row(r, p) for r, p in zip(report.results, params, strict=True))
    return (
        f'<h2 id="suite">Expectations</h2>{head}<table><thead><tr><th>expectation</th>'
        "<th>column</th><th>parameters</th><th>severity</th><th>result</th><th>rows</th>"
        "<th>unexpected</th><th>unexpected %</th><th>observed</th><th>dimension</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _result_row(r: ExpectationResult, params: str | None) -> str:
    css = "" if r.success else f' class="fail-{_e(r.severity)}"'
    shown = '<span class="na">not given</span>' if params is None else _e(params)
    percent = None if r.unexpected_percent is None else round(r.unexpected_percent, 4)
    observed = None if r.observed_value is None else _shown(r.observed_value)
    return (
        f"<tr{css}><td>{_e(r.expectation)}</td><td>{_e(r.column or '')}</td>"
        f'<td class="params">{shown}</td><td>{_e(r.severity)}</td>'
        f"<td>{_verdict(r.success, 'failed')}</td>"
        f'<td class="num">{_cell(r.element_count)}</td>'
        f'<td class="num">{_cell(r.unexpected_count)}</td>'
        f'<td class="num">{_cell(percent)}</td><td>{_cell(observed)}</td>'
        f"<td>{_e(r.dimension or '')}</td></tr>"
    )


def _history_section(report: QualityReport, history: History | None, this: str | None) -> str:
    title = f'<h2 id="history">History of {_e(report.dataset)}</h2>'
    if history is None:
        return f"{title}<p>History not given.</p>"
    if not history.runs:
        return f"{title}<p>No validation of this dataset on record.</p>"
    note = f"{history.found} validation{'s' if history.found != 1 else ''} on record"
    if len(history.runs) < history.found - history.unreadable:
        note += f", the latest {len(history.runs)} shown"
    if history.unreadable:
        note += f"; {history.unreadable} report(s) could not be read"
    rows = []
    for run in history.runs:
        mark = ' class="this"' if run.ingest_id == this else ""
        when = run.validated_at.isoformat(timespec="seconds") if run.validated_at else "unknown"
        verdict = "unknown" if run.success is None else _verdict(run.success, "FAILED")
        passed = "" if run.total is None else f"{run.passed}/{run.total}"
        rows.append(
            f"<tr{mark}><td>{_e(when)}</td><td>{_e(run.ingest_id)}"
            f"{' (this run)' if mark else ''}</td><td>{verdict}</td>"
            f'<td class="num">{_cell(run.rows)}</td><td class="num">{_e(passed)}</td>'
            f'<td class="num">{_score(run.overall)}</td>'
            f"<td>{_e(', '.join(run.not_measured))}</td></tr>"
        )
    return (
        f"{title}<p>{_e(note)}, newest first.</p><table><thead><tr><th>validated</th>"
        "<th>ingest</th><th>result</th><th>rows</th><th>passed</th><th>overall</th>"
        f"<th>not measured</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _params_text(spec: ExpectationSpec) -> str:
    found = parameters(spec)
    return "; ".join(f"{k}={_shown(v)}" for k, v in found.items()) or "none"


def _column(spec: ExpectationSpec) -> str | None:
    names = [spec.kwargs[k] for k in ("column", "column_A", "column_B") if k in spec.kwargs]
    names += list(spec.kwargs.get("column_list") or [])
    return ",".join(str(n) for n in names) or None


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _shown(value: Any) -> str:
    if isinstance(value, list):
        head = ", ".join(_shown(v) for v in value[:LIST_SHOWN])
        more = f", … {len(value) - LIST_SHOWN} more" if len(value) > LIST_SHOWN else ""
        return f"[{head}{more}] ({len(value)} value{'s' if len(value) != 1 else ''})"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)


def _verdict(success: bool, failed: str) -> str:
    return '<span class="ok">passed</span>' if success else f'<span class="ko">{failed}</span>'


def score_text(value: float | None) -> str:
    """A score with 4 decimals, cut rather than rounded: only a perfect score reads 1.0000."""
    return "not measured" if value is None else f"{math.floor(value * 10_000) / 10_000:.4f}"


def _score(value: float | None) -> str:
    text = score_text(value)
    return f'<span class="na">{text}</span>' if value is None else text


def _cell(value: Any) -> str:
    return "" if value is None else _e(str(value))
