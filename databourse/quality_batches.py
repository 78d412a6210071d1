"""Validate a dataset of any size in batches of at most N rows, one result per expectation.

Each expectation is computed by the way that is correct over the WHOLE dataset:

- `per-batch` (GX, row-wise map expectations: not-null, in-set, between, regex, lengths, column
  pairs, multicolumn sums...): GX runs on each batch, reading only the columns they name; the
  counts are combined: element, missing and unexpected counts summed, `unexpected_percent`
  recomputed over the non-missing rows (over all rows for not-null / null), success recomputed
  as `unexpected share <= 1 - mostly`.
- `between` (pyarrow, per batch): ExpectColumnValuesToBeBetween on an integer or float column
  with numeric bounds, counted like a per-batch GX expectation. GX 1.24.1 evaluates it with a
  Python call per row on nullable `Int64` columns (4 s per million rows): pyarrow is vectorized.
- `nulls` (pyarrow, per batch): ExpectColumnValuesToNotBeNull / ToBeNull (column and `mostly`
  only) counted from each batch's validity, with what pandas also calls missing (a float NaN, a
  timestamp at NaT's ordinal), so the counts are GX's. GX spent 0.3 s per million rows per
  column converting and fingerprinting the batch for a count Arrow already holds.
- `schema` (GX, structure: column set/list/count, column exists, dtype): every batch has the
  dataset's schema, so GX runs once on an empty table of that schema.
- `row-count` (pyarrow, metadata): ExpectTableRowCountToBeBetween/ToEqual from the row count.
- `unique` (pyarrow): ExpectColumnValuesToBeUnique / ExpectCompoundColumnsToBeUnique read only
  the key column(s) of every batch and count each value with `group_by`; memory is bounded by
  the key columns, not the table. A duplicate split across two batches is found.
- `min-max` (pyarrow): ExpectColumnMin/MaxToBeBetween (and the freshness check) combine the
  per-batch min and max; the value itself is never reported.
- `whole` (GX on a projection): anything else that is not row-wise (mean, median, distinct sets,
  increasing, z-scores...) runs once on the columns it names, read from every batch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databourse.grouping import plain
from databourse.primary_key import HashSpill, hash_rows
from databourse.quality import (
    _NAT,
    ExpectationResult,
    ExpectationSpec,
    QualityReport,
    _referenced_columns,
    _to_pandas,
    _to_result,
    dimension_of,
    make_report,
    spec_column,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine as _gx_pandas_engine
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

logger = logging.getLogger(__name__)
# GX's project context is process-global; one validation at a time keeps runs from mixing.
_GX_LOCK = threading.Lock()
_SCHEMA = frozenset(
    {
        "ExpectTableColumnsToMatchSet",
        "ExpectTableColumnsToMatchOrderedList",
        "ExpectTableColumnCountToEqual",
        "ExpectTableColumnCountToBeBetween",
        "ExpectColumnToExist",
        "ExpectColumnTypeToBe",
        "ExpectColumnValuesToBeOfType",
        "ExpectColumnValuesToBeInTypeList",
    }
)
_NOT_ROW_WISE = frozenset(
    {
        "ExpectColumnValuesToBeIncreasing",
        "ExpectColumnValuesToBeDecreasing",
        "ExpectColumnValueZScoresToBeLessThan",
    }
)
_ALL_ROWS = frozenset({"ExpectColumnValuesToNotBeNull", "ExpectColumnValuesToBeNull"})
_ROW_COUNT_KW = frozenset({"min_value", "max_value", "strict_min", "strict_max", "value"})
_MIN_MAX_KW = frozenset({"column", "min_value", "max_value", "strict_min", "strict_max"})
_UNIQUE_KW = frozenset({"column", "column_list", "mostly", "ignore_row_if"})
_NULLS_KW = frozenset({"column", "mostly"})


@dataclass(frozen=True)
class BatchSource:
    """A dataset read batch by batch: its schema, row count and a batch iterator by columns."""

    schema: pa.Schema
    rows: int
    batches: Callable[[list[str]], Iterator[pa.RecordBatch]]


def parquet_source(path: Path, batch_rows: int) -> BatchSource:
    """Batches of at most `batch_rows` rows read row group by row group; rows from metadata."""
    pfile = pq.ParquetFile(path)

    def batches(columns: list[str]) -> Iterator[pa.RecordBatch]:
        yield from pfile.iter_batches(batch_size=batch_rows, columns=columns)

    return BatchSource(pfile.schema_arrow, pfile.metadata.num_rows, batches)


def table_source(table: pa.Table, batch_rows: int) -> BatchSource:
    """An in-memory table seen as batches of at most `batch_rows` rows."""

    def batches(columns: list[str]) -> Iterator[pa.RecordBatch]:
        yield from table.select(columns).to_batches(max_chunksize=batch_rows)

    return BatchSource(table.schema, table.num_rows, batches)


def route(spec: ExpectationSpec, built: Any, schema: pa.Schema) -> str:
    """How an expectation is computed over the whole dataset (see the module doc)."""
    keys = set(spec.kwargs)
    if spec.name in _SCHEMA:
        return "schema"
    if spec.name in ("ExpectTableRowCountToBeBetween", "ExpectTableRowCountToEqual"):
        return "row-count" if keys <= _ROW_COUNT_KW else "whole"
    if spec.name in ("ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique"):
        return "unique" if keys <= _UNIQUE_KW else "whole"
    if spec.name == "ExpectColumnValuesToBeBetween" and _numeric_between(spec, built, schema):
        return "between"
    if spec.name in _ALL_ROWS and keys <= _NULLS_KW and _null_countable(spec, schema):
        return "nulls"
    if spec.name in ("ExpectColumnMaxToBeBetween", "ExpectColumnMinToBeBetween"):
        return "min-max" if keys <= _MIN_MAX_KW else "whole"
    row_wise = (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)
    if isinstance(built, row_wise) and spec.name not in _NOT_ROW_WISE:
        return "per-batch"
    return "whole"


def _null_countable(spec: ExpectationSpec, schema: pa.Schema) -> bool:
    """A column whose missing values Arrow counts the way pandas does (see `_missing`)."""
    column = str(spec.kwargs.get("column"))
    if column not in schema.names:
        return False  # GX reports the missing column
    kind = schema.field(column).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return any(
        check(kind)
        for check in (
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_integer,
            pa.types.is_floating,
            pa.types.is_boolean,
            pa.types.is_date,
            pa.types.is_timestamp,
        )
    )


def _numeric_between(spec: ExpectationSpec, built: Any, schema: pa.Schema) -> bool:
    """Simple numeric bounds on an integer or float column: what `_between` computes."""
    if (
        not set(spec.kwargs) <= _MIN_MAX_KW | {"mostly"}
        or spec.kwargs["column"] not in schema.names
    ):
        return False
    kind = schema.field(str(spec.kwargs["column"])).type
    numbers = [b for b in (built.min_value, built.max_value) if b is not None]
    return (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and all(
        isinstance(b, int | float) and not isinstance(b, bool) for b in numbers
    )


def validate_source(
    source: BatchSource,
    dataset_name: str,
    specs: list[ExpectationSpec],
    built: list[gxe.Expectation],
) -> QualityReport:
    """Validate every expectation over the whole source and combine them into one report."""
    routes = [route(s, b, source.schema) for s, b in zip(specs, built, strict=True)]
    names = set(source.schema.names)
    results: dict[int, ExpectationResult] = {}
    by_route: dict[str, list[int]] = {}
    for i, r in enumerate(routes):
        by_route.setdefault(r, []).append(i)
    for i in by_route.get("row-count", []):
        results[i] = _row_count(specs[i], built[i], source.rows)
    if schema := by_route.get("schema"):
        results |= _gx_combined([], source.schema.empty_table(), specs, built, schema, names)
    for i in by_route.get("unique", []):
        results[i] = _unique(source, specs[i], names)
    for i in by_route.get("between", []):
        results[i] = _between(source, specs[i], built[i])
    if nulls := by_route.get("nulls"):
        results |= _nulls(source, specs, nulls)
    for i in by_route.get("min-max", []):
        results[i] = _min_max(source, specs[i], built[i], names)
    if per_batch := by_route.get("per-batch"):
        columns = _columns_of([specs[i] for i in per_batch], names)
        empty = source.schema.empty_table().select(columns)
        results |= _gx_combined(source.batches(columns), empty, specs, built, per_batch, names)
    for i in by_route.get("whole", []):
        columns = _columns_of([specs[i]], names) or source.schema.names
        empty = source.schema.empty_table().select(columns)
        whole = pa.Table.from_batches(list(source.batches(columns)), empty.schema)
        results |= _gx_combined([whole], empty, specs, built, [i], names)
    return make_report(dataset_name, source.rows, [results[i] for i in range(len(specs))])


def _columns_of(specs: list[ExpectationSpec], names: set[str]) -> list[str]:
    """The existing columns the specs name, in first-seen order."""
    found: dict[str, None] = {}
    for spec in specs:
        found |= {c: None for c in _referenced_columns(spec.kwargs) if c in names}
    return list(found)


@dataclass
class _Counts:
    element: int = 0
    missing: int = 0
    unexpected: int = 0
    failed_batches: int = 0
    runs: int = 0
    raised: bool = False
    raw: dict[str, Any] | None = None  # the last GX result, for observed values


def _gx_combined(
    batches: Iterator[pa.RecordBatch] | list[Any],
    empty: pa.Table,
    specs: list[ExpectationSpec],
    built: list[gxe.Expectation],
    indices: list[int],
    names: set[str],
) -> dict[int, ExpectationResult]:
    """Run GX on each batch (or once on `empty`) and combine the counts per expectation."""
    counts = {i: _Counts() for i in indices}
    last: dict[int, Any] = {}
    with _GX_LOCK, _no_fingerprint():
        run = _gx_runner([built[i] for i in indices])
        seen = False
        for batch in batches:
            seen = True
            _accumulate(run(_to_pandas(_as_table(batch))), counts, last)
        if not seen:
            _accumulate(run(_to_pandas(empty)), counts, last)
    return {i: _combined(specs[i], counts[i], last.get(i), names) for i in indices}


@contextlib.contextmanager
def _no_fingerprint() -> Iterator[None]:
    """GX without its batch fingerprint, for the time of one validation (under `_GX_LOCK`).

    GX 1.24.1 labels every in-memory batch under 1 GB with an md5 over pandas' hash of every
    cell (`pandas_data_fingerprint`, a batch marker), which took 40 % of a validation's time
    (measured: 2.1 of 4.9 s on 5M rows). Nothing here reads that label: the threshold is set
    to zero while we validate and put back after.
    """
    saved = getattr(_gx_pandas_engine, "HASH_THRESHOLD", None)
    if saved is None:  # another GX version: nothing to switch off
        yield
        return
    _gx_pandas_engine.HASH_THRESHOLD = 0
    try:
        yield
    finally:
        _gx_pandas_engine.HASH_THRESHOLD = saved


def _as_table(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    return batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])


def _gx_runner(built: list[gxe.Expectation]) -> Callable[[Any], list[Any]]:
    """One ephemeral GX context and validation definition, run once per DataFrame."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = (
        context.data_sources.add_pandas("databourse")
        .add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="suite", expectations=built))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="validation", data=batch, suite=suite)
    )

    def run(df: Any) -> list[Any]:
        # SUMMARY gives the counts; no partial lists of unexpected values are even collected.
        result = definition.run(
            batch_parameters={"dataframe": df},
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 0},
        )
        return list(result.results)

    return run


