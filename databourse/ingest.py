"""Ingest: a provider file into the raw zone byte for byte, then typed Parquet into staging.

The ingest id is the first 16 hex digits of the file's sha256, so identical bytes are recognized
and stored once. `_ingest.json` is written last: an ingest without it never happened. A file that
cannot be read or breaks its contract is copied to quarantine with `_reason.json`.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from databourse import zones
from databourse.config import ColumnSpec, DatasetSpec
from databourse.errors import GateFailed, IngestRejected, ObjectExists
from databourse.storage import ObjectStore, put_file_once, s3_client

log = logging.getLogger(__name__)

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}
FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
BATCH_BYTES = 8 << 20


@dataclass(frozen=True)
class IngestResult:
    """What `_ingest.json` records about one ingested file."""

    provider: str
    dataset: str
    ingest_id: str
    sha256: str
    size: int
    source_name: str
    format: str
    encoding: str
    rows: int
    raw_key: str
    staged_key: str
    schema: list[dict[str, str]]
    ingested_at: str
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("duplicate")
        return data


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def contract_schema(dataset: DatasetSpec) -> pa.Schema:
    """The Arrow schema a dataset's contract asks for."""
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type], c.nullable) for c in dataset.columns])


def ingest_file(
    store: ObjectStore,
    provider: str,
    dataset_id: str,
    dataset: DatasetSpec,
    source: Path,
    source_name: str | None = None,
) -> IngestResult:
    """Store `source` in raw, convert it to typed Parquet in staging; quarantine if unreadable."""
    name = zones.safe_part(source_name or source.name)
    fmt = FORMATS.get(Path(name).suffix.lower())
    sha = sha256_file(source)
    ingest_id = sha[:16]
    raw = zones.raw_prefix(provider, dataset_id, ingest_id)
    if (done := store.head(f"{raw}/_ingest.json")) is not None and done.size > 0:
        record = json.loads(store.get_bytes(f"{raw}/_ingest.json"))
        log.info(
            "ingest %s of %s/%s already done: identical bytes", ingest_id, provider, dataset_id
        )
        return IngestResult(**record, duplicate=True)
    put_file_once(store, f"{raw}/{name}", source)  # same key, same sha256: same bytes
    staged = zones.staging_key(provider, dataset_id, ingest_id)
    context = {"file": name, "provider": provider, "dataset": dataset_id, "ingest_id": ingest_id}
    try:
        if fmt is None:
            raise IngestRejected(
                f"{name}: unsupported file type; expected one of {sorted(FORMATS)}"
            )
        rows = _convert(store, source, fmt, dataset, staged, name)
    except IngestRejected as exc:
        raise quarantine(
            store, provider, dataset_id, ingest_id, f"{raw}/{name}", exc, sha
        ) from None
    result = IngestResult(
        provider=provider,
        dataset=dataset_id,
        ingest_id=ingest_id,
        sha256=sha,
        size=source.stat().st_size,
        source_name=name,
        format=fmt or "",
        encoding="utf-8",
        rows=rows,
        raw_key=f"{raw}/{name}",
        staged_key=staged,
        schema=[{"name": c.name, "type": c.type} for c in dataset.columns],
        ingested_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    store.put_bytes(f"{raw}/_ingest.json", json.dumps(result.to_json(), indent=2).encode())
    log.info("ingested %s/%s %s: %d rows", provider, dataset_id, ingest_id, rows, extra=context)
    return result


def quarantine(
    store: ObjectStore,
    provider: str,
    dataset_id: str,
    ingest_id: str,
    original_key: str,
    error: GateFailed,
    sha256: str,
    stage: str = "ingest",
) -> GateFailed:
    """Copy the original to quarantine with `_reason.json`; return the error to raise."""
    prefix = zones.quarantine_prefix(provider, dataset_id, ingest_id)
    name = original_key.rsplit("/", 1)[-1]
    try:
        store.copy(original_key, f"{prefix}/{name}", if_absent=True)
    except ObjectExists:
        pass
    ctx = getattr(error, "context", {})
    reason = {
        "file": name,
        "provider": provider,
        "dataset": dataset_id,
        "ingest_id": ingest_id,
        "sha256": sha256,
        "stage": stage,
        "error": str(error),
        "error_type": type(error).__name__,
        "column": ctx.get("column"),
        "row": ctx.get("row"),
        "original": store.uri(original_key),
        "quarantined_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    store.put_bytes(f"{prefix}/_reason.json", json.dumps(reason, indent=2, default=str).encode())
    log.warning(
        "quarantined %s/%s %s at stage %s: %s",
        provider,
        dataset_id,
        ingest_id,
        stage,
        type(error).__name__,
    )
    return type(error)(
        f"{_named(str(error), name)} (quarantined at {store.uri(prefix)}/)",
        **{
            **ctx,
            "quarantine_uri": store.uri(prefix),
            "file": name,
            "column": reason["column"],
            "row": reason["row"],
            "stage": stage,
        },
    )


def _named(message: str, name: str) -> str:
    return message if message.startswith(f"{name}:") else f"{name}: {message}"


def load_ingest(store: ObjectStore, provider: str, dataset_id: str, ingest_id: str) -> IngestResult:
    """The record of a completed ingest (its `_ingest.json`)."""
    key = f"{zones.raw_prefix(provider, dataset_id, ingest_id)}/_ingest.json"
    return IngestResult(**json.loads(store.get_bytes(key)))


def quarantine_ingest(
    store: ObjectStore, record: IngestResult, error: GateFailed, stage: str
) -> GateFailed:
    """Quarantine an ingested file that failed a later gate (quality, personal data)."""
    return quarantine(
        store,
        record.provider,
        record.dataset,
        record.ingest_id,
        record.raw_key,
        error,
        record.sha256,
        stage,
    )


def _convert(
    store: ObjectStore, source: Path, fmt: str, dataset: DatasetSpec, staged_key: str, name: str
) -> int:
    """Stream the source through the contract into a local Parquet file, then upload it."""
    schema = contract_schema(dataset)
    rows = 0
    with tempfile.TemporaryDirectory(prefix="databourse-ingest-") as tmp:
        out = Path(tmp) / "data.parquet"
        with pq.ParquetWriter(out, schema, compression="zstd") as writer:
            for batch in _typed_batches(source, fmt, dataset, name):
                writer.write_batch(batch)
                rows += batch.num_rows
        if rows == 0:
            raise IngestRejected(f"{name}: no data rows", file=name, row=0)
        store.put_file(staged_key, out)
    return rows


def _typed_batches(
    source: Path, fmt: str, dataset: DatasetSpec, name: str
) -> Iterator[pa.RecordBatch]:
    """The source's record batches, coerced to the contract (rows counted for error messages)."""
    rows = 0
    for batch in _batches(source, fmt, dataset, name):
        yield _coerce(batch, dataset, name, rows)
        rows += batch.num_rows


def _batches(source: Path, fmt: str, dataset: DatasetSpec, name: str) -> Iterator[pa.RecordBatch]:
    expected = [c.name for c in dataset.columns]
    try:
        if fmt == "parquet":
            pfile = pq.ParquetFile(source)
            _check_header(pfile.schema_arrow.names, expected, name)
            yield from pfile.iter_batches(batch_size=64_000, columns=expected)
            return
        if source.stat().st_size == 0:
            raise IngestRejected(f"{name}: empty file", file=name, row=0)
        delimiter = "\t" if source.suffix.lower() == ".tsv" else ","
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(block_size=BATCH_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in expected},
                strings_can_be_null=True,
                include_columns=None,
            ),
        )
        _check_header(reader.schema.names, expected, name)
        for batch in reader:
            yield batch.select(expected)
    except IngestRejected:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, UnicodeDecodeError) as exc:
        row = _ragged_row(source, len(expected)) if fmt == "csv" else None
        where = f" at data row {row}" if row else ""
        raise IngestRejected(
            f"{name}: cannot be read as {fmt}{where}: {_describe(exc)}", file=name, row=row
        ) from None


