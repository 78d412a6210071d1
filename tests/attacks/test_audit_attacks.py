"""Attacks on the audit trail by an insider who can write the catalog database (issue 15, 3).

Each attack is done as the insider would: SQL straight into the catalog's SQLite file, the
hash recomputed with the project's own `event_hash` (the code is public), then the real CLI is
asked whether the trail holds: `bourse audit verify` and `bourse verify --all` must both fail,
naming the event. Anchors in the store catch a truncation, and a rewrite by someone who holds
the audit key but not the store.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_AUDIT_KEY
from helpers import bourse, make_project

from databourse import keys
from databourse.catalog import trail as audit
from databourse.catalog.database import Catalog
from databourse.catalog.models import to_utc
from databourse.config import load_config
from databourse.storage.opening import open_store
from databourse.transfer.policy import facts_for


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess (never raises: the test reads rc, stdout and stderr)."""
    return bourse(env, *args, check=False)


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A project whose catalog holds a chain of gate events, anchored once in its store."""
    root = make_project(tmp_path / "project")
    env = {
        **os.environ,
        "DATABOURSE_CONFIG_DIR": str(root / "configs"),
        "DATABOURSE_KEY_DIR": str(tmp_path / "keys"),
    }
    env.pop("PREFECT_API_URL", None)
    db = root / "state" / "catalog.db"
    cat = Catalog(f"sqlite:///{db}")
    cat.create_schema()
    cat.ensure_product("p2", "P2", "sz-retail", "customer_orders")
    policy = load_config(root / "configs").policy
    facts = facts_for("CN", {"customer_ref": "CN_RESIDENT_ID"}, 400, False)
    schema = [{"name": "customer_ref", "type": "string"}]
    for content in ("h1", "h2"):
        version = cat.reserve_version("p2", content, schema, 4).version
        cat.apply_transfer_policy("p2", version, policy, facts, ["MY"], "sz-retail")
    cat.close()
    anchored = cli(env, "audit", "anchor")
    assert anchored.returncode == 0, anchored.stderr
    clean = cli(env, "audit", "verify")
    assert clean.returncode == 0 and "audit chain intact" in clean.stdout, clean.stderr
    yield env, db


def rows(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM audit_events ORDER BY seq")]


def rehash(row: dict[str, Any]) -> str:
    """What the insider computes: the plain sha256 chain hash of an edited event."""
    at = to_utc(dt.datetime.fromisoformat(row["at"]))
    detail = json.loads(row["detail"])
    return audit.event_hash(
        row["seq"], at, row["kind"], row["product"], row["version"], row["market"],
        row["actor"], detail, row["prev_hash"],
    )  # fmt: skip


def reseal(db: Path, start: int, mac: Any = None) -> None:
    """Recompute hash and prev_hash of every event from `start` on (mac: a function or None)."""
    events = rows(db)
    with sqlite3.connect(db) as conn:
        prev = events[start - 2]["hash"] if start > 1 else audit.GENESIS
        for row in events[start - 1 :]:
            row["prev_hash"] = prev
            row["hash"] = rehash(row)
            new_mac = mac(row["hash"]) if mac else row["mac"]
            conn.execute(
                "UPDATE audit_events SET prev_hash = ?, hash = ?, mac = ? WHERE seq = ?",
                (row["prev_hash"], row["hash"], new_mac, row["seq"]),
            )
            prev = row["hash"]


def assert_refused(env: dict[str, str], needle: str) -> None:
    """Both `bourse audit verify` and `bourse verify --all` exit 1 and name the problem."""
    verified = cli(env, "audit", "verify")
    assert verified.returncode == 1, verified.stdout
    assert needle in verified.stderr + verified.stdout, verified.stderr
    everything = cli(env, "verify", "--all")
    assert everything.returncode == 1, everything.stdout
    assert needle in everything.stdout, everything.stdout + everything.stderr


def test_forged_approval_with_recomputed_hash_is_refused(chain: tuple[dict, Path]) -> None:
    """An approval row and its audit event inserted with SQL, the chain hash recomputed."""
    env, db = chain
    head = rows(db)[-1]
    forged = {
        "seq": head["seq"] + 1,
        "at": head["at"],
        "kind": "approval",
        "product": "p2",
        "version": "1.0.1",
        "market": "MY",
        "actor": "Mallory",
        "detail": json.dumps({"reference": "FAKE-1", "content_hash": "h2"}),
        "prev_hash": head["hash"],
    }
    forged["hash"] = rehash(forged)
    with sqlite3.connect(db) as conn:
        (version_id,) = conn.execute("SELECT id FROM versions WHERE content_hash = 'h2'").fetchone()
        conn.execute(
            "INSERT INTO approvals (version_id, market, content_hash, decision, approver, "
            "route, reference, decided_at) VALUES (?, 'MY', 'h2', 'approved', 'Mallory', "
            "'standard_contract_or_certification', 'FAKE-1', ?)",
            (version_id, head["at"]),
        )
        conn.execute(
            "INSERT INTO audit_events (seq, at, kind, product, version, market, actor, detail, "
            "prev_hash, hash) VALUES (:seq, :at, :kind, :product, :version, :market, :actor, "
            ":detail, :prev_hash, :hash)",
            forged,
        )
    assert_refused(env, f"event {forged['seq']} (approval): no MAC")


def test_edited_event_resealed_with_plain_sha256_is_refused(chain: tuple[dict, Path]) -> None:
    """An old event's actor changed and every later hash recomputed: the MACs no longer match."""
    env, db = chain
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_events SET actor = 'Mallory' WHERE seq = 2")
    reseal(db, 2)
    assert_refused(env, "event 2 (")
    assert "MAC does not match" in cli(env, "audit", "verify").stderr


