"""The contract applied to a drop's columns: drift policies, layouts, bools, nulls, keys."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings

from databourse.config import DatasetSpec
from databourse.errors import IngestRejected
from databourse.ingest.contract import coerce_batch, plan_columns
from databourse.quality.primary_key import KeyIndex, hash_column, hash_rows


def spec(**extra: Any) -> DatasetSpec:
    columns = extra.pop(
        "columns",
        [
            {"name": "id", "type": "string", "nullable": False},
            {"name": "day", "type": "date", "formats": ["%Y-%m-%d", "%d/%m/%Y", "%Y年%m月%d日"]},
            {"name": "qty", "type": "int64"},
            {"name": "paid", "type": "bool"},
        ],
    )
    return DatasetSpec.model_validate({"columns": columns, **extra})


def text_batch(**cols: list[str | None]) -> pa.RecordBatch:
    return pa.record_batch({k: pa.array(v, pa.string()) for k, v in cols.items()})


def coerce(batch: pa.RecordBatch, dataset: DatasetSpec, offset: int = 0) -> pa.RecordBatch:
    return coerce_batch(batch, plan_columns(batch.schema, dataset, "f.csv"), "f.csv", offset)


def test_dates_in_every_layout_and_bools_and_nulls() -> None:
    batch = text_batch(
        id=["a", "b", "c", "d"],
        day=["2026-03-05", "5/3/2026", "2026年3月5日", None],
        qty=[" 7 ", "NA", "0", None],
        paid=["Yes", "n", "TRUE", None],
    )
    out = coerce(batch, spec(null_values=["NA"]))
    assert out.column("day").to_pylist() == [dt.date(2026, 3, 5)] * 3 + [None]
    assert out.column("qty").to_pylist() == [7, None, 0, None]
    assert out.column("paid").to_pylist() == [True, False, True, None]


@pytest.mark.parametrize(
    ("column", "value", "row"),
    [
        ("day", "31/02/2026", 12),  # not a date: no silent roll-over to March
        ("day", "2026/03/05", 12),  # a layout the contract does not list
        ("qty", "12 kg", 12),
        ("paid", "maybe", 12),
    ],
)
def test_a_value_that_does_not_convert_names_column_and_row_not_value(
    column: str, value: str, row: int
) -> None:
    good = {"id": "a", "day": "2026-01-01", "qty": "1", "paid": "true"}
    cols = {k: [v, v] for k, v in good.items()}
    cols[column] = [good[column], value]
    with pytest.raises(IngestRejected) as err:
        coerce(text_batch(**cols), spec(), offset=10)
    assert err.value.column == column and err.value.row == row
    assert value not in str(err.value) and f"data row {row}" in str(err.value)


def test_timestamp_layout_with_time_of_day() -> None:
    dataset = spec(
        columns=[{"name": "at", "type": "timestamp", "formats": ["%d/%m/%Y %H:%M"]}],
    )
    out = coerce(text_batch(at=["05/03/2026 7:05", "31/12/2026 23:59"]), dataset)
    assert out.column("at").to_pylist() == [
        dt.datetime(2026, 3, 5, 7, 5),
        dt.datetime(2026, 12, 31, 23, 59),
    ]


@pytest.mark.parametrize(
    ("columns", "problem"),
    [
        ([{"name": "a", "type": "int64", "formats": ["%Y"]}], "date/timestamp"),
        ([{"name": "a", "type": "date", "formats": ["%Y-%m"]}], "needs"),
        ([{"name": "a", "type": "date", "formats": ["%Y-%m-%d %H"]}], "time of day"),
        ([{"name": "a", "type": "date", "formats": ["%y-%m-%d"]}], "unsupported"),
        ([{"name": "a", "type": "bool", "true_values": ["x"], "false_values": ["X"]}], "both"),
    ],
)
def test_bad_coercion_rules_are_config_errors(columns: list[dict[str, Any]], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        spec(columns=columns)


def test_drift_reject_names_every_difference() -> None:
    batch = text_batch(id=["a"], qty=["1"], paid=["true"], colour=["red"])
    with pytest.raises(IngestRejected) as err:
        coerce(batch, spec())
    message = str(err.value)
    assert "'reject'" in message and "missing column(s) ['day']" in message
    # a header outside the contract is the provider's data: counted and placed, never named
    assert "1 new column(s) at #4" in message and err.value.column == "day"
    assert err.value.drift["added"] == ["#4"] and "colour" not in message


def test_drift_additive_keeps_new_columns_as_text_but_refuses_missing() -> None:
    batch = text_batch(id=["a"], day=["2026-01-01"], qty=["1"], paid=["no"], colour=["red"])
    out = coerce(batch, spec(schema_drift="additive"))
    assert out.schema.names == ["id", "day", "qty", "paid", "colour"]
    assert out.column("colour").to_pylist() == ["red"]
    with pytest.raises(IngestRejected, match="missing column"):
        coerce(text_batch(id=["a"], qty=["1"], paid=["no"]), spec(schema_drift="additive"))


def test_drift_all_fills_missing_nullable_columns_but_not_required_ones() -> None:
    plan = plan_columns(text_batch(id=["a"], qty=["1"]).schema, spec(schema_drift="all"), "f")
    assert plan.drift.missing == ("day", "paid")
    out = coerce(text_batch(id=["a"], qty=["1"]), spec(schema_drift="all"))
    assert out.column("day").to_pylist() == [None]
    with pytest.raises(IngestRejected, match=r"missing column.*'id'"):
        coerce(text_batch(qty=["1"]), spec(schema_drift="all"))


def test_retyped_native_column_is_drift_and_all_converts_it() -> None:
    batch = pa.record_batch({"id": ["a", "b"], "qty": pa.array([1.0, 2.0])})
    dataset = spec(columns=[{"name": "id"}, {"name": "qty", "type": "int64"}])
    with pytest.raises(IngestRejected, match="'qty' is float, the contract says int64"):
        plan_columns(batch.schema, dataset, "f.parquet")
    relaxed = dataset.model_copy(update={"schema_drift": "all"})
    assert coerce(batch, relaxed).column("qty").to_pylist() == [1, 2]
    with pytest.raises(IngestRejected, match="data row 2"):
        coerce(pa.record_batch({"id": ["a", "b"], "qty": [1.0, 2.5]}), relaxed)


def test_names_match_ignoring_case_and_spaces_and_are_recorded() -> None:
    batch = text_batch(ID=["a"], **{" Day ": ["2026-01-01"]}, QTY=["1"], Paid=["y"])
    plan = plan_columns(batch.schema, spec(), "f.csv")
    assert not plan.drift and ("ID", "id") in plan.drift.renamed
    assert coerce(batch, spec()).column("id").to_pylist() == ["a"]


def test_a_repeated_header_name_is_rejected() -> None:
    schema = pa.schema([("id", pa.string()), ("id", pa.string())])
    with pytest.raises(IngestRejected, match="more than once"):
        plan_columns(schema, spec(), "f.csv")


# ---------------------------------------------------------------- primary keys
def write_batches(path: Path, batches: list[pa.RecordBatch]) -> None:
    pq.write_table(pa.Table.from_batches(batches), path)


def check_keys(batches: list[pa.RecordBatch], columns: list[str], tmp_path: Path) -> None:
    path = tmp_path / "written.parquet"
    write_batches(path, batches)
    with KeyIndex(columns, "f.csv") as index:
        offset = 0
        for batch in batches:
            index.add(batch, offset)
            offset += batch.num_rows
        index.finish(path)


def test_duplicate_key_across_batches_names_both_rows(tmp_path: Path) -> None:
    first = pa.record_batch({"k": [f"R{i}" for i in range(1000)], "n": list(range(1000))})
    second = pa.record_batch({"k": ["X", "R17", "Y"], "n": [1, 2, 3]})
    with pytest.raises(IngestRejected) as err:
        check_keys([first, second], ["k"], tmp_path)
    assert (err.value.row, err.value.first_row) == (1002, 18)
    assert "R17" not in str(err.value)


def test_compound_keys_distinct_when_one_part_differs(tmp_path: Path) -> None:
    batch = pa.record_batch({"a": ["x", "x", "y"], "b": [1, 2, 1]})
    check_keys([batch], ["a", "b"], tmp_path)
    with pytest.raises(IngestRejected, match="data row 4"):
        check_keys([batch, pa.record_batch({"a": ["y"], "b": [1]})], ["a", "b"], tmp_path)


def test_null_key_is_rejected_with_its_row(tmp_path: Path) -> None:
    batch = pa.record_batch({"k": ["a", None]})
    with pytest.raises(IngestRejected, match="empty at data row 6"):
        check_keys([pa.record_batch({"k": ["p", "q", "r", "s"]}), batch], ["k"], tmp_path)


def test_hash_collision_is_not_a_duplicate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Equal hashes are only candidates: the values are compared before rejecting."""
    import databourse.quality.primary_key as pk

    monkeypatch.setattr(pk, "hash_rows", lambda batch, cols: np.zeros(batch.num_rows, np.uint64))
    check_keys([pa.record_batch({"k": ["a", "b", "c"]})], ["k"], tmp_path)
    with pytest.raises(IngestRejected, match="data row 3"):
        check_keys([pa.record_batch({"k": ["a", "b", "a"]})], ["k"], tmp_path)


