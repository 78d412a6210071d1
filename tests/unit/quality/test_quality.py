"""Tests of the data-quality gate (databourse.quality) on tiny Arrow tables and Parquet files."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databourse.config import DatasetSpec
from databourse.errors import ConfigError
from databourse.quality import batches as quality_batches
from databourse.quality import gx_inputs as quality
from databourse.quality.batches import validate_parquet, validate_table
from databourse.quality.expectations import ExpectationResult, ExpectationSpec
from databourse.quality.report import QualityReport
from databourse.quality.suite import suite_from_contract

DATASET = "sz-retail/customer_orders"
CONTRACT = DatasetSpec.model_validate(
    {
        "primary_key": ["order_id"],
        "columns": [
            {"name": "order_id", "type": "string", "nullable": False, "unique": True},
            {"name": "customer_name", "type": "string", "nullable": False},
            {"name": "mobile", "type": "string"},
            {"name": "quantity", "type": "int64", "nullable": False},
            {"name": "discount", "type": "int64"},
            {"name": "amount_cny", "type": "float64", "nullable": False},
            {"name": "paid", "type": "bool"},
            {"name": "order_date", "type": "date", "nullable": False},
            {"name": "created_at", "type": "timestamp", "nullable": False},
        ],
    }
)
ARROW_TYPES = {
    "order_id": pa.string(),
    "customer_name": pa.string(),
    "mobile": pa.string(),
    "quantity": pa.int64(),
    "discount": pa.int64(),
    "amount_cny": pa.float64(),
    "paid": pa.bool_(),
    "order_date": pa.date32(),
    "created_at": pa.timestamp("us"),
}


def orders(n: int = 5, **overrides: list[Any]) -> pa.Table:
    """A clean table that meets CONTRACT; `overrides` replace whole columns."""
    base = dt.datetime(2026, 3, 1, 9, 30)
    data: dict[str, list[Any]] = {
        "order_id": [f"O-{i:04d}" for i in range(n)],
        "customer_name": [f"Customer {i}" for i in range(n)],
        "mobile": [None if i % 2 else f"1380000{i:04d}" for i in range(n)],
        "quantity": [i + 1 for i in range(n)],
        "discount": [None if i % 3 == 0 else i for i in range(n)],
        "amount_cny": [10.5 * (i + 1) for i in range(n)],
        "paid": [None if i == 1 else i % 2 == 0 for i in range(n)],
        "order_date": [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(n)],
        "created_at": [base + dt.timedelta(minutes=i) for i in range(n)],
    }
    data.update(overrides)
    return pa.table({k: pa.array(v, ARROW_TYPES.get(k)) for k, v in data.items()})


def problems_of(error: ConfigError) -> list[str]:
    problems: list[str] = error.context["problems"]
    return problems


def result(report: QualityReport, name: str, column: str | None) -> ExpectationResult:
    return next(r for r in report.results if r.expectation == name and r.column == column)


# ---------------------------------------------------------------- the contract suite
def test_suite_from_contract_covers_every_rule() -> None:
    specs = suite_from_contract(CONTRACT)
    got = {(s.name, s.kwargs.get("column")) for s in specs}
    names = [c.name for c in CONTRACT.columns]
    assert specs[0] == ExpectationSpec(
        "ExpectTableColumnsToMatchSet", {"column_set": names, "exact_match": True}
    )
    assert ("ExpectTableRowCountToBeBetween", None) in got
    assert next(s for s in specs if s.name == "ExpectTableRowCountToBeBetween").kwargs == {
        "min_value": 1
    }
    for name in names:
        assert ("ExpectColumnToExist", name) in got
    types = {
        s.kwargs["column"]: s.kwargs["type_"] for s in specs if s.name == "ExpectColumnTypeToBe"
    }
    assert types == {
        "order_id": "str", "customer_name": "str", "mobile": "str", "quantity": "Int64",
        "discount": "Int64", "amount_cny": "float64", "paid": "boolean",
        "order_date": "period[D]", "created_at": "datetime64",
    }  # fmt: skip
    not_null = {s.kwargs["column"] for s in specs if s.name == "ExpectColumnValuesToNotBeNull"}
    assert not_null == {c.name for c in CONTRACT.columns if not c.nullable}
    unique = [s.kwargs["column"] for s in specs if s.name == "ExpectColumnValuesToBeUnique"]
    assert unique == ["order_id"]  # unique: true and the 1-column key, not listed twice
    assert all(s.severity == "error" for s in specs)


def test_suite_from_contract_compound_key_is_unique_and_not_null() -> None:
    spec = DatasetSpec.model_validate(
        {
            "primary_key": ["site", "reading"],
            "columns": [{"name": "site"}, {"name": "reading", "type": "int64"}, {"name": "x"}],
        }
    )
    specs = suite_from_contract(spec)
    assert (
        ExpectationSpec("ExpectCompoundColumnsToBeUnique", {"column_list": ["site", "reading"]})
        in specs
    )
    not_null = {s.kwargs["column"] for s in specs if s.name == "ExpectColumnValuesToNotBeNull"}
    assert not_null == {"site", "reading"}
    assert not any(s.name == "ExpectColumnValuesToBeUnique" for s in specs)


# ---------------------------------------------------------------- validation outcomes
def test_clean_table_passes_with_every_expectation_listed() -> None:
    specs = suite_from_contract(CONTRACT)
    report = validate_table(orders(), DATASET, specs)
    assert report.success
    assert report.dataset == DATASET and report.rows == 5
    assert [r.expectation for r in report.results] == [s.name for s in specs]
    assert all(r.success for r in report.results), [r for r in report.results if not r.success]
    assert report.failed_errors == [] and report.failed_warnings == []
    assert report.summary() == f"{len(specs)}/{len(specs)} expectations passed"
    assert result(report, "ExpectColumnTypeToBe", "discount").observed_value == "Int64"
    assert result(report, "ExpectTableRowCountToBeBetween", None).observed_value == 5
    observed_columns = result(report, "ExpectTableColumnsToMatchSet", None).observed_value
    assert sorted(observed_columns or []) == sorted(c.name for c in CONTRACT.columns)
    nn = result(report, "ExpectColumnValuesToNotBeNull", "order_id")
    assert (nn.element_count, nn.unexpected_count, nn.unexpected_percent) == (5, 0, 0.0)


def test_null_in_non_null_column_fails_and_is_named() -> None:
    names: list[str | None] = [f"Customer {i}" for i in range(5)]
    names[3] = None
    specs = suite_from_contract(CONTRACT)
    report = validate_table(orders(customer_name=names), DATASET, specs)
    assert not report.success
    failed = result(report, "ExpectColumnValuesToNotBeNull", "customer_name")
    assert not failed.success
    assert (failed.element_count, failed.unexpected_count) == (5, 1)
    assert failed.unexpected_percent == pytest.approx(20.0)
    assert report.failed_errors == [failed]
    assert report.summary() == (
        f"{len(specs) - 1}/{len(specs)} expectations passed; "
        "failed (error): ExpectColumnValuesToNotBeNull(customer_name)"
    )


def test_duplicate_primary_key_fails() -> None:
    ids = ["O-1", "O-2", "O-2", "O-3", "O-4"]
    report = validate_table(orders(order_id=ids), DATASET, suite_from_contract(CONTRACT))
    assert not report.success
    dup = result(report, "ExpectColumnValuesToBeUnique", "order_id")
    assert not dup.success and dup.unexpected_count == 2  # both rows of the duplicated key
    assert "ExpectColumnValuesToBeUnique(order_id)" in report.summary()


def test_duplicate_compound_key_fails() -> None:
    spec = DatasetSpec.model_validate(
        {
            "primary_key": ["site", "n"],
            "columns": [{"name": "site"}, {"name": "n", "type": "int64"}],
        }
    )
    good = pa.table({"site": ["a", "a", "b"], "n": [1, 2, 1]})
    assert validate_table(good, "readings", suite_from_contract(spec)).success
    bad = pa.table({"site": ["a", "a", "b"], "n": [1, 1, 1]})
    report = validate_table(bad, "readings", suite_from_contract(spec))
    assert [r.label for r in report.failed_errors] == ["ExpectCompoundColumnsToBeUnique(site,n)"]
    assert report.failed_errors[0].unexpected_count == 2


def test_missing_column_fails_without_crashing_the_rest() -> None:
    table = orders().drop_columns(["amount_cny"])
    specs = suite_from_contract(CONTRACT)
    report = validate_table(table, DATASET, specs)
    assert not report.success
    assert len(report.results) == len(specs)
    failed = {r.label for r in report.failed_errors}
    assert failed == {
        "ExpectTableColumnsToMatchSet",
        "ExpectColumnToExist(amount_cny)",
        "ExpectColumnTypeToBe(amount_cny)",
        "ExpectColumnValuesToNotBeNull(amount_cny)",
    }
    # every other expectation was evaluated on the data
    other = result(report, "ExpectColumnValuesToNotBeNull", "quantity")
    assert other.success and other.element_count == 5
    assert result(report, "ExpectColumnValuesToBeUnique", "order_id").success


def test_extra_column_fails_the_exact_column_set() -> None:
    table = orders().append_column("undeclared", pa.array(["x"] * 5))
    report = validate_table(table, DATASET, suite_from_contract(CONTRACT))
    assert [r.label for r in report.failed_errors] == ["ExpectTableColumnsToMatchSet"]


def test_empty_table_fails_the_row_count() -> None:
    report = validate_table(orders(0), DATASET, suite_from_contract(CONTRACT))
    assert not report.success
    assert [r.label for r in report.failed_errors] == ["ExpectTableRowCountToBeBetween"]
    assert json.dumps(report.to_json(), allow_nan=False)  # no NaN percentages leak out


def test_warning_failure_leaves_success_true() -> None:
    specs = [
        *suite_from_contract(CONTRACT),
        ExpectationSpec(
            "ExpectColumnValuesToBeBetween",
            {"column": "amount_cny", "max_value": 20},
            severity="warning",
        ),
    ]
    report = validate_table(orders(), DATASET, specs)
    assert report.success
    assert report.failed_errors == []
    (warned,) = report.failed_warnings
    assert warned.label == "ExpectColumnValuesToBeBetween(amount_cny)"
    assert warned.unexpected_count == 4 and warned.severity == "warning"
    assert report.summary().endswith(
        "; failed (warning): ExpectColumnValuesToBeBetween(amount_cny)"
    )
    assert report.to_json()["success"] is True


# ---------------------------------------------------------------- config errors
@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        (ExpectationSpec("ExpectColumnValuesToBeFabulous", {"column": "a"}), "unknown"),
        (ExpectationSpec("Expectation", {}), "unknown"),
        (ExpectationSpec("ExpectColumnValuesToNotBeNull", {"colum": "a"}), "bad kwargs"),
        (ExpectationSpec("ExpectTableRowCountToBeBetween", {"min_value": "many"}), "bad kwargs"),
        (ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": "a", "meta": {}}), "reserved"),
    ],
)
def test_bad_expectation_raises_config_error_before_reading(
    spec: ExpectationSpec, needle: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_read(*args: Any, **kwargs: Any) -> pa.Table:
        raise AssertionError("data was read before the expectations were checked")

    path = tmp_path / "orders.parquet"
    pq.write_table(orders(), path)
    monkeypatch.setattr(quality_batches.pq, "ParquetFile", must_not_read)
    monkeypatch.setattr(quality_batches.pq, "read_table", must_not_read)
    with pytest.raises(ConfigError) as info:
        validate_parquet(path, DATASET, [*suite_from_contract(CONTRACT), spec])
    (problem,) = problems_of(info.value)
    assert spec.name in problem and needle in problem
    assert problem.startswith(f"expectations[{len(suite_from_contract(CONTRACT))}]")


def test_config_error_lists_every_bad_expectation() -> None:
    specs = [
        ExpectationSpec("ExpectNothing", {}),
        ExpectationSpec("ExpectColumnToExist", {}),
    ]
    with pytest.raises(ConfigError) as info:
        validate_table(orders(), DATASET, specs)
    assert len(problems_of(info.value)) == 2
    assert (
        "ExpectColumnToExist" in problems_of(info.value)[1]
        and "column" in problems_of(info.value)[1]
    )


# ---------------------------------------------------------------- no cell values anywhere
def test_report_and_logs_hold_no_cell_value(caplog: pytest.LogCaptureFixture) -> None:
    canary = "CANARY-7f3a9c-zz"
    number = 987654.125
    ids = [canary, canary, "O-3", "O-4", "O-5"]
    names = [canary, None, canary, "b", "c"]
    table = orders(order_id=ids, customer_name=names, amount_cny=[number, 1.0, 2.0, 3.0, 4.0])
    in_set: dict[str, Any] = {"column": "order_id", "value_set": ["x"]}
    value_checks = [
        ExpectationSpec("ExpectColumnValuesToBeInSet", in_set),
        ExpectationSpec(
            "ExpectColumnValuesToMatchRegex", {"column": "customer_name", "regex": "^Z"}
        ),
        ExpectationSpec("ExpectColumnMaxToBeBetween", {"column": "amount_cny", "max_value": 1}),
        ExpectationSpec("ExpectColumnMostCommonValueToBeInSet", in_set),
        ExpectationSpec("ExpectColumnDistinctValuesToEqualSet", in_set),
        ExpectationSpec("ExpectColumnValueLengthsToEqual", {"column": "customer_name", "value": 1}),
        ExpectationSpec("ExpectColumnValuesToBeOfType", {"column": "quantity", "type_": "str"}),
    ]
    specs = suite_from_contract(CONTRACT) + [
        ExpectationSpec(s.name, s.kwargs, severity="warning") for s in value_checks
    ]
    with caplog.at_level(logging.DEBUG):
        report = validate_table(table, DATASET, specs)
    assert not report.success
    assert all(not r.success for r in report.results[-len(value_checks) :])
    dumped = json.dumps(report.to_json(), allow_nan=False)
    assert canary not in dumped and "CANARY" not in dumped
    assert "987654" not in dumped
    assert "CANARY" not in caplog.text and "987654" not in caplog.text
    assert "CANARY" not in report.summary()
    # what is kept: counts, type names
    assert result(report, "ExpectColumnValuesToBeUnique", "order_id").unexpected_count == 2
    assert result(report, "ExpectColumnValuesToBeOfType", "quantity").observed_value == "int64"


# ---------------------------------------------------------------- types through Parquet
MOMENT = dt.datetime(2026, 1, 1, 8, 30)
TYPE_CASES: list[tuple[str, pa.DataType, list[Any]]] = [
    ("string", pa.string(), ["a", None, "c"]),
    ("string", pa.large_string(), ["a", None, "c"]),
    ("string", pa.dictionary(pa.int32(), pa.string()), ["a", None, "a"]),
    ("int64", pa.int64(), [1, None, 2**62]),
    ("int64", pa.int64(), [1, 2, 3]),
    ("float64", pa.float64(), [1.5, None, -2.0]),
    ("bool", pa.bool_(), [True, None, False]),
    ("bool", pa.bool_(), [True, True, False]),
    ("date", pa.date32(), [dt.date(1950, 1, 1), None, dt.date(2026, 2, 28)]),
    ("date", pa.date64(), [dt.date(1950, 1, 1), None, dt.date(2026, 2, 28)]),
    *[
        ("timestamp", pa.timestamp(unit, tz=tz), [MOMENT, None, dt.datetime(1999, 12, 31)])
        for unit in ("s", "ms", "us", "ns")
        for tz in (None, "UTC", "Asia/Shanghai")
    ],
]  # fmt: skip


@pytest.mark.parametrize(
    ("contract_type", "arrow_type", "values"),
    TYPE_CASES,
    ids=[f"{c}-{a}" for c, a, _ in TYPE_CASES],
)
def test_every_contract_type_validates_from_parquet(
    contract_type: str, arrow_type: pa.DataType, values: list[Any], tmp_path: Path
) -> None:
    spec = DatasetSpec.model_validate(
        {"columns": [{"name": "v", "type": contract_type}, {"name": "k", "unique": True}]}
    )
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"v": pa.array(values, arrow_type), "k": ["1", "2", "3"]}), path)
    report = validate_parquet(path, "types", suite_from_contract(spec))
    assert report.success, report.summary()
    assert result(report, "ExpectColumnTypeToBe", "v").observed_value is not None


@pytest.mark.parametrize(
    ("contract_type", "arrow_type", "values"),
    [
        ("int64", pa.float64(), [1.0, 2.0]),
        ("int64", pa.int32(), [1, 2]),
        ("int64", pa.string(), ["1", "2"]),
        ("float64", pa.int64(), [1, 2]),
        ("string", pa.int64(), [1, 2]),
        ("bool", pa.int64(), [0, 1]),
        ("date", pa.timestamp("us"), [dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2)]),
        ("date", pa.string(), ["2026-01-01", "2026-01-02"]),
        ("timestamp", pa.date32(), [dt.date(2026, 1, 1), dt.date(2026, 1, 2)]),
        ("timestamp", pa.string(), ["2026-01-01T00:00", "2026-01-02T00:00"]),
    ],
)
def test_wrong_arrow_type_fails_the_type_expectation(
    contract_type: str, arrow_type: pa.DataType, values: list[Any], tmp_path: Path
) -> None:
    spec = DatasetSpec.model_validate({"columns": [{"name": "v", "type": contract_type}]})
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"v": pa.array(values, arrow_type)}), path)
    report = validate_parquet(path, "types", suite_from_contract(spec))
    assert [r.label for r in report.failed_errors] == ["ExpectColumnTypeToBe(v)"]
    assert isinstance(report.failed_errors[0].observed_value, str)


def test_nullable_ints_stay_ints() -> None:
    frame = quality.to_pandas(pa.table({"n": pa.array([2**62 + 1, None], pa.int64())}))
    assert str(frame["n"].dtype) == "Int64"
    assert frame["n"].iloc[0] == 2**62 + 1  # no float round trip


def test_dates_and_timestamps_keep_their_values_nulls_and_duplicates() -> None:
    day = dt.date(2026, 5, 17)
    table = pa.table(
        {
            "d": pa.array([day, None, day, dt.date(1901, 1, 1)], pa.date32()),
            "t": pa.array([MOMENT] * 2 + [None] * 2, pa.timestamp("ns", "Asia/Shanghai")),
        }
    )  # fmt: skip
    frame = quality.to_pandas(table)
    assert str(frame["d"].iloc[0]) == "2026-05-17" and str(frame["d"].iloc[3]) == "1901-01-01"
    assert str(frame["t"].iloc[0]) == "2026-01-01 08:30:00"  # the UTC instant, naive
    specs = [
        ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": "d"}),
        ExpectationSpec("ExpectColumnValuesToBeUnique", {"column": "d"}),
        ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": "t"}),
        ExpectationSpec("ExpectColumnValuesToBeUnique", {"column": "t"}),
    ]
    counts = [r.unexpected_count for r in validate_table(table, "dates", specs).results]
    assert counts == [1, 2, 2, 2]


# ---------------------------------------------------------------- property-style loop
def test_counts_match_planted_nulls_and_duplicates_seeded() -> None:
    rng = random.Random(20261121)
    specs = [
        ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": "n"}),
        ExpectationSpec("ExpectColumnValuesToBeUnique", {"column": "k"}),
    ]
    for _ in range(8):
        rows = rng.randint(1, 300)
        nulls = rng.sample(range(rows), rng.randint(0, rows))
        keys = list(range(rows))
        dup_pairs = rng.randint(0, rows // 2)
        for i in range(dup_pairs):
            keys[2 * i + 1] = keys[2 * i]
        n = [None if i in nulls else rng.random() for i in range(rows)]
        table = pa.table({"n": pa.array(n, pa.float64()), "k": pa.array(keys, pa.int64())})
        report = validate_table(table, "random", specs)
        null_result, unique_result = report.results
        assert null_result.unexpected_count == len(nulls)
        assert null_result.success == (not nulls)
        assert unique_result.unexpected_count == 2 * dup_pairs
        assert report.rows == rows


def test_report_json_round_trips() -> None:
    report = validate_table(orders(), DATASET, suite_from_contract(CONTRACT))
    data = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert data["dataset"] == DATASET and data["success"] is True and data["rows"] == 5
    assert data["summary"] == report.summary()
    assert len(data["results"]) == len(report.results)
    assert set(data["results"][0]) == {
        "expectation", "column", "severity", "success", "element_count",
        "unexpected_count", "unexpected_percent", "observed_value", "dimension",
    }  # fmt: skip
