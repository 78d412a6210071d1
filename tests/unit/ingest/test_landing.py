"""Landing discovery: new by content hash, manifests verified, a hash cache trusted when fresh."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from s3_server import client, make_bucket, moto_server, use_dummy_aws_env

from databourse.config import DatasetSpec, ProviderSpec
from databourse.errors import ConfigError, IngestRejected
from databourse.ingest.files import ingest_file
from databourse.ingest.landing import discover
from databourse.ingest.landing_drops import DiscoverResult, Drop
from databourse.ingest.landing_index import HashIndex
from databourse.ingest.landing_manifest import parse_drop_manifest
from databourse.storage.local import LocalStore
from databourse.storage.s3 import S3Store
from databourse.storage.store import ObjectStore

SPEC = DatasetSpec.model_validate(
    {"columns": [{"name": "id", "type": "string"}, {"name": "n", "type": "int64"}]}
)
PROVIDERS = {
    "prov": ProviderSpec.model_validate(
        {"id": "prov", "name": "A provider", "jurisdiction": "CN", "datasets": {"orders": SPEC}}
    )
}
LANDING = "landing/prov/orders"
GOOD = b"id,n\na,1\nb,2\n"
OTHER = b"id,n\nc,3\nd,4\n"  # same size as GOOD, other bytes
INDEX = "staging/landing-index/prov.json"


class CountingLocalStore(LocalStore):
    """A LocalStore that remembers which keys were opened for reading."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opened: list[str] = []

    def open(self, key: str) -> BinaryIO:
        self.opened.append(key)
        return super().open(key)


class CountingS3Store(S3Store):
    """An S3Store that remembers which landing keys were opened (get_bytes opens too)."""

    opened: list[str]

    def open(self, key: str) -> BinaryIO:
        if key.startswith("landing/"):
            self.opened = [*getattr(self, "opened", []), key]
        return super().open(key)


@pytest.fixture
def store(tmp_path: Path) -> CountingLocalStore:
    return CountingLocalStore(tmp_path / "store")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def land(store: ObjectStore, name: str, data: bytes, folder: str = LANDING) -> str:
    key = f"{folder}/{name}"
    store.put_bytes(key, data)
    return key


def manifest(*files: dict[str, Any]) -> bytes:
    return json.dumps({"files": list(files)}).encode()


def entry(name: str, data: bytes, rows: int | None = None, **extra: Any) -> dict[str, Any]:
    item = {"name": name, "sha256": sha(data), "size": len(data), **extra}
    return item if rows is None else {**item, "rows": rows}


def by_name(result: DiscoverResult) -> dict[str, Drop]:
    return {d.name: d for d in result.drops}


def ingest_landed(store: LocalStore, key: str) -> None:
    path = store.local_path(key)
    assert path is not None
    ingest_file(store, "prov", "orders", SPEC, path)


def test_new_drop_is_hashed_and_listed_as_new(store: CountingLocalStore) -> None:
    key = land(store, "a.csv", GOOD)
    result = discover(store, PROVIDERS)
    (drop,) = result.drops
    assert drop == Drop("prov", "orders", key, "a.csv", len(GOOD), sha(GOOD), sha(GOOD)[:16], "new")
    assert result.new == [drop]
    assert result.summary()["new"] == 1 and sum(result.summary().values()) == 1


def test_ingested_then_renamed_reupload_is_not_new(store: CountingLocalStore) -> None:
    key = land(store, "a.csv", GOOD)
    ingest_landed(store, key)
    renamed = land(store, "b-renamed.csv", GOOD)
    drops = by_name(discover(store, PROVIDERS))
    assert drops["a.csv"].status == "ingested" and drops["a.csv"].duplicate_of is None
    assert (drops["b-renamed.csv"].status, drops["b-renamed.csv"].duplicate_of) == ("ingested", key)
    assert renamed == drops["b-renamed.csv"].key


def test_quarantined_drop_is_not_new(store: CountingLocalStore) -> None:
    key = land(store, "bad.csv", b"id,wrong\n1,2\n")
    with pytest.raises(IngestRejected):
        ingest_landed(store, key)
    (drop,) = discover(store, PROVIDERS).drops
    assert drop.status == "quarantined"


