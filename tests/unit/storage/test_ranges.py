"""Ranged reads of the staged Parquet (issue 23 item 3): a pass reads only its row groups' bytes,
on the local store and on a real S3 server (moto), each block checked against the plan's hashes."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databourse.errors import ObjectChanged
from databourse.product.partitions import plan_partitions, read_partition
from databourse.storage.local import LocalStore
from databourse.storage.ranges import VerifiedObject, block_digests
from databourse.storage.store import ObjectStore

KEY = "staging/sz-retail/customer_orders/0123456789abcdef/data.parquet"
BLOCK = 64 << 10  # small blocks, so that a row group spans several


def staged_file(path: Path, rows: int = 200_000, group: int = 20_000) -> Path:
    """A staged-like Parquet file of 10 row groups, incompressible enough to span many blocks."""
    rng = random.Random(7)
    table = pa.table(
        {
            "order_id": [f"O{i:08d}" for i in range(rows)],
            "amount": [rng.random() * 1000 for _ in range(rows)],
            "district": [rng.choice(["Futian", "Nanshan", "Luohu"]) for _ in range(rows)],
        }
    )
    pq.write_table(table, path, row_group_size=group)
    return path


class Counting:
    """Counts the bytes a store hands out through get_range (and refuses whole reads)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store, self.ranged = store, 0

    def get_range(self, key: str, start: int, length: int) -> bytes:
        data = self.store.get_range(key, start, length)
        self.ranged += len(data)
        return data

    def uri(self, key: str) -> str:
        return self.store.uri(key)


