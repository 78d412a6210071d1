"""Issue 15, fifth adversarial pass: grants and listings trust the chain only under its anchors.

Row 1: with SQL write access only, the newest audit events (the withdrawal) were cut off the END
of the trail and the version set back to published: the remaining chain verifies on its own, so
`bourse grant` succeeded and `catalog show` listed the market available; only the store's anchors
knew. An anchor planted by a store writer without the audit key, on the other hand, must block
neither the pipeline nor a grant. Row 6 is in the second half (a deleted pending row).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import text
from test_facts_and_grants import PRODUCT, World, gate, package, world
from test_trail_backed_grants import grant, sql

from databourse.catalog import trail as audit

__all__ = ["world"]  # the fixture, shared with test_facts_and_grants


def head_seq(w: World) -> int:
    with w.catalog.engine.connect() as conn:
        return int(conn.execute(text("SELECT max(seq) FROM audit_events")).scalar() or 0)


def withdrawn_then_cut(w: World) -> str:
    """Publish, withdraw (anchored, as every write with the store is), then the SQL attack."""
    version = package(w)
    gate(w, version)
    assert w.catalog.audit_anchor(w.store) is not None
    before = head_seq(w)
    w.catalog.withdraw_version(PRODUCT, version, "recall")
    anchored = w.catalog.audit_anchor(w.store)
    assert anchored is not None and anchored["seq"] > before
    sql(w, "DELETE FROM audit_events WHERE seq > :s", s=before)
    sql(w, "UPDATE versions SET status = 'published', withdrawn_at = NULL")
    assert w.catalog.audit_verify().ok  # the cut chain verifies on its own: only anchors know
    return version


def test_events_cut_off_the_end_refuse_the_grant(world: World) -> None:
    """Row 1: the grant folds the chain under the store's anchors, inside its transaction."""
    version = withdrawn_then_cut(world)
    proc = grant(world, version, "CN")
    assert proc.returncode == 1, proc.stdout
    said = " ".join(proc.stderr.split())
    assert "contradicts the authenticated audit trail" in said, said
    assert "missing from the chain (truncated)" in said and "audit/anchors/" in said, said
    assert world.catalog.grants(PRODUCT) == []
    assert not [e for e in world.catalog.audit_history(PRODUCT) if e["kind"] == "grant"]


def test_events_cut_off_the_end_list_nothing_available(world: World) -> None:
    """Row 1: `catalog show` and the exported listing offer no market of the cut trail."""
    version = withdrawn_then_cut(world)
    shown = json.loads(world.cli("catalog", "show", f"{PRODUCT}@{version}", "--json").stdout)
    [listed] = shown["versions"]
    statuses = {a["market"]: a["status"] for a in listed["availability"]}
    assert statuses and "available" not in statuses.values(), statuses
    assert any("truncated" in a.get("unverified", "") for a in listed["availability"])
    exported = world.cli("catalog", "export")
    assert exported.returncode == 0, exported.stderr
    warned = " ".join(exported.stderr.split())
    assert f"{PRODUCT}@{version} market CN: stored as available, not backed" in warned, warned


def plant(w: World, seq: int) -> str:
    """What a store writer without the audit key can do: an anchor object with a made-up MAC."""
    key = audit.anchor_key(seq)
    body = {"seq": seq, "hash": "0" * 64, "prev_hash": "0" * 64, "mac": "0" * 64}
    body |= {"key_id": "whatever", "event_at": "2026-01-01T00:00:00+00:00"}
    w.store.put_bytes(key, json.dumps(body | {"anchor_mac": "f" * 64}).encode())
    return key


def test_a_planted_anchor_blocks_neither_anchoring_nor_grants(world: World) -> None:
    """A future seq planted in the store: named by verify, never a break or a refusal."""
    version = package(world)
    gate(world, version)
    planted = plant(world, head_seq(world) + 1)
    proc = world.cli("audit", "anchor")  # the head is still below the planted seq
    assert proc.returncode == 0, proc.stderr
    assert grant(world, version, "CN").returncode == 0  # appends the planted seq's event
    assert world.cli("audit", "anchor").returncode == 0, "the planted anchor blocked anchoring"
    report = world.cli("audit", "verify")
    assert report.returncode == 0, report.stderr
    assert f"anchor {planted}: not authenticated by the audit key (planted" in report.stdout
    found = json.loads(world.cli("verify", "--all", "--json").stdout)["findings"]
    assert [f["severity"] for f in found if f["kind"] == "audit-anchor-planted"] == ["warning"]
    assert not [f for f in found if f["kind"] == "audit-chain"], found
    assert grant(world, version, "CN").returncode == 0


# --- row 6: a pending row deleted under a suspended publish run --------------------------------


_MADE: list[str] = []  # runs made on the session's shared Prefect server, deleted after each test


@pytest.fixture(autouse=True)
def _delete_made_runs() -> Iterator[None]:
    """Other tests' catalogs share the session's Prefect server: a suspended run left there
    (untagged ones count as every catalog's) would be named by their `verify --all`."""
    yield
    if not _MADE:
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        while _MADE:
            client.delete_flow_run(UUID(_MADE.pop()))


