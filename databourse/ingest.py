"""Ingest: a provider file into the raw zone byte for byte, then typed Parquet into staging.

The ingest id is the first 16 hex digits of the file's sha256, so identical bytes are recognized
and stored once. The file is read by `databourse.readers` (format, compression, encoding and
CSV dialect detected), matched to its contract by `databourse.contract` (drift policy, types,
layouts) and checked for repeated primary keys, all in record batches: memory does not grow with
the file. `_ingest.json` is written last: an ingest without it never happened. A file that cannot
be read or breaks its contract is copied to quarantine with `_reason.json`; raw keeps the original.
A symbolic link is refused before a byte is read (files are opened with O_NOFOLLOW). The source
is opened once and copied privately as it is hashed (`held_source`): raw/ and the reader get
those bytes only, whatever takes the file's name later; a file replaced or rewritten while it is
ingested is refused (before anything is stored when it happens while it is read).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from databourse import zones
from databourse.config import DatasetSpec, IngestLimits
from databourse.contract import ContractPlan, coerce_batch, contract_schema, plan_columns
from databourse.errors import (
    GateFailed,
    IngestRejected,
    ObjectChanged,
    ObjectExists,
    StorageError,
)
from databourse.held_source import HeldSource, hold, identity
from databourse.landing_bounds import SourceBounds
from databourse.primary_key import KeyIndex
from databourse.readers import ReadHints, ReadLimits, SourceReader, open_source
from databourse.readers_bytes import open_binary, regular_file
from databourse.staged_integrity import check_staged_object, file_digest
from databourse.storage import ObjectStore, put_file_once, s3_client

log = logging.getLogger(__name__)
# Rows per row group of the staged Parquet. The reader hands over ~25k-row blocks (2 MiB of CSV);
# written as they come, every later stage paid for 80 row groups per million rows (page headers,
# statistics, a read call each). Gathered, they cost one row group of memory (~30 MB).
STAGED_ROW_GROUP_ROWS = 262_144

Progress = Callable[[int, float | None], None]  # rows done, share of the input read (if known)


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
    compression: str = "none"
    bom: bool = False
    delimiter: str | None = None
    header: bool = True
    members: list[str] = field(default_factory=list)
    member_encodings: list[str | None] = field(default_factory=list)
    drift: dict[str, Any] = field(default_factory=dict)
    expected_rows: int | None = None  # from the provider's sidecar manifest, when there is one
    original_name: str | None = None  # the name as dropped, when the key needed a safer one
    sheet: str | None = None  # the xlsx sheet read
    staged_sha256: str | None = None  # of the staged Parquet as written (None: older ingests)
    staged_size: int | None = None
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("duplicate")
        return data


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in blocks (IngestRejected if it is a symbolic link)."""
    digest = hashlib.sha256()
    with open_binary(path, path.name) as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def ingest_file(
    store: ObjectStore,
    provider: str,
    dataset_id: str,
    dataset: DatasetSpec,
    source: Path,
    source_name: str | None = None,
    *,
    limits: IngestLimits | None = None,
    expected_rows: int | None = None,
    expected_sha256: str | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Store `source` in raw, convert it to typed Parquet in staging; quarantine if unreadable."""
    given = source_name or source.name
    try:
        name = zones.file_name(given)
    except ValueError:
        raise IngestRejected(
            f"{given!r}: not a usable file name (a path, '..', a hidden or control character);"
            " rename the file",
            file=repr(given),
        ) from None
    with hold(source, name) as held:  # one descriptor: what is hashed is what is stored and read
        return _ingest_held(
            store,
            provider,
            dataset_id,
            dataset,
            source,
            held,
            given,
            limits=limits,
            expected_rows=expected_rows,
            expected_sha256=expected_sha256,
            progress=progress,
        )


def _ingest_held(
    store: ObjectStore,
    provider: str,
    dataset_id: str,
    dataset: DatasetSpec,
    source: Path,
    held: HeldSource,
    given: str,
    *,
    limits: IngestLimits | None,
    expected_rows: int | None,
    expected_sha256: str | None,
    progress: Progress | None,
) -> IngestResult:
    """`ingest_file` on the private copy of the source (`held`); `source` is only re-checked."""
    name, sha, before = held.path.name, held.sha256, held.opened
    if expected_sha256 is not None and sha != expected_sha256.lower():
        raise IngestRejected(
            f"{name}: sha256 {sha[:16]} differs from {expected_sha256.lower()[:16]} that discovery"
            " hashed: the file was replaced after discovery; it is not ingested",
            file=name,
            sha256=sha,
            expected_sha256=expected_sha256.lower(),
        )
    ingest_id = sha[:16]
    raw = zones.raw_prefix(provider, dataset_id, ingest_id)
    if (done := store.head(f"{raw}/_ingest.json")) is not None and done.size > 0:
        record = load_ingest(store, provider, dataset_id, ingest_id)
        verify_raw(store, record)
        verify_staged(store, record, sha)
        log.info(
            "ingest %s of %s/%s already done: identical bytes", ingest_id, provider, dataset_id
        )
        return IngestResult(**{**record.to_json(), "duplicate": True})
    raw_key = _raw_key(store, raw, name, held.size)
    put_file_once(store, raw_key, held.path)  # same key, same sha256: same bytes
    staged = zones.staging_key(provider, dataset_id, ingest_id)
    caps = limits or dataset.limits or IngestLimits()
    try:
        read = _convert(store, held.path, dataset, staged, name, caps, progress)
        if expected_rows is not None and read["rows"] != expected_rows:
            raise IngestRejected(
                f"{name}: {read['rows']} data rows, the provider's manifest says {expected_rows}",
                file=name,
                row=min(read["rows"], expected_rows) + 1,
            )
        _check_unchanged(source, name, before)
    except IngestRejected as exc:
        raise quarantine(store, provider, dataset_id, ingest_id, raw_key, exc, sha) from None
    result = IngestResult(
        provider=provider,
        dataset=dataset_id,
        ingest_id=ingest_id,
        sha256=sha,
        size=held.size,
        source_name=name,
        raw_key=raw_key,
        staged_key=staged,
        ingested_at=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        expected_rows=expected_rows,
        original_name=given if given != name else None,
        **read,
    )
    try:
        store.put_bytes(
            f"{raw}/_ingest.json", json.dumps(result.to_json(), indent=2).encode(), if_absent=True
        )
    except ObjectExists:
        # Either our own write landed and its retry found it (same record, to the microsecond), or
        # a concurrent run recorded the same bytes first: its record stands, and only that run
        # reports the ingest as new (and audits it).
        where = (ingest_id, provider, dataset_id)
        record = load_ingest(store, provider, dataset_id, ingest_id)
        if record.to_json() != result.to_json():
            log.info("ingest %s of %s/%s: a concurrent run recorded it", *where)
            return IngestResult(**{**record.to_json(), "duplicate": True})
    log.info(
        "ingested %s/%s %s: %d rows",
        provider,
        dataset_id,
        ingest_id,
        result.rows,
        extra={"file": name, "provider": provider, "dataset": dataset_id, "ingest_id": ingest_id},
    )
    return result


def _check_unchanged(source: Path, name: str, before: os.stat_result) -> None:
    """IngestRejected if the source's name now holds another file, or it was rewritten, since it
    was opened (its bytes as opened are the ones stored: this refuses an unfinished upload)."""
    if identity(regular_file(source, name)) != identity(before):
        raise IngestRejected(
            f"{name}: the file changed while it was being ingested (replaced or rewritten);"
            " ingest it again once its upload is complete",
            file=name,
        )


def _raw_key(store: ObjectStore, raw: str, name: str, size: int) -> str:
    """Where the bytes go: beside `_ingest.json`, or the object an interrupted run already left.

    Raw writes are atomic and the folder is named by the content hash, so an object found there
    holds these bytes, possibly under the name of an earlier upload: it is reused, not copied.
    """
    left = [
        o.key
        for o in store.list(f"{raw}/")
        if o.size == size and not o.key.endswith("/_ingest.json")
    ]
    return left[0] if left and f"{raw}/{name}" not in left else f"{raw}/{name}"


def verify_raw(store: ObjectStore, record: IngestResult) -> None:
    """Re-read a raw object and compare its sha256 with `_ingest.json` (StorageError if not)."""
    digest = hashlib.sha256()
    with store.open(record.raw_key) as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != record.sha256:
        raise StorageError(
            f"{store.uri(record.raw_key)}: raw object corrupted: sha256"
            f" {digest.hexdigest()[:16]}... differs from {record.sha256[:16]}... (at ingest)",
            key=record.raw_key,
            expected=record.sha256,
            found=digest.hexdigest(),
        )


def verify_staged(store: ObjectStore, record: IngestResult, sha256: str) -> None:
    """A duplicate's record and staged Parquet are those of these bytes (ObjectChanged if not)."""
    key = f"{zones.raw_prefix(record.provider, record.dataset, record.ingest_id)}/_ingest.json"
    if record.sha256 != sha256:
        raise ObjectChanged(
            f"{store.uri(key)}: records sha256 {record.sha256[:16]}..., the file's is"
            f" {sha256[:16]}...: the raw record was rewritten; investigate before ingesting",
            key=key,
            expected=sha256,
            found=record.sha256,
        )
    check_staged_object(store, record.staged_key, record.staged_sha256, record.staged_size)


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
        **{k: ctx[k] for k in _REASON_EXTRAS if ctx.get(k) is not None},
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


_REASON_EXTRAS = (
    *("first_row", "byte_offset", "line", "member", "drift", "expected", "found"),
    *("sheet", "cell"),
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


@contextmanager
def fetched_source(
    source: str, bounds: SourceBounds, endpoint_url: str | None = None, region: str = "us-east-1"
) -> Iterator[Path]:
    """A local path for a source (a local path or s3://bucket/key) that `bounds` lets be read."""
    bounds.check(source)  # never the key folder, state/, the store's other zones, /proc, ...
    if not source.startswith("s3://"):
        path = Path(os.path.abspath(Path(source).expanduser()))
        regular_file(path, source)  # a link of any kind is refused here, not followed
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