def _accumulate(gx_results: list[Any], counts: dict[int, _Counts], last: dict[int, Any]) -> None:
    from databourse.quality import _INDEX_KEY

    for res in gx_results:
        i = int(res.expectation_config.meta[_INDEX_KEY])
        c = counts[i]
        c.runs += 1
        last[i] = res
        if res.exception_info.get("raised_exception"):
            c.raised = True
            continue
        raw = dict(res.result or {})
        c.element += int(raw.get("element_count") or 0)
        c.missing += int(raw.get("missing_count") or 0)
        c.unexpected += int(raw.get("unexpected_count") or 0)
        c.failed_batches += not res.success


def _combined(spec: ExpectationSpec, c: _Counts, last: Any, names: set[str]) -> ExpectationResult:
    """One result from the per-batch counts; a single batch keeps GX's own result."""
    single = _to_result(spec, last, names)
    if c.runs <= 1 or c.raised or single.unexpected_count is None:
        # one run (or an exception) is GX's own result; a result without counts failed if any
        # batch failed (per-batch expectations always have counts in practice)
        return single if c.runs <= 1 or c.raised else _replace(single, success=not c.failed_batches)
    return _counted(spec, c.element, c.missing, c.unexpected)


def _counted(
    spec: ExpectationSpec, element: int, missing: int, unexpected: int
) -> ExpectationResult:
    """A count-based result: share over non-missing rows (all rows for (not-)null), `mostly`."""
    denominator = element if spec.name in _ALL_ROWS else element - missing
    share = unexpected / denominator if denominator > 0 else None
    mostly = float(spec.kwargs.get("mostly", 1.0))
    return ExpectationResult(
        expectation=spec.name,
        column=spec_column(spec),
        severity=spec.severity,
        success=share is None or share <= 1.0 - mostly + 1e-12,
        element_count=element,
        unexpected_count=unexpected,
        unexpected_percent=None if share is None else share * 100.0,
        observed_value=None,
        dimension=dimension_of(spec),
    )