def suspended_run(version: str, tags: list[str] | None = None) -> str:
    """A publish run suspended on the MY form, as the Prefect API holds it (no runner needed)."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Suspended

    from tasks.publishing import PUBLISH_FLOW

    @flow(name=PUBLISH_FLOW)
    def publish(product: str, version: str) -> None:  # never runs: only its name is used
        raise AssertionError("not run")

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(
            publish,
            parameters={"product": PRODUCT, "version": version},
            state=Suspended(timeout_seconds=3600, pause_key="approval-my"),
            tags=tags or [],
        )
    _MADE.append(str(run.id))
    return str(run.id)


def test_a_deleted_pending_row_is_named_by_approvals_and_verify(
    prefect_api: str, world: World
) -> None:
    """Row 6: `delete from pending_approvals` under a suspended run no longer goes unseen."""
    version = package(world)
    gate(world, version)
    run_id = suspended_run(version)
    asked = world.catalog.open_pending(
        PRODUCT, version, "MY", "standard_contract_or_certification", None, run_id,
        "approval-my", 3600,
    )  # fmt: skip  # what the publish run's open-approval task records before it suspends
    listed = json.loads(world.cli("approvals", "list", "--all", "--json").stdout)
    assert [w["run_id"] for w in listed["waiting"]] == [run_id]  # the control
    # the session's Prefect server also holds other tests' suspended runs: look at this one's
    assert not [line for line in listed["unrecorded"] if run_id in line]
    sql(world, "DELETE FROM pending_approvals")
    other = suspended_run(version)  # suspended, its row never recorded (or deleted long ago)
    proc = world.cli("approvals", "list")
    said = " ".join(proc.stderr.split())
    assert f"the question {asked['id']} ({PRODUCT}@{version} market MY, run {run_id}," in said
    assert "its pending row is gone" in said and said.count(run_id) == 1, said
    assert f"({other}) waits on the approval form approval-my but the catalog holds no" in said
    found = json.loads(world.cli("verify", "--all", "--json").stdout)["findings"]
    tampered = [
        f["message"]
        for f in found
        if f["kind"] == "pending-tampered" and (run_id in f["message"] or other in f["message"])
    ]
    assert {f["severity"] for f in found if f["kind"] == "pending-tampered"} == {"error"}
    assert len(tampered) == 2, tampered
    assert any(f"run {run_id}," in t and "pending row is gone" in t for t in tampered)
    assert any(f"({other}) waits on the approval form" in t for t in tampered)
    sql(world, "UPDATE audit_events SET detail = '{}' WHERE kind = 'asked'")  # hide it: a break
    assert not world.catalog.audit_verify().ok


def test_another_catalogs_waiting_runs_on_one_prefect_server_are_not_this_ones(
    prefect_api: str, world: World, tmp_path: Path
) -> None:
    """Two exchanges on one Prefect server: each judges only its own (and untagged) runs.

    Before publish runs carried their catalog's identity, every catalog on a shared server named
    the other's suspended runs "pending-tampered" in `approvals list` and `verify --all`.
    """
    from databourse.catalog.database import Catalog
    from tasks.publishing import catalog_tag

    version = package(world)
    gate(world, version)
    other_catalog = Catalog(f"sqlite:///{tmp_path / 'other' / 'catalog.db'}")
    assert other_catalog.identity != world.catalog.identity
    theirs = suspended_run(version, tags=[catalog_tag(other_catalog)])
    ours = suspended_run(version, tags=[catalog_tag(world.catalog)])
    untagged = suspended_run(version)  # a run without any catalog's tag is judged as ours
    listed = json.loads(world.cli("approvals", "list", "--all", "--json").stdout)
    named = " ".join(listed["unrecorded"])
    assert ours in named and untagged in named
    assert theirs not in named
    found = json.loads(world.cli("verify", "--all", "--json").stdout)["findings"]
    tampered = " ".join(f["message"] for f in found if f["kind"] == "pending-tampered")
    assert ours in tampered and untagged in tampered and theirs not in tampered


def test_a_catalogs_identity_and_publish_key_name_it_and_not_its_password(tmp_path: Path) -> None:
    """The identity holds across password rotation; two catalogs never share a publish key."""
    from databourse.catalog.engine import catalog_identity

    a = catalog_identity("postgresql://bourse:old@db.example:5432/exchange")
    assert a == catalog_identity("postgresql://bourse:new@db.example:5432/exchange")
    assert a == catalog_identity("postgresql+psycopg://bourse@db.example:5432/exchange")
    assert a != catalog_identity("postgresql://bourse:old@db.example:5432/staging")
    schema = "postgresql://bourse@db.example:5432/exchange?options=-csearch_path%3D"
    assert catalog_identity(schema + "a") != catalog_identity(schema + "b")
    assert "old" not in a and len(a) == 16
    from databourse.catalog.database import Catalog
    from tasks.publishing import publish_key

    one, two = (Catalog(f"sqlite:///{tmp_path}/{name}.db") for name in ("a", "b"))
    assert publish_key(one, "p", "1.0.0", "ab" * 32) != publish_key(two, "p", "1.0.0", "ab" * 32)
