"""Reader record layer: JSON Lines files as Arrow batches (Parquet and xlsx: their own modules).

JSON Lines values become text the way a person reading the file would write them (JSON numbers as
their JSON text). Typing against the contract happens later, in one place for every format.
"""

from __future__ import annotations

import io
import json
from collections.abc import Generator, Iterator, Sequence
from functools import partial
from itertools import count
from typing import Any

import pyarrow as pa

from databourse.readers.decompress import ReadLimits, column_label, reject
from databourse.readers.text import (
    Opener,
    Plan,
    ReadHints,
    TextEncoding,
    decode_rejection,
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
