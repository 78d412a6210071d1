"""Reader of Parquet files: their own names and types, decoded within the caps of compressed input.

A Parquet file is compressed twice over: its pages are compressed, and dictionary encoding lets
every row point at one long value, so a few hundred KB of file can decode to gigabytes. Nothing is
decoded before it is measured:
- the footer's sizes, with fixed-width values counted as rows x width, are checked when planning;
- batches are sized from the footer and the schema so that one batch decodes to about BATCH_BYTES;
- variable-width values (text, binary) are read as dictionaries, and a batch's size once decoded is
  computed from the dictionary's lengths before it is decoded, in slices of about BATCH_BYTES.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databourse.readers.decompress import RATIO_FLOOR, ReadLimits, column_label, reject
from databourse.readers.text import Plan, check_no_nul, describe

BATCH_ROWS = 64_000
BATCH_BYTES = 64 << 20  # what one batch may decode to, whatever its values' sizes
_VARIABLE = (pa.string(), pa.large_string(), pa.binary(), pa.large_binary())


def plan_parquet(label: str, path: Path, limits: ReadLimits, declared: Sequence[str] = ()) -> Plan:
    """A Parquet file: its own column names and types, its declared data size within the caps."""
    try:
        with pq.ParquetFile(path) as pfile:
            schema = pfile.schema_arrow
            meta = pfile.metadata
            leaves = [pfile.schema.column(i) for i in range(meta.num_columns)]
    except (pa.ArrowException, OSError) as exc:
        raise reject(label, f"not a readable Parquet file: {describe(exc)}") from None
    if nested := next((f for f in schema if pa.types.is_nested(f.type)), None):
        raise reject(  # no contract type holds them (and their text escapes the checks below)
            label,
            f"column {column_label(schema.names, nested.name)} holds nested values"
            f" ({str(nested.type)[:60]}); flatten it",
            column=column_label(schema.names, nested.name),
        )
    if len(leaves) != len(schema):  # a flat file has one leaf per field
        raise reject(label, "its Parquet schema does not match its Arrow schema")
    widths = [leaf.length if leaf.physical_type == "FIXED_LEN_BYTE_ARRAY" else 0 for leaf in leaves]
    sizes = _declared_sizes(meta, widths)
    _check_columns(label, sizes, path.stat().st_size, limits, "declares", schema.names, declared)
    rows = _batch_rows(meta, widths)
    read = partial(_parquet_batches, label, path, schema, limits, rows, declared)
    return Plan(label, "parquet", list(schema.names), read)


def _declared_sizes(meta: pq.FileMetaData, widths: list[int]) -> list[int]:
    """Per column, its bytes once decoded as the footer says: a fixed-width column rows x width.

    A dictionary-encoded FIXED_LEN_BYTE_ARRAY column declares only its encoded size, yet Arrow
    cannot read it as a dictionary: it decodes every row to the full width.
    """
    sizes = [0] * len(widths)
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for i, width in enumerate(widths):
            chunk = group.column(i)
            sizes[i] += max(chunk.total_uncompressed_size, group.num_rows * width)
    return sizes


def _batch_rows(meta: pq.FileMetaData, widths: list[int]) -> int:
    """Rows per batch so that a batch of the widest row group decodes to about BATCH_BYTES."""
    row = sum(widths) + 8 * len(widths)  # the schema's widths bind even a footer that lies
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        row = max(row, group.total_byte_size // max(group.num_rows, 1))
    return max(1, min(BATCH_ROWS, BATCH_BYTES // max(row, 1)))


def _parquet_batches(
    label: str,
    path: Path,
    schema: pa.Schema,
    limits: ReadLimits,
    batch_rows: int,
    declared: Sequence[str],
) -> Iterator[pa.RecordBatch]:
    """Batches with variable-width columns read as dictionaries, measured, then decoded."""
    variable = [f.name for f in schema if f.type in _VARIABLE]
    size, rows = path.stat().st_size, 0
    out = [0] * len(schema)
    try:
        with pq.ParquetFile(path, read_dictionary=variable) as pfile:
            for batch in pfile.iter_batches(batch_size=batch_rows):
                sizes = [_decoded_bytes(column) for column in batch.columns]
                out = [a + b for a, b in zip(out, sizes, strict=True)]
                _check_columns(label, out, size, limits, "decodes to", schema.names, declared)
                for decoded in decoded_slices(batch, variable, sum(sizes)):
                    check_no_nul(decoded, label, rows)
                    rows += decoded.num_rows
                    yield decoded
    except (pa.ArrowException, OSError) as exc:
        raise reject(label, f"cannot be read as Parquet: {describe(exc)}") from None


def decoded_slices(
    batch: pa.RecordBatch, variable: list[str], size: int
) -> Iterator[pa.RecordBatch]:
    """The batch with its variable-width columns decoded, in slices of about BATCH_BYTES."""
    pieces = -(-size // BATCH_BYTES)
    step = max(1, -(-batch.num_rows // max(pieces, 1)))
    for start in range(0, max(batch.num_rows, 1), step):
        part = batch.slice(start, step)
        columns = [
            c.dictionary_decode() if f.name in variable and pa.types.is_dictionary(c.type) else c
            for f, c in zip(part.schema, part.columns, strict=True)
        ]
        yield pa.RecordBatch.from_arrays(columns, names=part.schema.names)


def _decoded_bytes(column: pa.Array) -> int:
    """A column's size once its dictionary is decoded (computed without decoding)."""
    if not pa.types.is_dictionary(column.type):
        return int(column.nbytes)
    values = column.dictionary
    if values.type in _VARIABLE:
        lengths = pc.binary_length(values).take(column.indices)
        return int(column.indices.nbytes) + (pc.sum(lengths).as_py() or 0)
    width = -(-values.nbytes // max(len(values), 1))  # fixed-width values: each the same size
    return int(column.indices.nbytes) + width * len(column)


def _check_columns(
    label: str,
    sizes: list[int],
    size: int,
    limits: ReadLimits,
    verb: str,
    names: Sequence[str],
    declared: Sequence[str],
) -> None:
    """The caps of compressed input (size decoded, ratio), naming the largest column."""
    out = sum(sizes)
    over_cap = out > limits.max_uncompressed_bytes
    if not over_cap and (out <= RATIO_FLOOR or out / max(size, 1) <= limits.max_compression_ratio):
        return
    widest = column_label(names, names[max(range(len(sizes)), key=sizes.__getitem__)], declared)
    if over_cap:
        raise reject(
            label,
            f"{verb} more than {limits.max_uncompressed_bytes} bytes of data"
            f" (most in column {widest})",
            column=widest,
        )
    raise reject(
        label,
        f"{verb} {out} bytes of data from {size} bytes, a ratio above"
        f" {limits.max_compression_ratio:g} (a decompression bomb?), most in column {widest};"
        " stopped reading",
        column=widest,
    )


def row_group_ends(meta: pq.FileMetaData) -> list[int]:
    """The row number after each row group's last row."""
    ends, at = [], 0
    for group in range(meta.num_row_groups):
        at += meta.row_group(group).num_rows
        ends.append(at)
    return ends


def row_range(
    pfile: pq.ParquetFile, offset: int, rows: int, columns: list[str], batch_rows: int
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Rows `offset` to `offset + rows` of a Parquet file (a partition of a staged file), read
    from the row groups that hold them only, in batches of at most `batch_rows` rows of
    `columns`, each with the file position of its first row."""
    ends = row_group_ends(pfile.metadata)
    starts = [0, *ends[:-1]]
    groups = [
        g
        for g, (a, b) in enumerate(zip(starts, ends, strict=True))
        if a < offset + rows and b > offset
    ]
    if not rows or not groups:
        return
    at = starts[groups[0]]
    for batch in pfile.iter_batches(batch_rows, row_groups=groups, columns=columns):
        lo, hi = max(at, offset), min(at + batch.num_rows, offset + rows)
        if lo < hi:
            yield lo, batch.slice(lo - at, hi - lo)
        at += batch.num_rows
