"""Issue 15, adversarial pass 6 (row 3): a grant row edited or deleted with SQL is named by verify.

The insider writes the catalog database only. Before, `verify --all` compared a grant row with its
audited event on version, market, content hash and expiry only: the buyer and the grant time could
be rewritten, and a deleted row went unnoticed although the trail still held its grant event.
"""

from __future__ import annotations

from test_facts_and_grants import World, gate, package, world
from test_trail_backed_grants import grant, sql, trail_findings

__all__ = ["world"]


def granted(w: World) -> int:
    version = package(w)
    gate(w, version)
    assert grant(w, version, "CN").returncode == 0
    assert trail_findings(w) == []  # the control: the row agrees with its event
    [row] = w.catalog.engine.connect().exec_driver_sql("SELECT id FROM grants").all()
    return int(row[0])


def test_a_grant_rewritten_to_another_buyer_is_named(world: World) -> None:
    grant_id = granted(world)
    sql(world, "UPDATE grants SET buyer = 'Somebody Else' WHERE id = :id", id=grant_id)
    found = trail_findings(world)
    assert [f["kind"] for f in found] == ["trail-grant"], found
    assert f"grant {grant_id} (CN): differs from its audit event" in found[0]["message"]
    assert "Somebody Else" not in found[0]["message"]  # names the row, not what was written


def test_a_grant_time_moved_back_is_named(world: World) -> None:
    grant_id = granted(world)
    sql(world, "UPDATE grants SET granted_at = '2026-01-01 00:00:00' WHERE id = :id", id=grant_id)
    found = trail_findings(world)
    assert [f["kind"] for f in found] == ["trail-grant"], found


def test_a_deleted_grant_row_is_named(world: World) -> None:
    grant_id = granted(world)
    sql(world, "DELETE FROM grants WHERE id = :id", id=grant_id)
    found = trail_findings(world)
    assert [f["kind"] for f in found] == ["trail-grant"], found
    assert f"grant {grant_id} (CN): audited, but its row is gone" in found[0]["message"]
