"""Reader record layer: JSON Lines and Parquet files as Arrow batches (workbooks: readers_xlsx).

JSON Lines values become text the way a person reading the file would write them (JSON numbers as
their JSON text); Parquet keeps its own types. Typing against the contract happens later, in one
place for every format.
"""

from __future__ import annotations

import io
import json
from collections.abc import Generator, Iterator, Sequence
from functools import partial
from itertools import count
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databourse.readers_bytes import RATIO_FLOOR, ReadLimits, column_label, reject
from databourse.readers_text import (
    Opener,
    Plan,
    ReadHints,
    TextEncoding,
    check_no_nul,
    decode_rejection,
    describe,
)

BATCH_ROWS = 50_000
_TEXTS = (pa.string(), pa.large_string(), pa.binary(), pa.large_binary())


class _JsonProblem(ValueError):
    """A JSON line that parses but is not acceptable (its reason, never its content)."""


def plan_jsonl(
    label: str, opener: Opener, enc: TextEncoding, hints: ReadHints, limits: ReadLimits
) -> Plan:
    """JSON Lines: the keys of the first batch of objects, then contract names not seen there."""
    columns: dict[str, None] = {}
    objects = _objects(label, opener, enc, limits, hints.expected_columns)
    for row, _line, obj in objects:
        columns.update(dict.fromkeys(obj))
        if row >= BATCH_ROWS:
            break
    objects.close()
    columns.update(dict.fromkeys(hints.expected_columns))
    names = list(columns)
    read = partial(_jsonl_batches, label, opener, enc, limits, names, hints.expected_columns)
    return Plan(label, "jsonl", names, read, enc.reported, bool(enc.bom), None, True)


def _jsonl_batches(
    label: str,
    opener: Opener,
    enc: TextEncoding,
    limits: ReadLimits,
    columns: list[str],
    declared: Sequence[str] = (),
) -> Iterator[pa.RecordBatch]:
    known = set(columns)
    schema = pa.schema([(c, pa.string()) for c in columns])
    chunk: list[dict[str, str | None]] = []
    for row, line, obj in _objects(label, opener, enc, limits, declared):
        if not known.issuperset(obj):
            unknown = column_label(list(obj), next(k for k in obj if k not in known))
            raise reject(
                label,
                f"line {line}: key {unknown} first appears after the first"
                f" {BATCH_ROWS} objects and is not in the contract",
                row=row,
                line=line,
                column=unknown,
            )
        chunk.append(obj)
        if len(chunk) == BATCH_ROWS:
            yield pa.RecordBatch.from_pylist(chunk, schema=schema)
            chunk = []
    if chunk:
        yield pa.RecordBatch.from_pylist(chunk, schema=schema)


def _objects(
    label: str, opener: Opener, enc: TextEncoding, limits: ReadLimits, declared: Sequence[str] = ()
) -> Generator[tuple[int, int, dict[str, str | None]]]:
    """(data row, line, object with text values) for each non-blank line."""
    with opener() as stream:
        stream.read(len(enc.bom))
        stream.reject_nul = not enc.may_hold_nul
        text = io.TextIOWrapper(io.BufferedReader(stream, 1 << 20), encoding=enc.codec)
        row = 0
        for line in count(1):
            try:
                content = text.readline(limits.max_record_bytes)
            except UnicodeDecodeError:
                raise decode_rejection(label, opener, enc) from None
            if not content:
                return
            if len(content) >= limits.max_record_bytes and not content.endswith("\n"):
                raise reject(label, f"line {line} is longer than the record cap", line=line)
            if content.strip():
                row += 1
                yield row, line, _parse(content, label, row, line, declared)


def _parse(
    content: str, label: str, row: int, line: int, declared: Sequence[str]
) -> dict[str, str | None]:
    where = {"row": row, "line": line}
    try:
        obj = _DECODER.decode(content)
    except RecursionError:
        raise reject(label, f"line {line}: JSON nested too deeply", **where) from None
    except _JsonProblem as exc:
        raise reject(label, f"line {line}: {exc}", **where) from None
    except json.JSONDecodeError as exc:
        raise reject(
            label, f"line {line}: invalid JSON ({exc.msg} at column {exc.colno})", **where
        ) from None
    if not isinstance(obj, dict):
        raise reject(label, f"line {line}: not a JSON object", **where)
    if "\\u" in content and (bad := _bad_text(obj)) is not None:  # only escapes make these
        key, problem = bad
        key = column_label(list(obj), key, declared)
        raise reject(label, f"line {line}: key {key} holds {problem}", column=key, **where)
    for key, value in obj.items():
        if value is None or value.__class__ is str:  # numbers arrive as their JSON text
            continue
        if value is True or value is False:
            obj[key] = "true" if value else "false"
            continue
        key = column_label(list(obj), key, declared)
        raise reject(
            label,
            f"line {line}: key {key} holds a nested {type(value).__name__};"
            " only scalar values are accepted",
            column=key,
            **where,
        )
    return obj