def _describe(exc: Exception) -> str:
    """An Arrow error without the offending text: Arrow quotes whole rows (personal data)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if m := re.match(r"(CSV parse error: Expected \d+ columns, got \d+)", text):
        return m.group(1)
    return ":".join(text.split(":")[:2])[:160]


def _ragged_row(source: Path, width: int) -> int | None:
    """The first data row whose field count differs from the header's (error path only)."""
    try:
        with source.open(newline="", encoding="utf-8", errors="replace") as fh:
            for number, fields in enumerate(csv.reader(fh)):
                if number and len(fields) != width:
                    return number
    except (csv.Error, OSError):
        return None
    return None


def _check_header(found: list[str], expected: list[str], name: str) -> None:
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    if missing:
        raise IngestRejected(
            f"{name}: column {missing[0]!r} required by the contract is missing"
            f" (missing: {missing}; found: {found})",
            file=name,
            column=missing[0],
        )
    if extra:
        raise IngestRejected(
            f"{name}: column {extra[0]!r} is not in the contract (schema drift;"
            f" unexpected: {extra})",
            file=name,
            column=extra[0],
        )


def _coerce(batch: pa.RecordBatch, dataset: DatasetSpec, name: str, offset: int) -> pa.RecordBatch:
    arrays = [
        _coerce_column(batch.column(i), col, name, offset) for i, col in enumerate(dataset.columns)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=contract_schema(dataset))


