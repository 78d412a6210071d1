"""The access log's newest rows anchored in the store (`databourse.catalog.access_anchors`),
attacked by an insider who can write the catalog database (and, apart, by one who can write the
store); on SQLite and PostgreSQL.

Before these anchors, the reads logged since the last seal (up to an hour, or SEAL_ROWS rows)
could be cut off the end of the log by someone who can write the database, and
`bourse audit verify` still passed: `test_an_unsealed_tail_cut_after_its_anchor_is_named` fails
on that code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import test_catalog
from test_access_log import _reads, _sql, cat

from databourse.catalog import access_anchors
from databourse.catalog.access_anchors import ACCESS_ANCHORS, anchor_name
from databourse.catalog.database import Catalog
from databourse.errors import AuditError
from databourse.storage.local import LocalStore

catalog_url = test_catalog.catalog_url  # the fixtures: a SQLite file, a PostgreSQL schema
__all__ = ["cat", "catalog_url"]


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def anchors(store: LocalStore) -> list[str]:
    return [info.key for info in store.list(ACCESS_ANCHORS)]


def test_an_unsealed_tail_cut_after_its_anchor_is_named(cat: Catalog, store: LocalStore) -> None:
    _reads(cat, 12)
    cat.seal_access(force=True)  # rows 1-12 sealed into the trail
    _reads(cat, 5, start=12)  # rows 13-17: not sealed for up to an hour
    body = cat.anchor_access(store, 0)
    assert body is not None and body["last"] == 17 and anchors(store) == [anchor_name(17)]
    assert cat.audit_verify(store).ok
    _sql(cat, "DELETE FROM access_events WHERE id > 14")  # the insider cuts the tail
    report = cat.audit_verify(store)
    assert report.problems == [
        f"access log: row 17, anchored in the store at {body['at']} ({anchor_name(17)}), is"
        " gone: the log was cut"
    ]
    assert cat.audit_verify().ok  # without the store the cut is not seen: the anchors are there


def test_only_what_came_after_the_newest_anchor_can_be_cut(cat: Catalog, store: LocalStore) -> None:
    """The window that is left, stated: rows logged after the newest anchor (at most
    ANCHOR_EVERY of traffic) can still be cut unnoticed."""
    _reads(cat, 5)
    assert cat.anchor_access(store, 0) is not None
    assert cat.anchor_access(store, 5) is None  # nothing newer: no new object
    _reads(cat, 3, start=5)
    _sql(cat, "DELETE FROM access_events WHERE id > 5")
    assert cat.audit_verify(store).ok
    assert anchors(store) == [anchor_name(5)]


def test_a_cut_hidden_under_new_reads_is_named(cat: Catalog, store: LocalStore) -> None:
    """The insider cuts rows 4-6 after row 6 was anchored; the exchange then logs three new
    reads, rows 4-6 again under the key. Row 6 is not the anchored one: verify names it, and
    the next anchor of row 6 refuses to be written over the first."""
    _reads(cat, 6)
    assert cat.anchor_access(store, 0) is not None
    _sql(cat, "DELETE FROM access_events WHERE id > 3")
    _reads(cat, 3, start=100)
    assert cat.audit_verify(store).problems == [
        f"access log: row 6 is not the row anchored in the store ({anchor_name(6)})"
    ]
    with pytest.raises(AuditError, match="already exists and differs from row 6"):
        cat.anchor_access(store, 3)


def test_a_planted_anchor_proves_nothing_and_blocks_nothing(
    cat: Catalog, store: LocalStore
) -> None:
    """A store writer without the audit key plants objects: one at the name of the next row's
    anchor (it would claim row 4 is gone), one not named like an anchor. Neither fails the log;
    both are noted; the real anchor is written beside the planted one and still catches a cut."""
    _reads(cat, 3)
    fake = {"last": 4, "mac": "0" * 64, "at": "2026-12-07T09:00:00Z", "key_id": "k",
            "anchor_mac": "0" * 64}  # fmt: skip
    store.put_bytes(anchor_name(4), json.dumps(fake).encode())
    store.put_bytes(f"{ACCESS_ANCHORS}notes.txt", b"hello")
    report = cat.audit_verify(store)
    assert report.ok, report.problems
    assert f"access log: {anchor_name(4)} is not authenticated by the audit key (planted?)" in (
        report.notes
    )
    assert f"access log: {ACCESS_ANCHORS}notes.txt is not an anchor (planted in the store?)" in (
        report.notes
    )
    _reads(cat, 1, start=3)
    body = cat.anchor_access(store, 3)
    assert body is not None and body["last"] == 4
    assert anchors(store) == sorted(
        [anchor_name(4), anchor_name(4, body["mac"]), f"{ACCESS_ANCHORS}notes.txt"]
    )
    _sql(cat, "DELETE FROM access_events WHERE id = 4")
    assert any(
        p.startswith("access log: row 4, anchored") for p in cat.audit_verify(store).problems
    )


def test_anchors_of_sealed_rows_are_not_read(
    cat: Catalog, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows a seal covers are checked against the seal: their anchors cost verify nothing."""
    _reads(cat, 4)
    cat.anchor_access(store, 0)
    cat.seal_access(force=True)
    opened: list[str] = []
    read = access_anchors._read
    monkeypatch.setattr(
        access_anchors, "_read", lambda s, name: opened.append(name) or read(s, name)
    )
    assert cat.audit_verify(store).ok and opened == []
