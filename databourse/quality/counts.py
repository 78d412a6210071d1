"""Expectations counted by pyarrow over every batch: row count, unique, min-max, nulls, between."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databourse.grouping import plain
from databourse.quality.expectations import ExpectationResult, ExpectationSpec, spec_column
from databourse.quality.gx_inputs import NAT
from databourse.quality.primary_key import HashSpill, hash_rows
from databourse.quality.score import dimension_of

if TYPE_CHECKING:
    from databourse.quality.batches import BatchSource

logger = logging.getLogger(__name__)
ALL_ROWS = frozenset({"ExpectColumnValuesToNotBeNull", "ExpectColumnValuesToBeNull"})


@dataclass
class Counts:
    """What one expectation counted over some batches: rows (element), missing and unexpected
    ones; for GX's per-batch runs also the batches failed, the runs, whether one raised, and the
    last run's result reduced to counts and names (`report.to_result`). Counts of consecutive
    parts of a dataset merge (`merged`) into the counts of the whole."""

    element: int = 0
    missing: int = 0
    unexpected: int = 0
    failed_batches: int = 0
    runs: int = 0
    raised: bool = False
    last: ExpectationResult | None = None

    def merged(self, later: Counts) -> Counts:
        """These counts followed by those of the next part of the dataset."""
        return Counts(
            self.element + later.element,
            self.missing + later.missing,
            self.unexpected + later.unexpected,
            self.failed_batches + later.failed_batches,
            self.runs + later.runs,
            self.raised or later.raised,
            later.last if later.runs else self.last,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (counts, and the last result's counts and names: no cell value)."""
        return {**asdict(self), "last": None if self.last is None else self.last.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Counts:
        """The counts a `to_json` dict describes."""
        last = data.get("last")
        return cls(**{**data, "last": None if last is None else ExpectationResult(**last)})


def counted_result(
    spec: ExpectationSpec, element: int, missing: int, unexpected: int
) -> ExpectationResult:
    """A count-based result: share over non-missing rows (all rows for (not-)null), `mostly`."""
    denominator = element if spec.name in ALL_ROWS else element - missing
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


def not_evaluated(spec: ExpectationSpec, why: str) -> ExpectationResult:
    logger.warning("quality: %s(%s) could not be evaluated: %s", spec.name, spec_column(spec), why)
    return ExpectationResult(
        spec.name, spec_column(spec), spec.severity, False, None, None, None, None,
        dimension_of(spec),
    )  # fmt: skip


def row_count_result(spec: ExpectationSpec, built: Any, rows: int) -> ExpectationResult:
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


PAIRS = np.dtype([("h", "<u8"), ("r", "<i8")])  # a key file's records: hash, dataset row


def key_hashes(
    batches: Iterable[pa.RecordBatch], spec: ExpectationSpec, offset: int, path: Path
) -> tuple[int, int]:
    """Pass 1 of a uniqueness check over some rows: each kept row's key hashed to 64 bits,
    appended with its dataset row (`offset` + position) to the key file `path`; how many rows
    there were, and how many were skipped (`ignore_row_if`)."""
    keys = key_columns(spec)
    ignore = spec.kwargs.get("ignore_row_if", "all_values_are_missing")
    element = skipped = 0
    with path.open("wb") as out:  # a retried part writes its file again
        for batch in batches:
            table = _decoded(pa.Table.from_batches([batch]))
            keep = pc.invert(_skipped(table, keys, ignore))
            rows = np.arange(offset + element, offset + element + table.num_rows, dtype=np.int64)
            kept = table.filter(keep)
            skipped += table.num_rows - kept.num_rows
            pairs = np.empty(kept.num_rows, dtype=PAIRS)
            pairs["h"] = hash_rows(_hashable(kept), keys)
            pairs["r"] = rows[keep.to_numpy(zero_copy_only=False)]
            out.write(pairs.tobytes())
            element += table.num_rows
    return element, skipped


def key_columns(spec: ExpectationSpec) -> list[str]:
    """The key column(s) of a uniqueness expectation."""
    return [str(c) for c in spec.kwargs.get("column_list") or [spec.kwargs.get("column")]]


def unique_result(
    source: BatchSource, spec: ExpectationSpec, files: list[Path], element: int, skipped: int
) -> ExpectationResult:
    """Duplicates over the whole dataset with memory that does not grow with it.

    Pass 1 (`key_hashes`, over every part of the dataset) wrote each kept row's 64-bit hash and
    row to key files; they are spilled to disk by hash (`primary_key.HashSpill`), and only rows
    whose hash repeats are candidates. Pass 2 reads the candidates' values from `source` and
    counts exact duplicates, so a hash collision never counts.
    """
    keys = key_columns(spec)
    spill = HashSpill()
    try:
        for path in files:
            with path.open("rb") as data:
                while len(chunk := np.frombuffer(data.read(PAIRS.itemsize << 20), PAIRS)):
                    spill.add(chunk["h"], chunk["r"])
        candidates = np.sort(np.concatenate(spill.groups() or [np.zeros(0, np.int64)]))
    finally:
        spill.close()
    picked = _picked_rows(source, keys, candidates)
    counted = picked.group_by(keys, use_threads=False).aggregate([([], "count_all")])
    dup = pc.greater(counted["count_all"], 1)
    unexpected = int(pc.sum(pc.filter(counted["count_all"], dup)).as_py() or 0)
    return counted_result(spec, element, skipped, unexpected)


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
    columns = [
        c.cast(plain_type(c.type)) if plain_type(c.type) != c.type else c for c in table.columns
    ]
    return pa.Table.from_arrays(columns, names=table.column_names)


def plain_type(kind: pa.DataType) -> pa.DataType:
    """A column's type as `_decoded` gives it: a dictionary's values, a zoned timestamp naive."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_timestamp(kind) and kind.tz is not None:
        kind = pa.timestamp(kind.unit)
    return kind


def extreme(batches: Iterable[pa.RecordBatch], want_max: bool) -> Any:
    """The largest (or smallest) value of one column over some batches; None if none."""
    best: Any = None
    pick = pc.max if want_max else pc.min
    for batch in batches:
        values = _decoded(pa.Table.from_batches([batch])).column(0)
        best = better(best, pick(values).as_py(), want_max)
    return best


def better(best: Any, found: Any, want_max: bool) -> Any:
    """The larger (or smaller) of the two, a None ignored."""
    if found is not None and (best is None or (found > best if want_max else found < best)):
        return found
    return best


def min_max_result(spec: ExpectationSpec, built: Any, best: Any) -> ExpectationResult:
    """The column's min or max over the whole dataset (`best`) compared with the bounds."""
    if isinstance(best, float) and math.isnan(best):
        best = None
    try:
        low, high = _comparable(best, built.min_value), _comparable(best, built.max_value)
        ok = best is not None and _within(best, low, high, built.strict_min, built.strict_max)
    except TypeError:
        return not_evaluated(spec, "bounds not comparable with the column type")
    return ExpectationResult(
        spec.name, spec_column(spec), spec.severity, ok, None, None, None, None, dimension_of(spec)
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


def null_counts(
    batches: Iterable[pa.RecordBatch], specs: list[ExpectationSpec], indices: list[int]
) -> dict[int, Counts]:
    """(Not-)null expectations counted in one pass over the columns they name (`null_columns`):
    rows, and the unexpected ones (nulls, or non-nulls for ToBeNull)."""
    columns = null_columns(specs, indices)
    missing = dict.fromkeys(columns, 0)
    element = 0
    for batch in batches:
        element += batch.num_rows
        for name, values in zip(batch.schema.names, batch.columns, strict=True):
            missing[name] += _missing(values)
    out = {}
    for i in indices:
        nulls = missing[str(specs[i].kwargs["column"])]
        unexpected = nulls if specs[i].name == "ExpectColumnValuesToNotBeNull" else element - nulls
        out[i] = Counts(element, 0, unexpected)
    return out


def null_columns(specs: list[ExpectationSpec], indices: list[int]) -> list[str]:
    """The columns the (not-)null expectations name, in first-seen order."""
    return list(dict.fromkeys(str(specs[i].kwargs["column"]) for i in indices))


def _missing(values: pa.Array) -> int:
    """Values pandas (and so GX) sees as missing: nulls, float NaN, timestamps at NaT."""
    values = plain(values)
    count = values.null_count
    if pa.types.is_floating(values.type):
        count += int(pc.sum(pc.is_nan(values)).as_py() or 0)
    elif pa.types.is_timestamp(values.type):
        count += int(pc.sum(pc.equal(values.cast(pa.int64()), NAT)).as_py() or 0)
    return count


def between_counts(batches: Iterable[pa.RecordBatch], built: Any) -> Counts:
    """Values of one column outside numeric bounds counted per batch by pyarrow; nulls are
    missing, not unexpected."""
    c = Counts()
    for batch in batches:
        values = batch.column(0)
        inside = pc.is_valid(values)
        if built.min_value is not None:
            low = (pc.greater if built.strict_min else pc.greater_equal)(values, built.min_value)
            inside = pc.and_(inside, low)
        if built.max_value is not None:
            high = (pc.less if built.strict_max else pc.less_equal)(values, built.max_value)
            inside = pc.and_(inside, high)
        c.element += len(values)
        c.missing += values.null_count
        c.unexpected += (
            len(values) - values.null_count - int(pc.sum(pc.fill_null(inside, False)).as_py() or 0)
        )
    return c
