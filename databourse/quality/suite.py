"""Data-quality gate: a dataset contract as a Great Expectations suite, run on Arrow/Parquet.

Reports carry expectation names, column names, counts and type names only, never a cell value:
GX results are reduced to counts, and an observed value is kept only where the expectation is
known to observe a count, a proportion, a type name or the table's column names. How a dataset is
validated in bounded-memory batches is in `databourse.quality.batches`.

Freshness (`DatasetSpec.freshness`) is a GX `ExpectColumnMaxToBeBetween` whose `min_value` is
"now minus max_age_hours" (naive UTC, computed when the suite is generated), tagged with the
dimension `timeliness`; the newest value is computed over the whole dataset by pyarrow (a date
column is compared by day) and is not kept in the report.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import numbers
import os
import re
import warnings
from dataclasses import asdict, dataclass
from inspect import isabstract
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from databourse.config import ColumnSpec, DatasetSpec
from databourse.errors import ConfigError
from databourse.quality.score import dimension_of

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# GX logs hundreds of DEBUG/INFO lines at import and per run; keep its warnings and errors only,
# unless the application has set a level for it already.
if logging.getLogger("great_expectations").level == logging.NOTSET:
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
with warnings.catch_warnings():
    # GX 1.24.1 imports the stdlib `sre_constants`, deprecated since Python 3.11.
    warnings.simplefilter("ignore", DeprecationWarning)
    import great_expectations.expectations as gxe
    from great_expectations.expectations.metadata_types import FailureSeverity
# This one GX module pins its own logger to INFO (a line per ephemeral context).
if logging.getLogger("great_expectations.data_context.types.base").level == logging.INFO:
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)

logger = logging.getLogger(__name__)

# Contract type -> pandas dtype name checked by ExpectColumnTypeToBe after `to_pandas`.
PANDAS_TYPES: dict[str, str] = {
    "string": "str",
    "int64": "Int64",
    "float64": "float64",
    "bool": "boolean",
    "date": "period[D]",  # see to_pandas
    "timestamp": "datetime64",  # any unit; time zones are normalized to naive UTC on reading
}
NAT = np.iinfo(np.int64).min  # pandas' NaT ordinal
_SEVERITY = {"error": FailureSeverity.CRITICAL, "warning": FailureSeverity.WARNING}
_RESERVED_KWARGS = frozenset({"meta", "id", "result_format", "catch_exceptions", "severity"})
INDEX_KEY = "databourse_index"
DEFAULT_BATCH_ROWS = 1_000_000
# The only expectations whose observed_value is kept, and what it must look like.
_OBSERVED_COUNT = frozenset(
    {
        "ExpectTableRowCountToBeBetween",
        "ExpectTableRowCountToEqual",
        "ExpectTableColumnCountToBeBetween",
        "ExpectTableColumnCountToEqual",
        "ExpectColumnUniqueValueCountToBeBetween",
        "ExpectColumnProportionOfUniqueValuesToBeBetween",
        "ExpectColumnProportionOfNonNullValuesToBeBetween",
    }
)
_OBSERVED_TYPE = frozenset(
    {"ExpectColumnTypeToBe", "ExpectColumnValuesToBeOfType", "ExpectColumnValuesToBeInTypeList"}
)
_OBSERVED_COLUMNS = frozenset(
    {"ExpectTableColumnsToMatchSet", "ExpectTableColumnsToMatchOrderedList"}
)


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation: a GX class name, its keyword arguments and what a failure means."""

    name: str
    kwargs: dict[str, Any]
    severity: Literal["error", "warning"] = "error"
    dimension: str | None = None  # overrides the mapping in databourse.quality.score


@dataclass(frozen=True)
class ExpectationResult:
    """The outcome of one expectation: counts and names, never cell values."""

    expectation: str
    column: str | None
    severity: str
    success: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    observed_value: Any | None
    dimension: str | None = None  # completeness, validity, uniqueness, timeliness, consistency

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @property
    def label(self) -> str:
        """`Name(column)` or `Name` for a table-level expectation."""
        return f"{self.expectation}({self.column})" if self.column else self.expectation


@dataclass(frozen=True)
class QualityReport:
    """All results of one dataset's validation; success means no error-severity failure."""

    dataset: str
    rows: int
    success: bool
    results: list[ExpectationResult]

    @property
    def failed_errors(self) -> list[ExpectationResult]:
        """Failed expectations of severity error."""
        return [r for r in self.results if not r.success and r.severity == "error"]

    @property
    def failed_warnings(self) -> list[ExpectationResult]:
        """Failed expectations of severity warning."""
        return [r for r in self.results if not r.success and r.severity == "warning"]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, safe to publish: no cell value anywhere."""
        return {
            "dataset": self.dataset,
            "rows": self.rows,
            "success": self.success,
            "summary": self.summary(),
            "results": [r.to_json() for r in self.results],
        }

    def summary(self) -> str:
        """One line, e.g. `12/13 expectations passed; failed (error): Name(column)`."""
        passed = sum(r.success for r in self.results)
        parts = [f"{passed}/{len(self.results)} expectations passed"]
        for severity, failed in (("error", self.failed_errors), ("warning", self.failed_warnings)):
            if failed:
                parts.append(f"failed ({severity}): " + ", ".join(r.label for r in failed))
        return "; ".join(parts)


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
    _, problems = _build(specs, labels)
    names = {c.name for c in dataset.columns}
    for label, spec in zip(labels, specs, strict=True):
        referenced = referenced_columns(spec.kwargs)
        if unknown := sorted(c for c in referenced if c not in names):
            problems.append(f"{label}: unknown column(s) {unknown}")
        for key in ("regex", "regex_list"):
            for pattern in _as_list(spec.kwargs.get(key)):
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


def referenced_columns(kwargs: dict[str, Any]) -> list[str]:
    """The column names an expectation's kwargs name (column, column_list, column_A/B)."""
    found = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    found += _as_list(kwargs.get("column_list"))
    return [str(c) for c in found]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def build_expectations(specs: list[ExpectationSpec]) -> list[gxe.Expectation]:
    """GX expectation objects for the specs; ConfigError lists every unknown name or bad kwarg."""
    built, problems = _build(specs, [f"expectations[{i}] {s.name}" for i, s in enumerate(specs)])
    if problems:
        raise ConfigError(problems)
    return built


