"""Grouped counts of records and the class of any record: what privacy decisions are made on.

`group_counts` gives the distinct combinations of some columns with their number of records, a
null being a value like any other, sorted by value: a hash group-by's own order depends on how
the rows were batched, a sorted one does not, so the grouping of partitions merged in any way
(`merge_groups`) is exactly the grouping of the whole table, and every figure computed from it,
floating-point sums included, is the same to the last bit. `ClassIndex` finds, for any record,
its row in a table of classes, so a decision taken on counts is applied batch by batch.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

WEIGHT = "__databourse_records"  # records per combination in a grouped-counts table


def group_counts(table: pa.Table, columns: list[str], weights: str | None = None) -> pa.Table:
    """Distinct combinations of `columns`, sorted by value, with their records in `WEIGHT`.

    A null is a value like any other (sorted last). `weights` names a column of records per row
    when the table is itself grouped (its counts are summed)."""
    aggregate = (weights, "sum") if weights else ([], "count_all")
    grouped = (
        table.select([*columns, *([weights] if weights else [])])
        .group_by(columns, use_threads=False)
        .aggregate([aggregate])
    )
    counts = grouped.column(f"{weights}_sum" if weights else "count_all")
    out = pa.table([*(grouped.column(c) for c in columns), counts], names=[*columns, WEIGHT])
    order = pc.sort_indices(out, sort_keys=[(c, "ascending", "at_end") for c in columns])
    return out.take(order)


def merge_groups(parts: Iterable[pa.Table]) -> pa.Table | None:
    """Grouped counts of the partitions of a table, merged: the whole table's grouping."""
    merged: pa.Table | None = None
    for part in parts:
        if merged is None:
            merged = part
            continue
        keys = [c for c in part.column_names if c != WEIGHT]
        merged = group_counts(pa.concat_tables([merged, part]), keys, weights=WEIGHT)
    return merged


class ClassIndex:
    """The class (a row of a classes table) of any record, from its quasi-identifier values.

    Each column's values get codes from the classes' value set (null included); the codes are
    folded column by column into dense keys known from the classes, so no key can overflow."""

    def __init__(self, classes: pa.Table, quasi_identifiers: list[str]) -> None:
        self.columns = list(quasi_identifiers)
        self.values = [pc.unique(plain(classes.column(q))) for q in self.columns]
        self.steps: list[np.ndarray] = []
        dense = np.zeros(classes.num_rows, dtype=np.int64)
        for q, values in zip(self.columns, self.values, strict=True):
            key = dense * len(values) + self._codes(classes.column(q), values)[0]
            self.steps.append(np.unique(key))
            dense = np.searchsorted(self.steps[-1], key)
        self.row_of = np.empty(classes.num_rows, dtype=np.int64)
        self.row_of[dense] = np.arange(classes.num_rows)

    @staticmethod
    def _codes(
        column: pa.ChunkedArray | pa.Array, values: pa.Array
    ) -> tuple[np.ndarray, np.ndarray]:
        index = pc.index_in(plain(column), value_set=values, skip_nulls=False)
        known = np.asarray(pc.is_valid(index), dtype=bool)
        return np.asarray(index.fill_null(0), dtype=np.int64), known

    def lookup(self, table: pa.Table | pa.RecordBatch) -> np.ndarray:
        """The class row of each record, -1 where no class has its combination."""
        if not len(self.row_of):
            return np.full(table.num_rows, -1, dtype=np.int64)
        dense = np.zeros(table.num_rows, dtype=np.int64)
        known = np.ones(table.num_rows, dtype=bool)
        for q, values, step in zip(self.columns, self.values, self.steps, strict=True):
            codes, found = self._codes(table.column(q), values)
            key = dense * len(values) + codes
            dense = np.minimum(np.searchsorted(step, key), len(step) - 1)
            known &= found & (step[dense] == key)
        return np.where(known, self.row_of[dense], -1)


def plain(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One array, a dictionary decoded to its values."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array
