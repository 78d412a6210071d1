"""Reader record layer: JSON Lines, Excel workbooks and Parquet files as Arrow batches.

JSON Lines and Excel cells become text the way a person reading the file would write them (JSON
numbers as their JSON text, Excel dates as ISO dates, integral Excel numbers without ".0"); Parquet
keeps its own types. Typing against the contract happens later, in one place for every format.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import warnings
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from itertools import count
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from databourse.errors import IngestRejected
from databourse.readers_bytes import ReadLimits, reject
from databourse.readers_text import (
    Opener,
    Plan,
    ReadHints,
    TextEncoding,
    decode_rejection,
    describe,
    resolve_header,
)

BATCH_ROWS = 50_000


class _JsonProblem(ValueError):
    """A JSON line that parses but is not acceptable (its reason, never its content)."""


def plan_jsonl(
    label: str, opener: Opener, enc: TextEncoding, hints: ReadHints, limits: ReadLimits
) -> Plan:
    """JSON Lines: the keys of the first batch of objects, then contract names not seen there."""
    columns: dict[str, None] = {}
    objects = _objects(label, opener, enc, limits)
    for row, _line, obj in objects:
        columns.update(dict.fromkeys(obj))
        if row >= BATCH_ROWS:
            break
    objects.close()
    columns.update(dict.fromkeys(hints.expected_columns))
    names = list(columns)
    read = partial(_jsonl_batches, label, opener, enc, limits, names)
    return Plan(label, "jsonl", names, read, enc.reported, bool(enc.bom), None, True)


def _jsonl_batches(
    label: str, opener: Opener, enc: TextEncoding, limits: ReadLimits, columns: list[str]
) -> Iterator[pa.RecordBatch]:
    known = set(columns)
    schema = pa.schema([(c, pa.string()) for c in columns])
    chunk: list[dict[str, str | None]] = []
    for row, line, obj in _objects(label, opener, enc, limits):
        if not known.issuperset(obj):
            unknown = next(k for k in obj if k not in known)
            raise reject(
                label,
                f"line {line}: key {unknown!r} first appears after the first"
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
    label: str, opener: Opener, enc: TextEncoding, limits: ReadLimits
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
                yield row, line, _parse(content, label, row, line)


def _parse(content: str, label: str, row: int, line: int) -> dict[str, str | None]:
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
    for key, value in obj.items():
        if value is None or value.__class__ is str:  # numbers arrive as their JSON text
            continue
        if value is True or value is False:
            obj[key] = "true" if value else "false"
            continue
        raise reject(
            label,
            f"line {line}: key {key!r} holds a nested {type(value).__name__};"
            " only scalar values are accepted",
            column=key,
            **where,
        )
    return obj


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [k for k, _ in pairs]
        raise _JsonProblem(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return obj


def _no_constant(name: str) -> Any:
    raise _JsonProblem(f"{name} is not valid JSON")


# One decoder for every line: json.loads with options builds a new one per call.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_keys, parse_float=str, parse_int=str, parse_constant=_no_constant
)


def plan_parquet(label: str, path: Path) -> Plan:
    """A Parquet file: its own column names and types."""
    try:
        with pq.ParquetFile(path) as pfile:
            columns = list(pfile.schema_arrow.names)
    except (pa.ArrowException, OSError) as exc:
        raise reject(label, f"not a readable Parquet file: {describe(exc)}") from None
    return Plan(label, "parquet", columns, partial(_parquet_batches, label, path))


def _parquet_batches(label: str, path: Path) -> Iterator[pa.RecordBatch]:
    try:
        with pq.ParquetFile(path) as pfile:
            yield from pfile.iter_batches(batch_size=64_000)
    except (pa.ArrowException, OSError) as exc:
        raise reject(label, f"cannot be read as Parquet: {describe(exc)}") from None


def plan_xlsx(label: str, path: Path, hints: ReadHints) -> Plan:
    """An Excel sheet (the first, or the one named in the hints): its header row."""
    with _sheet_rows(label, path, hints.sheet) as rows, _openpyxl_calls(label):
        first = next((r for r in map(_row_text, rows) if any(c is not None for c in r)), None)
    if first is None:
        raise reject(label, "the sheet is empty", row=0)
    while first and first[-1] is None:
        first.pop()
    columns, header = resolve_header([c or "" for c in first], hints, label)
    read = partial(_xlsx_batches, label, path, hints.sheet, columns, header)
    return Plan(label, "xlsx", columns, read, header=header)


@contextmanager
def _sheet_rows(label: str, path: Path, sheet: str | None) -> Iterator[Iterator[tuple[Any, ...]]]:
    import openpyxl

    with _openpyxl_calls(label):
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise reject(label, f"no sheet {sheet!r}; the workbook has {book.sheetnames}")
        if not book.worksheets:
            raise reject(label, "the workbook has no worksheet")
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        ws.reset_dimensions()  # declared dimensions are often wrong; read what is there
        yield ws.iter_rows(values_only=True)
    finally:
        book.close()


def _xlsx_batches(
    label: str, path: Path, sheet: str | None, columns: list[str], header: bool
) -> Iterator[pa.RecordBatch]:
    with _sheet_rows(label, path, sheet) as rows:
        texts = (r for r in map(_row_text, rows) if any(c is not None for c in r))
        if header:
            next(texts, None)
        row = 0
        while True:
            with _openpyxl_calls(label):
                chunk = _take(texts, len(columns), label, row)
            if not chunk:
                return
            row += len(chunk)
            yield pa.RecordBatch.from_arrays(
                [pa.array(list(c), pa.string()) for c in zip(*chunk, strict=True)], names=columns
            )


def _take(
    texts: Iterator[list[str | None]], width: int, label: str, done: int
) -> list[list[str | None]]:
    """The next batch of non-blank rows, padded to the header's width."""
    chunk: list[list[str | None]] = []
    for cells in texts:
        if any(c is not None for c in cells[width:]):
            row = done + len(chunk) + 1
            raise reject(label, f"data row {row} has values beyond the header's columns", row=row)
        chunk.append(cells[:width] + [None] * (width - len(cells)))
        if len(chunk) == BATCH_ROWS:
            break
    return chunk


@contextmanager
def _openpyxl_calls(label: str) -> Iterator[None]:
    """openpyxl's warnings silenced (styles, extensions) and its errors, of any type, rejected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except IngestRejected:
            raise
        except Exception as exc:  # anything from KeyError to XML syntax errors
            raise reject(label, f"not a readable xlsx workbook ({type(exc).__name__})") from None


def _row_text(values: Iterable[Any]) -> list[str | None]:
    return [_cell_text(v) for v in values]


def _cell_text(value: Any) -> str | None:
    """A cell as the text the provider sees: ISO dates, numbers without a spurious '.0'."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        shown = float(f"{value:.15g}")  # Excel keeps 15 significant digits
        return str(int(shown)) if shown.is_integer() and abs(shown) < 2**53 else repr(shown)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)
