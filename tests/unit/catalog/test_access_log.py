"""The access log (`databourse.catalog.access_log`): buyers' reads kept apart from the audit
trail, chained and keyed, sealed into the trail; on SQLite and PostgreSQL.

The trail no longer grows with traffic (a seal per hour, or per SEAL_ROWS reads, instead of an
event per read), and an insider who can write the database but does not hold the audit key
cannot edit, remove, insert or replay a read without `bourse audit verify` naming it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import test_catalog
from sqlalchemy import text
from sqlalchemy.orm import Session

from databourse import keys
from databourse.catalog import access_log
from databourse.catalog import database as catalog_module
from databourse.catalog.database import Catalog

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
catalog_url = test_catalog.catalog_url  # the fixture: a SQLite file, a PostgreSQL schema


@dataclass(frozen=True)
class Reader:
    grant_id: int
    product: str = "p1"
    version: str = "1.0.0"
    market: str = "MY"
    buyer: str = "KL Mart"


@pytest.fixture
def cat(catalog_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Catalog]:
    now = [T0]
    monkeypatch.setattr(catalog_module, "utcnow", lambda: now[0])
    with Catalog(catalog_url) as catalog:
        catalog.create_schema()
        catalog.clock = now  # type: ignore[attr-defined]
        yield catalog


def _reads(cat: Catalog, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        cat.record_access(Reader(i % 3), "files" if i % 2 else "query", 1, 1000 + i, i, f"b{i}")


def _sql(cat: Catalog, statement: str) -> None:
    with cat.engine.begin() as conn:  # the insider: straight to the database
        conn.execute(text(statement))


def test_reads_are_log_rows_and_the_trail_grows_by_a_seal_not_a_read(cat: Catalog) -> None:
    _reads(cat, 300)
    assert cat.audit_history() == []  # not one trail event for 300 reads
    assert [r["id"] for r in cat.access_history()] == list(range(1, 301))
    assert [r["detail"]["grant_id"] for r in cat.access_history(1)] == [1] * 100
    assert cat.seal_access() is None  # neither an hour old nor SEAL_ROWS rows: not due
    report = cat.audit_verify()
    assert report.ok and "access log: 300 rows, 0 sealed by the trail, 300 not yet" in report.notes

    cat.clock[0] = T0 + access_log.SEAL_AGE  # type: ignore[attr-defined]
    sealed = cat.seal_access()
    assert sealed is not None and sealed["kind"] == "access_seal"
    assert sealed["detail"]["first"] == 1 and sealed["detail"]["last"] == 300
    assert sealed["detail"]["rows"] == 300
    assert sealed["detail"]["bytes"] == sum(1000 + i for i in range(300))
    assert cat.seal_access() is None  # nothing new
    _reads(cat, 20, 300)
    assert cat.seal_access(force=True)["detail"]["first"] == 301  # type: ignore[index]
    assert [e["kind"] for e in cat.audit_history()] == ["access_seal", "access_seal"]
    report = cat.audit_verify()
    assert report.ok and "access log: 320 rows, 320 sealed by the trail, 0 not yet" in report.notes
    assert cat.audited_batches({"b5", "b301", "nope"}) == {("b5", 2, 5), ("b301", 1, 301)}


def test_a_seal_is_due_at_seal_rows(cat: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(access_log, "SEAL_ROWS", 10)
    for i in range(25):
        _reads(cat, 1, i)
        cat.seal_access()
    seals = [e["detail"] for e in cat.audit_history()]
    assert [(s["first"], s["last"]) for s in seals] == [(1, 10), (11, 20)]
    assert cat.audit_verify().ok


def _problems(cat: Catalog) -> list[str]:
    report = cat.audit_verify()
    assert not report.ok
    return [p for p in report.problems if p.startswith("access log")]


def test_an_edited_read_is_named(cat: Catalog) -> None:
    _reads(cat, 12)
    cat.seal_access(force=True)
    _sql(cat, "UPDATE access_events SET bytes = 1 WHERE id = 7")
    assert _problems(cat) == ["access log: row 7 does not verify (edited, or written without "
                              "the audit key)"]  # fmt: skip


def test_a_removed_read_is_named_sealed_or_not(cat: Catalog) -> None:
    _reads(cat, 12)
    cat.seal_access(force=True)
    _sql(cat, "DELETE FROM access_events WHERE id = 3")
    assert _problems(cat) == ["access log: rows 3-3 are missing"]


def test_a_sealed_tail_cut_off_is_named(cat: Catalog) -> None:
    _reads(cat, 12)
    [seal] = [cat.seal_access(force=True)]
    _sql(cat, "DELETE FROM access_events WHERE id > 8")
    assert _problems(cat) == [f"access log: rows 9-12 that event {seal['seq']} sealed are gone"]  # type: ignore[index]


def test_a_forged_or_replayed_read_does_not_verify(cat: Catalog) -> None:
    """An insider appends a row with a MAC made under a key of their own, then copies a real
    row's fields and MAC to a new id: neither verifies."""
    _reads(cat, 5)
    rows = cat.access_history()
    forged_key = hashlib.sha256(b"not the audit key").digest()
    with Session(cat.engine) as session, session.begin():
        last = session.get(access_log.AccessEvent, 5)
        assert last is not None
        row = access_log.AccessEvent(
            id=6, at=T0, grant_id=9, product="p1", version="1.0.0", market="MY",
            buyer="KL Mart", what="files", files=1, bytes=10**9, query=None, batch=None,
            prev_mac=last.mac, key_id=last.key_id,
        )  # fmt: skip
        row.mac = access_log.row_mac(forged_key, row)
        session.add(row)
    assert _problems(cat) == ["access log: row 6 does not verify (edited, or written without "
                              "the audit key)"]  # fmt: skip
    _sql(cat, "DELETE FROM access_events WHERE id = 6")
    with Session(cat.engine) as session, session.begin():
        old = session.get(access_log.AccessEvent, 2)
        assert old is not None and rows[1]["id"] == 2
        fields = {c.name: getattr(old, c.name) for c in access_log.AccessEvent.__table__.columns}
        session.add(access_log.AccessEvent(**{**fields, "id": 6}))  # its MAC and all, moved
    problems = _problems(cat)
    assert "access log: row 6 does not follow row 5" in problems
    assert any("row 6 does not verify" in p for p in problems)


def test_a_removed_seal_breaks_the_trail(cat: Catalog) -> None:
    _reads(cat, 4)
    seal = cat.seal_access(force=True)
    assert seal is not None
    cat.audit_append("ingest", detail={"provider": "sz-retail"})
    _sql(cat, f"DELETE FROM audit_events WHERE seq = {seal['seq']}")
    report = cat.audit_verify()
    assert any(p.startswith(f"event {seal['seq'] + 1}") for p in report.problems)
    assert "access log: 4 rows, 0 sealed by the trail, 4 not yet" in report.notes


def test_the_log_key_is_not_the_audit_key(cat: Catalog) -> None:
    """A row's MAC is under a key derived for the log: a trail event's MAC (the audit key over
    the same bytes) never passes for a row's."""
    _reads(cat, 1)
    with Session(cat.engine) as session:
        row = session.get(access_log.AccessEvent, 1)
        assert row is not None
        [key] = [k.material for k in keys.from_environment()]
        plain = hmac.new(key, b"x", hashlib.sha256).hexdigest()
        assert access_log.row_mac(access_log.log_key(key), row) == row.mac != plain
        assert access_log.log_key(key) != key