def test_many_rows_spill_to_buckets_and_still_find_the_duplicate(tmp_path: Path) -> None:
    n = 1_200_000  # more than one flush
    ids = pa.array(np.arange(n, dtype=np.int64))
    batches = [pa.record_batch({"k": ids.slice(i, 300_000)}) for i in range(0, n, 300_000)]
    check_keys(batches, ["k"], tmp_path)
    batches.append(pa.record_batch({"k": pa.array([n + 1, 999_999], pa.int64())}))
    with pytest.raises(IngestRejected) as err:
        check_keys(batches, ["k"], tmp_path)
    assert (err.value.row, err.value.first_row) == (n + 2, 1_000_000)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=80), min_size=1, max_size=40), st.integers(0, 39))
def test_string_hash_does_not_depend_on_the_batch(values: list[str], cut: int) -> None:
    """A value hashes the same alone, in any batch, at any offset (slices included)."""
    whole = hash_column(pa.array(values))
    alone = [hash_column(pa.array([v]))[0] for v in values]
    assert list(whole) == alone
    cut = min(cut, len(values))
    assert list(hash_column(pa.array(values).slice(cut))) == alone[cut:]
    equal = {(a, b) for a in range(len(values)) for b in range(len(values)) if whole[a] == whole[b]}
    assert all(values[a] == values[b] for a, b in equal)


def test_row_hash_covers_types() -> None:
    batch = pa.record_batch(
        {
            "d": pa.array([dt.date(2026, 1, 1), dt.date(2026, 1, 2)]),
            "f": pa.array([0.0, -0.0]),
            "b": pa.array([True, False]),
        }
    )
    h = hash_rows(batch, ["d", "f", "b"])
    assert h[0] != h[1]
    assert hash_column(batch.column("f"))[0] == hash_column(batch.column("f"))[1]  # 0.0 == -0.0
