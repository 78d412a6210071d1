"""A source read through its dataset's contract into typed Parquet for the staging zone."""

from __future__ import annotations

import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from databourse.config import DatasetSpec, IngestLimits
from databourse.errors import IngestRejected
from databourse.ingest.contract import ContractPlan, coerce_batch, contract_schema, plan_columns
from databourse.ingest.staged_integrity import file_digest
from databourse.quality.primary_key import KeyIndex
from databourse.readers.stream import ReadHints, ReadLimits, SourceReader, open_source
from databourse.storage.store import ObjectStore

# Rows per row group of the staged Parquet. The reader hands over ~25k-row blocks (2 MiB of CSV);
# written as they come, every later stage paid for 80 row groups per million rows (page headers,
# statistics, a read call each). Gathered, they cost one row group of memory (~30 MB).
STAGED_ROW_GROUP_ROWS = 262_144

Progress = Callable[[int, float | None], None]  # rows done, share of the input read (if known)


def convert(
    store: ObjectStore,
    source: Path,
    dataset: DatasetSpec,
    staged_key: str,
    name: str,
    limits: IngestLimits,
    progress: Progress | None,
) -> dict[str, Any]:
    """Stream the source through the contract into a local Parquet file, then upload it."""
    with tempfile.TemporaryDirectory(prefix="databourse-ingest-") as tmp:
        out = Path(tmp) / "data.parquet"
        with open_source(source, name, _hints(dataset), _read_limits(limits)) as reader:
            plan, rows = _write_staged(reader, dataset, name, out, progress)
            info = reader.info
        staged_sha256, staged_size = file_digest(out)
        store.put_file(staged_key, out)
    return {
        "staged_sha256": staged_sha256,
        "staged_size": staged_size,
        "format": info.format,
        "compression": info.compression,
        "encoding": info.encoding or "",
        "bom": info.bom,
        "delimiter": info.delimiter,
        "header": info.header,
        "members": list(info.members),
        "member_encodings": list(info.member_encodings),
        "sheet": info.sheet,
        "rows": rows,
        "schema": [{"name": f.name, "type": _type_name(f.type)} for f in plan.schema],
        "drift": plan.drift.to_json() if plan.drift or plan.drift.renamed else {},
    }


def _write_staged(
    reader: SourceReader, dataset: DatasetSpec, name: str, out: Path, progress: Progress | None
) -> tuple[ContractPlan, int]:
    batches = reader.batches()
    first = next(batches, None)
    found = (
        first.schema if first is not None else pa.schema([(c, pa.string()) for c in reader.columns])
    )
    plan = plan_columns(found, dataset, name)
    if first is None:
        raise IngestRejected(f"{name}: no data rows (header only or empty)", file=name, row=0)
    rows = 0
    with KeyIndex(dataset.primary_key, name) as keys:
        with _BackgroundWriter(out, plan.schema) as writer:
            for batch in _chain(first, batches):
                typed = coerce_batch(batch, plan, name, rows)
                if dataset.primary_key:
                    keys.add(typed, rows)
                writer.write(typed)
                rows += batch.num_rows
                if progress is not None:
                    progress(rows, getattr(reader, "fraction_read", None))
        if dataset.primary_key:
            keys.finish(out)
    return plan, rows


class _BackgroundWriter:
    """A ParquetWriter fed through a short queue: encoding and compression (which release the
    GIL) overlap with reading and converting the next batches. Memory: at most 4 batches queued
    and one row group (`STAGED_ROW_GROUP_ROWS`) gathered."""

    def __init__(self, out: Path, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(out, schema, compression="zstd")
        self._schema = schema
        self._queue: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="staged-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pending: list[pa.RecordBatch] = []
        held = 0
        while (batch := self._queue.get()) is not None:
            if self._error is None:
                pending.append(batch)
                held += batch.num_rows
                if held >= STAGED_ROW_GROUP_ROWS:
                    self._flush(pending, held)
                    pending, held = [], 0
        if pending and self._error is None:
            self._flush(pending, held)

    def _flush(self, batches: list[pa.RecordBatch], rows: int) -> None:
        """The gathered batches as one row group."""
        try:
            table = pa.Table.from_batches(batches, schema=self._schema)
            self._writer.write_table(table, row_group_size=max(rows, 1))
        except BaseException as exc:  # re-raised in the caller's thread
            self._error = exc

    def write(self, batch: pa.RecordBatch) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(batch)

    def __enter__(self) -> _BackgroundWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()
        self._writer.close()
        if self._error is not None and exc[0] is None:
            raise self._error


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


def _hints(dataset: DatasetSpec) -> ReadHints:
    return ReadHints(
        expected_columns=tuple(c.name for c in dataset.columns),
        encoding=dataset.read.encoding,
        delimiter=dataset.read.delimiter,
        header=dataset.read.header,
        sheet=dataset.read.sheet,
        allow_hidden_sheets=dataset.read.allow_hidden_sheets,
    )


def _read_limits(limits: IngestLimits) -> ReadLimits:
    return ReadLimits(
        max_file_bytes=limits.max_file_bytes,
        max_uncompressed_bytes=limits.max_uncompressed_bytes,
        max_compression_ratio=limits.max_compression_ratio,
        max_record_bytes=limits.max_row_bytes,
        max_archive_members=limits.max_archive_members,
        max_header_bytes=limits.max_header_bytes,
    )


def _type_name(dtype: pa.DataType) -> str:
    names = {"large_string": "string", "double": "float64", "date32[day]": "date"}
    text = str(dtype)
    return "timestamp" if text.startswith("timestamp") else names.get(text, text)


def read_contract_table(source: Path, dataset: DatasetSpec) -> pa.Table:
    """Any readable drop typed by a dataset's contract (IngestRejected if it breaks it)."""
    name = source.name
    with open_source(source, name, _hints(dataset), _read_limits(IngestLimits())) as reader:
        batches = list(reader.batches())
    if not batches:
        return contract_schema(dataset).empty_table()
    plan = plan_columns(batches[0].schema, dataset, name)
    typed, rows = [], 0
    for batch in batches:
        typed.append(coerce_batch(batch, plan, name, rows))
        rows += batch.num_rows
    return pa.Table.from_batches(typed, schema=plan.schema)
