"""Pass 7 findings 5 and 6: the grant's anchor check against concurrent writers and planted objects.

5. The check runs inside a read transaction whose snapshot is fixed at its first read, while the
   store's anchors are listed live: the anchor of an event committed after the snapshot looked
   like a cut-off trail, and legitimate concurrent writes refused reads and grants.
6. Objects a store writer planted under `audit/anchors/` (thousands of names, one huge object)
   were all read, each whole, on every grant's check.
Cut-off events must still be reported, and planted objects still named by the full verify.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from databourse.catalog import trail as audit
from databourse.catalog.database import Catalog
from databourse.catalog.models import AuditEvent
from databourse.catalog.trail_anchors import MAX_ANCHOR_BYTES, NEWEST_READS
from databourse.catalog.trail_state import TrailState
from databourse.storage.local import LocalStore
from databourse.storage.store import ObjectInfo, ObjectStore

SCHEMA = [{"name": "customer_ref", "type": "string"}]


class _CountingReader:
    """A reader that adds what it returns to its store's byte count."""

    def __init__(self, inner: BinaryIO, store: CountingStore) -> None:
        self.inner, self.store = inner, store

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.store.count(len(data))
        return data

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> _CountingReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class CountingStore(ObjectStore):
    """A local store that counts object reads and the bytes they returned (the work measured)."""

    def __init__(self, inner: LocalStore) -> None:
        self.inner, self.root_uri = inner, inner.root_uri
        self.reads = self.bytes_read = self.largest_read = 0

    def count(self, size: int) -> None:
        self.bytes_read += size
        self.largest_read = max(self.largest_read, size)

    def reset(self) -> None:
        self.reads = self.bytes_read = self.largest_read = 0

    def get_bytes(self, key: str) -> bytes:
        self.reads += 1
        data = self.inner.get_bytes(key)
        self.count(len(data))
        return data

    def open(self, key: str) -> BinaryIO:
        self.reads += 1
        return cast(BinaryIO, _CountingReader(self.inner.open(key), self))

    def download(self, key: str, path: Path) -> None:
        self.reads += 1
        self.inner.download(key, path)
        self.count(path.stat().st_size)

    def put_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> ObjectInfo:
        return self.inner.put_bytes(key, data, if_absent=if_absent)

    def put_file(self, key: str, path: Path, *, if_absent: bool = False) -> ObjectInfo:
        return self.inner.put_file(key, path, if_absent=if_absent)

    def head(self, key: str) -> ObjectInfo | None:
        return self.inner.head(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def copy(self, src: str, dst: str, *, if_absent: bool = False) -> ObjectInfo:
        return self.inner.copy(src, dst, if_absent=if_absent)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def uri(self, key: str) -> str:
        return self.inner.uri(key)

    def local_path(self, key: str) -> Path | None:
        return self.inner.local_path(key)

    def access_url(self, key: str, expires_seconds: int) -> str:
        return self.inner.access_url(key, expires_seconds)


Setup = tuple[Catalog, Catalog, CountingStore]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    """Two catalog processes on one database and store; two audited writes, each anchored."""
    store = CountingStore(LocalStore(tmp_path / "store"))
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    cat = Catalog(url, anchor_store=lambda: store)
    cat.create_schema()
    cat.ensure_product("p1", "P", "sz-retail", "orders")
    for content in ("h1", "h2"):
        cat.reserve_version("p1", content, SCHEMA, 4)
    other = Catalog(url, anchor_store=lambda: store)
    yield cat, other, store
    other.close()
    cat.close()


def head(session: Session) -> int:
    return int(session.scalar(select(func.max(AuditEvent.seq))) or 0)


def anchor_problems(session: Session, store: ObjectStore) -> list[str]:
    keys = {k.key_id: k.material for k in audit.session_keys(session)}
    return audit.check_anchors(session, store, keys, newest_only=True).problems


def test_an_anchor_committed_after_the_snapshot_is_no_truncation(setup: Setup) -> None:
    """Finding 5: another process commits and anchors an event inside our read transaction."""
    cat, other, store = setup

    def during(session: Session) -> tuple[list[str], list[str], list[str]]:
        before = head(session)  # the snapshot is fixed here
        other.reserve_version("p1", "h3", SCHEMA, 4)  # committed and anchored meanwhile
        assert head(session) == before, "the snapshot moved: the race is not reproduced"
        assert any(info.key > audit.anchor_key(before) for info in store.list(audit.ANCHORS))
        report = audit.verify(session, store)
        return anchor_problems(session, store), TrailState.of(session).breaks, report.problems

    problems, breaks, verified = cat._read(during)
    assert problems == [] and breaks == [] and verified == [], (problems, breaks, verified)


def test_an_anchored_event_cut_after_the_snapshot_is_still_a_truncation(setup: Setup) -> None:
    """The fresh read is of the committed chain: an event committed, anchored, then cut off
    the end while our snapshot was open is reported, not excused as a concurrent write."""
    cat, other, _store = setup

    def during(session: Session) -> list[str]:
        before = head(session)
        other.reserve_version("p1", "h3", SCHEMA, 4)
        with other.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_events WHERE seq > :s"), {"s": before})
        return TrailState.of(session).breaks

    breaks = cat._read(during)
    assert any("missing from the chain (truncated)" in b for b in breaks), breaks


def cut_last_event(cat: Catalog) -> None:
    with cat.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)")
        )


