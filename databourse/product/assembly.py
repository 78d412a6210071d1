"""The product's files cut from the partitions' segments (pass 3), checked, and their identity.

aggregate_segments  an aggregate product's cells from the published records (one segment)
plan_files          the files by today's rule: per hive folder (sorted), `max_rows_per_file`
                    records each, in row order across the partitions' segments
write_file          pass 3: one file, a row group of `row_group_rows` at a time, each from
                    contiguous arrays: the bytes `package.write_parquet` writes for the whole
                    table, however it was partitioned
count_individuals   distinct values of personal columns over the partitions, merged in rounds
                    of hash buckets so that memory stays bounded
finish              the written files verified (streaming), the schema, content hash, figures
build               every pass in one process, in order: what the Prefect flow maps
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databourse.config import ProductSpec
from databourse.errors import PrivacyModelFailed
from databourse.pii.dirty_columns import DIRTY_THRESHOLD
from databourse.pii.screening import EMBEDDED_MAX_SHARE
from databourse.privacy.aggregate import aggregate
from databourse.privacy.hierarchy import Hierarchy
from databourse.privacy.pseudonyms import Keys
from databourse.product import partitions as parts
from databourse.product.package import FileEntry, content_hash, schema_of, transfer_facts
from databourse.product.productize import (
    personal_figures,
    privacy_decision,
    remaining_columns,
    rescan_written,
)

log = logging.getLogger(__name__)

DISTINCT_PER_ROUND = 4_000_000  # distinct values held at once when counting individuals
CELLS = "cells.arrow"  # an aggregate product's cells, whole (its schema is the product's)


@dataclass(frozen=True)
class Built:
    """A product's files (relative to their folder) and everything the manifest says of them."""

    files: list[FileEntry]
    schema: list[dict[str, Any]]
    rows: int
    privacy: dict[str, Any]
    personal_data: dict[str, Any]
    content_hash: str

    def to_json(self) -> dict[str, Any]:
        """The build as a JSON-ready dict."""
        return {**asdict(self), "files": [asdict(f) for f in self.files]}


def _segments(work: Path, segment: dict[str, Any]) -> Iterator[pa.RecordBatch]:
    with pa.OSFile(str(work / segment["segment"])) as f:
        reader = pa.ipc.open_file(f)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)