def test_same_content_under_two_names_is_new_once(store: CountingLocalStore) -> None:
    first = land(store, "a.csv", GOOD)
    land(store, "sub/b.csv", GOOD)  # another folder of the same dataset
    land(store, "c.csv", OTHER)
    result = discover(store, PROVIDERS)
    drops = by_name(result)
    assert [d.name for d in result.new] == ["a.csv", "c.csv"]
    assert (drops["b.csv"].status, drops["b.csv"].duplicate_of) == ("duplicate", first)
    assert drops["b.csv"].sha256 == drops["a.csv"].sha256


def test_unknown_provider_and_dataset_are_reported_never_read(store: CountingLocalStore) -> None:
    land(store, "x.csv", GOOD, "landing/prov/invoices")
    land(store, "x.csv", GOOD, "landing/stranger/orders")
    land(store, "loose.csv", GOOD, "landing/prov")
    land(store, "top.csv", GOOD, "landing")
    drops = {d.key: d for d in discover(store, PROVIDERS).drops}
    assert drops["landing/prov/invoices/x.csv"].status == "unknown_dataset"
    assert "invoices" in (drops["landing/prov/invoices/x.csv"].reason or "")
    assert drops["landing/prov/loose.csv"].status == "unknown_dataset"
    assert drops["landing/stranger/orders/x.csv"].status == "unknown_provider"
    assert drops["landing/top.csv"].status == "unknown_provider"
    assert all(d.sha256 is None for d in drops.values())
    assert store.opened == []


def test_one_provider_only_and_unknown_provider_argument(store: CountingLocalStore) -> None:
    land(store, "a.csv", GOOD)
    land(store, "x.csv", GOOD, "landing/stranger/orders")
    assert [d.provider for d in discover(store, PROVIDERS, "prov").drops] == ["prov"]
    with pytest.raises(ConfigError, match="stranger"):
        discover(store, PROVIDERS, "stranger")


def test_in_flight_and_hidden_objects_are_ignored(store: CountingLocalStore) -> None:
    for name in (".DS_Store", "a.csv.part", "a.csv.tmp", "a.csv.crdownload", ".b.csv"):
        land(store, name, GOOD)
    assert discover(store, PROVIDERS).drops == ()


def test_unusable_file_name_is_invalid(store: CountingLocalStore) -> None:
    land(store, "a..b.csv", GOOD)
    land(store, "订单 copy.csv", GOOD + b"x,y\n")  # not ASCII: ingest gives it a safe key
    drops = by_name(discover(store, PROVIDERS))
    assert drops["a..b.csv"].status == "invalid" and "rename" in (drops["a..b.csv"].reason or "")
    assert drops["订单 copy.csv"].status == "new"


def test_sidecar_manifest_verified_rows_returned(store: CountingLocalStore) -> None:
    key = land(store, "a.csv", GOOD)
    sidecar = land(store, "a.csv.manifest.json", manifest(entry("a.csv", GOOD, rows=2)))
    result = discover(store, PROVIDERS)
    drops = by_name(result)
    assert [d.key for d in result.new] == [key]
    assert (drops["a.csv"].expected_rows, drops["a.csv"].manifest_key) == (2, sidecar)
    assert drops["a.csv.manifest.json"].status == "manifest"
    assert drops["a.csv.manifest.json"].sha256 == sha(store.get_bytes(sidecar))


def test_sidecar_sha256_mismatch_is_invalid(store: CountingLocalStore) -> None:
    land(store, "a.csv", GOOD)
    land(store, "a.csv.manifest.json", manifest({**entry("a.csv", GOOD), "sha256": sha(OTHER)}))
    drop = by_name(discover(store, PROVIDERS))["a.csv"]
    assert drop.status == "invalid"
    assert "a.csv" in (drop.reason or "") and "sha256" in (drop.reason or "")


