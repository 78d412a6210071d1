"""Packaging: deterministic content hash, manifest schema, ODRL policy, manifest written last."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from helpers import sample_manifest

from databourse.config import UsageTerms
from databourse.errors import CatalogError, StorageError
from databourse.product.package import (
    MANIFEST_SCHEMA,
    content_hash,
    publish_files,
    read_manifest,
    schema_of,
    validate_manifest,
    write_parquet,
)
from databourse.storage.opening import open_store
from databourse.storage.store import ObjectStore
from databourse.transfer.odrl import EXCHANGE, PROFILE, usage_policy

TABLE = pa.table({"id": ["a", "b", "c"], "amount": [1.5, 2.0, None]})
SHA = "0" * 64
TERMS = UsageTerms(purposes=["research"], expires=dt.date(2027, 1, 31))


def manifest(tmp_path: Path, **override: Any) -> dict[str, Any]:
    files = override.pop("files", None) or write_parquet(TABLE, tmp_path / "out")
    return sample_manifest(TABLE, files, terms=TERMS, **override)


def test_content_hash_is_deterministic_and_covers_the_config(tmp_path: Path) -> None:
    first = write_parquet(TABLE, tmp_path / "a")
    second = write_parquet(TABLE, tmp_path / "b")
    assert first == second  # same table, same bytes
    schema = schema_of(TABLE)
    assert content_hash(first, schema, SHA) == content_hash(second, schema, SHA)
    assert content_hash(first, schema, "1" * 64) != content_hash(first, schema, SHA)
    other = write_parquet(TABLE.slice(0, 2), tmp_path / "c")
    assert content_hash(other, schema, SHA) != content_hash(first, schema, SHA)


def test_manifest_matches_the_published_schema(tmp_path: Path) -> None:
    m = manifest(tmp_path)
    validate_manifest(json.loads(json.dumps(m)))  # as read back from JSON
    assert json.loads(MANIFEST_SCHEMA.read_text())["$id"].endswith("manifest-1.json")


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ({"content_hash": "not-a-hash"}, "content_hash"),
        ({"quality": {"success": False, "report": "x"}}, "quality/success"),
        ({"markets": ["Malaysia"]}, "markets/0"),
        ({"version": "1.0"}, "version"),
        ({"usage_policy": {}}, "usage_policy"),
    ],
)
def test_bad_manifest_refused_with_every_problem(
    tmp_path: Path, override: dict[str, Any], where: str
) -> None:
    with pytest.raises(CatalogError) as info:
        manifest(tmp_path, **override)
    assert any(p.startswith(where) for p in info.value.problems), info.value.problems


def test_odrl_policy_says_what_a_buyer_may_do() -> None:
    policy = usage_policy("p1", "1.0.0", SHA, TERMS, ["MY", "SG"])
    assert policy["@type"] == "Offer" and policy["uid"].startswith("urn:databourse:p1:1.0.0")
    [permission] = policy["permission"]
    constraints = permission["constraint"][0]["and"]
    by_operand = {c["leftOperand"]: c["rightOperand"] for c in constraints}
    assert by_operand["purpose"] == {"@list": ["research"]}  # one set of values, not several
    assert [s["@id"][-3:] for s in by_operand["spatial"]["@list"]] == ["MYS", "SGP"]
    assert by_operand["dateTime"]["@value"] == "2027-01-31"
    assert policy["conflict"] == "prohibit" and policy["assigner"]["@id"] == EXCHANGE
    actions = {
        p["action"] if isinstance(p["action"], str) else p["action"]["@id"]
        for p in policy["prohibition"]
    }
    # onward transfer is our profile's action: odrl:transfer means a transfer of ownership
    assert actions == {"distribute", f"{PROFILE}#onwardTransfer", f"{PROFILE}#reidentify"}
    allowed = usage_policy(
        "p1",
        "1.0.0",
        SHA,
        UsageTerms(purposes=["x"], onward_transfer_allowed=True, reidentification_prohibited=False),
        ["MY"],
    )
    assert allowed["prohibition"] == []


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return open_store(str(tmp_path / "store"))


def test_manifest_written_last_and_publish_is_idempotent(
    tmp_path: Path, store: ObjectStore
) -> None:
    m = manifest(tmp_path)
    files = write_parquet(TABLE, tmp_path / "out")
    assert read_manifest(store, "p1", "1.0.0") is None
    uri = publish_files(store, "p1", "1.0.0", tmp_path / "out", files, m)
    assert uri.endswith("products/p1/1.0.0/manifest.json")
    assert read_manifest(store, "p1", "1.0.0") == json.loads(json.dumps(m))
    keys = [o.key for o in store.list("products/p1/1.0.0/")]
    assert keys == ["products/p1/1.0.0/manifest.json", "products/p1/1.0.0/part-00000.parquet"]
    assert publish_files(store, "p1", "1.0.0", tmp_path / "out", files, m) == uri


def test_leftover_file_with_other_bytes_is_never_overwritten(
    tmp_path: Path, store: ObjectStore
) -> None:
    files = write_parquet(TABLE, tmp_path / "out")
    store.put_bytes("products/p1/1.0.0/part-00000.parquet", b"something else")
    with pytest.raises(StorageError):
        publish_files(store, "p1", "1.0.0", tmp_path / "out", files, manifest(tmp_path))
    assert read_manifest(store, "p1", "1.0.0") is None  # not visible
    assert store.get_bytes("products/p1/1.0.0/part-00000.parquet") == b"something else"


def test_partitioned_files_under_a_row_cap_read_back_by_outside_readers(tmp_path: Path) -> None:
    import duckdb
    import pyarrow.dataset as ds

    table = pa.table({"site": ["b", "a", "b", None, "a", "b"] * 500, "value": list(range(3000))})
    files = write_parquet(table, tmp_path / "v", partition_by="site", max_rows_per_file=1000)
    paths = [f.path for f in files]
    assert paths == [
        "site=a/part-00000.parquet",
        "site=b/part-00000.parquet",
        "site=b/part-00001.parquet",
        "site=__HIVE_DEFAULT_PARTITION__/part-00000.parquet",
    ]
    assert (
        write_parquet(table, tmp_path / "w", partition_by="site", max_rows_per_file=1000) == files
    )  # deterministic
    back = ds.dataset(tmp_path / "v", format="parquet", partitioning="hive").to_table()
    assert back.num_rows == 3000 and sorted(back["value"].to_pylist()) == list(range(3000))
    [(rows, b_rows)] = duckdb.sql(
        f"SELECT count(*), count(*) FILTER (WHERE site = 'b') FROM read_parquet("
        f"'{tmp_path / 'v'}/*/*.parquet', hive_partitioning = true)"
    ).fetchall()
    assert (rows, b_rows) == (3000, 1500)
    validate_manifest(json.loads(json.dumps(manifest(tmp_path, files=files))))