def aggregate_segments(
    work: Path,
    written: list[dict[str, Any]],
    records: pa.Schema,
    product: ProductSpec,
    key: Keys | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An aggregate product's cells, cut into hive folders, as segments; and the report.

    The cells need every published record of the dimensions and measures at once (percentiles
    are not mergeable): memory grows with the records times those columns only."""
    spec = product.aggregate
    if spec is None:
        raise ValueError(f"product {product.id!r} has no aggregate section")
    columns = [*spec.dimensions, *(m.column for m in spec.measures)]
    tables = [
        pa.Table.from_batches([b]).select(columns)
        for out in written
        for s in out["segments"]
        for b in _segments(work, s)
    ]
    whole = pa.concat_tables(tables) if tables else records.empty_table().select(columns)
    noise_key = key if isinstance(key, bytes) else None
    cells, report = aggregate(whole.combine_chunks(), spec, noise_key)
    with pa.ipc.new_file(work / CELLS, cells.schema) as writer:
        writer.write_table(cells)
    segments = parts.Segments(work, "cells")
    for folder, order, table in parts.hive_folders(cells, product.packaging.partition_by):
        segments.write(folder, order, table)
    out = {"index": -1, "rows": cells.num_rows, "segments": segments.close(), "distinct": {}}
    return out, report.to_json()


def plan_files(
    written: list[dict[str, Any]], max_rows_per_file: int, split: str | None
) -> list[dict[str, Any]]:
    """The product's files: for each hive folder (in order), slices of segments in row order.

    Without records, one empty file when not split into folders (none when split)."""
    folders: dict[str, dict[str, Any]] = {}
    for out in sorted(written, key=lambda o: o["index"]):
        for seg in out["segments"]:
            entry = folders.setdefault(seg["folder"], {"order": seg["order"], "segments": []})
            entry["segments"].append(seg)
    if not folders and split is None:
        folders[""] = {"order": [False, ""], "segments": []}
    files = []
    for folder, entry in sorted(folders.items(), key=lambda kv: tuple(kv[1]["order"])):
        total = sum(s["rows"] for s in entry["segments"])
        for n, start in enumerate(range(0, max(total, 1), max_rows_per_file)):
            files.append(
                {
                    "path": f"{folder}part-{n:05d}.parquet",
                    "slices": _slices(
                        entry["segments"], start, min(max_rows_per_file, total - start)
                    ),
                }
            )
    return files


def _slices(segments: list[dict[str, Any]], start: int, rows: int) -> list[dict[str, Any]]:
    """(segment, batch, first row, rows) covering records [start, start + rows) of the folder."""
    out, at = [], 0
    for seg in segments:
        for batch, size in enumerate(seg["batches"]):
            lo, hi = max(start, at), min(start + rows, at + size)
            if lo < hi:
                out.append(
                    {"segment": seg["segment"], "batch": batch, "offset": lo - at, "rows": hi - lo}
                )
            at += size
    return out


def _records(work: Path, slices: list[dict[str, Any]]) -> Iterator[pa.RecordBatch]:
    """The records of a file's slices, in order, one batch read at a time."""
    for s in slices:
        with pa.OSFile(str(work / s["segment"])) as f:
            batch = pa.ipc.open_file(f).get_batch(s["batch"])
        yield batch.slice(s["offset"], s["rows"])


def write_file(
    work: Path, plan: dict[str, Any], schema: pa.Schema, row_group_rows: int, out_dir: Path
) -> FileEntry:
    """Pass 3: one product file (zstd, statistics), written row group by row group."""
    path = out_dir / plan["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, schema, compression="zstd", write_statistics=True) as writer:
        pending: list[pa.RecordBatch] = []
        held = 0
        for batch in _records(work, plan["slices"]):
            while batch.num_rows:
                take = min(batch.num_rows, row_group_rows - held)
                pending.append(batch.slice(0, take))
                held += take
                batch = batch.slice(take)
                if held == row_group_rows:
                    _write_group(writer, schema, pending, row_group_rows)
                    pending, held = [], 0
        if pending or not plan["slices"]:
            _write_group(writer, schema, pending, row_group_rows)
    data = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            data.update(block)
    return FileEntry(path=plan["path"], bytes=path.stat().st_size, sha256=data.hexdigest())


def _write_group(
    writer: pq.ParquetWriter, schema: pa.Schema, batches: list[pa.RecordBatch], rows: int
) -> None:
    """One row group from contiguous arrays (page boundaries follow the arrays' chunks)."""
    table = pa.Table.from_batches(batches, schema=schema).combine_chunks()
    writer.write_table(table, row_group_size=rows)


def count_individuals(work: Path, written: list[dict[str, Any]]) -> int:
    """The most distinct values of any personal column over all partitions (nulls not counted).

    The union is taken in rounds over hash buckets of the values, each round holding about
    DISTINCT_PER_ROUND values, so memory does not grow with the number of individuals."""
    columns = {c for out in written for c in out["distinct"]}
    best = 0
    for column in sorted(columns):
        files = [out["distinct"][column] for out in written if column in out["distinct"]]
        files = [f for f in files if f["count"]]
        rounds = max(1, math.ceil(sum(f["count"] for f in files) / DISTINCT_PER_ROUND))
        total = 0
        for bucket in range(rounds):
            seen: pa.Array | None = None
            for f in files:
                values = pq.read_table(work / f["path"]).column("value").combine_chunks()
                if rounds > 1:
                    values = values.filter(pa.array(_buckets(values, rounds) == bucket))
                both = values if seen is None else pa.concat_arrays([seen, values])
                seen = pc.unique(both)
            total += len(seen) if seen is not None else 0
        best = max(best, total)
    return best


_MIX = np.random.default_rng(20260301).integers(1, 2**63, 64, dtype=np.uint64) | np.uint64(1)


def _buckets(values: pa.Array, buckets: int) -> np.ndarray:
    """A bucket per value from a polynomial hash of its text's bytes (vectorized)."""
    text = pc.cast(pc.cast(values, pa.string()), pa.large_binary())
    offsets = np.frombuffer(text.buffers()[1], np.int64)[text.offset : text.offset + len(text) + 1]
    data = np.frombuffer(text.buffers()[2] or b"", np.uint8)[offsets[0] : offsets[-1]]
    lengths = np.diff(offsets)
    owner = np.repeat(np.arange(len(text)), lengths)
    position = np.arange(len(data)) - (offsets[:-1] - offsets[0])[owner]
    with np.errstate(over="ignore"):
        terms = data.astype(np.uint64) * _MIX[position % 64]
        sums = np.zeros(len(text), np.uint64)
        starts = (offsets[:-1] - offsets[0])[lengths > 0]
        sums[lengths > 0] = np.add.reduceat(terms, starts) if len(starts) else sums[:0]
        mixed = (sums ^ lengths.astype(np.uint64)) * np.uint64(0x9E3779B97F4A7C15)
    return (mixed >> np.uint64(32)) % np.uint64(buckets)


def schemas(
    source: pa.Schema,
    work: Path,
    product: ProductSpec,
    key: Keys | None,
    hierarchies: dict[str, Hierarchy],
    levels: dict[str, int],
) -> tuple[pa.Schema, pa.Schema]:
    """The product's schema, and its files' (without the hive folder column)."""
    if product.type == "aggregate":
        full = parts.load_schema(work / CELLS)
    else:
        full = parts.output_schema(source, product, key, hierarchies, levels)
    split = product.packaging.partition_by
    return full, (full.remove(full.get_field_index(split)) if split else full)


def finish(
    work: Path,
    out_dir: Path,
    files: list[FileEntry],
    written: list[dict[str, Any]],
    privacy: dict[str, Any],
    schema: pa.Schema,
    product: ProductSpec,
    declared: dict[str, str],
    key: Keys | None,
    pii: tuple[float, int, float] = (0.8, 2000, DIRTY_THRESHOLD),
    *,
    origin: str,
    important_data: bool,
    embedded_max_share: float = EMBEDDED_MAX_SHARE,
) -> Built:
    """The written files verified (PersonalDataFound, PrivacyModelFailed), and their identity
    (which covers the transfer facts: `origin` and `important_data` are the provider's)."""
    rows = sum(out["rows"] for out in written)
    expected = privacy.get("rows_out")
    if product.type != "aggregate" and expected is not None and rows != expected:
        raise PrivacyModelFailed(
            f"{product.id}: {rows} records written where the model kept {expected}; the "
            "staged input changed between the passes",
            product=product.id,
            rows=rows,
        )
    threshold, sample_rows, dirty_threshold = pii  # pii_threshold, _sample_rows, _dirty_threshold
    rescan = rescan_written(
        out_dir, product, threshold, sample_rows, embedded_max_share,
        dirty_threshold=dirty_threshold,
    )  # fmt: skip
    privacy = {**privacy, "verified": rescan.privacy}
    remaining = remaining_columns(product, declared)
    columns = [
        {**c, "personal_data": remaining[c["name"]]} if c["name"] in remaining else c
        for c in schema_of(schema.empty_table())
    ]
    personal = personal_figures(product, declared, key, count_individuals(work, written))
    personal["embedded"] = rescan.embedded
    facts = transfer_facts(origin, personal["remaining"], personal["individuals"], important_data)
    personal.update(
        sensitive_categories=facts["sensitive_categories"], important_data=facts["important_data"]
    )
    chash = content_hash(files, columns, product.fingerprint(), facts)
    log.info("%s: %d rows in %d file(s), content hash %s", product.id, rows, len(files), chash[:12])
    return Built(files, columns, rows, privacy, personal, chash)


def build(
    source: Path,
    product: ProductSpec,
    declared: dict[str, str],
    key: Keys | None,
    hierarchies: dict[str, Hierarchy],
    work: Path,
    out_dir: Path,
    partition_rows: int = parts.PARTITION_ROWS,
    pii: tuple[float, int, float] = (0.8, 2000, DIRTY_THRESHOLD),
    *,
    origin: str,
    important_data: bool = False,
    embedded_max_share: float = EMBEDDED_MAX_SHARE,
) -> Built:
    """Every pass in this process, partition after partition: the files land in `out_dir`."""
    staged = pq.read_schema(source)
    parts.output_schema(staged, product, key, hierarchies, {})  # fails early on bad columns
    plan = parts.plan_partitions(source, partition_rows)
    counted = [parts.count_partition(source, p, product, key, hierarchies, work) for p in plan]
    decision = privacy_decision(parts.merge_counts(work, counted), product, hierarchies)
    written = [
        parts.write_partition(source, p, product, key, hierarchies, decision, work, declared)
        for p in plan
    ]
    privacy = dict(decision.privacy)
    if product.type == "aggregate":
        records = parts.output_schema(staged, product, key, hierarchies, decision.levels)
        cells, privacy["aggregate"] = aggregate_segments(work, written, records, product, key)
        written = [cells]
    full, file_schema = schemas(staged, work, product, key, hierarchies, decision.levels)
    pack = product.packaging
    split = pack.partition_by
    files = [
        write_file(work, f, file_schema, pack.row_group_rows, out_dir)
        for f in plan_files(written, pack.max_rows_per_file, split)
    ]
    return finish(
        work, out_dir, files, written, privacy, full, product, declared, key, pii,
        origin=origin, important_data=important_data, embedded_max_share=embedded_max_share,
    )  # fmt: skip
