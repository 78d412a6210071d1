"""Data-quality gate: a dataset contract as a Great Expectations suite, run on Arrow/Parquet.

Reports carry expectation names, column names, counts and type names only, never a cell value:
GX results are reduced to counts, and an observed value is kept only where the expectation is
known to observe a count, a proportion, a type name or the table's column names.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import threading
import warnings
from dataclasses import asdict, dataclass
from inspect import isabstract
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databourse.config import DatasetSpec
from databourse.errors import ConfigError

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# GX logs hundreds of DEBUG/INFO lines at import and per run; keep its warnings and errors only,
# unless the application has set a level for it already.
if logging.getLogger("great_expectations").level == logging.NOTSET:
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
with warnings.catch_warnings():
    # GX 1.24.1 imports the stdlib `sre_constants`, deprecated since Python 3.11.
    warnings.simplefilter("ignore", DeprecationWarning)
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.metadata_types import FailureSeverity
# This one GX module pins its own logger to INFO (a line per ephemeral context).
if logging.getLogger("great_expectations.data_context.types.base").level == logging.INFO:
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)

logger = logging.getLogger(__name__)

# Contract type -> pandas dtype name checked by ExpectColumnTypeToBe after `_to_pandas`.
PANDAS_TYPES: dict[str, str] = {
    "string": "str",
    "int64": "Int64",
    "float64": "float64",
    "bool": "boolean",
    "date": "period[D]",  # see _to_pandas
    "timestamp": "datetime64",  # any unit; time zones are normalized to naive UTC on reading
}
_NAT = np.iinfo(np.int64).min  # pandas' NaT ordinal
_SEVERITY = {"error": FailureSeverity.CRITICAL, "warning": FailureSeverity.WARNING}
_RESERVED_KWARGS = frozenset({"meta", "id", "result_format", "catch_exceptions", "severity"})
_INDEX_KEY = "databourse_index"
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
# GX's project context is process-global; one validation at a time keeps runs from mixing.
_GX_LOCK = threading.Lock()


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation: a GX class name, its keyword arguments and what a failure means."""

    name: str
    kwargs: dict[str, Any]
    severity: Literal["error", "warning"] = "error"


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


def suite_from_contract(dataset: DatasetSpec) -> list[ExpectationSpec]:
    """The error-severity expectations a dataset's schema contract implies."""
    names = [c.name for c in dataset.columns]
    specs = [
        ExpectationSpec("ExpectTableColumnsToMatchSet", {"column_set": names, "exact_match": True}),
        ExpectationSpec("ExpectTableRowCountToBeBetween", {"min_value": 1}),
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
    if len(key) > 1:
        specs.append(ExpectationSpec("ExpectCompoundColumnsToBeUnique", {"column_list": list(key)}))
    return specs


def validate_parquet(
    path: Path, dataset_name: str, expectations: list[ExpectationSpec]
) -> QualityReport:
    """Validate a Parquet file; the expectations are checked before the file is read."""
    built = build_expectations(expectations)
    return _validate(pq.read_table(path), dataset_name, expectations, built)


def validate_table(
    table: pa.Table, dataset_name: str, expectations: list[ExpectationSpec]
) -> QualityReport:
    """Validate an Arrow table against the expectations with Great Expectations."""
    return _validate(table, dataset_name, expectations, build_expectations(expectations))


def build_expectations(specs: list[ExpectationSpec]) -> list[gxe.Expectation]:
    """GX expectation objects for the specs; ConfigError lists every unknown name or bad kwarg."""
    problems: list[str] = []
    built: list[gxe.Expectation] = []
    for i, spec in enumerate(specs):
        where = f"expectations[{i}] {spec.name}"
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
            built.append(
                cls(**spec.kwargs, meta={_INDEX_KEY: i}, severity=_SEVERITY[spec.severity])
            )
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            problems.append(f"{where}: bad kwargs: {_pydantic_problems(exc)}")
    if problems:
        raise ConfigError(problems)
    return built


def _pydantic_problems(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return type(exc).__name__
    return "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}" for err in errors()
    )


def _validate(
    table: pa.Table,
    dataset_name: str,
    specs: list[ExpectationSpec],
    built: list[gxe.Expectation],
) -> QualityReport:
    df = _to_pandas(table)
    with _GX_LOCK:
        gx_results = _run_suite(df, dataset_name, built)
    by_index = {int(r.expectation_config.meta[_INDEX_KEY]): r for r in gx_results}
    columns = set(table.column_names)
    results = [_to_result(spec, by_index.get(i), columns) for i, spec in enumerate(specs)]
    report = QualityReport(
        dataset=dataset_name,
        rows=table.num_rows,
        success=not any(not r.success and r.severity == "error" for r in results),
        results=results,
    )
    logger.info("quality %s: %d rows; %s", dataset_name, table.num_rows, report.summary())
    return report


def _run_suite(df: pd.DataFrame, dataset_name: str, built: list[gxe.Expectation]) -> list[Any]:
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = (
        context.data_sources.add_pandas("databourse")
        .add_dataframe_asset(dataset_name)
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=dataset_name, expectations=built))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=dataset_name, data=batch, suite=suite)
    )
    # SUMMARY gives the counts; no partial lists of unexpected values are even collected.
    result = definition.run(
        batch_parameters={"dataframe": df},
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": 0},
    )
    return list(result.results)


def _to_result(spec: ExpectationSpec, gx_result: Any, columns: set[str]) -> ExpectationResult:
    """Keep counts and safe observations only; everything else in the GX result is dropped."""
    column = spec.kwargs.get("column")
    if column is None and isinstance(spec.kwargs.get("column_list"), list):
        column = ",".join(str(c) for c in spec.kwargs["column_list"])
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
    )


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


def _to_pandas(table: pa.Table) -> pd.DataFrame:
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
            ordinals = pc.fill_null(days, _NAT).to_numpy()
            dates[position] = pd.arrays.PeriodArray(ordinals, dtype=pd.PeriodDtype("D"))
            column = days
        columns.append(column)
    normalized = pa.Table.from_arrays(columns, names=table.column_names)
    df = normalized.to_pandas(types_mapper=_pandas_type)
    for position, periods in dates.items():
        df.isetitem(position, periods)
    return df
