"""The build and packaging steps without Prefect: the passes of `databourse.steps.building` on a
local work folder (the same content as the one-process build, results that survive their JSON),
and `databourse.steps.packaging` writing a version once, finding it again, and refusing a staged
file changed after the build (audited)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import make_project

from databourse.catalog.database import Catalog
from databourse.config import AggregateSpec, Config, load_config
from databourse.errors import ObjectChanged
from databourse.ingest.files import ingest_file
from databourse.ingest.records import IngestResult
from databourse.privacy.pseudonyms import needs_key
from databourse.product import assembly
from databourse.steps import assembling, building, packaging
from databourse.steps.assembling import Anonymized, Layout
from databourse.steps.building import Build, Decided, Plan, Written
from databourse.steps.resources import Resources
from databourse.storage import zones
from databourse.storage.opening import open_store
from databourse.storage.store import ObjectStore
from databourse_samples.demo import generate_drops

PRODUCT = "sz-retail-baskets"
PROVIDER, DATASET = "sz-retail", "customer_orders"
KEY = b"steps-building-test-key-0123456789abcdef"


@dataclass
class Project:
    cfg: Config
    store: ObjectStore
    catalog: Catalog
    record: IngestResult
    source: Path

    def res(self) -> Resources:
        return Resources(self.cfg, self.store, self.catalog)

    def build(self) -> Build:
        return building.open_build(self.cfg, self.store, PRODUCT, KEY)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    cfg = load_config(make_project(tmp_path / "project") / "configs")
    store = open_store(cfg.store_root)
    catalog = Catalog(cfg.catalog_url)
    catalog.create_schema()
    drop = next(d for d in generate_drops(tmp_path / "drops", scale=0.1) if d.provider == PROVIDER)
    spec = cfg.dataset(PROVIDER, DATASET)
    record = ingest_file(store, PROVIDER, DATASET, spec, drop.path, limits=cfg.settings.ingest)
    source = store.local_path(record.staged_key)
    assert source is not None
    yield Project(cfg, store, catalog, record, source)
    catalog.close()


def round_trip(result: Any) -> Any:
    """The result as the next task gets it: its JSON, through a serializer, read back."""
    data = json.loads(json.dumps(result.to_json()))
    again = type(result).from_json(data)
    assert again.to_json() == data
    return again


def run_passes(p: Project, work: Path, rows: int) -> tuple[Plan, Decided, Anonymized]:
    """Every pass as the tasks chain them, each result read back from its JSON."""
    build = p.build()
    staged = {"sha256": p.record.sha256, "size": p.record.size}
    prefix = building.work_prefix(PRODUCT, p.record.ingest_id)
    plan = building.plan_build(build, p.record, staged, prefix, p.source, work, {}, rows)
    plan = round_trip(plan)
    counted = [building.count_classes(build, part, p.source, work) for part in plan.partitions]
    decided = round_trip(building.decide_privacy(build, [round_trip(c) for c in counted], work))
    written: list[Written] = [
        round_trip(building.write_records(build, part, decided, p.source, work))
        for part in plan.partitions
    ]
    layout: Layout = round_trip(assembling.lay_out_files(build, decided, written))
    files = [assembling.write_file(build, decided, f, work) for f in layout.files]
    assert assembling.finish_reads(build, plan, layout, files)  # every read is sealed
    done = assembling.finish_build(build, p.catalog, plan, decided, layout, files, work)
    return plan, decided, round_trip(done)


def test_the_passes_build_the_one_process_builds_content(project: Project, tmp_path: Path) -> None:
    plan, decided, done = run_passes(project, tmp_path / "work", rows=60)
    assert len(plan.partitions) > 1 and plan.counts
    assert set(plan.sealed) == {building.SOURCE_SCHEMA}
    assert decided.sealed and set(decided.sealed) == set(decided.names())
    build = project.build()
    whole = assembly.build(
        project.source, build.product, build.declared, build.key, build.hierarchies,
        tmp_path / "whole", tmp_path / "whole-out", origin=build.origin,
        important_data=build.important_data,
    )  # fmt: skip
    assert (done.content_hash, done.rows) == (whole.content_hash, whole.rows)
    assert done.staged_sha256 == project.record.sha256
    assert done.staged_prefix == zones.product_staging_prefix(PRODUCT, done.content_hash)
    for f in done.files:
        assert project.store.get_bytes(f"{done.staged_prefix}/{f.path}")


def test_a_file_no_pass_sealed_is_refused(project: Project, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\['counts/00000.parquet'\] read but sealed by no"):
        building.expected(["counts/00000.parquet"], {"other": "0" * 64})


def test_staging_replaces_a_planted_file(project: Project, tmp_path: Path) -> None:
    built = tmp_path / "part.parquet"
    built.write_bytes(b"the built bytes")
    sha256 = building.sealed(tmp_path, ["part.parquet"])["part.parquet"]
    project.store.put_bytes("staging/products/x/abc/part.parquet", b"planted")
    assembling.stage_file(project.store, "staging/products/x/abc/part.parquet", built, sha256)
    assert project.store.get_bytes("staging/products/x/abc/part.parquet") == b"the built bytes"


def test_the_key_is_needed_for_pseudonyms_and_noise_only(project: Project) -> None:
    """One rule for the build, the benchmark and `bourse anonymize` (whose copy of it missed an
    aggregate's noise, issue 17)."""
    spec = project.cfg.product(PRODUCT)
    assert needs_key(spec)
    plain = spec.model_copy(update={"columns": {}})
    assert not needs_key(plain)
    noisy = AggregateSpec(dimensions=["site_id"], epsilon=1.0)
    assert needs_key(plain.model_copy(update={"aggregate": noisy}))
    exact = AggregateSpec(dimensions=["site_id"])
    assert not needs_key(plain.model_copy(update={"aggregate": exact}))


def reports(p: Project, overall: float) -> None:
    """The quality and PII reports validation leaves beside the ingest."""
    prefix = zones.reports_prefix(PROVIDER, DATASET, p.record.ingest_id)
    quality = {"success": True, "summary": {}, "scores": {"overall": overall}}
    p.store.put_bytes(f"{prefix}/quality.json", json.dumps(quality).encode())
    p.store.put_bytes(f"{prefix}/pii.json", b"{}")


def trusted(record: IngestResult) -> dict[str, Any]:
    return {"sha256": "trail-sha256", "size": record.size}


def test_package_writes_the_version_once_then_finds_it(project: Project, tmp_path: Path) -> None:
    _, _, done = run_passes(project, tmp_path / "work", rows=1000)
    reports(project, 0.9)
    first = packaging.package_version(project.res(), PRODUCT, done, trusted)
    assert first.new and first.written == first.manifest_uri and first.quality_drop is None
    assert set(first.to_json()) == {
        "product", "version", "content_hash", "new", "manifest_uri", "rows",
    }  # fmt: skip
    key = f"{zones.product_prefix(PRODUCT, first.version)}/manifest.json"
    manifest = json.loads(project.store.get_bytes(key))
    assert manifest["lineage"]["ingests"][0]["staged_sha256"] == project.record.sha256
    again = packaging.package_version(project.res(), PRODUCT, done, trusted)
    assert (again.version, again.new, again.written) == (first.version, False, None)
    record = project.catalog.get_version(PRODUCT, first.version)
    assert record.privacy == packaging.privacy_figures(done.privacy)


def test_a_lower_quality_score_is_a_drop(project: Project, tmp_path: Path) -> None:
    _, _, done = run_passes(project, tmp_path / "work", rows=1000)
    project.catalog.ensure_product(PRODUCT, PRODUCT, PROVIDER, DATASET)
    older = project.catalog.reserve_version(PRODUCT, "e" * 64, done.schema, done.rows).version
    project.catalog.set_quality_scores(PRODUCT, older, {"overall": 0.9})
    reports(project, 0.5)
    now = packaging.package_version(project.res(), PRODUCT, done, trusted)
    assert now.quality_drop == packaging.QualityDrop(now.version, 0.5, older, 0.9)
    reports(project, 0.895)  # within QUALITY_DROP of the previous score: no drop
    assert packaging.quality_drop(project.catalog, PRODUCT, now.version, {"overall": 0.895}) is None


def test_a_staged_file_changed_after_the_build_is_refused_and_audited(
    project: Project, tmp_path: Path
) -> None:
    _, _, done = run_passes(project, tmp_path / "work", rows=1000)
    reports(project, 0.9)
    project.store.put_bytes(f"{done.staged_prefix}/{done.files[0].path}", b"swapped")
    with pytest.raises(ObjectChanged, match="staged product file changed after the build"):
        packaging.package_version(project.res(), PRODUCT, done, trusted)
    [event] = [e for e in project.catalog.audit_history() if e["kind"] == "quarantine"]
    assert (event["detail"]["product"], event["detail"]["error"]) == (PRODUCT, "ObjectChanged")
    assert event["detail"]["version"] == project.catalog.show(PRODUCT)["versions"][0]["version"]


def test_a_plan_on_s3_checks_its_download_in_the_read_that_hashes_its_blocks(
    project: Project, tmp_path: Path
) -> None:
    """On S3 (no private copy) the plan's download is checked against the staged sha256 and
    size as its blocks are hashed: one read, and a changed byte is ObjectChanged naming the
    object, before any block hash is recorded."""
    p, build = project, project.build()
    staged = {"sha256": p.record.staged_sha256, "size": p.record.staged_size}
    uri = "s3://exchange/zones/" + p.record.staged_key
    copy = tmp_path / "download.parquet"
    copy.write_bytes(p.source.read_bytes())
    prefix = building.work_prefix(PRODUCT, p.record.ingest_id)
    plan = building.plan_build(build, p.record, staged, prefix, copy, tmp_path / "w", {}, 60, uri)
    assert set(plan.staged["blocks"]) == {"block", "sha256", "size"}  # the whole's sha apart
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ObjectChanged, match="staged Parquet changed after ingest") as changed:
        building.plan_build(build, p.record, staged, prefix, copy, tmp_path / "w2", {}, 60, uri)
    assert str(changed.value).startswith(uri)
