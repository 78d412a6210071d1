"""A product build's first passes on local work files: plan, count, decide, write.

Each pass reads and writes files of the build's work folder, given as a local path by its caller
(tasks.work_files checks every file read against its seal first), and returns a small typed
result naming the files it wrote with their sha256 (`sealed`); its `to_json()` is the JSON that
travels between the passes (Prefect task results, possibly across Dask workers).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, cast

import pyarrow.parquet as pq

from databourse.config import Config, ProductSpec
from databourse.errors import ConfigError
from databourse.ingest.records import IngestResult
from databourse.ingest.staged_integrity import check_digest, file_digest
from databourse.privacy.hierarchy import Hierarchy, product_hierarchies
from databourse.privacy.pseudonyms import Keys
from databourse.product import assembly
from databourse.product.partitions import (
    PARTITION_ROWS,
    Partition,
    Source,
    count_partition,
    load_decision,
    merge_counts,
    output_schema,
    plan_partitions,
    save_decision,
    save_schema,
    write_partition,
)
from databourse.product.productize import privacy_decision
from databourse.storage import zones
from databourse.storage.ranges import block_digests
from databourse.storage.store import ObjectStore

log = logging.getLogger(__name__)

SOURCE_SCHEMA = "source.arrow"
FILES = "files"


@dataclass(frozen=True)
class Build:
    """What every pass of one product needs, fetched in the process that runs it."""

    cfg: Config
    store: ObjectStore
    product: ProductSpec
    key: Keys | None
    hierarchies: dict[str, Hierarchy]
    declared: dict[str, str]
    origin: str  # the provider's jurisdiction
    important_data: bool  # the dataset is declared important data


def open_build(cfg: Config, store: ObjectStore, product_id: str, key: Keys | None) -> Build:
    """The build of one product (no catalog: the passes never open it)."""
    product = cfg.product(product_id)
    if product.type == "corpus":
        raise ConfigError([f"{product_id} is a corpus product: the build-corpus flow builds it"])
    hierarchies = product_hierarchies(product, Path(cfg.files[f"product/{product_id}"]).parents[1])
    src = product.source
    dataset = cfg.dataset(src.provider, src.dataset)
    return Build(
        cfg, store, product, key, hierarchies, dataset.declared_categories,
        cfg.providers[src.provider].jurisdiction, dataset.important_data,
    )  # fmt: skip


def partition_rows(cfg: Config, override: int | None = None) -> int:
    """The partition size: the run's override, else settings `runs.partition_rows`, else 1M."""
    return int(override or getattr(cfg.settings.runs, "partition_rows", None) or PARTITION_ROWS)


def work_prefix(product_id: str, ingest_id: str) -> str:
    """A new work folder of a build (a retry plans another)."""
    build = f"{ingest_id}-{uuid.uuid4().hex[:12]}"
    return zones.join("staging", "products", product_id, "work", build)


def sealed(work: Path, names: Iterable[str]) -> dict[str, str]:
    """sha256 of each work file a pass wrote, by its name relative to the work folder."""
    return {name: file_digest(work / name)[0] for name in names}


def expected(names: Iterable[str], *seals: Mapping[str, str]) -> dict[str, str]:
    """The recorded sha256 of each work file to read, from the results of the passes that wrote
    them (ValueError for a file no result seals: the pointers were not made by these tasks)."""
    known: dict[str, str] = {}
    for seal in seals:
        known.update(seal)
    missing = sorted(n for n in names if n not in known)
    if missing:
        raise ValueError(f"work file(s) {missing} read but sealed by no pass result")
    return {name: known[name] for name in names}


def schema_reads(product: ProductSpec) -> list[str]:
    """The work files holding the schemas (an aggregate's cells too) that pass 3 reads."""
    return [SOURCE_SCHEMA, *([assembly.CELLS] if product.type == "aggregate" else [])]


