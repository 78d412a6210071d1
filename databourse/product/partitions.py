"""Passes over partitions of a staged dataset: plan, count (pass 1), decide, write (pass 2).

A partition is a range of records of the staged Parquet (about `rows`, cut at row group ends
when they are small); each pass reads it in record batches, only the columns it needs, so
memory is bounded by the batch size whatever the dataset's size.

  plan_partitions   the partitions of a staged file
  count_partition   pass 1: the product's rules on the privacy model's columns, grouped counts
                    (`privacy.group_counts`) written to the work folder
  merge_counts      the partitions' counts merged into the whole dataset's;
                    `productize.privacy_decision` decides on them; `save_decision` /
                    `load_decision` carry the decision
  write_partition   pass 2: all rules, the searched levels and the suppression applied batch by
                    batch; the partition's records written as segments (Arrow IPC, one per hive
                    folder), the distinct values of personal-data columns beside them

Functions take and return paths relative to a work folder and JSON-ready descriptions, never
tables, so the passes may run in other processes or on other machines (see tasks/building.py).
Nothing depends on the partitioning: counts merge into the grouping of the whole, noise is
drawn by dataset position (`offset`), and `databourse.product.assembly` cuts the product's files
from the segments in row order.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databourse.config import ProductSpec
from databourse.grouping import ClassIndex, group_counts, merge_groups
from databourse.privacy.anonymize import apply_rules, source_columns
from databourse.privacy.hierarchy import Hierarchy
from databourse.privacy.k_anonymity import check_model_columns
from databourse.privacy.lattice import apply_levels
from databourse.privacy.pseudonyms import Keys
from databourse.product.package import HIVE_NULL
from databourse.product.productize import (
    Decision,
    apply_decision,
    decision_columns,
    remaining_columns,
)
from databourse.readers.parquet import row_group_ends, row_range

# The staged file a pass reads: a local path, or an open file (ranged reads of the store's
# object, tasks.work_files.source_file)
Source: TypeAlias = Path | pa.NativeFile

log = logging.getLogger(__name__)

PARTITION_ROWS = 1_000_000  # default partition size (settings.runs.partition_rows when set)
BATCH_ROWS = 262_144  # records read at once: pseudonyms are hashed once per distinct per batch
DECISION = "decision.json"
KEPT = "kept.parquet"


@dataclass(frozen=True)
class Partition:
    """A range of records of the staged file: where it starts in the dataset, and its size."""

    index: int
    offset: int  # dataset position of the first row: the stable row key noise is drawn by
    rows: int

    def to_json(self) -> dict[str, int]:
        """The partition as a JSON-ready dict (a task parameter)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, int]) -> Partition:
        """The partition a `to_json` dict describes."""
        return cls(**data)


def plan_partitions(source: Source, rows: int = PARTITION_ROWS) -> list[Partition]:
    """The staged file cut into partitions of about `rows` records: at the end of the row group
    that reaches `rows` (no row group is read twice), or inside a row group more than twice
    that size. One empty partition for a file without records."""
    ends = row_group_ends(pq.ParquetFile(source).metadata)
    total = ends[-1] if ends else 0
    parts: list[Partition] = []
    start = 0
    while start < total:
        target = start + rows
        end = next((e for e in ends if e >= target), total)
        if end - start > 2 * rows:
            end = target
        parts.append(Partition(len(parts), start, end - start))
        start = end
    return parts or [Partition(0, 0, 0)]


def read_partition(
    source: Source, part: Partition, columns: list[str]
) -> Iterator[tuple[int, pa.Table]]:
    """The partition's records in batches of `columns`, each with its dataset position."""
    with pq.ParquetFile(source) as pfile:
        for at, batch in row_range(pfile, part.offset, part.rows, columns, BATCH_ROWS):
            yield at, pa.Table.from_batches([batch])


def output_schema(
    source: pa.Schema,
    product: ProductSpec,
    key: Keys | None,
    hierarchies: dict[str, Hierarchy],
    levels: dict[str, int],
) -> pa.Schema:
    """The schema of the product's records from the staged one (rules and levels applied).

    Raises what a whole-table build raises for a source column the rules list but the staged
    file lacks (IngestRejected), or a model column the output lacks (PrivacyModelFailed)."""
    empty = source.empty_table()
    out = apply_levels(apply_rules(empty, product, key, hierarchies), hierarchies, levels)
    if product.privacy is not None:
        model = product.privacy
        check_model_columns(
            out.column_names, list(model.quasi_identifiers), model.sensitive_attributes
        )
    return out.schema


def save_schema(schema: pa.Schema, path: Path) -> None:
    """A schema as an Arrow IPC file without records (read back by `load_schema`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.ipc.new_file(path, schema):
        pass


def load_schema(path: Path) -> pa.Schema:
    """The schema `save_schema` wrote."""
    with pa.OSFile(str(path)) as f:
        return pa.ipc.open_file(f).schema


# ---------------------------------------------------------------- pass 1
def count_partition(
    source: Source,
    part: Partition,
    product: ProductSpec,
    key: Keys | None,
    hierarchies: dict[str, Hierarchy],
    work: Path,
) -> dict[str, Any] | None:
    """Pass 1: grouped counts of the model's columns, written as `counts/<index>.parquet`."""
    columns = decision_columns(product)
    if not columns:
        return None
    needed = source_columns(product, columns)
    outputs = [
        apply_rules(batch, product, key, hierarchies, only=columns, offset=offset)
        for offset, batch in read_partition(source, part, needed)
    ]
    if not outputs:
        empty = pq.read_schema(source).empty_table()
        outputs = [apply_rules(empty, product, key, hierarchies, only=columns)]
    groups = group_counts(pa.concat_tables(outputs), columns)
    name = f"counts/{part.index:05d}.parquet"
    (work / name).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(groups, work / name, compression="zstd")
    log.info("partition %d: %d rows, %d groups", part.index, part.rows, groups.num_rows)
    return {"counts": name, "rows": part.rows, "groups": groups.num_rows}


