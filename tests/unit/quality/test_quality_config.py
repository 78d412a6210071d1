"""Tests of the quality suite's config fields, batching, docs, artifacts, scores and profile."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from databourse.config import DatasetSpec, ExpectationConfig
from databourse.errors import ConfigError
from databourse.quality import batches as quality_batches
from databourse.quality.batches import validate_parquet, validate_table
from databourse.quality.docs import artifact_rows, markdown_summary, write_html
from databourse.quality.expectations import ExpectationSpec
from databourse.quality.gx_inputs import build_expectations
from databourse.quality.profile import profile, profile_yaml
from databourse.quality.report import QualityReport
from databourse.quality.score import scores
from databourse.quality.suite import check_suite, suite_from_contract

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
CONTRACT: dict[str, Any] = {
    "primary_key": ["id"],
    "min_rows": 2,
    "max_rows": 100,
    "freshness": {"column": "at", "max_age_hours": 24, "severity": "error"},
    "columns": [
        {"name": "id", "type": "int64"},
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
    """A clean table for SPEC; `overrides` replace whole columns."""
    data: dict[str, list[Any]] = {
        "id": list(range(n)),
        "status": ["new" if i % 2 else "paid" for i in range(n)],
        "amount": [10.0 * i for i in range(n)],
        "code": [f"SZ-{i}" for i in range(n)],
        "at": [dt.datetime(2026, 3, 10, 6, 0) - dt.timedelta(hours=i) for i in range(n)],
    }
    data.update(overrides)
    kinds = {"id": pa.int64(), "amount": pa.float64(), "at": pa.timestamp("us")}
    return pa.table({k: pa.array(v, kinds.get(k, pa.string())) for k, v in data.items()})


def by_label(report: QualityReport) -> dict[str, Any]:
    return {r.label: r for r in report.results}


# ---------------------------------------------------------------- suite from the contract
def test_suite_from_contract_uses_the_new_fields() -> None:
    specs = suite_from_contract(SPEC, now=NOW)
    got = {(s.name, s.kwargs.get("column")): s for s in specs}
    assert got[("ExpectTableRowCountToBeBetween", None)].kwargs == {
        "min_value": 2,
        "max_value": 100,
    }
    assert got[("ExpectColumnValuesToBeInSet", "status")].kwargs["value_set"] == ["new", "paid"]
    assert got[("ExpectColumnValuesToBeBetween", "amount")].kwargs == {
        "column": "amount",
        "min_value": 0,
        "max_value": 1000,
    }
    assert got[("ExpectColumnValuesToMatchRegex", "code")].kwargs["regex"] == r"^[A-Z]{2}-\d+$"
    fresh = got[("ExpectColumnMaxToBeBetween", "at")]
    assert fresh.kwargs["min_value"] == dt.datetime(2026, 3, 9, 12, 0)  # now - 24 h, naive UTC
    assert (fresh.severity, fresh.dimension) == ("error", "timeliness")
    assert specs[-1] == ExpectationSpec(
        "ExpectColumnValueLengthsToBeBetween", {"column": "code", "max_value": 8}, "warning"
    )
    check_suite(SPEC)  # a good config raises nothing


def test_clean_data_passes_every_generated_expectation() -> None:
    report = validate_table(table(), "t", suite_from_contract(SPEC, now=NOW))
    assert report.success and all(r.success for r in report.results), report.summary()


# ---------------------------------------------------------------- severities
def test_error_severity_failure_stops() -> None:
    report = validate_table(
        table(status=["new", "void"] * 3), "t", suite_from_contract(SPEC, now=NOW)
    )
    assert not report.success
    assert [r.label for r in report.failed_errors] == ["ExpectColumnValuesToBeInSet(status)"]
    failed = report.failed_errors[0]
    assert (failed.unexpected_count, failed.element_count) == (3, 6)
    assert "ExpectColumnValuesToBeInSet(status)" in report.summary()


def test_warning_severity_is_recorded_and_passes() -> None:
    codes = ["SZ-1", "SZ-123456789", "SZ-3", "SZ-4", "SZ-5", "SZ-6"]
    report = validate_table(table(code=codes), "t", suite_from_contract(SPEC, now=NOW))
    assert report.success
    assert [r.label for r in report.failed_warnings] == [
        "ExpectColumnValueLengthsToBeBetween(code)"
    ]


def test_stale_data_fails_freshness_and_row_bounds_apply() -> None:
    old = [dt.datetime(2026, 3, 1)] * 6
    report = validate_table(table(at=old), "t", suite_from_contract(SPEC, now=NOW))
    assert [r.label for r in report.failed_errors] == ["ExpectColumnMaxToBeBetween(at)"]
    assert report.failed_errors[0].observed_value is None  # the newest value is not reported
    too_few = validate_table(table(1), "t", suite_from_contract(SPEC, now=NOW))
    assert [r.label for r in too_few.failed_errors] == ["ExpectTableRowCountToBeBetween"]


def test_freshness_on_a_date_column_compares_days() -> None:
    spec = DatasetSpec.model_validate(
        {
            "columns": [{"name": "d", "type": "date"}],
            "freshness": {"column": "d", "max_age_hours": 48},
        }
    )
    fresh = pa.table({"d": pa.array([dt.date(2026, 3, 1), dt.date(2026, 3, 8)], pa.date32())})
    assert validate_table(fresh, "d", suite_from_contract(spec, now=NOW)).failed_warnings == []
    stale = pa.table({"d": pa.array([dt.date(2026, 3, 7)], pa.date32())})
    (warned,) = validate_table(stale, "d", suite_from_contract(spec, now=NOW)).failed_warnings
    assert warned.label == "ExpectColumnMaxToBeBetween(d)" and warned.severity == "warning"


# ---------------------------------------------------------------- config errors
def test_check_suite_lists_every_bad_configured_expectation() -> None:
    bad = {
        **CONTRACT,
        "expectations": [
            {"expectation": "ExpectColumnValuesToBeFabulous", "kwargs": {"column": "id"}},
            {"expectation": "ExpectColumnValuesToBeBetween", "kwargs": {"colum": "id"}},
            {"expectation": "ExpectColumnValuesToNotBeNull", "kwargs": {"column": "nope"}},
            {"expectation": "ExpectColumnValuesToNotBeNull", "kwargs": {"column": "id"}},
        ],
    }
    with pytest.raises(ConfigError) as info:
        check_suite(DatasetSpec.model_validate(bad))
    problems: list[str] = info.value.context["problems"]
    assert len(problems) == 3, problems
    assert problems[0].startswith("expectations[0] ExpectColumnValuesToBeFabulous: unknown")
    assert problems[1].startswith("expectations[1] ExpectColumnValuesToBeBetween: bad kwargs")
    assert problems[2].startswith("expectations[2]") and "nope" in problems[2]


def test_check_suite_catches_a_bad_pattern_and_freshness_type() -> None:
    spec = DatasetSpec.model_validate(
        {
            "columns": [{"name": "a", "pattern": "([unclosed"}, {"name": "b"}],
            "freshness": {"column": "b", "max_age_hours": 1},
        }
    )
    with pytest.raises(ConfigError) as info:
        check_suite(spec)
    problems = info.value.context["problems"]
    assert any(
        "ExpectColumnValuesToMatchRegex" in p and "regular expression" in p for p in problems
    )
    assert any(p.startswith("freshness.column 'b'") for p in problems)


def test_bad_configured_expectation_fails_before_data_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_read(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("data was read before the expectations were checked")

    path = tmp_path / "t.parquet"
    pq.write_table(table(), path)
    monkeypatch.setattr(quality_batches.pq, "ParquetFile", must_not_read)
    spec = SPEC.model_copy(
        update={"expectations": [ExpectationConfig(expectation="ExpectNothing")]}
    )
    with pytest.raises(ConfigError):
        validate_parquet(path, "t", suite_from_contract(spec))


# ---------------------------------------------------------------- batches
def test_duplicate_split_across_batches_is_found(tmp_path: Path) -> None:
    n = 50
    ids = list(range(n))
    ids[45] = 3  # duplicate of a value in the first batch of 10 rows
    path = tmp_path / "big.parquet"
    pq.write_table(table(n, id=ids, status=["new"] * (n - 1) + ["void"]), path, row_group_size=20)
    spec = SPEC.model_copy(update={"max_rows": 1000})
    report = validate_parquet(path, "big", suite_from_contract(spec, now=NOW), batch_rows=10)
    assert report.rows == n
    results = by_label(report)
    dup = results["ExpectColumnValuesToBeUnique(id)"]
    assert (dup.success, dup.unexpected_count, dup.element_count) == (False, 2, n)
    in_set = results["ExpectColumnValuesToBeInSet(status)"]
    assert (in_set.element_count, in_set.unexpected_count) == (n, 1)  # summed over 5 batches
    assert in_set.unexpected_percent == pytest.approx(2.0)
    assert results["ExpectTableRowCountToBeBetween"].observed_value == n
    assert results["ExpectColumnMaxToBeBetween(at)"].success  # newest row is in batch one


def test_batched_counts_equal_one_batch_and_mostly_is_combined(tmp_path: Path) -> None:
    n = 40
    amounts: list[float | None] = [float(i) for i in range(n)]
    amounts[5] = amounts[25] = None
    amounts[30] = 5000.0
    data = table(n, amount=amounts)
    specs = [
        *suite_from_contract(SPEC, now=NOW),
        ExpectationSpec(
            "ExpectColumnValuesToBeBetween", {"column": "amount", "max_value": 10, "mostly": 0.7}
        ),
        ExpectationSpec("ExpectCompoundColumnsToBeUnique", {"column_list": ["status", "code"]}),
        ExpectationSpec(
            "ExpectColumnMeanToBeBetween", {"column": "id", "min_value": 19, "max_value": 20}
        ),
    ]
    whole = validate_table(data, "t", specs)
    batched = validate_table(data, "t", specs, batch_rows=7)
    assert [r.to_json() for r in batched.results] == [r.to_json() for r in whole.results]
    between = by_label(batched)["ExpectColumnValuesToBeBetween(amount)"]
    assert between.unexpected_percent == pytest.approx(100 * 28 / 38)  # nulls are not counted
    assert not between.success
    assert by_label(batched)["ExpectColumnMeanToBeBetween(id)"].success  # over all 40 rows


def test_null_counts_by_arrow_equal_great_expectations(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `nulls` route counts what GX counts on the DataFrame: nulls, NaN, NaT, dictionaries."""
    nat = pa.array([-(2**63), 0, None, 5], pa.int64()).cast(pa.timestamp("us"))
    data = pa.table(
        {
            "text": pa.array(["a", None, "", "b"]),
            "number": pa.array([1.0, float("nan"), None, 2.0]),
            "count": pa.array([None, None, 3, 4], pa.int64()),
            "flag": pa.array([True, None, False, None]),
            "day": pa.array([dt.date(2026, 1, 1), None, None, None], pa.date32()),
            "at": nat,
            "zoned": nat.cast(pa.timestamp("us", tz="Asia/Shanghai")),
            "code": pa.array(["x", None, "y", "x"]).dictionary_encode(),
        }
    )
    specs = [
        ExpectationSpec(name, {"column": column, **extra})
        for column in data.column_names
        for name in ("ExpectColumnValuesToNotBeNull", "ExpectColumnValuesToBeNull")
        for extra in ({}, {"mostly": 0.5})
    ]
    built = build_expectations(specs)
    routes = {quality_batches.route(s, b, data.schema) for s, b in zip(specs, built, strict=True)}
    assert routes == {"nulls"}
    by_arrow = validate_table(data, "t", specs, batch_rows=3)
    monkeypatch.setattr(quality_batches, "route", lambda *args: "per-batch")
    by_gx = validate_table(data, "t", specs, batch_rows=3)
    assert [r.to_json() for r in by_arrow.results] == [r.to_json() for r in by_gx.results]
    nulls = {r.column: r.unexpected_count for r in by_arrow.results if "NotBe" in r.expectation}
    expected = {"text": 1, "number": 2, "count": 2, "flag": 2, "day": 3, "at": 2, "zoned": 2}
    assert nulls == {**expected, "code": 1}
    assert {r.success for r in by_arrow.results} == {True, False}