def _replace(result: ExpectationResult, **changes: Any) -> ExpectationResult:
    return ExpectationResult(**{**result.to_json(), **changes})


def _not_evaluated(spec: ExpectationSpec, why: str) -> ExpectationResult:
    logger.warning("quality: %s(%s) could not be evaluated: %s", spec.name, spec_column(spec), why)
    return ExpectationResult(
        spec.name, spec_column(spec), spec.severity, False, None, None, None, None,
        dimension_of(spec),
    )  # fmt: skip


def _row_count(spec: ExpectationSpec, built: Any, rows: int) -> ExpectationResult:
    """Row count bounds checked against the row count (Parquet metadata)."""
    if spec.name == "ExpectTableRowCountToEqual":
        ok = rows == built.value
    else:
        ok = _within(rows, built.min_value, built.max_value, built.strict_min, built.strict_max)
    return ExpectationResult(
        spec.name, None, spec.severity, bool(ok), None, None, None, rows, dimension_of(spec)
    )


def _within(value: Any, low: Any, high: Any, strict_low: bool, strict_high: bool) -> bool:
    if low is not None and (value <= low if strict_low else value < low):
        return False
    return not (high is not None and (value >= high if strict_high else value > high))


def _unique(source: BatchSource, spec: ExpectationSpec, names: set[str]) -> ExpectationResult:
    """Duplicates over the whole dataset with memory that does not grow with it.

    Pass 1 hashes each kept row's key to 64 bits and spills (hash, row) to disk
    (`primary_key.HashSpill`); only rows whose hash repeats are candidates. Pass 2 reads the
    candidates' values and counts exact duplicates, so a hash collision never counts.
    """
    keys = [str(c) for c in spec.kwargs.get("column_list") or [spec.kwargs.get("column")]]
    if missing := [k for k in keys if k not in names]:
        return _not_evaluated(spec, f"missing column(s) {missing}")
    ignore = spec.kwargs.get("ignore_row_if", "all_values_are_missing")
    spill = HashSpill()
    try:
        element = skipped = 0
        for batch in source.batches(keys):
            table = _decoded(pa.Table.from_batches([batch]))
            keep = pc.invert(_skipped(table, keys, ignore))
            rows = np.arange(element, element + table.num_rows, dtype=np.int64)
            kept = table.filter(keep)
            skipped += table.num_rows - kept.num_rows
            spill.add(hash_rows(_hashable(kept), keys), rows[keep.to_numpy(zero_copy_only=False)])
            element += table.num_rows
        candidates = np.sort(np.concatenate(spill.groups() or [np.zeros(0, np.int64)]))
    finally:
        spill.close()
    picked = _picked_rows(source, keys, candidates)
    counted = picked.group_by(keys, use_threads=False).aggregate([([], "count_all")])
    dup = pc.greater(counted["count_all"], 1)
    unexpected = int(pc.sum(pc.filter(counted["count_all"], dup)).as_py() or 0)
    return _counted(spec, element, skipped, unexpected)


