"""Validate an ingest in partitions: the plan (staged file, partitions, work folder), the
personal-data scan of one partition, whose counts `validating.judge_personal_data` merges and
decides on, and the quality suite tallied over one partition (`quality.tally`), which
`validating.check_quality` finishes on the whole file.

A partition's scan writes its columns' counts to a work file and returns the file's name and
sha256 (`Scanned`), never counts or values: the counts hold numbers read from the data (the
range of a column's plain numbers), which must not reach a run's state. A quality tally holds
values too (a column's extreme, key hashes): it goes to work files the same way (`Tallied`).
The passes read the staged file in byte ranges, each block checked against the hashes the plan
took in its one checked read (`tasks.work_files.source_file`), on the local store as on S3: what
the store's writer changes after the plan is refused, never scanned. Counts of consecutive
partitions merge into the counts of the whole dataset (`pii.detect.merge_columns`), so the
findings do not depend on the partitioning or on the task runner.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import pyarrow.parquet as pq

from databourse.config import Config, DatasetSpec
from databourse.ingest.records import IngestResult
from databourse.pii.counts import ColumnState
from databourse.pii.detect import count_columns, merge_columns
from databourse.product.partitions import Partition, Source, plan_partitions, read_partition
from databourse.steps.building import JsonResult, sealed, staged_blocks
from databourse.storage import zones

if TYPE_CHECKING:  # the quality suite (GX) is imported when a dataset is validated
    from databourse.quality.tally import Tally

SCANS = "pii"  # the work folder's subfolder of the partitions' counts
TALLIES = "quality"  # ... and of their quality tallies


@dataclass(frozen=True)
class ValidationPlan(JsonResult):
    """The ingest's staged file, the validation's work folder, and its partitions."""

    provider: str
    dataset: str
    ingest_id: str
    staged_key: str
    staged: dict[str, Any]  # sha256 and size; on S3 the hashes of its blocks each read checks
    work: str
    sealed: dict[str, str]  # none: passes read the staged file in checked byte ranges
    partitions: list[Partition]
    validated_at: str  # ISO time (UTC) the suite's freshness bound is drawn from, in every pass

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """The plan a `to_json` dict describes."""
        return cls(**{**data, "partitions": [Partition.from_json(p) for p in data["partitions"]]})


@dataclass(frozen=True)
class Tallied(JsonResult):
    """The quality tally of one partition: the stem of its work files, rows, and their seals."""

    stem: str
    rows: int
    sealed: dict[str, str]


@dataclass(frozen=True)
class Scanned(JsonResult):
    """The personal-data scan of one partition: its counts' work file, rows, and seal."""

    counts: str
    rows: int
    sealed: dict[str, str]


def work_prefix(provider: str, dataset: str, ingest_id: str) -> str:
    """A new work folder of a validation (a retry plans another)."""
    run = f"{ingest_id}-{uuid.uuid4().hex[:12]}"
    return zones.join("staging", "validations", f"{provider}+{dataset}", "work", run)


def plan_validation(
    record: IngestResult, staged: dict[str, Any], work: str, source: Path, uri: str, rows: int
) -> ValidationPlan:
    """The staged file `source` checked against `staged` (sha256 and size from the audit
    trail: ObjectChanged naming `uri` if it differs) and cut into partitions of about `rows`
    records. The passes read the store's object in byte ranges, each block checked against the
    hashes of this checked read (`staged["blocks"]`, taken in the same read)."""
    return ValidationPlan(
        record.provider, record.dataset, record.ingest_id, record.staged_key,
        staged_blocks(source, staged, uri), work, {}, plan_partitions(source, rows),
        dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    )  # fmt: skip


def scan_partition(cfg: Config, part: Partition, source: Source, work: Path) -> Scanned:
    """Every column's personal-data counts over one partition, written to the work folder."""
    schema = pq.read_schema(source)
    batches = (
        batch
        for _, table in read_partition(source, part, schema.names)
        for batch in table.to_batches()
    )
    states = count_columns(
        batches, schema, sample_rows=cfg.settings.pii_sample_rows, offset=part.offset
    )
    name = f"{SCANS}/part-{part.index:05d}.json"
    (work / SCANS).mkdir(parents=True, exist_ok=True)
    (work / name).write_text(json.dumps([s.to_json() for s in states]))
    return Scanned(name, part.rows, sealed(work, [name]))


def load_scans(work: Path, scans: list[Scanned]) -> list[ColumnState]:
    """The partitions' counts (files checked by the caller), merged in dataset order."""
    return merge_columns(
        [ColumnState.from_json(s) for s in json.loads((work / scan.counts).read_text())]
        for scan in scans
    )


def tally_partition(
    spec: DatasetSpec, plan: ValidationPlan, part: Partition, source: Source, work: Path
) -> Tallied:
    """The dataset's quality suite tallied over one partition (`quality.tally`: counts,
    extremes, key hashes), written to the work folder."""
    from databourse.quality.batches import partition_source, routes_of
    from databourse.quality.gx_inputs import build_expectations
    from databourse.quality.suite import suite_from_contract
    from databourse.quality.tally import TALLIED, extreme_types, tally

    specs = suite_from_contract(spec, now=dt.datetime.fromisoformat(plan.validated_at))
    built = build_expectations(specs)
    part_source = partition_source(source, part.offset, part.rows)
    routes = routes_of(part_source.schema, specs, built)
    tallied = {r: indices for r, indices in routes.items() if r in TALLIED}
    stem, folder = f"part-{part.index:05d}", work / TALLIES
    folder.mkdir(parents=True, exist_ok=True)
    found = tally(part_source, part.offset, specs, built, tallied, folder, stem)
    names = found.save(folder, stem, extreme_types(part_source, specs, found))
    return Tallied(stem, part.rows, sealed(work, [f"{TALLIES}/{n}" for n in names]))


def load_tallies(work: Path, tallies: list[Tallied]) -> list[Tally]:
    """The partitions' quality tallies (files checked by the caller), in dataset order."""
    from databourse.quality.tally import Tally

    return [Tally.load(work / TALLIES, t.stem) for t in tallies]
