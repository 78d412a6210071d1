"""Propose a starting expectation suite from a sample of a dataset, as YAML to paste and review.

From up to `sample_rows` rows: not-null where a column has no null, unique where every non-null
value differs, a numeric range (min/max widened by `margin` of the span) and a small value set
(at most `max_set` distinct strings, ints or bools). Columns named in `personal_columns` only get
the value-free proposals (not-null, unique): their values, ranges and sets never appear. Every
proposal has severity `warning`: an operator promotes what matters to `error`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

DEFAULT_SAMPLE_ROWS = 100_000
_SET_TYPES = (
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_integer,
    pa.types.is_boolean,
)


def profile(
    table_or_batches: pa.Table | Iterable[pa.RecordBatch],
    dataset_name: str,
    personal_columns: Iterable[str] = (),
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    margin: float = 0.1,
    max_set: int = 20,
) -> list[dict[str, Any]]:
    """Proposed `expectations:` entries ({expectation, kwargs, severity}) from a sample."""
    sample = _sample(table_or_batches, sample_rows)
    personal = set(personal_columns)
    proposals: list[dict[str, Any]] = []
    for name in sample.column_names:
        column = _plain(sample[name])
        proposals += _column_proposals(name, column, name in personal, margin, max_set)
    return proposals


def profile_yaml(
    table_or_batches: pa.Table | Iterable[pa.RecordBatch],
    dataset_name: str,
    personal_columns: Iterable[str] = (),
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> str:
    """The proposal as YAML, ready to paste under the dataset's `expectations:` key."""
    sample = _sample(table_or_batches, sample_rows)
    proposals = profile(sample, dataset_name, personal_columns, sample_rows)
    header = (
        f"# Proposed expectations for {dataset_name}, from a sample of {sample.num_rows} rows.\n"
        "# Review each one; change severity to error where a failure must stop the product.\n"
    )
    return header + yaml.safe_dump(proposals, sort_keys=False, allow_unicode=True)


def _sample(source: pa.Table | Iterable[pa.RecordBatch], rows: int) -> pa.Table:
    if isinstance(source, pa.Table):
        return source.slice(0, rows)
    batches: list[pa.RecordBatch] = []
    taken = 0
    for batch in source:
        batches.append(batch.slice(0, rows - taken))
        taken += batches[-1].num_rows
        if taken >= rows:
            break
    if not batches:
        raise ValueError("profile needs at least one batch")
    return pa.Table.from_batches(batches)


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def _column_proposals(
    name: str, column: pa.ChunkedArray, personal: bool, margin: float, max_set: int
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    nulls = column.null_count
    non_null = len(column) - nulls
    if len(column) and nulls == 0:
        out.append(_proposal("ExpectColumnValuesToNotBeNull", column=name))
    keyish = not pa.types.is_floating(column.type)  # measurements are not keys
    if keyish and non_null > 1 and pc.count_distinct(column).as_py() == non_null:
        out.append(_proposal("ExpectColumnValuesToBeUnique", column=name))
        return out  # a key: no range or set is useful
    if personal or non_null == 0:
        return out
    kind = column.type
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
    if numeric and (bounds := _range(column, margin, pa.types.is_integer(kind))):
        out.append(_proposal("ExpectColumnValuesToBeBetween", column=name, **bounds))
    if any(test(kind) for test in _SET_TYPES):
        distinct = pc.unique(column.drop_null())
        if len(distinct) <= max_set:
            values = sorted(distinct.to_pylist(), key=lambda v: (str(type(v)), v))
            out.append(_proposal("ExpectColumnValuesToBeInSet", column=name, value_set=values))
    return out


def _range(column: pa.ChunkedArray, margin: float, integer: bool) -> dict[str, Any] | None:
    found = pc.min_max(column)
    low, high = found["min"].as_py(), found["max"].as_py()
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return None
    pad = (high - low) * margin
    low, high = low - pad, high + pad
    if integer:
        return {"min_value": math.floor(low), "max_value": math.ceil(high)}
    return {"min_value": float(low), "max_value": float(high)}


def _proposal(expectation: str, **kwargs: Any) -> dict[str, Any]:
    return {"expectation": expectation, "kwargs": kwargs, "severity": "warning"}