def _coerce_column(values: pa.Array, col: ColumnSpec, name: str, offset: int) -> pa.Array:
    target = ARROW_TYPES[col.type]
    if values.type == target:
        return values
    source = pc.utf8_trim_whitespace(values) if pa.types.is_string(values.type) else values
    try:
        return pc.cast(source, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        row = _first_bad_row(source, target)
        where = f"data row {offset + row + 1}" if row is not None else "some row"
        raise IngestRejected(
            f"{name}: column {col.name!r}, {where}: value does not convert to {col.type}",
            file=name,
            column=col.name,
            row=None if row is None else offset + row + 1,
        ) from None


def _first_bad_row(values: pa.Array, target: pa.DataType) -> int | None:
    """Index of the first value that does not cast (only on the error path)."""
    for i in range(len(values)):
        try:
            pc.cast(values.slice(i, 1), target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return i
    return None


@contextmanager
def fetched_source(
    source: str, endpoint_url: str | None = None, region: str = "us-east-1"
) -> Iterator[Path]:
    """A local path for a source given as a local path or an s3://bucket/key URI."""
    if not source.startswith("s3://"):
        path = Path(source).expanduser()
        if not path.is_file():
            raise IngestRejected(f"{source}: no such file", file=source)
        yield path
        return
    bucket, _, key = source.removeprefix("s3://").partition("/")
    with tempfile.TemporaryDirectory(prefix="databourse-fetch-") as tmp:
        path = Path(tmp) / zones.safe_part(key.rsplit("/", 1)[-1])
        try:
            s3_client(endpoint_url, region).download_file(bucket, key, str(path))
        except Exception as exc:  # botocore raises many types; report the source, not the body
            raise IngestRejected(
                f"{source}: cannot be downloaded ({type(exc).__name__})", file=source
            ) from None
        yield path


def read_contract_table(source: Path, dataset: DatasetSpec) -> pa.Table:
    """A CSV/Parquet file typed by a dataset's contract (IngestRejected if it breaks it)."""
    name = source.name
    fmt = FORMATS.get(source.suffix.lower())
    if fmt is None:
        raise IngestRejected(f"{name}: unsupported file type; expected one of {sorted(FORMATS)}")
    batches = list(_typed_batches(source, fmt, dataset, name))
    return pa.Table.from_batches(batches, schema=contract_schema(dataset))