def test_sidecar_size_mismatch_is_invalid(store: CountingLocalStore) -> None:
    land(store, "a.csv", GOOD)
    land(store, "a.csv.manifest.json", manifest({**entry("a.csv", GOOD), "size": len(GOOD) + 1}))
    drop = by_name(discover(store, PROVIDERS))["a.csv"]
    assert drop.status == "invalid"
    assert "a.csv" in (drop.reason or "") and "size" in (drop.reason or "")
    assert "sha256" not in (drop.reason or "")


def test_mismatch_holds_the_rest_of_a_multi_file_drop(store: CountingLocalStore) -> None:
    land(store, "a.csv", GOOD)
    land(store, "b.csv", OTHER)
    land(store, "drop.manifest.json", manifest(entry("a.csv", GOOD), entry("b.csv", GOOD)))
    drops = by_name(discover(store, PROVIDERS))
    assert drops["b.csv"].status == "invalid"
    assert drops["a.csv"].status == "waiting" and "b.csv" in (drops["a.csv"].reason or "")


def test_manifest_listing_missing_file_waits_until_complete(store: CountingLocalStore) -> None:
    land(store, "a.csv", GOOD)
    land(store, "drop.manifest.json", manifest(entry("a.csv", GOOD), entry("b.csv", OTHER, 2)))
    drops = by_name(discover(store, PROVIDERS))
    assert drops["a.csv"].status == "waiting" and "b.csv" in (drops["a.csv"].reason or "")
    assert drops["drop.manifest.json"].status == "waiting"
    assert "b.csv" in (drops["drop.manifest.json"].reason or "")
    land(store, "b.csv", OTHER)
    drops = by_name(discover(store, PROVIDERS))
    assert {n: d.status for n, d in drops.items()} == {
        "a.csv": "new",
        "b.csv": "new",
        "drop.manifest.json": "manifest",
    }
    assert drops["b.csv"].expected_rows == 2 and drops["a.csv"].expected_rows is None


def test_listed_file_already_ingested_and_removed_counts_as_present(
    store: CountingLocalStore,
) -> None:
    ingest_landed(store, land(store, "a.csv", GOOD))
    store.delete(f"{LANDING}/a.csv")
    land(store, "b.csv", OTHER)
    land(store, "drop.manifest.json", manifest(entry("a.csv", GOOD), entry("b.csv", OTHER)))
    assert by_name(discover(store, PROVIDERS))["b.csv"].status == "new"


def test_invalid_manifest_json_blocks_its_file_only(store: CountingLocalStore) -> None:
    land(store, "a.csv", GOOD)
    land(store, "a.csv.manifest.json", b'{"files": [')
    land(store, "b.csv", OTHER)
    drops = by_name(discover(store, PROVIDERS))
    assert drops["a.csv.manifest.json"].status == "invalid"
    assert "JSON" in (drops["a.csv.manifest.json"].reason or "")
    assert drops["a.csv"].status == "invalid" and "manifest" in (drops["a.csv"].reason or "")
    assert drops["b.csv"].status == "new"


def test_invalid_folder_manifest_blocks_its_folder(store: CountingLocalStore) -> None:
    land(store, "a.csv", GOOD, f"{LANDING}/batch1")
    land(store, "batch.manifest.json", b"[]", f"{LANDING}/batch1")
    land(store, "b.csv", OTHER, f"{LANDING}/batch2")
    drops = by_name(discover(store, PROVIDERS))
    assert (drops["a.csv"].status, drops["b.csv"].status) == ("invalid", "new")


@pytest.mark.parametrize(
    ("files", "where"),
    [
        ([{"name": "../a.csv", "sha256": "0" * 64}], "files.0.name"),
        ([{"name": "sub/a.csv", "sha256": "0" * 64}], "files.0.name"),
        ([{"name": "a.csv", "sha256": "0" * 64, "owner": "x"}], "files.0.owner"),
        ([{"name": "a.csv", "sha256": "zz"}], "files.0.sha256"),
        ([{"name": "a.csv", "sha256": "0" * 64, "rows": "12"}], "files.0.rows"),
        ([{"name": "a.csv", "sha256": "0" * 64, "size": -1}], "files.0.size"),
        ([{"name": "a.csv", "sha256": "0" * 64}] * 2, "files"),
        ([], "files"),
    ],
)
def test_manifest_format_is_strict(files: list[dict[str, Any]], where: str) -> None:
    problem = parse_drop_manifest(json.dumps({"files": files}).encode())
    assert isinstance(problem, str) and f"{where}:" in problem


