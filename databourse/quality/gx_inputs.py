"""What GX is given: expectation objects built from specs, and each batch as a pandas DataFrame.

Importing this module configures GX before its first import (no analytics, its warnings and errors
logged only); the modules that import GX themselves import this one first.
"""

from __future__ import annotations

import logging
import os
import warnings
from inspect import isabstract

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from databourse.errors import ConfigError
from databourse.quality.expectations import ExpectationSpec

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
DEFAULT_BATCH_ROWS = 1_000_000  # the most rows of one DataFrame GX is given (quality.batches)


def build_expectations(specs: list[ExpectationSpec]) -> list[gxe.Expectation]:
    """GX expectation objects for the specs; ConfigError lists every unknown name or bad kwarg."""
    built, problems = build(specs, [f"expectations[{i}] {s.name}" for i, s in enumerate(specs)])
    if problems:
        raise ConfigError(problems)
    return built


def build(
    specs: list[ExpectationSpec], labels: list[str]
) -> tuple[list[gxe.Expectation], list[str]]:
    """GX objects for the specs that build, and one problem (by label) for each that does not."""
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