def merge_counts(work: Path, counted: list[dict[str, Any] | None]) -> pa.Table | None:
    """The partitions' grouped counts merged (one file at a time): the dataset's grouping."""
    names = [c["counts"] for c in counted if c is not None]
    return merge_groups(pq.read_table(work / name) for name in names)


def save_decision(decision: Decision, work: Path) -> dict[str, Any]:
    """Write the decision to the work folder; what pass 2 needs to load it, and its figures."""
    work.mkdir(parents=True, exist_ok=True)
    pointer = {"decision": DECISION, "kept": KEPT if decision.kept is not None else None}
    if decision.kept is not None:
        pq.write_table(decision.kept, work / KEPT, compression="zstd")
    data = {"privacy": decision.privacy, "levels": decision.levels}
    (work / DECISION).write_text(json.dumps(data, sort_keys=True, default=str))
    return {**pointer, **data}


def load_decision(work: Path, pointer: dict[str, Any]) -> Decision:
    """The decision `save_decision` wrote."""
    data = json.loads((work / pointer["decision"]).read_text())
    kept = pq.read_table(work / pointer["kept"]) if pointer.get("kept") else None
    return Decision(privacy=data["privacy"], levels=data["levels"], kept=kept)


# ---------------------------------------------------------------- pass 2
class Segments:
    """The IPC segment files of one partition, one per hive folder, opened on first use."""

    def __init__(self, work: Path, name: str) -> None:
        self.work, self.name = work, name
        self.writers: dict[str, pa.ipc.RecordBatchFileWriter] = {}
        self.info: dict[str, dict[str, Any]] = {}

    def write(self, folder: str, order: list[Any], table: pa.Table) -> None:
        """Append records to the folder's segment (its sort key `order` is kept for plan_files)."""
        if folder not in self.writers:
            name = f"segments/{self.name}-{len(self.writers):04d}.arrow"
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            options = pa.ipc.IpcWriteOptions(compression="lz4")
            self.writers[folder] = pa.ipc.new_file(self.work / name, table.schema, options=options)
            self.info[folder] = {"folder": folder, "order": order, "segment": name, "batches": []}
        for batch in table.to_batches():
            self.writers[folder].write_batch(batch)
            self.info[folder]["batches"].append(batch.num_rows)

    def close(self) -> list[dict[str, Any]]:
        """Close the files; each segment's folder, sort key, name, batch sizes and records."""
        for writer in self.writers.values():
            writer.close()
        return [{**i, "rows": sum(i["batches"])} for i in self.info.values()]


def hive_folders(table: pa.Table, column: str | None) -> list[tuple[str, list[Any], pa.Table]]:
    """(folder, sort key, records) per value of the hive column, as package.write_parquet cuts:
    `column=value/` (the column dropped), folders sorted by (is null, text of the value)."""
    if column is None:
        return [("", [False, ""], table)]
    values = table.column(column)
    rest = table.drop_columns([column])
    out = []
    for value in pc.unique(values).to_pylist():
        mask = (
            pc.is_null(values) if value is None else pc.equal(values, pa.scalar(value, values.type))
        )
        label = HIVE_NULL if value is None else quote(str(value), safe="-_.")
        key = [value is None, str(value)]
        out.append((f"{column}={label}/", key, rest.filter(pc.fill_null(mask, False))))
    return out


def write_partition(
    source: Source,
    part: Partition,
    product: ProductSpec,
    key: Keys | None,
    hierarchies: dict[str, Hierarchy],
    decision: Decision,
    work: Path,
    declared: dict[str, str],
) -> dict[str, Any]:
    """Pass 2: the partition's published records as segments, and personal columns' values.

    Records keep their order; an aggregate product's records are not cut into hive folders
    (its cells are, see assembly)."""
    split = product.packaging.partition_by if product.type != "aggregate" else None
    personal = [c for c in remaining_columns(product, declared) if c in product.output_columns]
    kept = decision.kept if decision.suppresses else None
    index = ClassIndex(kept, kept.column_names) if kept is not None else None
    segments = Segments(work, f"{part.index:05d}")
    outputs = product.output_columns
    distinct: dict[str, list[pa.Array]] = {c: [] for c in personal}
    rows = 0
    for offset, batch in read_partition(source, part, source_columns(product)):
        out = apply_decision(
            apply_rules(batch, product, key, hierarchies, only=outputs, offset=offset),
            decision,
            hierarchies,
            index,
        )
        rows += out.num_rows
        for folder, order, records in hive_folders(out, split):
            segments.write(folder, order, records)
        for c in personal:
            distinct[c].append(pc.unique(out.column(c)).drop_null())
    values = _write_distinct(work, part.index, distinct)
    log.info("partition %d: %d of %d rows published", part.index, rows, part.rows)
    return {"index": part.index, "rows": rows, "segments": segments.close(), "distinct": values}


def _write_distinct(
    work: Path, index: int, distinct: dict[str, list[pa.Array]]
) -> dict[str, dict[str, Any]]:
    """Each personal column's distinct values in this partition, one file per column."""
    out = {}
    for n, (column, parts) in enumerate(distinct.items()):
        values = pc.unique(pa.chunked_array(parts)) if parts else pa.array([], pa.null())
        name = f"distinct/{n:03d}-{index:05d}.parquet"
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"value": values}), work / name, compression="zstd")
        out[column] = {"path": name, "count": len(values)}
    return out