def test_manifest_with_traversal_reported_invalid(store: CountingLocalStore) -> None:
    land(store, "a.csv", GOOD)
    land(store, "a.csv.manifest.json", manifest(entry("../../raw/a.csv", GOOD)))
    drops = by_name(discover(store, PROVIDERS))
    assert drops["a.csv.manifest.json"].status == "invalid"
    assert "files.0.name" in (drops["a.csv.manifest.json"].reason or "")
    assert drops["a.csv"].status == "invalid"


def test_cache_hit_does_not_reread(store: CountingLocalStore) -> None:
    land(store, "a.csv", GOOD)
    land(store, "b.csv", OTHER)
    first = discover(store, PROVIDERS)
    assert sorted(store.opened) == [f"{LANDING}/a.csv", f"{LANDING}/b.csv"]
    assert set(json.loads(store.get_bytes(INDEX))["entries"]) == {d.key for d in first.drops}
    store.opened.clear()
    assert discover(store, PROVIDERS) == first
    assert store.opened == []


def test_cache_invalidated_when_bytes_change(store: CountingLocalStore) -> None:
    key = land(store, "a.csv", GOOD)
    discover(store, PROVIDERS)
    store.put_bytes(key, OTHER)  # same key, same size, new bytes
    store.opened.clear()
    (drop,) = discover(store, PROVIDERS).drops
    assert (drop.sha256, store.opened) == (sha(OTHER), [key])


def test_cache_entry_with_other_size_is_not_trusted(store: CountingLocalStore) -> None:
    key = land(store, "a.csv", GOOD)
    discover(store, PROVIDERS)
    index = json.loads(store.get_bytes(INDEX))
    index["entries"][key].update(size=len(GOOD) + 1, sha256=sha(OTHER))
    store.put_bytes(INDEX, json.dumps(index).encode())
    (drop,) = discover(store, PROVIDERS).drops
    assert drop.sha256 == sha(GOOD)


def test_corrupt_cache_is_rebuilt(store: CountingLocalStore) -> None:
    land(store, "a.csv", GOOD)
    store.put_bytes(INDEX, b"not json")
    (drop,) = discover(store, PROVIDERS).drops
    assert drop.sha256 == sha(GOOD)
    assert json.loads(store.get_bytes(INDEX))["format"] == 1


def test_concurrent_saves_merge_and_prune(store: CountingLocalStore) -> None:
    key_a, key_b = land(store, "a.csv", GOOD), land(store, "b.csv", OTHER)
    run_1, run_2 = HashIndex.load(store, "prov"), HashIndex.load(store, "prov")
    info_a, info_b = store.head(key_a), store.head(key_b)
    assert info_a is not None and info_b is not None
    run_1.record(info_a, "stamp-a", sha(GOOD))
    run_2.record(info_b, "stamp-b", sha(OTHER))
    run_1.save(store, [key_a, key_b])
    run_2.save(store, [key_a, key_b])
    assert set(json.loads(store.get_bytes(INDEX))["entries"]) == {key_a, key_b}
    HashIndex.load(store, "prov").save(store, [key_b])  # a.csv left landing
    assert set(json.loads(store.get_bytes(INDEX))["entries"]) == {key_b}


def test_object_changed_while_read_waits(tmp_path: Path) -> None:
    class RewritingStore(LocalStore):
        def open(self, key: str) -> BinaryIO:
            reader = super().open(key)
            self.put_bytes(key, OTHER)  # a provider overwrites the file mid-read
            return reader

    store = RewritingStore(tmp_path / "store")
    land(store, "a.csv", GOOD)
    (drop,) = discover(store, PROVIDERS).drops
    assert (drop.status, drop.sha256) == ("waiting", None)
    assert "changed" in (drop.reason or "")
    assert HashIndex.load(store, "prov").entries == {}  # a torn read is never cached


