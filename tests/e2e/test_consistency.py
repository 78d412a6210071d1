"""check_all (`bourse verify --all`): every kind of disagreement between store and catalog found."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
from helpers import bourse, make_project, publish_sample_version

from databourse.catalog.database import Catalog
from databourse.config import DatasetSpec
from databourse.consistency.report import ConsistencyReport
from databourse.consistency.verify import check_all
from databourse.errors import IngestRejected
from databourse.ingest.files import ingest_file
from databourse.ingest.records import IngestResult
from databourse.storage.store import ObjectStore

SPEC = DatasetSpec.model_validate(
    {"columns": [{"name": "id", "type": "string"}, {"name": "n", "type": "int64"}]}
)
VERSION = "products/p1/1.0.0"


@pytest.fixture
def world(tmp_path: Path) -> tuple[ObjectStore, Catalog, IngestResult]:
    """p1@1.0.0 published (CN available, MY pending) and one audited ingest."""
    catalog, store = publish_sample_version(tmp_path)
    source = tmp_path / "drop.csv"
    source.write_text("id,n\na,1\nb,2\n")
    result = ingest_file(store, "prov", "ds", SPEC, source)
    catalog.audit_append(
        "ingest", detail={"provider": "prov", "dataset": "ds", "ingest_id": result.ingest_id}
    )
    return store, catalog, result


def check(store: ObjectStore, catalog: Catalog, **kw: float) -> ConsistencyReport:
    return check_all(store, catalog, grace_seconds=kw.get("grace", 0))


def path(store: ObjectStore, key: str) -> Path:
    local = store.local_path(key)
    assert local is not None
    return local


def sql(tmp_path: Path, statement: str) -> None:
    with sqlite3.connect(tmp_path / "catalog.db") as db:
        db.execute(statement)


def test_a_consistent_world_is_ok(world: tuple[ObjectStore, Catalog, IngestResult]) -> None:
    store, catalog, _ = world
    report = check(store, catalog)
    assert report.ok and report.findings == ()
    assert report.checked == {
        "catalog_versions": 1,
        "audit_events": report.checked["audit_events"],
        "raw_ingests": 1,
        "objects_hashed": 3,  # the raw object, the product file and its manifest
        "product_versions": 1,
        "availability_rows": 2,
    }
    assert report.to_json()["counts"] == {"error": 0, "warning": 0, "info": 0}


def test_raw_corrupted_truncated_or_lost(
    world: tuple[ObjectStore, Catalog, IngestResult],
) -> None:
    store, catalog, result = world
    raw = path(store, result.raw_key)
    raw.write_bytes(raw.read_bytes().replace(b"a,1", b"a,9"))  # same size, other bytes
    assert check(store, catalog).kinds("error") == {"raw-corrupted"}
    assert check_all(store, catalog, deep=False).ok  # sizes alone cannot see it
    raw.write_bytes(b"id,n\n")
    assert not check_all(store, catalog, deep=False).ok
    raw.unlink()
    assert check(store, catalog).kinds("error") == {"raw-missing"}


def test_incomplete_ingest_is_a_warning_after_the_grace_period(
    world: tuple[ObjectStore, Catalog, IngestResult], tmp_path: Path
) -> None:
    store, catalog, _ = world
    store.put_bytes("raw/prov/ds/0123456789abcdef/late.csv", b"id,n\n")
    assert check(store, catalog).kinds() == {"incomplete-ingest"}
    young = check(store, catalog, grace=3600)
    assert young.ok and young.kinds() == {"in-progress"} and young.of("info")
    old = time.time() - 7200
    os.utime(path(store, "raw/prov/ds/0123456789abcdef/late.csv"), (old, old))
    assert check(store, catalog, grace=3600).kinds("warning") == {"incomplete-ingest"}


def test_quarantined_ingest_is_complete_and_its_copy_checked(
    world: tuple[ObjectStore, Catalog, IngestResult], tmp_path: Path
) -> None:
    store, catalog, _ = world
    bad = tmp_path / "bad.csv"
    bad.write_text("id,n\na,not-a-number\n")
    with pytest.raises(IngestRejected):
        ingest_file(store, "prov", "ds", SPEC, bad)
    assert check(store, catalog).findings == ()  # raw without _ingest.json, but quarantined
    [copy] = [i.key for i in store.list("quarantine/") if i.key.endswith("/bad.csv")]
    path(store, copy).write_bytes(b"id,n\n")
    assert check(store, catalog).kinds("error") == {"quarantine-copy-corrupted"}


def test_versions_without_a_manifest(
    world: tuple[ObjectStore, Catalog, IngestResult], tmp_path: Path
) -> None:
    store, catalog, _ = world
    store.put_bytes("products/p1/9.9.9/part-00000.parquet", b"x")  # nobody's version
    assert check(store, catalog).kinds() == {"orphan-version-folder"}
    assert check(store, catalog, grace=3600).kinds("warning") == set()  # may be a live build
    store.delete("products/p1/9.9.9/part-00000.parquet")
    store.delete(f"{VERSION}/manifest.json")  # published, then its manifest lost
    report = check(store, catalog)
    assert report.kinds("error") == {"published-without-manifest"}
    sql(tmp_path, "UPDATE versions SET status = 'staged'")  # invisible and not published: fine
    report = check(store, catalog)
    assert report.ok and report.kinds("warning") == {"incomplete-version", "available-unpublished"}


def test_manifest_files_missing_corrupted_or_unlisted(
    world: tuple[ObjectStore, Catalog, IngestResult],
) -> None:
    store, catalog, _ = world
    part = path(store, f"{VERSION}/part-00000.parquet")
    data = part.read_bytes()
    part.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert check(store, catalog).kinds("error") == {"file-corrupted"}
    part.unlink()
    assert check(store, catalog).kinds("error") == {"manifest-file-missing"}
    part.write_bytes(data)
    store.put_bytes(f"{VERSION}/extra.parquet", b"x")
    assert check(store, catalog).kinds() == {"unlisted-object"}


def test_manifest_unknown_to_the_catalog(world: tuple[ObjectStore, Catalog, IngestResult]) -> None:
    store, catalog, _ = world
    for info in list(store.list(f"{VERSION}/")):
        store.copy(info.key, info.key.replace("/1.0.0/", "/2.0.0/"))
    assert check(store, catalog).kinds("error") == {"version-not-in-catalog", "manifest-invalid"}


def test_catalog_content_hash_or_manifest_uri_differs(
    world: tuple[ObjectStore, Catalog, IngestResult], tmp_path: Path
) -> None:
    store, catalog, _ = world
    sql(tmp_path, "UPDATE versions SET manifest_uri = NULL")
    assert check(store, catalog).kinds() == {"manifest-uri-mismatch"}
    sql(tmp_path, "UPDATE versions SET content_hash = 'other'")
    # the audited `version` event contradicts the row too (trail_state, issue 15 R3)
    assert check(store, catalog).kinds("error") == {"content-hash-mismatch", "trail-version"}


def test_market_status_without_the_gates_decision(
    world: tuple[ObjectStore, Catalog, IngestResult], tmp_path: Path
) -> None:
    store, catalog, _ = world
    sql(tmp_path, "UPDATE availability SET status = 'available' WHERE market = 'MY'")
    report = check(store, catalog)
    assert report.kinds("error") == {"availability-mismatch", "trail-market"}
    assert "MY is available, its last recorded decision says pending_approval" in str(report)
    sql(
        tmp_path,
        "INSERT INTO availability (version_id, market, status, updated_at) "
        "VALUES (1, 'SG', 'available', '2026-01-01')",
    )
    assert check(store, catalog).kinds("error") == {
        "availability-mismatch",
        "availability-undecided",
        "trail-market",
    }


def test_audit_chain_edited_and_ingest_unaudited(
    world: tuple[ObjectStore, Catalog, IngestResult], tmp_path: Path
) -> None:
    store, catalog, _ = world
    sql(tmp_path, "DELETE FROM audit_events WHERE kind = 'ingest'")
    assert check(store, catalog).kinds("warning") == {"ingest-unaudited"}
    sql(tmp_path, "UPDATE audit_events SET actor = 'someone' WHERE seq = 1")
    assert "audit-chain" in check(store, catalog).kinds("error")


def test_leftovers_are_info_only(
    world: tuple[ObjectStore, Catalog, IngestResult], tmp_path: Path
) -> None:
    store, catalog, _ = world
    store.put_bytes("staging/prov/ds/0123456789abcdef/data.parquet", b"x")
    store.put_bytes("staging/products/p1/feedface/part-00000.parquet", b"x")
    (tmp_path / "store" / ".tmp").mkdir(exist_ok=True)
    (tmp_path / "store" / ".tmp" / "put-abc").write_bytes(b"half")
    report = check(store, catalog)
    assert report.ok and report.kinds("warning") == set()
    assert report.kinds("info") == {"orphan-staging", "orphan-temp"}
    assert len(report.of("info")) == 3


@pytest.mark.e2e
def test_cli_verify_all(world: tuple[ObjectStore, Catalog, IngestResult], tmp_path: Path) -> None:
    """`bourse verify --all` prints the findings, exits 1 on an error, and speaks JSON."""
    store, _, result = world
    project = make_project(tmp_path / "project")
    env = {
        **os.environ,
        "DATABOURSE_CONFIG_DIR": str(project / "configs"),
        "DATABOURSE_STORE_ROOT": str(tmp_path / "store"),
        "DATABOURSE_CATALOG_URL": f"sqlite:///{tmp_path / 'catalog.db'}",
    }
    assert "store and catalog agree: 0 error(s)" in bourse(env, "verify", "--all").stdout
    path(store, result.raw_key).write_bytes(b"id,n\nz,0\nb,2\n")
    failed = bourse(env, "verify", "--all", check=False)
    assert failed.returncode == 1
    assert "ERROR    raw-corrupted" in failed.stdout and "DISAGREE: 1 error(s)" in failed.stdout
    assert "z,0" not in failed.stdout + failed.stderr  # keys and hashes, never values
    quick = bourse(env, "verify", "--all", "--quick", "--json", check=False)
    assert quick.returncode == 0 and json.loads(quick.stdout)["ok"]  # same size: only a hash sees
    missing = bourse(env, "verify", "--json", check=False)
    assert missing.returncode == 1 and "PRODUCT@VERSION" in missing.stderr
