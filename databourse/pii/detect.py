"""Content-based personal-data detection: classify columns by the identifiers their values hold.

Each column is classified on its first `sample_rows` values (the category whose whole-value matches
reach `threshold`), then the candidate is confirmed over all values. Identifiers found inside longer
text (free text, Chinese text with no word boundary) are counted apart as `embedded`; in a
product they are gated by `screening.check_embedded`, and `redaction` removes them where a rule
says so. Findings carry column names and counts only, never a value.

Here: the scan of batches. Categories and whole values: `pii_categories`; identifiers inside
text: `pii_embedded`; counts of a batch's column: `pii_counts`; the decision: `pii_findings`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pyarrow as pa

from databourse.grouping import plain
from databourse.pii.categories import numeric, value_type
from databourse.pii.counts import ColumnState, Counts, scan_chunk
from databourse.pii.dirty_columns import DIRTY_THRESHOLD
from databourse.pii.findings import ColumnFinding, finding
from databourse.pii.patterns import DOB_CUES

log = logging.getLogger(__name__)
# Rows counted per column at once. Each chunk's distinct values are classified once, so larger
# chunks classify a repeated value fewer times: 64k -> 256k rows halved the scan of a 2M-row
# sensor file (names, IDs, phones: 1.65 -> 0.82 s); 1M rows gained nothing more.
SCAN_BATCH_ROWS = 262_144
IN_FLIGHT = 2  # batches counted ahead of the one being added


def scan_table(
    table: pa.Table,
    *,
    threshold: float = 0.8,
    sample_rows: int = 2000,
    dirty_threshold: float = DIRTY_THRESHOLD,
) -> list[ColumnFinding]:
    """Classify every column of `table`, in order."""
    return scan_batches(
        table.to_batches(),
        table.schema,
        threshold=threshold,
        sample_rows=sample_rows,
        dirty_threshold=dirty_threshold,
    )


def scan_batches(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    *,
    threshold: float = 0.8,
    sample_rows: int = 2000,
    dirty_threshold: float = DIRTY_THRESHOLD,
) -> list[ColumnFinding]:
    """Classify every column of a stream of batches (memory bounded); same result as scan_table.

    A column is classified when `threshold` of its values are of one category, or, messy,
    `dirty_threshold` of its non-empty values (`dirty_columns`)."""
    states = count_columns(batches, schema, sample_rows=sample_rows)
    return decide_columns(states, threshold=threshold, dirty_threshold=dirty_threshold)


def count_columns(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, *, sample_rows: int, offset: int = 0
) -> list[ColumnState]:
    """Every column's counts over `batches`, which start at dataset row `offset`: the rows
    before `sample_rows` are also counted as the sample. Counts of consecutive parts of a
    dataset merge (`merge_columns`) into the counts of the whole, whatever the cut.

    Each (batch, column) is counted as its own job on a pool of threads (Arrow kernels release
    the GIL), up to `IN_FLIGHT` batches ahead, and added to the column's totals in batch order:
    a column slower than the others (a unique ID) no longer leaves the other threads idle.
    """
    states = [
        ColumnState(
            scannable=_scannable(f.type, f.name), name=f.name, numeric=numeric(value_type(f.type))
        )
        for f in schema
    ]
    scanned = [i for i, state in enumerate(states) if state.scannable]
    workers = max(1, min(pa.cpu_count(), len(scanned) * IN_FLIGHT))
    pending: deque[list[tuple[int, Future[tuple[Counts | None, Counts]]]]] = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for batch in _coalesced(batches, SCAN_BATCH_ROWS):
            head = max(0, min(batch.num_rows, sample_rows - offset))
            offset += batch.num_rows
            pending.append(
                [
                    (i, pool.submit(scan_chunk, schema[i].name, batch.column(i), head))
                    for i in scanned
                ]
            )
            while len(pending) > IN_FLIGHT:
                _add_results(states, pending.popleft())
        while pending:
            _add_results(states, pending.popleft())
    return states


def merge_columns(parts: Iterable[list[ColumnState]]) -> list[ColumnState]:
    """The counts of consecutive parts of a dataset, given in row order, as one part's."""
    merged: list[ColumnState] | None = None
    for part in parts:
        if merged is None:
            merged = [
                ColumnState(scannable=s.scannable, name=s.name, numeric=s.numeric) for s in part
            ]
        for into, state in zip(merged, part, strict=True):
            into.sample.add(state.sample)
            into.total.add(state.total)
    if merged is None:
        raise ValueError("no part to merge")
    return merged


def decide_columns(
    states: list[ColumnState],
    *,
    threshold: float = 0.8,
    dirty_threshold: float = DIRTY_THRESHOLD,
) -> list[ColumnFinding]:
    """Each column's category decided on its counts (see `findings.finding`)."""
    findings = [finding(s.name, s, threshold, dirty_threshold) for s in states]
    for found in findings:
        log.debug(
            "column %s: category=%s matched=%d checked=%d embedded=%s",
            found.column,
            found.category,
            found.matched,
            found.checked,
            found.embedded,
        )
    return findings


def _add_results(
    states: list[ColumnState], jobs: list[tuple[int, Future[tuple[Counts | None, Counts]]]]
) -> None:
    """One batch's counts added to the columns' totals (its first rows also to the sample)."""
    for i, job in jobs:
        sample, rest = job.result()
        if sample is not None:
            states[i].sample.add(sample)
            states[i].total.add(sample)
        states[i].total.add(rest)


def _coalesced(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Small batches joined into batches of about `rows` rows (larger ones pass as they are)."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        if not pending and batch.num_rows >= rows:
            yield batch
            continue
        pending.append(batch)
        held += batch.num_rows
        if held >= rows:
            yield _joined(pending)
            pending, held = [], 0
    if pending:
        yield _joined(pending)


def _joined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    decoded = [_plain(b) for b in batches]  # Arrow cannot join dictionaries that hold a null
    table = pa.Table.from_batches(decoded, schema=decoded[0].schema).combine_chunks()
    return table.to_batches()[0] if table.num_rows else decoded[0]


def _plain(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Dictionary columns as their values (the scan reads values as text anyway)."""
    if not any(pa.types.is_dictionary(f.type) for f in batch.schema):
        return batch
    return pa.RecordBatch.from_arrays([plain(c) for c in batch.columns], names=batch.schema.names)


def _scannable(typ: pa.DataType, name: str = "") -> bool:
    """Strings and numbers are scanned, dates when the column is named as a birth date."""
    if pa.types.is_dictionary(typ):
        return _scannable(typ.value_type, name)
    if pa.types.is_date(typ) or pa.types.is_timestamp(typ):
        return DOB_CUES.search(name) is not None
    return (
        numeric(value_type(typ))
        or any(check(typ) for check in (pa.types.is_string, pa.types.is_large_string))
        or pa.types.is_string_view(typ)
    )