@pytest.fixture(params=["local", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
        return
    from s3_server import make_bucket, moto_server, use_dummy_aws_env

    from databourse.storage.s3 import S3Store

    use_dummy_aws_env(monkeypatch)
    with moto_server() as endpoint:
        make_bucket(endpoint, "staging")
        yield S3Store("staging", "root", endpoint_url=endpoint)


def opened(store: Any, blocks: dict[str, Any]) -> tuple[VerifiedObject, pa.NativeFile]:
    raw = VerifiedObject(store, KEY, blocks)
    return raw, pa.PythonFile(raw, mode="r")


def test_a_partition_reads_only_its_blocks_and_the_same_records(
    store: ObjectStore, tmp_path: Path
) -> None:
    path = staged_file(tmp_path / "data.parquet")
    store.put_file(KEY, path)
    blocks = block_digests(path, BLOCK)
    size = path.stat().st_size
    assert blocks["size"] == size and len(blocks["sha256"]) == -(-size // BLOCK) > 10
    parts = plan_partitions(path, rows=40_000)
    assert len(parts) == 5
    counting = Counting(store)
    for part in parts:
        raw, source = opened(counting, blocks)
        before = counting.ranged
        got = [t for _, t in read_partition(source, part, ["order_id", "amount"])]
        want = [t for _, t in read_partition(path, part, ["order_id", "amount"])]
        assert pa.concat_tables(got).equals(pa.concat_tables(want))
        assert raw.fetched == counting.ranged - before
        # its two row groups of ten, the footer, and at most a block either side of each
        assert raw.fetched < size / 5 + 4 * BLOCK, (raw.fetched, size)


def test_any_range_reads_the_objects_bytes(store: ObjectStore, tmp_path: Path) -> None:
    path = staged_file(tmp_path / "data.parquet", rows=30_000, group=5_000)
    store.put_file(KEY, path)
    data = path.read_bytes()
    raw, _ = opened(store, block_digests(path, BLOCK))
    rng = random.Random(3)
    for _ in range(60):
        start = rng.randrange(0, len(data) + 10)
        length = rng.choice([0, 1, 7, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK, len(data)])
        raw.seek(start)
        assert raw.read(length) == data[start : start + length]
    raw.seek(-8, 2)
    assert raw.read() == data[-8:]


def test_a_block_rewritten_after_the_plan_is_refused_and_others_still_read(
    store: ObjectStore, tmp_path: Path
) -> None:
    path = staged_file(tmp_path / "data.parquet")
    blocks = block_digests(path, BLOCK)
    parts = plan_partitions(path, rows=40_000)
    data = bytearray(path.read_bytes())
    meta = pq.ParquetFile(path).metadata
    first = meta.row_group(0).column(1)  # the first group's amounts: inside partition 0
    begins = first.dictionary_page_offset if first.has_dictionary_page else first.data_page_offset
    at = begins + first.total_compressed_size // 2
    data[at] ^= 0xFF
    store.put_bytes(KEY, bytes(data))  # an insider rewrites one byte in the store

    with pytest.raises(ObjectChanged) as info:
        _, source = opened(store, blocks)
        list(read_partition(source, parts[0], ["amount"]))
    assert info.value.block == at // BLOCK  # type: ignore[attr-defined]
    assert store.uri(KEY) in str(info.value) and "changed after the plan read" in str(info.value)
    # The last partition's bytes and the footer are untouched: it reads as planned.
    _, source = opened(store, blocks)
    got = pa.concat_tables([t for _, t in read_partition(source, parts[-1], ["amount"])])
    assert got.equals(pa.concat_tables([t for _, t in read_partition(path, parts[-1], ["amount"])]))


def test_an_object_grown_or_cut_is_refused(store: ObjectStore, tmp_path: Path) -> None:
    path = staged_file(tmp_path / "data.parquet", rows=30_000, group=5_000)
    blocks = block_digests(path, BLOCK)
    store.put_bytes(KEY, path.read_bytes()[:-100])  # the footer's block is short now
    raw, _ = opened(store, blocks)
    raw.seek(-8, 2)
    with pytest.raises(ObjectChanged):
        raw.read()


def test_block_digests_are_the_blocks_and_the_files_sha256(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"a" * 10 + b"b" * 10 + b"c" * 3)
    assert block_digests(path, 10) == {
        "block": 10,
        "size": 23,
        "sha256": [hashlib.sha256(x).hexdigest() for x in (b"a" * 10, b"b" * 10, b"c" * 3)],
        "whole": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def test_memory_is_bounded_whatever_the_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read of the whole object goes in GETs of at most RUN_BYTES; at most CACHE_BYTES (or
    two blocks) of it stay in memory."""
    from databourse.storage import ranges

    monkeypatch.setattr(ranges, "RUN_BYTES", 3 * BLOCK)
    monkeypatch.setattr(ranges, "CACHE_BYTES", 4 * BLOCK)
    store = LocalStore(tmp_path / "store")
    path = staged_file(tmp_path / "data.parquet", rows=60_000, group=10_000)
    store.put_file(KEY, path)
    calls: list[int] = []

    class Recording(Counting):
        def get_range(self, key: str, start: int, length: int) -> bytes:
            calls.append(length)
            return super().get_range(key, start, length)

    raw = VerifiedObject(Recording(store), KEY, block_digests(path, BLOCK))
    assert raw.read() == path.read_bytes()
    assert len(calls) >= path.stat().st_size // (3 * BLOCK) and max(calls) <= 3 * BLOCK
    assert len(raw._cache) == 4  # type: ignore[attr-defined]


def test_a_pass_audits_a_changed_block_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tasks.work_files.source_file: a block changed in the store is audited as a quarantine of
    the staged file; another ObjectChanged raised while the pass reads (a work file) is not."""
    from tasks import staged
    from tasks.work_files import source_file

    audited: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(
        staged.resources, "audit", lambda kind, exc, **kw: audited.append((kind, kw))
    )
    store = LocalStore(tmp_path / "store")
    path = staged_file(tmp_path / "data.parquet", rows=30_000, group=5_000)
    plan = {
        "sealed": {},
        "staged_key": KEY,
        "work": "w",
        "staged": {"blocks": block_digests(path, BLOCK)},
    }
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    store.put_bytes(KEY, bytes(data))
    with pytest.raises(ObjectChanged), source_file(store, plan) as source:
        list(read_partition(source, plan_partitions(path, 10_000)[0], ["amount"]))
    assert audited == [
        ("quarantine", {"provider": "sz-retail", "dataset": "customer_orders", "stage": "staged"})
    ]
    with pytest.raises(ObjectChanged, match="work file"), source_file(store, plan):
        raise ObjectChanged("a work file changed", key="w/x")
    assert len(audited) == 1
