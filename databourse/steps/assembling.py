"""A product build's last passes on local work files: lay out the files, write each, finish.

As in `steps.building`: each pass reads work files its caller checked against their seals, and
returns a small typed result naming what it wrote with its sha256.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import pyarrow as pa

from databourse.catalog.database import Catalog
from databourse.errors import PersonalDataFound
from databourse.ingest.staged_integrity import stream_digest
from databourse.product import assembly
from databourse.product.package import FileEntry
from databourse.product.partitions import (
    load_schema,
    output_schema,
)
from databourse.steps.building import (
    FILES,
    SOURCE_SCHEMA,
    Build,
    Decided,
    JsonResult,
    Plan,
    Written,
    expected,
    schema_reads,
    seal_written,
    sealed,
)
from databourse.steps.resources import audit_failure
from databourse.storage import zones
from databourse.storage.store import ObjectStore, put_file_once

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layout(JsonResult):
    """The product's files (slices of segments, and the seals of what each reads), the written
    results they come from, and the privacy figures (an aggregate's report included)."""

    files: list[dict[str, Any]]
    written: list[Written]
    privacy: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """The layout a `to_json` dict describes."""
        written = [Written.from_json(w) for w in data["written"]]
        return cls(**{**data, "written": written})


@dataclass(frozen=True)
class Anonymized(JsonResult):
    """The product's verified files staged by content hash, and the figures for its manifest."""

    product: str
    ingest_id: str
    staged_sha256: str | None  # what the lineage names (None: the trail's, read when packaged)
    content_hash: str
    staged_prefix: str
    files: list[FileEntry]
    schema: list[dict[str, Any]]
    rows: int
    privacy: dict[str, Any]
    personal_data: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """The build a `to_json` dict describes."""
        files = [FileEntry(**f) for f in data["files"]]
        return cls(**{"staged_sha256": None, **data, "files": files})


def cells_reads(plan: Plan, written: list[Written]) -> dict[str, str]:
    """What an aggregate's cells are computed from: every segment, and the staged schema."""
    segments = [s["segment"] for out in written for s in out.segments]
    return expected([*segments, SOURCE_SCHEMA], plan.sealed, *(out.sealed for out in written))


def lay_out_files(
    build: Build, decided: Decided, written: list[Written], work: Path | None = None
) -> Layout:
    """The product's files cut from the segments (an aggregate's cells computed first, in the
    work folder `work` holding `cells_reads`)."""
    privacy = dict(decided.privacy)
    if build.product.type == "aggregate":
        if work is None:
            raise ValueError(f"{build.product.id}: an aggregate's cells need the work folder")
        records = output_schema(
            load_schema(work / SOURCE_SCHEMA), build.product, build.key,
            build.hierarchies, decided.levels,
        )  # fmt: skip
        cells, privacy["aggregate"] = assembly.aggregate_segments(
            work, [w.to_json() for w in written], records, build.product, build.key
        )
        out = seal_written(work, cells)
        seals = {**out.sealed, **sealed(work, [assembly.CELLS])}
        written = [dataclasses.replace(out, sealed=seals)]
    pack = build.product.packaging
    files = assembly.plan_files(
        [w.to_json() for w in written], pack.max_rows_per_file, pack.partition_by
    )
    reads = [out.sealed for out in written]
    extra = [assembly.CELLS] if build.product.type == "aggregate" else []
    for file in files:  # what pass 3 reads of this file, with the sha256 their passes recorded
        file["sealed"] = expected(sorted({s["segment"] for s in file["slices"]}) + extra, *reads)
    return Layout(files, written, privacy)


def schemas_of(build: Build, work: Path, decided: Decided) -> tuple[pa.Schema, pa.Schema]:
    """The product's schema and its files' (as assembly.schemas), from the build's work files."""
    staged = load_schema(work / SOURCE_SCHEMA)
    return assembly.schemas(
        staged, work, build.product, build.key, build.hierarchies, decided.levels
    )


def file_reads(build: Build, plan: Plan, file: dict[str, Any]) -> dict[str, str]:
    """What pass 3 reads to write one file: its segments and the schemas."""
    names = sorted({s["segment"] for s in file["slices"]}) + schema_reads(build.product)
    return expected(names, plan.sealed, file["sealed"])


def write_file(build: Build, decided: Decided, file: dict[str, Any], work: Path) -> FileEntry:
    """Pass 3: one file of the product, from its slices of segments."""
    _, schema = schemas_of(build, work, decided)
    rows = build.product.packaging.row_group_rows
    return assembly.write_file(work, file, schema, rows, work / FILES)


def finish_reads(
    build: Build, plan: Plan, layout: Layout, files: list[FileEntry]
) -> dict[str, str]:
    """What the finish reads: the product's files (as pass 3 hashed them), values, schemas."""
    distinct = [d["path"] for out in layout.written for d in out.distinct.values()]
    names = [f"{FILES}/{f.path}" for f in files] + distinct + schema_reads(build.product)
    built_files = {f"{FILES}/{f.path}": f.sha256 for f in files}  # pass 3 hashed what it wrote
    return expected(names, plan.sealed, built_files, *(out.sealed for out in layout.written))


def finish_build(
    build: Build,
    catalog: Catalog,
    plan: Plan,
    decided: Decided,
    layout: Layout,
    files: list[FileEntry],
    work: Path,
) -> Anonymized:
    """Verify the written files, compute the content hash, stage the files under it."""
    settings = build.cfg.settings
    pii = (settings.pii_threshold, settings.pii_sample_rows, settings.pii_dirty_threshold)
    full, _ = schemas_of(build, work, decided)
    written = [w.to_json() for w in layout.written]
    try:
        built = assembly.finish(
            work, work / FILES, files, written, layout.privacy, full,
            build.product, build.declared, build.key, pii,
            origin=build.origin, important_data=build.important_data,
            embedded_max_share=settings.pii_embedded_max_share,
        )  # fmt: skip
    except PersonalDataFound as exc:  # nothing staged: the work folder is dropped after
        audit_failure(catalog, "quarantine", exc, product=plan.product, ingest_id=plan.ingest_id)
        raise
    prefix = zones.product_staging_prefix(plan.product, built.content_hash)
    for f in built.files:
        stage_file(build.store, f"{prefix}/{f.path}", work / FILES / f.path, f.sha256)
    return Anonymized(
        plan.product, plan.ingest_id, plan.staged["sha256"], built.content_hash, prefix,
        built.files, built.schema, built.rows, built.privacy, built.personal_data,
    )  # fmt: skip


def stage_file(store: ObjectStore, key: str, path: Path, sha256: str) -> None:
    """Stage a built file under its content hash; one found there with other bytes (planted by
    a store writer) is replaced. Publishing checks the bytes again (`write_version`)."""
    if put_file_once(store, key, path):
        return
    with store.open(key) as fh:
        found = stream_digest(fh)[0]
    if found != sha256:
        log.warning("%s: held other bytes than the built file: replaced", key)
        store.put_file(key, path)
