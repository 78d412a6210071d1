"""The quality page: every expectation with its parameters, the suite, scores, history, no value."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from databourse.config import DatasetSpec
from databourse.quality.batches import validate_table
from databourse.quality.docs import markdown_summary, render_html
from databourse.quality.expectations import ExpectationSpec
from databourse.quality.history import History, read_history
from databourse.quality.page import Suite
from databourse.quality.report import QualityReport
from databourse.quality.score import scores
from databourse.quality.suite import suite_from_contract
from databourse.storage.local import LocalStore

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
CANARY = "CANARY-9d41e7-Wang-Wu"
CANARY_NUMBER = 731902.625
CONTRACT: dict[str, Any] = {
    "primary_key": ["id"],
    "min_rows": 2,
    "max_rows": 100,
    "freshness": {"column": "at", "max_age_hours": 24, "severity": "warning"},
    "columns": [
        {"name": "id", "type": "string"},
        {"name": "status", "allowed_values": ["new", "paid"]},
        {"name": "amount", "type": "float64", "min_value": 0, "max_value": 1000},
        {"name": "code", "pattern": r"^[A-Z]{2}-\d+$"},
        {"name": "at", "type": "timestamp"},
    ],
    "expectations": [
        {
            "expectation": "ExpectColumnValueLengthsToBeBetween",
            "kwargs": {"column": "code", "max_value": 8},
            "severity": "warning",
        }
    ],
}
SPEC = DatasetSpec.model_validate(CONTRACT)


def table(n: int = 6, **overrides: list[Any]) -> pa.Table:
    data: dict[str, list[Any]] = {
        "id": [f"O-{i}" for i in range(n)],
        "status": ["new" if i % 2 else "paid" for i in range(n)],
        "amount": [10.0 * i for i in range(n)],
        "code": [f"SZ-{i}" for i in range(n)],
        "at": [dt.datetime(2026, 3, 10, 6, 0) - dt.timedelta(hours=i) for i in range(n)],
    }
    data.update(overrides)
    kinds = {"amount": pa.float64(), "at": pa.timestamp("us")}
    return pa.table({k: pa.array(v, kinds.get(k, pa.string())) for k, v in data.items()})


def suite() -> Suite:
    return Suite("sz.orders", suite_from_contract(SPEC, now=NOW), configured=1)


def canary_report() -> QualityReport:
    """Failing rows hold the canary: an out-of-set status, a bad code, a duplicate key, a value
    over the maximum; so each would be an "unexpected value" in a GX result."""
    return validate_table(
        table(
            id=["O-0", CANARY, CANARY, "O-3", "O-4", "O-5"],
            status=["new", CANARY, "new", "paid", "new", "paid"],
            code=["SZ-0", CANARY, "SZ-2", "SZ-3", "SZ-4", "SZ-5"],
            amount=[1.0, CANARY_NUMBER, 2.0, 3.0, 4.0, 5.0],
        ),
        "sz/orders",
        suite().specs,
    )


def page_text(page: str) -> str:
    return html.unescape(page)


def test_page_shows_the_suite_and_every_expectation_with_its_parameters() -> None:
    report = validate_table(table(), "sz/orders", suite().specs)
    text = page_text(render_html(report, NOW, suite=suite()))
    count = len(suite().specs)
    assert (
        f"Suite sz.orders: {count} expectations ({count - 1} from the contract, 1 configured)"
        in (text.replace("<b>", "").replace("</b>", ""))
    )
    for needle in (
        'value_set=["new", "paid"] (2 values)',
        "min_value=0.0; max_value=1000.0",
        r'regex="^[A-Z]{2}-\d+$"',
        "min_value=2; max_value=100",  # row count
        'column_set=["id", "status", "amount", "code", "at"] (5 values); exact_match=true',
        'type_="float64"',
        'min_value="2026-03-09T12:00:00"',  # freshness: now minus 24 hours
        "max_value=8",  # the configured expectation
    ):
        assert needle in text, needle
    # one row per expectation: type, column, then its parameters
    assert (
        "<td>ExpectColumnValuesToBeBetween</td><td>amount</td>"
        '<td class="params">min_value=0.0; max_value=1000.0</td>'
    ) in render_html(report, suite=suite())
    assert text.count('<td class="params">') == count
    # the observed row count is a count, kept
    assert "<td>6</td><td>completeness</td>" in text


def test_long_value_sets_are_cut_and_counted() -> None:
    values = [f"v{i}" for i in range(25)]
    spec = ExpectationSpec("ExpectColumnValuesToBeInSet", {"column": "status", "value_set": values})
    report = validate_table(table(), "sz/orders", [spec])
    text = page_text(render_html(report, suite=Suite("s", [spec])))
    assert '"v19", … 5 more] (25 values)' in text and '"v20"' not in text


def test_suite_must_match_the_report() -> None:
    report = validate_table(table(), "sz/orders", suite().specs)
    with pytest.raises(ValueError, match="expectations"):
        render_html(report, suite=Suite("s", suite().specs[:3]))


def test_scores_name_the_dimensions_not_measured() -> None:
    specs = [
        ExpectationSpec("ExpectTableRowCountToBeBetween", {"min_value": 1}),
        ExpectationSpec("ExpectColumnValuesToBeUnique", {"column": "id"}),
        ExpectationSpec("ExpectColumnToExist", {"column": "id"}),
    ]
    report = validate_table(table(), "sz/orders", specs)
    assert scores(report)["overall"] == 1.0
    page = render_html(report, suite=Suite("s", specs))
    text = page_text(page)
    assert "n/a" not in page
    assert "<td>validity</td><td class='num'><span class=\"na\">not measured</span>" in page
    assert "<td>timeliness</td><td class='num'><span class=\"na\">not measured</span>" in page
    assert (
        "overall: mean of the 3 measured dimensions (completeness, uniqueness, consistency)"
    ) in text
    assert (
        "Not measured (no expectation of the suite measures them; left out of overall): "
        "validity, timeliness."
    ) in text
    summary = markdown_summary(report)
    assert "| validity | not measured |" in summary and "n/a" not in summary
    assert "not measured: validity, timeliness." in summary


def write_report(
    store: LocalStore,
    ingest_id: str,
    report: QualityReport,
    at: dt.datetime | None,
    the_suite: Suite | None = None,
) -> None:
    """A quality.json as tasks.validating writes it (`at` None: one written before dates)."""
    body: dict[str, Any] = {**report.to_json(), "scores": scores(report)}
    if at is not None:
        body["validated_at"] = at.isoformat(timespec="seconds")
    if the_suite is not None:
        body["suite"] = the_suite.to_json()
    key = f"reports/sz/orders/{ingest_id}/quality.json"
    store.put_bytes(key, json.dumps(body, default=str).encode())
    store.put_bytes(f"reports/sz/orders/{ingest_id}/pii.json", b"{}")


def test_history_reads_every_earlier_validation_newest_first(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    good = validate_table(table(), "sz/orders", suite().specs)
    bad = canary_report()
    write_report(store, "aaaa000000000001", good, None)  # before validated_at: the file's time
    old = (NOW - dt.timedelta(days=30)).timestamp()
    first = store.local_path("reports/sz/orders/aaaa000000000001/quality.json")
    assert first is not None
    os.utime(first, (old, old))
    write_report(store, "bbbb000000000002", bad, NOW - dt.timedelta(days=1))
    write_report(store, "cccc000000000003", good, NOW, suite())
    store.put_bytes("reports/sz/orders/dddd000000000004/quality.json", b"{not json")
    store.put_bytes("reports/sz/other/eeee000000000005/quality.json", b"{}")

    history = read_history(store, "sz", "orders")
    assert [r.ingest_id for r in history.runs] == [
        "cccc000000000003", "bbbb000000000002", "aaaa000000000001",
    ]  # fmt: skip
    assert (history.found, history.unreadable) == (4, 1)
    latest, failed, oldest = history.runs
    assert latest.validated_at == NOW and latest.success is True and latest.rows == 6
    assert (latest.passed, latest.total) == (len(good.results), len(good.results))
    assert failed.success is False and failed.passed is not None
    assert failed.passed < len(bad.results) and failed.overall == scores(bad)["overall"]
    assert oldest.validated_at is not None and oldest.validated_at.timestamp() == old

    page = render_html(good, NOW, suite=suite(), history=history, ingest_id="cccc000000000003")
    text = page_text(page)
    assert "History of sz/orders" in text
    assert "4 validations on record; 1 report(s) could not be read, newest first." in text
    assert "1 validation on record, newest first." in page_text(
        render_html(good, history=History(runs=history.runs[:1], found=1))
    )
    assert (
        '<tr class="this"><td>2026-03-10T12:00:00+00:00</td><td>cccc000000000003 (this run)</td>'
    ) in page
    assert text.index("cccc000000000003") < text.index("bbbb000000000002")
    assert text.index("bbbb000000000002") < text.index("aaaa000000000001")
    assert f'<td class="num">{failed.passed}/{failed.total}</td>' in page
    assert "2026-03-09T12:00:00+00:00" in text and "2026-02-08T12:00:00+00:00" in text
    assert CANARY not in page


def test_history_limit_keeps_the_newest(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    report = validate_table(table(), "sz/orders", suite().specs)
    for day in range(5):
        write_report(store, f"ffff00000000000{day}", report, NOW - dt.timedelta(days=day))
    history = read_history(store, "sz", "orders", limit=2)
    assert [r.ingest_id for r in history.runs] == ["ffff000000000000", "ffff000000000001"]
    text = page_text(render_html(report, suite=suite(), history=history))
    assert "5 validations on record, the latest 2 shown, newest first." in text


def test_no_history_yet_says_so(tmp_path: Path) -> None:
    report = validate_table(table(), "sz/orders", suite().specs)
    history = read_history(LocalStore(tmp_path / "store"), "sz", "orders")
    assert history == History()
    assert "No validation of this dataset on record." in render_html(report, history=history)


def test_canary_in_failing_rows_never_reaches_the_page_or_the_report(tmp_path: Path) -> None:
    report = canary_report()
    assert not report.success
    failed = {r.label for r in report.results if not r.success}
    assert {
        "ExpectColumnValuesToBeInSet(status)",
        "ExpectColumnValuesToMatchRegex(code)",
        "ExpectColumnValuesToBeUnique(id)",
        "ExpectColumnValuesToBeBetween(amount)",
    } <= failed
    store = LocalStore(tmp_path / "store")
    write_report(store, "bbbb000000000002", report, NOW, suite())
    history = read_history(store, "sz", "orders")
    page = render_html(report, NOW, suite=suite(), history=history, ingest_id="bbbb000000000002")
    # the page is the full one (parameters, history), and it holds no value of the data
    assert 'value_set=["new", "paid"] (2 values)' in page_text(page)
    assert "<td>bbbb000000000002 (this run)</td>" in page
    for text in (page, page_text(page), markdown_summary(report)):
        assert CANARY not in text and "CANARY" not in text and "Wang" not in text
        assert "731902" not in text
    stored = store.get_bytes("reports/sz/orders/bbbb000000000002/quality.json").decode()
    assert "CANARY" not in stored and "731902" not in stored
    assert json.loads(stored)["suite"]["expectations"] == len(suite().specs)


def test_a_score_below_one_never_reads_as_one() -> None:
    n = 4000
    amounts: list[Any] = [1.0] * n
    amounts[7] = None
    spec = ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": "amount"})
    report = validate_table(table(n, amount=amounts), "sz/orders", [spec])
    assert scores(report)["overall"] == pytest.approx(0.99975)
    page = render_html(report, suite=Suite("s", [spec]))
    assert "<td>completeness</td><td class='num'>0.9997</td>" in page and "1.000" not in page
    assert "| completeness | 0.9997 |" in markdown_summary(report)
