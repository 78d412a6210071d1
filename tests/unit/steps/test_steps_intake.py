"""The intake steps without Prefect: discover the landing zone and ingest a file
(`databourse.steps.ingesting`), and the quality and personal-data gates of an ingest
(`databourse.steps.validating`), on a LocalStore and a SQLite catalog with the repo's configs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from helpers import make_project

from databourse.catalog.database import Catalog
from databourse.config import load_config
from databourse.errors import IngestRejected, PersonalDataFound, QualityFailed
from databourse.ingest.landing_bounds import SourceBounds
from databourse.ingest.records import IngestResult
from databourse.steps import ingesting, validating
from databourse.steps.resources import Resources
from databourse.storage import zones
from databourse.storage.opening import open_store
from databourse_samples.demo import SampleDrop, generate_drops

PROVIDER, DATASET = "sz-retail", "customer_orders"
# an error-severity expectation no order meets: the quality gate fails
NO_ORDER_MEETS = (
    "    primary_key: [order_id]\n    expectations:\n"
    "      - {expectation: ExpectColumnValuesToBeBetween,"
    " kwargs: {column: amount_cny, min_value: 1000000000}}\n"
)


@dataclass
class World:
    res: Resources
    drop: SampleDrop
    tmp: Path

    def bounds(self) -> SourceBounds:
        """What a caller that named the path may read (as `bourse ingest` does)."""
        landing = str(self.res.store.local_path("landing"))
        return SourceBounds(
            landing=landing,
            own=f"{landing}/{PROVIDER}/{DATASET}",
            roots=(),
            denied=(str(self.res.config.state_dir),),
            caller_named=True,
        )

    def ingest(self, **options: Any) -> IngestResult:
        return ingesting.ingest_source(
            self.res, PROVIDER, DATASET, str(self.drop.path), self.bounds(), **options
        )

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.res.catalog.audit_history() if e["kind"] == kind]


def world_of(tmp_path: Path, edit: tuple[str, str] | None = None) -> Iterator[World]:
    root = make_project(tmp_path / "project")
    if edit is not None:
        path = root / "configs/providers/sz-retail.yaml"
        text = path.read_text()
        assert edit[0] in text
        path.write_text(text.replace(edit[0], edit[1], 1))
    cfg = load_config(root / "configs")
    catalog = Catalog(cfg.catalog_url)
    catalog.create_schema()
    drops = generate_drops(tmp_path / "drops", scale=0.05)
    drop = next(d for d in drops if d.provider == PROVIDER)
    yield World(Resources(cfg, open_store(cfg.store_root), catalog), drop, tmp_path)
    catalog.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from world_of(tmp_path)


@contextmanager
def staged(w: World, record: IngestResult) -> Iterator[Path]:
    path = w.res.store.local_path(record.staged_key)
    assert path is not None
    yield path


# --- ingesting ----------------------------------------------------------------------------------


def test_an_ingest_is_stored_audited_once_and_reported_done(world: World) -> None:
    seen: list[tuple[str, int, float | None]] = []

    def progress_of(name: str) -> Any:
        return lambda rows, share: seen.append((name, rows, share))

    result = world.ingest(source_name="orders.csv", progress_of=progress_of)
    assert not result.duplicate and result.rows == world.drop.rows
    assert world.res.store.exists(result.staged_key)
    assert seen[-1] == ("orders.csv", result.rows, 1.0)  # the file read whole: shown done
    [event] = world.events("ingest")
    assert event["detail"] == {
        "provider": PROVIDER,
        "dataset": DATASET,
        "ingest_id": result.ingest_id,
        "sha256": result.sha256,
        "size": result.size,
        "staged_sha256": result.staged_sha256,
        "staged_size": result.staged_size,
        "rows": result.rows,
        "file": "orders.csv",
    }
    seen.clear()
    again = world.ingest(source_name="orders.csv", progress_of=progress_of)
    assert again.duplicate and again.ingest_id == result.ingest_id
    assert len(world.events("ingest")) == 1 and seen == []  # nothing read, nothing audited again


def test_a_duplicate_whose_ingest_was_never_audited_is_audited_now(tmp_path: Path) -> None:
    from databourse.ingest.files import ingest_file

    for w in world_of(tmp_path):  # as if the run crashed after `_ingest.json`, before its event
        spec = w.res.config.dataset(PROVIDER, DATASET)
        first = ingest_file(w.res.store, PROVIDER, DATASET, spec, w.drop.path)
        assert w.events("ingest") == []
        again = w.ingest()
        assert again.duplicate
        [event] = w.events("ingest")
        assert event["detail"]["ingest_id"] == first.ingest_id


def test_a_source_out_of_bounds_is_refused_unread_and_audited(world: World) -> None:
    outside = world.res.config.state_dir / "orders.csv"
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_bytes(world.drop.path.read_bytes())
    with pytest.raises(IngestRejected, match="state folder"):
        ingesting.ingest_source(world.res, PROVIDER, DATASET, str(outside), world.bounds())
    [event] = world.events("quarantine")
    assert (event["detail"]["provider"], event["detail"]["error"]) == (PROVIDER, "IngestRejected")
    assert world.events("ingest") == []
    assert list(world.res.store.list(f"raw/{PROVIDER}/")) == []


def test_discover_lists_new_drops_and_audits_every_refused_link(world: World) -> None:
    store = world.res.store
    landing = store.local_path(f"landing/{PROVIDER}/{DATASET}/2026-12-04")
    assert landing is not None
    landing.mkdir(parents=True)
    (landing / "orders.csv").write_bytes(world.drop.path.read_bytes())
    (landing / "linked.csv").symlink_to(landing / "orders.csv")
    result = ingesting.discover_drops(world.res, PROVIDER)
    status = {Path(d.key).name: d.status for d in result.drops}
    assert status == {"orders.csv": "new", "linked.csv": "refused"}
    [event] = world.events("quarantine")
    assert event["detail"]["file"].endswith("linked.csv")
    ingesting.discover_drops(world.res)  # every time it is seen
    assert len(world.events("quarantine")) == 2


# --- validating ---------------------------------------------------------------------------------


def test_quality_writes_its_report_and_page_and_passes(world: World) -> None:
    record = world.ingest()
    shown: list[validating.QualityChecked] = []
    checked = validating.check_quality(
        world.res,
        PROVIDER,
        DATASET,
        record.ingest_id,
        lambda r: staged(world, r),
        show=shown.append,
    )
    assert shown == [checked]
    out = checked.to_json()
    assert out["success"] is True and out["summary"] == checked.report.summary()
    prefix = zones.reports_prefix(PROVIDER, DATASET, record.ingest_id)
    assert out["report_uri"] == world.res.store.uri(f"{prefix}/quality.json")
    quality = json.loads(world.res.store.get_bytes(f"{prefix}/quality.json"))
    assert quality["scores"] == out["scores"] and "validated_at" in quality
    assert world.res.store.exists(f"{prefix}/quality.html")
    assert world.events("quarantine") == []


def test_a_failed_quality_gate_is_shown_then_quarantined_and_audited(tmp_path: Path) -> None:
    for w in world_of(tmp_path, ("    primary_key: [order_id]\n", NO_ORDER_MEETS)):
        copy = partial(staged, w)
        record = w.ingest()
        shown: list[validating.QualityChecked] = []
        with pytest.raises(QualityFailed) as failed:
            validating.check_quality(
                w.res,
                PROVIDER,
                DATASET,
                record.ingest_id,
                copy,
                show=shown.append,
            )
        [checked] = shown
        assert not checked.report.success
        assert failed.value.context["report_uri"] == checked.report_uri
        [event] = w.events("quarantine")
        assert event["detail"]["error"] == "QualityFailed"
        assert list(w.res.store.list(f"quarantine/{PROVIDER}/")) != []


def test_the_personal_data_scan_matches_the_declaration(world: World) -> None:
    record = world.ingest()
    watched: list[int] = []

    def watch(batches: Iterator[Any], rows: int) -> Iterator[Any]:
        watched.append(rows)
        yield from batches

    scanned = validating.scan_personal_data(
        world.res, PROVIDER, DATASET, record.ingest_id, lambda r: staged(world, r), watch=watch
    )
    assert watched == [record.rows]
    assert scanned.check.ok and scanned.to_json()["ok"] is True
    found = {f.column: f.category for f in scanned.findings}
    assert found["email"] == "EMAIL_ADDRESS"
    key = f"{zones.reports_prefix(PROVIDER, DATASET, record.ingest_id)}/pii.json"
    assert scanned.report_uri == world.res.store.uri(key)
    assert json.loads(world.res.store.get_bytes(key))["findings"]


def test_undeclared_personal_data_is_shown_then_quarantined_and_audited(tmp_path: Path) -> None:
    for w in world_of(tmp_path, (", personal_data: EMAIL_ADDRESS}", "}")):
        copy = partial(staged, w)
        record = w.ingest()
        shown: list[validating.PersonalDataScanned] = []
        with pytest.raises(PersonalDataFound, match=r"email \(EMAIL_ADDRESS\)"):
            validating.scan_personal_data(
                w.res,
                PROVIDER,
                DATASET,
                record.ingest_id,
                copy,
                show=shown.append,
            )
        [scanned] = shown
        assert not scanned.check.ok
        [event] = w.events("quarantine")
        assert event["detail"]["error"] == "PersonalDataFound"
