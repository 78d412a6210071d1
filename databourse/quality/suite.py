"""Data-quality gate: a dataset contract as a Great Expectations suite, run on Arrow/Parquet.

Reports carry expectation names, column names, counts and type names only, never a cell value
(`databourse.quality.report`). How a dataset is validated in bounded-memory batches is in
`databourse.quality.batches`.

Freshness (`DatasetSpec.freshness`) is a GX `ExpectColumnMaxToBeBetween` whose `min_value` is
"now minus max_age_hours" (naive UTC, computed when the suite is generated), tagged with the
dimension `timeliness`; the newest value is computed over the whole dataset by pyarrow (a date
column is compared by day) and is not kept in the report.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from databourse.config import ColumnSpec, DatasetSpec
from databourse.errors import ConfigError
from databourse.quality.expectations import ExpectationSpec, as_list, referenced_columns
from databourse.quality.gx_inputs import PANDAS_TYPES, build


def suite_from_contract(
    dataset: DatasetSpec, now: dt.datetime | None = None
) -> list[ExpectationSpec]:
    """The contract's expectations, then the dataset's configured ones; `now` dates freshness."""
    names = [c.name for c in dataset.columns]
    rows: dict[str, Any] = {"min_value": dataset.min_rows}
    if dataset.max_rows is not None:
        rows["max_value"] = dataset.max_rows
    specs = [
        ExpectationSpec("ExpectTableColumnsToMatchSet", {"column_set": names, "exact_match": True}),
        ExpectationSpec("ExpectTableRowCountToBeBetween", rows),
    ]
    key = dataset.primary_key
    for col in dataset.columns:
        specs.append(ExpectationSpec("ExpectColumnToExist", {"column": col.name}))
        specs.append(
            ExpectationSpec(
                "ExpectColumnTypeToBe", {"column": col.name, "type_": PANDAS_TYPES[col.type]}
            )
        )
        if not col.nullable or col.name in key:  # a key column cannot be null either
            specs.append(ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": col.name}))
        if col.unique or key == [col.name]:
            specs.append(ExpectationSpec("ExpectColumnValuesToBeUnique", {"column": col.name}))
        specs += _value_rules(col)
    if len(key) > 1:
        specs.append(ExpectationSpec("ExpectCompoundColumnsToBeUnique", {"column_list": list(key)}))
    if fresh := dataset.freshness:
        moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
        oldest = moment - dt.timedelta(hours=fresh.max_age_hours)
        specs.append(
            ExpectationSpec(
                "ExpectColumnMaxToBeBetween",
                {"column": fresh.column, "min_value": oldest},
                severity=fresh.severity,
                dimension="timeliness",
            )
        )
    specs += [
        ExpectationSpec(e.expectation, dict(e.kwargs), e.severity) for e in dataset.expectations
    ]
    return specs


def _value_rules(col: ColumnSpec) -> list[ExpectationSpec]:
    """allowed_values, min_value/max_value and pattern of one column, as expectations."""
    specs: list[ExpectationSpec] = []
    if col.allowed_values is not None:
        specs.append(
            ExpectationSpec(
                "ExpectColumnValuesToBeInSet",
                {"column": col.name, "value_set": list(col.allowed_values)},
            )
        )
    if col.min_value is not None or col.max_value is not None:
        bounds = {"min_value": col.min_value, "max_value": col.max_value}
        specs.append(
            ExpectationSpec(
                "ExpectColumnValuesToBeBetween",
                {"column": col.name, **{k: v for k, v in bounds.items() if v is not None}},
            )
        )
    if col.pattern is not None:
        specs.append(
            ExpectationSpec(
                "ExpectColumnValuesToMatchRegex", {"column": col.name, "regex": col.pattern}
            )
        )
    return specs


def check_suite(dataset: DatasetSpec) -> None:
    """Raise ConfigError listing every bad generated or configured expectation; reads no data."""
    specs = suite_from_contract(dataset)
    generated = len(specs) - len(dataset.expectations)
    labels = [f"contract {s.name}({s.kwargs.get('column', '')})" for s in specs[:generated]]
    labels += [f"expectations[{i}] {e.expectation}" for i, e in enumerate(dataset.expectations)]
    _, problems = build(specs, labels)
    names = {c.name for c in dataset.columns}
    for label, spec in zip(labels, specs, strict=True):
        referenced = referenced_columns(spec.kwargs)
        if unknown := sorted(c for c in referenced if c not in names):
            problems.append(f"{label}: unknown column(s) {unknown}")
        for key in ("regex", "regex_list"):
            for pattern in as_list(spec.kwargs.get(key)):
                try:
                    re.compile(str(pattern))
                except re.error as exc:
                    problems.append(f"{label}: {key} is not a valid regular expression: {exc.msg}")
    if dataset.freshness and dataset.column(dataset.freshness.column).type not in (
        "date",
        "timestamp",
    ):
        problems.append(f"freshness.column {dataset.freshness.column!r}: needs a date or timestamp")
    if dataset.max_rows is not None and dataset.max_rows < dataset.min_rows:
        problems.append("max_rows: smaller than min_rows")
    if problems:
        raise ConfigError(problems)
