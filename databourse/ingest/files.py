"""Ingest: a provider file into the raw zone byte for byte, then typed Parquet into staging.

The ingest id is the first 16 hex digits of the file's sha256, so identical bytes are recognized
and stored once. The file is read by `databourse.readers.stream` (format, compression, encoding and
CSV dialect detected), matched to its contract by `databourse.ingest.contract` (drift policy, types,
layouts) and checked for repeated primary keys, all in record batches: memory does not grow with
the file. `_ingest.json` is written last: an ingest without it never happened. A file that cannot
be read or breaks its contract is copied to quarantine with `_reason.json`; raw keeps the original.
A symbolic link is refused before a byte is read (files are opened with O_NOFOLLOW). The source
is opened once and copied privately as it is hashed (`held_source`): raw/ and the reader get
those bytes only, whatever takes the file's name later; a file replaced or rewritten while it is
ingested is refused (before anything is stored when it happens while it is read).

The record is `ingest_records`, the conversion `ingest_staging`, the quarantine `quarantine`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from databourse.config import DatasetSpec, IngestLimits
from databourse.errors import IngestRejected, ObjectExists
from databourse.ingest.held_source import HeldSource, hold, identity
from databourse.ingest.landing_bounds import SourceBounds
from databourse.ingest.quarantine import quarantine
from databourse.ingest.records import IngestResult, load_ingest, verify_raw, verify_staged
from databourse.ingest.staging import Progress, convert
from databourse.readers.decompress import open_binary, regular_file
from databourse.storage import zones
from databourse.storage.store import ObjectStore, put_file_once, s3_client

log = logging.getLogger(__name__)


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
        read = convert(store, held.path, dataset, staged, name, caps, progress)
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