def test_events_cut_off_the_end_are_still_reported(setup: Setup) -> None:
    cat, _other, store = setup
    assert cat._read(lambda s: TrailState.of(s).breaks) == []  # the control
    cut_last_event(cat)
    breaks = cat._read(lambda s: TrailState.of(s).breaks)
    assert any("missing from the chain (truncated)" in b for b in breaks), breaks
    assert any("truncated" in p for p in cat.audit_verify(store).problems)


def plant(store: CountingStore, key_id: str) -> int:
    """What a store writer without the audit key can do under audit/anchors/; how many objects."""
    folder = store.inner.root / audit.ANCHORS
    fake = {"hash": "0" * 64, "prev_hash": "0" * 64, "mac": "0" * 64, "key_id": key_id}
    fake |= {"event_at": "2026-01-01T00:00:00+00:00", "anchor_mac": "f" * 64}
    for i in range(5000):  # well named, far above the head, a made-up MAC under the real key id
        seq = 10**11 + i
        (folder / f"{seq:012d}.json").write_text(json.dumps(fake | {"seq": seq}))
    for i in range(5000):  # sorting after every anchor name
        (folder / f"z{i:08d}.json").write_bytes(b"")
    with open(folder / "999999999999.json", "wb") as big:  # 50 MB, sorting last of the names
        big.truncate(50 * 2**20)
    return 10_001


def test_planted_objects_cost_a_grant_check_bounded_reads(setup: Setup) -> None:
    """Finding 6: the grant's check reads a bounded number of bounded objects, whatever the
    store holds; the full verify still names every planted object, reading none of it whole."""
    cat, _other, store = setup
    key_id = cat._read(lambda s: audit.session_keys(s)[0].key_id)
    planted = plant(store, key_id)
    store.reset()
    assert cat._read(lambda s: TrailState.of(s).breaks) == []
    assert store.reads <= 2 * NEWEST_READS, store.reads
    assert store.largest_read <= MAX_ANCHOR_BYTES + 1, store.largest_read
    assert store.bytes_read <= 2 * NEWEST_READS * (MAX_ANCHOR_BYTES + 1), store.bytes_read

    store.reset()
    report = cat.audit_verify(store)
    assert report.ok, report.problems
    assert len(report.planted) == planted
    assert all("not authenticated by the audit key (planted" in p for p in report.planted)
    assert store.largest_read <= MAX_ANCHOR_BYTES + 1, store.largest_read
    assert store.reads <= 5000 + 10, store.reads  # the oddly named and the huge one: never read

    cut_last_event(cat)  # the plants hide no cut from the grant's check
    store.reset()
    breaks = cat._read(lambda s: TrailState.of(s).breaks)
    assert any("missing from the chain (truncated)" in b for b in breaks), breaks
    assert store.reads <= 2 * NEWEST_READS, store.reads


def test_write_anchor_reads_a_planted_object_at_its_name_bounded(setup: Setup) -> None:
    """An object planted at the next anchor's name is read at most an anchor's size."""
    cat, _other, store = setup
    nxt = cat._read(head) + 1
    with open(store.inner.root / audit.anchor_key(nxt), "wb") as big:
        big.truncate(50 * 2**20)
    store.reset()
    cat.reserve_version("p1", "h3", SCHEMA, 4)  # anchored beside the planted object
    assert store.largest_read <= MAX_ANCHOR_BYTES + 1, store.largest_read
    names = [info.key for info in store.list(audit.ANCHORS)]
    assert any(name.startswith(audit.anchor_key(nxt)[: -len(".json")] + ".") for name in names)
    assert cat._read(lambda s: TrailState.of(s).breaks) == []
