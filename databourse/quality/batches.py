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

Here: the sources and the routing. GX routes run in `quality_gx`, pyarrow ones in `quality_counts`.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from databourse.quality.counts import ALL_ROWS
from databourse.quality.expectations import ExpectationSpec
from databourse.quality.gx_inputs import DEFAULT_BATCH_ROWS, build_expectations
from databourse.quality.report import QualityReport
from databourse.quality.tally import Routes, Tally, finish, tally
from databourse.readers.parquet import row_range

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import great_expectations.expectations as gxe
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

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


def parquet_source(path: Path | pa.NativeFile, batch_rows: int) -> BatchSource:
    """Batches of at most `batch_rows` rows read row group by row group; rows from metadata."""
    pfile = pq.ParquetFile(path)

    def batches(columns: list[str]) -> Iterator[pa.RecordBatch]:
        yield from pfile.iter_batches(batch_size=batch_rows, columns=columns)

    return BatchSource(pfile.schema_arrow, pfile.metadata.num_rows, batches)


def partition_source(
    path: Path | pa.NativeFile, offset: int, rows: int, batch_rows: int = DEFAULT_BATCH_ROWS
) -> BatchSource:
    """Rows `offset` to `offset + rows` of a Parquet file, read from the row groups that hold
    them only, in batches of at most `batch_rows` rows."""
    pfile = pq.ParquetFile(path)

    def batches(columns: list[str]) -> Iterator[pa.RecordBatch]:
        for _, batch in row_range(pfile, offset, rows, columns, batch_rows):
            yield batch

    return BatchSource(pfile.schema_arrow, rows, batches)


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
    if spec.name in ALL_ROWS and keys <= _NULLS_KW and _null_countable(spec, schema):
        return "nulls"
    if spec.name in ("ExpectColumnMaxToBeBetween", "ExpectColumnMinToBeBetween"):
        return "min-max" if keys <= _MIN_MAX_KW else "whole"
    row_wise = (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)
    if isinstance(built, row_wise) and spec.name not in _NOT_ROW_WISE:
        return "per-batch"
    return "whole"


def _null_countable(spec: ExpectationSpec, schema: pa.Schema) -> bool:
    """A column whose missing values Arrow counts the way pandas does (`quality_counts`)."""
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
    """Simple numeric bounds on an integer or float column: what `between_result` computes."""
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
    """Validate every expectation over the whole source and combine them into one report: the
    source tallied as one part, then finished (`quality.tally`)."""
    routes = routes_of(source.schema, specs, built)
    with tempfile.TemporaryDirectory(prefix="databourse-quality-") as folder:
        whole = tally(source, 0, specs, built, routes, Path(folder), "whole")
        return finish(source, dataset_name, specs, built, routes, [whole])


def routes_of(
    schema: pa.Schema, specs: list[ExpectationSpec], built: list[gxe.Expectation]
) -> Routes:
    """Each route with the indices of the expectations it computes."""
    routes: Routes = {}
    for i, (spec, made) in enumerate(zip(specs, built, strict=True)):
        routes.setdefault(route(spec, made, schema), []).append(i)
    return routes


def validate_parquet(
    path: Path | pa.NativeFile,
    dataset_name: str,
    expectations: list[ExpectationSpec],
    batch_rows: int = DEFAULT_BATCH_ROWS,
    tallies: list[Tally] | None = None,
) -> QualityReport:
    """Validate a Parquet file in batches of at most `batch_rows`; expectations checked first.

    `tallies`: its partitions' tallies (in dataset order) of the routes they tally, finished
    here on the whole file; None or none (an empty dataset has no partition): the file is
    tallied here as one part."""
    built = build_expectations(expectations)
    source = parquet_source(path, batch_rows)
    if not tallies:
        return validate_source(source, dataset_name, expectations, built)
    routes = routes_of(source.schema, expectations, built)
    return finish(source, dataset_name, expectations, built, routes, tallies)


def validate_table(
    table: pa.Table,
    dataset_name: str,
    expectations: list[ExpectationSpec],
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> QualityReport:
    """Validate an Arrow table with Great Expectations, in batches like `validate_parquet`."""
    built = build_expectations(expectations)
    return validate_source(table_source(table, batch_rows), dataset_name, expectations, built)