def test_great_expectations_does_not_fingerprint_our_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GX's md5 of every cell (a batch label) is off while we validate, and back on after."""
    from great_expectations.execution_engine import pandas_execution_engine as engine

    def refuse(df: Any) -> str:
        raise AssertionError("GX fingerprinted a batch")

    monkeypatch.setattr(engine, "hash_pandas_dataframe", refuse)
    before = engine.HASH_THRESHOLD
    report = validate_table(table(20), "t", suite_from_contract(SPEC, now=NOW), batch_rows=7)
    assert (
        report.success
        and by_label(report)["ExpectColumnValuesToBeInSet(status)"].element_count == 20
    )
    assert engine.HASH_THRESHOLD == before > 0


def test_empty_parquet_validates(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    pq.write_table(table(0), path)
    report = validate_parquet(path, "e", suite_from_contract(SPEC, now=NOW), batch_rows=10)
    failed = {r.label for r in report.failed_errors}
    assert failed == {"ExpectTableRowCountToBeBetween", "ExpectColumnMaxToBeBetween(at)"}
    assert json.dumps(report.to_json(), allow_nan=False)


# ---------------------------------------------------------------- operators
def failing_report() -> QualityReport:
    codes = ["SZ-1", "SZ-123456789", "SZ-3", "SZ-4", "SZ-5", "SZ-6"]
    data = table(status=["new", "void", "new", "new", "new", "new"], code=codes)
    return validate_table(data, "sz/orders", suite_from_contract(SPEC, now=NOW))


def test_artifact_rows_list_every_expectation_failures_first() -> None:
    report = failing_report()
    rows = artifact_rows(report)
    assert len(rows) == len(report.results)
    assert set(rows[0]) >= {"expectation", "column", "severity", "success", "unexpected_percent"}
    assert (rows[0]["expectation"], rows[0]["column"], rows[0]["severity"]) == (
        "ExpectColumnValuesToBeInSet", "status", "error",
    )  # fmt: skip
    assert rows[0]["success"] is False and rows[0]["unexpected_percent"] == pytest.approx(16.6667)
    assert rows[1]["severity"] == "warning" and rows[1]["success"] is False
    assert all(r["success"] for r in rows[2:])
    assert json.dumps(rows, allow_nan=False)


def test_markdown_summary_says_what_failed_by_severity() -> None:
    text = markdown_summary(failing_report())
    assert "FAILED" in text
    assert "## Failed (error): 1" in text and "## Failed (warning): 1" in text
    assert "`ExpectColumnValuesToBeInSet(status)`: 1 unexpected of 6 rows" in text
    assert "`ExpectColumnValueLengthsToBeBetween(code)`" in text
    assert "void" not in text and "SZ-123456789" not in text


def test_html_page_exists_and_names_every_expectation(tmp_path: Path) -> None:
    report = failing_report()
    path = write_html(report, tmp_path / "reports" / "quality.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    for r in report.results:
        assert f"<td>{r.expectation}</td><td>{r.column or ''}</td>" in page
    assert "void" not in page and "SZ-123456789" not in page


def test_scores_per_dimension() -> None:
    report = failing_report()
    got = scores(report)
    assert set(got) == {
        "completeness", "validity", "uniqueness", "timeliness", "consistency", "overall",
    }  # fmt: skip
    assert got["uniqueness"] == 1.0 and got["timeliness"] == 1.0 and got["consistency"] == 1.0
    assert got["completeness"] == 1.0
    # validity: in-set 5/6, between 1, regex 1, lengths 5/6 -> mean
    assert got["validity"] == pytest.approx((5 / 6 + 1 + 1 + 5 / 6) / 4, abs=1e-6)
    assert got["overall"] == pytest.approx((4 + got["validity"]) / 5, abs=1e-6)
    only_rows = validate_table(
        table(), "t", [ExpectationSpec("ExpectTableRowCountToEqual", {"value": 5})]
    )
    assert scores(only_rows) == {
        "completeness": 0.0, "validity": None, "uniqueness": None, "timeliness": None,
        "consistency": None, "overall": 0.0,
    }  # fmt: skip


# ---------------------------------------------------------------- profile
def test_profile_proposes_a_suite_without_personal_values() -> None:
    canary = "CANARY-Zhang-San"
    n = 30
    data = pa.table(
        {
            "order_id": [f"O-{i}" for i in range(n)],
            "customer": [canary if i % 2 else "CANARY-Li-Si" for i in range(n)],
            "age": pa.array([20 + i % 5 for i in range(n)], pa.int64()),
            "channel": ["web" if i % 3 else "shop" for i in range(n)],
            "amount": [None if i == 4 else 10.0 + i for i in range(n)],
        }
    )
    proposed = profile(
        data.to_batches(max_chunksize=7), "sz/orders", personal_columns=["customer", "age"]
    )
    kinds = {(p["expectation"], p["kwargs"]["column"]): p["kwargs"] for p in proposed}
    assert ("ExpectColumnValuesToBeUnique", "order_id") in kinds
    assert ("ExpectColumnValuesToNotBeNull", "customer") in kinds
    assert kinds[("ExpectColumnValuesToBeInSet", "channel")]["value_set"] == ["shop", "web"]
    amount = kinds[("ExpectColumnValuesToBeBetween", "amount")]
    assert amount["min_value"] < 10.0 and amount["max_value"] > 39.0
    assert ("ExpectColumnValuesToNotBeNull", "amount") not in kinds
    assert not any(col in ("customer", "age") and name != "ExpectColumnValuesToNotBeNull"
                   for name, col in kinds)  # fmt: skip
    text = profile_yaml(data, "sz/orders", personal_columns=["customer", "age"])
    assert "CANARY" not in text and "Zhang" not in text
    parsed = yaml.safe_load(text)
    assert [ExpectationConfig.model_validate(p) for p in parsed]  # pastes under expectations:
    spec = DatasetSpec.model_validate(
        {"columns": [{"name": c} for c in data.column_names], "expectations": parsed}
    )
    check_suite(spec)