def _build(
    specs: list[ExpectationSpec], labels: list[str]
) -> tuple[list[gxe.Expectation], list[str]]:
    problems: list[str] = []
    built: list[gxe.Expectation] = []
    for i, (spec, where) in enumerate(zip(specs, labels, strict=True)):
        cls = getattr(gxe, spec.name, None) if spec.name.startswith("Expect") else None
        if not (isinstance(cls, type) and issubclass(cls, gxe.Expectation)) or isabstract(cls):
            problems.append(f"{where}: unknown expectation")
            continue
        if spec.severity not in _SEVERITY:
            problems.append(f"{where}: severity must be 'error' or 'warning'")
            continue
        if reserved := sorted(_RESERVED_KWARGS & set(spec.kwargs)):
            problems.append(f"{where}: reserved kwargs {reserved}")
            continue
        try:
            built.append(cls(**spec.kwargs, meta={INDEX_KEY: i}, severity=_SEVERITY[spec.severity]))
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            problems.append(f"{where}: bad kwargs: {_pydantic_problems(exc)}")
    return built, problems


def _pydantic_problems(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return type(exc).__name__
    return "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}" for err in errors()
    )


def to_result(spec: ExpectationSpec, gx_result: Any, columns: set[str]) -> ExpectationResult:
    """Keep counts and safe observations only; everything else in the GX result is dropped."""
    column = spec_column(spec)
    if gx_result is None or gx_result.exception_info.get("raised_exception"):
        # The message of a GX exception is not guaranteed free of data: log no more than this.
        logger.warning("quality: %s(%s) could not be evaluated", spec.name, column)
        raw: dict[str, Any] = {}
        success = False
    else:
        raw = dict(gx_result.result or {})
        success = bool(gx_result.success)
    return ExpectationResult(
        expectation=spec.name,
        column=None if column is None else str(column),
        severity=spec.severity,
        success=success,
        element_count=_int_or_none(raw.get("element_count")),
        unexpected_count=_int_or_none(raw.get("unexpected_count")),
        unexpected_percent=_float_or_none(raw.get("unexpected_percent")),
        observed_value=_safe_observed(spec.name, raw.get("observed_value"), columns),
        dimension=dimension_of(spec),
    )


def spec_column(spec: ExpectationSpec) -> str | None:
    """The column an expectation is about, `a,b` for several, None for the table."""
    referenced = referenced_columns(spec.kwargs)
    return ",".join(referenced) if referenced else None


def make_report(dataset_name: str, rows: int, results: list[ExpectationResult]) -> QualityReport:
    """The report of the results: success unless an error-severity expectation failed."""
    report = QualityReport(
        dataset=dataset_name,
        rows=rows,
        success=not any(not r.success and r.severity == "error" for r in results),
        results=results,
    )
    logger.info("quality %s: %d rows; %s", dataset_name, rows, report.summary())
    return report


def _safe_observed(name: str, value: Any, columns: set[str]) -> Any | None:
    if name in _OBSERVED_COUNT:
        return _float_or_none(value) if isinstance(value, float) else _int_or_none(value)
    if name in _OBSERVED_TYPE and isinstance(value, str):
        return value
    if (
        name in _OBSERVED_COLUMNS
        and isinstance(value, list)
        and all(isinstance(c, str) and c in columns for c in value)
    ):
        return list(value)
    return None


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy numbers are Real
        return None
    return float(value) if math.isfinite(value) else None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    number = _float_or_none(value)
    return None if number is None else int(number)


_NULLABLE_INTS: dict[pa.DataType, pd.api.extensions.ExtensionDtype] = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
}


def _pandas_type(arrow_type: pa.DataType) -> pd.api.extensions.ExtensionDtype | None:
    """Nullable ints and bools stay typed; strings become pandas 3 `str`, floats numpy."""
    if arrow_type in _NULLABLE_INTS:
        return _NULLABLE_INTS[arrow_type]
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """The DataFrame GX validates; its dtypes are the ones `PANDAS_TYPES` names."""
    columns: list[pa.ChunkedArray] = []
    dates: dict[int, pd.api.extensions.ExtensionArray] = {}
    for position, column in enumerate(table.columns):
        kind = column.type
        if pa.types.is_dictionary(kind):
            column, kind = column.cast(kind.value_type), kind.value_type
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            column = column.cast(pa.timestamp(kind.unit))  # the same instants, as naive UTC
        elif pa.types.is_date(kind):
            # A date is a daily period. Unlike an Arrow-backed date column, a period column
            # stays distinct from timestamps AND is cheap for the frame hash GX computes
            # per batch (1M Arrow dates: 3.3 s; as periods: 0.05 s).
            days = pc.cast(pc.cast(column, pa.date32()), pa.int32()).cast(pa.int64())
            ordinals = pc.fill_null(days, NAT).to_numpy()
            dates[position] = pd.arrays.PeriodArray(ordinals, dtype=pd.PeriodDtype("D"))
            column = days
        columns.append(column)
    normalized = pa.Table.from_arrays(columns, names=table.column_names)
    df = normalized.to_pandas(types_mapper=_pandas_type)
    for position, periods in dates.items():
        df.isetitem(position, periods)
    return df