def _skipped(table: pa.Table, keys: list[str], ignore: str) -> Any:
    nulls = [pc.is_null(table[k]) for k in keys]
    if len(keys) == 1 or ignore == "all_values_are_missing":
        return _fold(nulls, pc.and_)
    if ignore == "any_value_is_missing":
        return _fold(nulls, pc.or_)
    return pa.array([False] * table.num_rows, pa.bool_())


def _hashable(table: pa.Table) -> pa.Table:
    """Nulls (kept in a compound key) hashed as a text no value has in that column's type."""
    for i, column in enumerate(table.columns):
        if column.null_count:
            text = pc.fill_null(pc.cast(column, pa.string()), "\x00<null>")
            table = table.set_column(i, table.field(i).name, text)
    return table


def _picked_rows(source: BatchSource, keys: list[str], rows: np.ndarray) -> pa.Table:
    """The key values of some rows (0-based, ascending), read batch by batch."""
    picked: list[pa.Table] = []
    start = 0
    for batch in source.batches(keys) if len(rows) else ():  # no candidate: nothing to read
        inside = rows[(rows >= start) & (rows < start + batch.num_rows)]
        if len(inside):
            picked.append(_decoded(pa.Table.from_batches([batch]).take(pa.array(inside - start))))
        start += batch.num_rows
    if not picked:
        return _decoded(source.schema.empty_table().select(keys))
    return pa.concat_tables(picked, promote_options="permissive")