def test_crash_after_raw_upload_leaves_drop_new(store: CountingLocalStore) -> None:
    key = land(store, "a.csv", GOOD)
    raw = f"raw/prov/orders/{sha(GOOD)[:16]}"
    store.put_bytes(f"{raw}/a.csv", GOOD)  # the crash: raw written, `_ingest.json` never was
    assert [d.key for d in discover(store, PROVIDERS).new] == [key]
    store.put_bytes(f"{raw}/_ingest.json", b"")  # a torn record is no record
    assert [d.key for d in discover(store, PROVIDERS).new] == [key]
    store.delete(f"{raw}/_ingest.json")
    ingest_landed(store, key)  # the re-run completes it
    assert discover(store, PROVIDERS).new == []


def test_result_is_json_and_round_trips(store: CountingLocalStore) -> None:
    land(store, "b.csv", OTHER)
    land(store, "a.csv", GOOD)
    land(store, "a.csv.manifest.json", manifest(entry("a.csv", GOOD, rows=2)))
    land(store, "x.csv", GOOD, "landing/stranger/orders")
    result = discover(store, PROVIDERS)
    data = json.loads(json.dumps(result.to_json()))
    assert [d["key"] for d in data["drops"]] == sorted(d["key"] for d in data["drops"])
    assert DiscoverResult.from_json(data) == result
    assert data["summary"]["manifest"] == 1 and data["summary"]["unknown_provider"] == 1


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.sampled_from([GOOD, OTHER, b"x"]))))
def test_each_distinct_content_is_new_exactly_once(files: list[tuple[str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp))
        for name, data in files:
            land(store, f"{name}.csv", data)
        result = discover(store, PROVIDERS)
        contents = {store.get_bytes(d.key) for d in result.drops}
        assert sorted(d.sha256 or "" for d in result.new) == sorted(sha(c) for c in contents)
        firsts = {d.key: d for d in result.new}
        for drop in result.drops:
            assert drop.status in ("new", "duplicate")
            if drop.duplicate_of:
                assert firsts[drop.duplicate_of].sha256 == drop.sha256


# ---------------------------------------------------------------- S3 (moto server process)
@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_store(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> CountingS3Store:
    use_dummy_aws_env(monkeypatch)
    bucket = f"landing-{uuid4().hex[:12]}"
    make_bucket(s3_endpoint, bucket)
    store = CountingS3Store(bucket, "root", endpoint_url=s3_endpoint)
    store.opened = []
    return store


def test_s3_cache_by_etag_and_invalidation(s3_store: CountingS3Store) -> None:
    key = land(s3_store, "a.csv", GOOD)
    assert discover(s3_store, PROVIDERS).new[0].sha256 == sha(GOOD)
    s3_store.opened = []
    assert discover(s3_store, PROVIDERS).new[0].sha256 == sha(GOOD)
    assert s3_store.opened == []
    s3_store.put_bytes(key, OTHER)
    assert discover(s3_store, PROVIDERS).new[0].sha256 == sha(OTHER)
    assert s3_store.opened == [key]


def test_s3_noise_ignored_manifest_checked(s3_store: CountingS3Store, s3_endpoint: str) -> None:
    client(s3_endpoint).put_object(Bucket=s3_store.bucket, Key=f"root/{LANDING}/batch/", Body=b"")
    land(s3_store, "a.csv.part", GOOD)
    land(s3_store, "a.csv", GOOD, f"{LANDING}/batch")
    land(s3_store, "a.csv.manifest.json", manifest(entry("a.csv", OTHER)), f"{LANDING}/batch")
    drops = {d.key: d for d in discover(s3_store, PROVIDERS).drops}
    assert sorted(drops) == [f"{LANDING}/batch/a.csv", f"{LANDING}/batch/a.csv.manifest.json"]
    assert drops[f"{LANDING}/batch/a.csv"].status == "invalid"


def test_s3_ingested_is_not_new(s3_store: CountingS3Store, tmp_path: Path) -> None:
    land(s3_store, "a.csv", GOOD)
    source = tmp_path / "a.csv"
    source.write_bytes(GOOD)
    ingest_file(s3_store, "prov", "orders", SPEC, source)
    (drop,) = discover(s3_store, PROVIDERS).drops
    assert drop.status == "ingested"