def _bad_text(obj: dict[str, Any]) -> tuple[str, str] | None:
    """(key, problem) of the first name or text value with a NUL or a lone surrogate."""
    for key, value in obj.items():
        for text in (key, value) if isinstance(value, str) else (key,):
            if "\x00" in text:
                return key, "a NUL character"
            try:
                text.encode()
            except UnicodeEncodeError:
                return key, "an unpaired surrogate escape: not valid Unicode"
    return None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [k for k, _ in pairs]
        twice = next(k for k in keys if keys.count(k) > 1)
        raise _JsonProblem(f"duplicate key {column_label(keys, twice)}")
    return obj


def _no_constant(name: str) -> Any:
    raise _JsonProblem(f"{name} is not valid JSON")


# One decoder for every line: json.loads with options builds a new one per call.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_keys, parse_float=str, parse_int=str, parse_constant=_no_constant
)


def plan_parquet(label: str, path: Path, limits: ReadLimits) -> Plan:
    """A Parquet file: its own column names and types, its declared data size within the caps."""
    try:
        with pq.ParquetFile(path) as pfile:
            schema = pfile.schema_arrow
            meta = pfile.metadata
            declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    except (pa.ArrowException, OSError) as exc:
        raise reject(label, f"not a readable Parquet file: {describe(exc)}") from None
    _check_expansion(label, declared, path.stat().st_size, limits, "declares")
    if nested := next((f for f in schema if pa.types.is_nested(f.type)), None):
        raise reject(  # no contract type holds them (and their text escapes the checks below)
            label,
            f"column {column_label(schema.names, nested.name)} holds nested values"
            f" ({str(nested.type)[:60]}); flatten it",
            column=column_label(schema.names, nested.name),
        )
    read = partial(_parquet_batches, label, path, schema, limits)
    return Plan(label, "parquet", list(schema.names), read)


def _parquet_batches(
    label: str, path: Path, schema: pa.Schema, limits: ReadLimits
) -> Iterator[pa.RecordBatch]:
    """Batches with text columns read as dictionaries, measured, then decoded.

    A dictionary page holding one 1 MB text that every row points at is a few hundred bytes of
    Parquet; decoding it eagerly would allocate 64 GB for one batch. So its size is checked first.
    """
    texts = [
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]
    size, out, rows = path.stat().st_size, 0, 0
    try:
        with pq.ParquetFile(path, read_dictionary=texts) as pfile:
            for batch in pfile.iter_batches(batch_size=64_000):
                out += _decoded_bytes(batch)
                _check_expansion(label, out, size, limits, "decodes to")
                columns = [
                    c.dictionary_decode()
                    if f.name in texts and pa.types.is_dictionary(c.type)
                    else c
                    for f, c in zip(batch.schema, batch.columns, strict=True)
                ]
                decoded = pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
                check_no_nul(decoded, label, rows)
                rows += decoded.num_rows
                yield decoded
    except (pa.ArrowException, OSError) as exc:
        raise reject(label, f"cannot be read as Parquet: {describe(exc)}") from None


def _decoded_bytes(batch: pa.RecordBatch) -> int:
    """The batch's size once its text dictionaries are decoded (computed without decoding)."""
    total = 0
    for column in batch.columns:
        if pa.types.is_dictionary(column.type) and column.dictionary.type in _TEXTS:
            lengths = pc.binary_length(column.dictionary).take(column.indices)
            total += column.indices.nbytes + (pc.sum(lengths).as_py() or 0)
        else:
            total += column.nbytes
    return total


def _check_expansion(label: str, out: int, size: int, limits: ReadLimits, verb: str) -> None:
    """The caps of compressed input (size once decoded, ratio) applied to a Parquet file."""
    if out > limits.max_uncompressed_bytes:
        raise reject(label, f"{verb} more than {limits.max_uncompressed_bytes} bytes of data")
    if out > RATIO_FLOOR and out / max(size, 1) > limits.max_compression_ratio:
        raise reject(
            label,
            f"{verb} {out} bytes of data from {size} bytes, a ratio above"
            f" {limits.max_compression_ratio:g} (a decompression bomb?); stopped reading",
        )