def _fold(arrays: list[Any], op: Callable[[Any, Any], Any]) -> Any:
    out = arrays[0]
    for a in arrays[1:]:
        out = op(out, a)
    return out


def _decoded(table: pa.Table) -> pa.Table:
    """Dictionary columns as their values, time-zoned timestamps as naive UTC (group_by-able)."""
    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_dictionary(kind):
            column, kind = column.cast(kind.value_type), kind.value_type
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            column = column.cast(pa.timestamp(kind.unit))
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def _min_max(
    source: BatchSource, spec: ExpectationSpec, built: Any, names: set[str]
) -> ExpectationResult:
    """The column's min or max combined over the batches, compared with the bounds."""
    column = str(spec.kwargs["column"])
    if column not in names:
        return _not_evaluated(spec, "missing column")
    want_max = spec.name == "ExpectColumnMaxToBeBetween"
    best: Any = None
    for batch in source.batches([column]):
        values = _decoded(pa.Table.from_batches([batch]))[column]
        found = (pc.max if want_max else pc.min)(values).as_py()
        if found is not None and (best is None or (found > best if want_max else found < best)):
            best = found
    if isinstance(best, float) and math.isnan(best):
        best = None
    try:
        low, high = _comparable(best, built.min_value), _comparable(best, built.max_value)
        ok = best is not None and _within(best, low, high, built.strict_min, built.strict_max)
    except TypeError:
        return _not_evaluated(spec, "bounds not comparable with the column type")
    return ExpectationResult(
        spec.name, column, spec.severity, ok, None, None, None, None, dimension_of(spec)
    )


def _comparable(value: Any, bound: Any) -> Any:
    """A bound made comparable with a date or naive-UTC timestamp value (dates by day)."""
    if bound is None or value is None:
        return bound
    if isinstance(bound, dt.datetime) and bound.tzinfo is not None:
        bound = bound.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, dt.datetime):
        return bound if isinstance(bound, dt.datetime) else dt.datetime.combine(bound, dt.time())
    if isinstance(value, dt.date) and isinstance(bound, dt.datetime):
        return bound.date()
    return bound


def _nulls(
    source: BatchSource, specs: list[ExpectationSpec], indices: list[int]
) -> dict[int, ExpectationResult]:
    """(Not-)null expectations counted in one pass over the columns they name."""
    columns = list(dict.fromkeys(str(specs[i].kwargs["column"]) for i in indices))
    missing = dict.fromkeys(columns, 0)
    element = 0
    for batch in source.batches(columns):
        element += batch.num_rows
        for name, values in zip(batch.schema.names, batch.columns, strict=True):
            missing[name] += _missing(values)
    out = {}
    for i in indices:
        nulls = missing[str(specs[i].kwargs["column"])]
        unexpected = nulls if specs[i].name == "ExpectColumnValuesToNotBeNull" else element - nulls
        out[i] = _counted(specs[i], element, 0, unexpected)
    return out


def _missing(values: pa.Array) -> int:
    """Values pandas (and so GX) sees as missing: nulls, float NaN, timestamps at NaT."""
    values = plain(values)
    count = values.null_count
    if pa.types.is_floating(values.type):
        count += int(pc.sum(pc.is_nan(values)).as_py() or 0)
    elif pa.types.is_timestamp(values.type):
        count += int(pc.sum(pc.equal(values.cast(pa.int64()), _NAT)).as_py() or 0)
    return count


def _between(source: BatchSource, spec: ExpectationSpec, built: Any) -> ExpectationResult:
    """Values outside numeric bounds counted per batch by pyarrow; nulls are not unexpected."""
    column = str(spec.kwargs["column"])
    element = missing = unexpected = 0
    for batch in source.batches([column]):
        values = batch.column(0)
        inside = pc.is_valid(values)
        if built.min_value is not None:
            low = (pc.greater if built.strict_min else pc.greater_equal)(values, built.min_value)
            inside = pc.and_(inside, low)
        if built.max_value is not None:
            high = (pc.less if built.strict_max else pc.less_equal)(values, built.max_value)
            inside = pc.and_(inside, high)
        element += len(values)
        missing += values.null_count
        unexpected += (
            len(values) - values.null_count - int(pc.sum(pc.fill_null(inside, False)).as_py() or 0)
        )
    return _counted(spec, element, missing, unexpected)