def test_macs_stripped_to_pass_as_legacy_are_caught_by_the_anchor(
    chain: tuple[dict, Path],
) -> None:
    """Every MAC set to NULL, so the whole chain looks written before MACs: the anchor differs."""
    env, db = chain
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_events SET mac = NULL, key_id = NULL")
    assert_refused(env, "differs from its anchor")


def test_truncated_chain_is_caught_by_the_anchor(chain: tuple[dict, Path]) -> None:
    """The newest events deleted (a clean cut leaves a valid chain): the anchor names the gap."""
    env, db = chain
    head = rows(db)[-1]["seq"]
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit_events WHERE seq >= ?", (head - 1,))
    assert_refused(env, f"event {head} is missing from the chain (truncated)")


def test_rewrite_with_the_audit_key_but_not_the_store(chain: tuple[dict, Path]) -> None:
    """An insider holding the audit key rewrites and re-MACs an event: the anchor differs."""
    env, db = chain
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_events SET actor = 'Mallory' WHERE seq = 1")
    reseal(db, 1, mac=lambda digest: audit.event_mac(TEST_AUDIT_KEY.encode(), digest))
    assert_refused(env, "differs from its anchor")


def test_without_the_audit_key_verification_does_not_pass(
    chain: tuple[dict, Path],
) -> None:
    env, _db = chain
    env = {k: v for k, v in env.items() if k != "DATABOURSE_AUDIT_KEY"}
    verified = cli(env, "audit", "verify")
    assert verified.returncode == 1
    assert "cannot authenticate the audit trail" in verified.stderr
    assert TEST_AUDIT_KEY not in verified.stdout + verified.stderr


def test_cli_anchor_is_written_once_in_the_store(chain: tuple[dict, Path]) -> None:
    """`bourse audit anchor` wrote the head as a write-once object with its hash and MAC."""
    _env, db = chain
    head = rows(db)[-1]
    store = open_store(str(db.parent / "store"))
    body = json.loads(store.get_bytes(audit.anchor_key(head["seq"])))
    assert body["hash"] == head["hash"] and body["mac"] == head["mac"]
    assert body["key_id"] == keys.key_id("audit", TEST_AUDIT_KEY.encode())


def test_legacy_events_are_accepted_only_as_a_leading_run(tmp_path: Path) -> None:
    """Events from before 0007 (no MAC) verify only as a leading run a `keyed` marker vouches for.

    Changed in issue 15 round 2 (R2): a NULL-MAC run with no marker (every MAC stripped) fails.
    """
    cat = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    cat.create_schema()
    for n in range(2):
        cat.audit_append("ingest", detail={"provider": "p", "dataset": "d", "ingest_id": str(n)})
    with cat.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET mac = NULL, key_id = NULL")
    cat.audit_append("ingest", detail={"provider": "p", "dataset": "d", "ingest_id": "2"})
    report = cat.audit_verify()
    assert report.ok and report.unauthenticated == 2, report.problems
    assert report.notes == [
        "events 1-2 predate audit MACs: hash-chained, vouched for by the keyed marker",
        "access log: 0 rows, 0 sealed by the trail, 0 not yet",
    ]
    with cat.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET mac = NULL WHERE seq = 4")
    report = cat.audit_verify()
    assert not report.ok
    assert any(p.startswith("event 4 (ingest): no MAC") for p in report.problems)
    cat.close()


def test_no_audit_event_is_written_without_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABOURSE_AUDIT_KEY")
    cat = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    cat.create_schema()
    with pytest.raises(Exception, match="the audit key is not set: export DATABOURSE_AUDIT_KEY"):
        cat.audit_append("ingest", detail={"provider": "p"})
    assert cat.audit_history() == []
    cat.close()


@pytest.mark.prefect
def test_an_ingest_run_anchors_the_head(prefect_api: str, project: Path, tmp_path: Path) -> None:
    """The ingest flow ends by anchoring the chain's head in the store (and says so)."""
    from databourse_samples.demo import generate_drops
    from flows.ingest_dataset import ingest_dataset
    from tasks import resources

    drops = generate_drops(tmp_path / "drops", scale=0.05)
    [readings] = [d for d in drops if d.provider == "my-buildops"]
    ingest_dataset("my-buildops", "sensor_readings", str(readings.path))
    head = resources.catalog().audit_history()[-1]
    assert head["kind"] == "ingest" and head["mac"]
    body = json.loads(resources.store().get_bytes(audit.anchor_key(head["seq"])))
    assert body["hash"] == head["hash"] and body["mac"] == head["mac"]
    assert resources.catalog().audit_verify(resources.store()).ok
