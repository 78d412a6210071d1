"""Corpus documents read in streaming batches: JSON Lines, Parquet, `.txt` files, folders, zips.

Every batch is an Arrow record batch of SCHEMA: the text and the per-document metadata of a
provider's drop (id, source URL or system, licence, date, author, consent flag). JSON Lines and
Parquet carry them as fields of that name (the text field is named by the caller); a `.txt` file
is one document whose source is its name (inside the folder or zip). A document without an id
gets a stable one: the SHA-256 of its source and text (hex, the two joined by a NUL).
- A folder is read file by file in name order (hidden files skipped, links refused).
- A zip is read through `readers_zip` (member paths, counts and declared sizes checked before a
  byte is decompressed; size and ratio capped while streaming); nothing is extracted to disk. A
  Parquet member needs random access, so it is read into memory: up to MAX_PARQUET_MEMBER bytes.
- One JSON line, or one `.txt` document, is at most MAX_DOCUMENT_BYTES.
Errors name the file (`archive.zip!member`) and the line, never a value of the data.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TypeAlias

import pyarrow as pa
import pyarrow.parquet as pq

from databourse.readers.decompress import ReadLimits, open_binary, reject
from databourse.readers.parquet import row_range
from databourse.readers.zip import Archive, data_members

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.large_string()),
        ("source", pa.string()),
        ("licence", pa.string()),
        ("date", pa.string()),
        ("author", pa.string()),
        ("consent", pa.bool_()),
    ]
)
METADATA = ("source", "licence", "date", "author")  # kept as text, whatever their type
BATCH = 2048
READ_AHEAD = 64  # records parsed ahead of the batch being filled (Python objects: kept few)
MAX_DOCUMENT_BYTES = 32 << 20
MAX_PARQUET_MEMBER = 256 << 20
KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
KINDS[".txt"] = "txt"
FLAGS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
Row = dict[str, Any]
Source: TypeAlias = Path | IO[bytes] | io.RawIOBase | pa.NativeFile  # a Parquet file to read


def document_id(source: str | None, text: str) -> str:
    """The stable id of a document that came without one."""
    return hashlib.sha256(f"{source or ''}\0{text}".encode()).hexdigest()


def read_documents(
    path: Path, text_field: str = "text", batch_size: int = BATCH, limits: ReadLimits | None = None
) -> Iterator[pa.RecordBatch]:
    """The documents of a file, folder or zip, in record batches of SCHEMA."""
    return _batched(_documents(path, text_field, limits or ReadLimits()), batch_size)


def _batched(documents: Iterator[Row], batch_size: int) -> Iterator[pa.RecordBatch]:
    """Documents in record batches of SCHEMA of `batch_size` (the last: fewer)."""
    rows: list[Row] = []
    for row in documents:
        rows.append(row)
        if len(rows) == batch_size:
            yield pa.RecordBatch.from_pylist(rows, schema=SCHEMA)
            rows = []
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=SCHEMA)


def read_rows(
    source: Source, offset: int, rows: int, text_field: str = "text", batch_size: int = BATCH,
    label: str = "staged documents",
) -> Iterator[pa.RecordBatch]:  # fmt: skip
    """The documents of rows `offset` to `offset + rows` of a Parquet file (a partition of a
    staged corpus), read as `read_documents` reads them, from the row groups that hold them only;
    errors name `label` and the row in the whole file."""
    with open_parquet(source, label) as pfile:
        columns = _columns(pfile, label, text_field)
        ranged = row_range(pfile, offset, rows, columns, READ_AHEAD)
        yield from _batched(
            (
                _row(record, text_field, f"{label}: row {n}", row=n)
                for at, batch in ranged
                for n, record in enumerate(batch.to_pylist(), start=at + 1)
            ),
            batch_size,
        )


def _columns(source: pq.ParquetFile, label: str, field: str) -> list[str]:
    """The columns a document is read from: the text field (checked) and those of SCHEMA held."""
    text_column(source, label, field)
    names = source.schema_arrow.names
    return list(dict.fromkeys(n for n in (field, "id", *METADATA, "consent") if n in names))


def _documents(path: Path, field: str, limits: ReadLimits) -> Iterator[Row]:
    label = str(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if not p.is_dir())
        for file in files:
            name = file.relative_to(path).as_posix()
            if not any(part.startswith(".") for part in Path(name).parts):
                yield from _file(file, str(file), name, field, limits)
    elif path.suffix.lower() == ".zip":
        with Archive(path, label, limits) as archive:
            before = 0
            for info in data_members(archive):
                member = f"{label}!{info.filename}"
                kind = _kind(info.filename, member)
                if kind == "parquet" and info.file_size > MAX_PARQUET_MEMBER:
                    message = f"over {MAX_PARQUET_MEMBER} bytes: send a Parquet file unzipped"
                    raise reject(member, message)
                with archive.member(info, member, before) as stream:
                    yield from _stream(kind, stream, member, info.filename, field)
                    before += stream.out
    elif path.is_file():
        yield from _file(path, label, path.name, field, limits)
    else:
        raise reject(label, "no such file or folder")


def _kind(name: str, label: str) -> str:
    kind = KINDS.get(Path(name).suffix.lower())
    if kind is None:
        raise reject(label, f"not a document file; expected one of {', '.join(KINDS)} or .zip")
    return kind


def _file(path: Path, label: str, name: str, field: str, limits: ReadLimits) -> Iterator[Row]:
    kind = _kind(name, label)
    with open_binary(path, label) as fh:
        if path.stat().st_size > limits.max_file_bytes:
            raise reject(label, f"over the {limits.max_file_bytes} bytes cap of a file")
        yield from _stream(kind, fh, label, name, field)


def _stream(
    kind: str, stream: IO[bytes] | io.RawIOBase, label: str, name: str, field: str
) -> Iterator[Row]:
    """The documents of one file or zip member of `kind` (jsonl, parquet, txt)."""
    if kind == "txt":
        yield _row({"text": _txt(stream, label), "source": name}, "text", label)
        return
    if kind == "jsonl":
        for chunk in json_records(stream, label, field, READ_AHEAD, MAX_DOCUMENT_BYTES):
            for line, record in chunk:
                if record is not None:
                    yield _row(record, field, f"{label}: line {line}", line=line)
        return
    data = stream.read() if isinstance(stream, io.RawIOBase) else None
    source = open_parquet(io.BytesIO(data) if data is not None else stream, label)
    columns = _columns(source, label, field)
    rows = 0
    try:
        for batch in source.iter_batches(batch_size=READ_AHEAD, columns=columns):
            for record in batch.to_pylist():
                rows += 1
                yield _row(record, field, f"{label}: row {rows}", row=rows)
    except pa.ArrowException as exc:
        raise reject(label, f"unreadable after row {rows} ({type(exc).__name__})") from None


def _txt(stream: IO[bytes] | io.RawIOBase, label: str) -> str:
    data = stream.read(MAX_DOCUMENT_BYTES + 1) or b""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise reject(label, f"a document over {MAX_DOCUMENT_BYTES} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise reject(label, f"not UTF-8 (byte {exc.start + 1})", byte_offset=exc.start) from None


def _row(record: Row, field: str, where: str, **context: int) -> Row:
    """A document of SCHEMA from one record; `where` names it in errors (file and line or row)."""
    text = record.get(field)
    meta = {name: None if record.get(name) is None else str(record[name]) for name in METADATA}
    consent = record.get("consent")
    if isinstance(consent, str) and consent.strip().lower() in FLAGS:
        consent = FLAGS[consent.strip().lower()]
    if consent is not None and not isinstance(consent, bool):
        raise reject(where, "field 'consent' is not true or false", field="consent", **context)
    doc_id = record.get("id")
    if doc_id is not None and not isinstance(doc_id, str | int):
        kind = type(doc_id).__name__
        raise reject(where, f"field 'id' is a {kind}, not text", field="id", **context)
    text = text or ""
    return {
        "id": str(doc_id) if doc_id is not None else document_id(meta["source"], text),
        "text": text,
        **meta,
        "consent": consent,
    }


def json_records(
    stream: IO[bytes] | io.RawIOBase,
    label: str,
    field: str,
    batch: int,
    max_line: int | None = None,
) -> Iterator[list[tuple[int, dict[str, Any] | None]]]:
    """JSON Lines in chunks of (line number, object); a blank line's object is None. Each object
    has `field`, holding text or null; a bad line is named by its number."""
    lines = io.BufferedReader(stream) if isinstance(stream, io.RawIOBase) else stream
    chunk: list[tuple[int, dict[str, Any] | None]] = []
    n = 0
    while raw := (lines.readline(max_line + 1) if max_line else lines.readline()):
        n += 1
        if max_line and len(raw) > max_line:
            raise reject(f"{label}: line {n}", f"longer than {max_line} bytes", line=n)
        chunk.append((n, json_record(label, n, raw, field)))
        if len(chunk) == batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"a number out of range ({len(text)} characters)")
    return value


def _unicode(record: Any) -> bool:
    """Every string of the record is Unicode text (an escaped half of a UTF-16 pair is not)."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_record(label: str, n: int, raw: bytes, field: str) -> dict[str, Any] | None:
    """The object on line `n` (None for a blank line), its text field checked."""
    where = f"{label}: line {n}"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise reject(where, f"not UTF-8 (byte {exc.start + 1})", path=label, line=n) from None
    if not line.strip():
        return None
    try:
        record = json.loads(line, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        message = f"not JSON ({exc.msg}, column {exc.colno})"
        raise reject(where, message, path=label, line=n) from None
    except RecursionError:
        raise reject(where, "nested too deeply", path=label, line=n) from None
    except ValueError as exc:  # NaN, Infinity, or a number no float holds (1e400)
        raise reject(where, str(exc), path=label, line=n) from None
    if "\\u" in line and not _unicode(record):
        raise reject(where, "a lone UTF-16 surrogate escape (\\ud800-\\udfff)", path=label, line=n)
    if not isinstance(record, dict):
        raise reject(where, "not a JSON object", path=label, line=n)
    if field not in record:
        raise reject(where, f"no field {field!r}", path=label, line=n)
    if record[field] is not None and not isinstance(record[field], str):
        kind = type(record[field]).__name__
        raise reject(where, f"field {field!r} is a {kind}, not text", path=label, line=n)
    return record


def open_parquet(source: Source, label: str) -> pq.ParquetFile:
    """A Parquet file opened for reading in batches, or an error naming it."""
    try:
        return pq.ParquetFile(source)
    except (OSError, pa.ArrowException) as exc:
        raise reject(label, f"not a Parquet file ({type(exc).__name__})", path=label) from None


def text_column(source: pq.ParquetFile, label: str, field: str) -> int:
    """The index of the text column `field` (string, large string or dictionary of them)."""
    schema = source.schema_arrow
    if field not in schema.names:
        raise reject(label, f"no column {field!r}", path=label, column=field)
    kind = schema.field(field).type
    value = kind.value_type if pa.types.is_dictionary(kind) else kind
    if not (pa.types.is_string(value) or pa.types.is_large_string(value)):
        raise reject(label, f"column {field!r} is {kind}, not text", path=label, column=field)
    return schema.get_field_index(field)