class JsonResult:
    """A pass result as the JSON its task returns and the next pass's task takes."""

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return dataclasses.asdict(cast(Any, self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """The result a `to_json` dict describes."""
        return cls(**data)


@dataclass(frozen=True)
class Plan(JsonResult):
    """The build's staged file, work folder, partitions, and the seals of its first work files."""

    product: str
    ingest_id: str
    staged_key: str
    staged: dict[str, Any]  # sha256 and size; on S3 the hashes of its blocks each read checks
    work: str
    sealed: dict[
        str, str
    ]  # the sha256 of every work file travels with its pointer, never the store
    partitions: list[Partition]
    counts: bool  # pass 1 feeds the privacy model only

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """The plan a `to_json` dict describes."""
        return cls(**{**data, "partitions": [Partition.from_json(p) for p in data["partitions"]]})


@dataclass(frozen=True)
class Counted(JsonResult):
    """Pass 1 of a partition: its grouped counts' file, its rows and groups."""

    counts: str
    rows: int
    groups: int
    sealed: dict[str, str]


@dataclass(frozen=True)
class Decided(JsonResult):
    """The privacy decision's files (the kept classes, if any), its figures and levels."""

    decision: str
    kept: str | None
    privacy: dict[str, Any]
    levels: dict[str, int]
    sealed: dict[str, str]

    def names(self) -> list[str]:
        """The work files pass 2 reads to load the decision."""
        return [self.decision, *([self.kept] if self.kept else [])]


@dataclass(frozen=True)
class Written(JsonResult):
    """Pass 2 of a partition (or an aggregate's cells, index -1): segments and distinct values."""

    index: int
    rows: int
    segments: list[dict[str, Any]]
    distinct: dict[str, dict[str, Any]]
    sealed: dict[str, str]


def seal_written(work: Path, out: dict[str, Any]) -> Written:
    """A pass-2 result (or an aggregate's cells) with the sha256 of its segments and values."""
    names = [s["segment"] for s in out["segments"]] + [d["path"] for d in out["distinct"].values()]
    return Written(**out, sealed=sealed(work, names))


def plan_build(
    build: Build,
    record: IngestResult,
    staged: dict[str, Any],
    work: str,
    source: Path,
    folder: Path,
    seals: dict[str, str],
    rows: int,
    uri: str | None = None,
) -> Plan:
    """Check the product against the staged file `source` and cut it into partitions of about
    `rows` records; its schema is kept in the work `folder` (`seals`: the files sealed so far).
    Without `seals` (S3: no private copy), the passes read the store's object in byte ranges,
    checked against the hashes of this checked, whole copy's blocks: `staged["blocks"]`; with
    the staged object's `uri`, `source` is a copy not checked yet: it is checked against
    `staged` (sha256 and size) in the same read (ObjectChanged naming `uri`)."""
    if not seals:
        staged = staged_blocks(source, staged, uri)
    schema = pq.read_schema(source)
    output_schema(schema, build.product, build.key, build.hierarchies, {})  # bad columns
    partitions = plan_partitions(source, rows)
    save_schema(schema, folder / SOURCE_SCHEMA)
    seals = {**seals, **sealed(folder, [SOURCE_SCHEMA])}
    counts = build.product.privacy is not None
    return Plan(
        build.product.id, record.ingest_id, record.staged_key, staged, work, seals, partitions,
        counts,
    )  # fmt: skip


def staged_blocks(source: Path, staged: dict[str, Any], uri: str | None) -> dict[str, Any]:
    """`staged` with the hashes of the staged file's blocks (`blocks`), taken in one read of
    `source`; with the staged object's `uri`, that read also checks `source` against `staged`
    (sha256 and size: ObjectChanged naming `uri`)."""
    blocks = block_digests(source)
    whole = blocks.pop("whole")
    if uri is not None:
        check_digest((whole, blocks["size"]), uri, staged.get("sha256"), staged.get("size"))
    return {**staged, "blocks": blocks}


def count_classes(build: Build, part: Partition, source: Source, work: Path) -> Counted | None:
    """Pass 1: grouped counts of the privacy model's columns in one partition."""
    out = count_partition(source, part, build.product, build.key, build.hierarchies, work)
    return None if out is None else Counted(**out, sealed=sealed(work, [out["counts"]]))


def decide_privacy(build: Build, counted: list[Counted], work: Path) -> Decided:
    """Merge the partitions' counts and decide the privacy model (PrivacyModelFailed stops it)."""
    merged = merge_counts(work, [c.to_json() for c in counted])
    decided = save_decision(privacy_decision(merged, build.product, build.hierarchies), work)
    names = [decided["decision"], *([decided["kept"]] if decided["kept"] else [])]
    return Decided(**decided, sealed=sealed(work, names))


def write_records(
    build: Build, part: Partition, decided: Decided, source: Source, work: Path
) -> Written:
    """Pass 2: one partition's published records as segments (pointers returned)."""
    decision = load_decision(work, decided.to_json())
    out = write_partition(
        source, part, build.product, build.key, build.hierarchies, decision, work, build.declared
    )
    return seal_written(work, out)
