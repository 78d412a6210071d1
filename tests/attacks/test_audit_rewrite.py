"""Rewriting the audit trail with the database and the store but not the key (issue 15, R2).

The insider edits the catalog's SQLite file with SQL and the store's folder with file operations,
recomputing hashes with the project's own `event_hash`; the real CLI (`bourse audit verify`,
`bourse verify --all`, `bourse audit anchor`) must refuse, naming why.
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
from helpers import bourse, make_project

from databourse.catalog import trail as audit
from databourse.catalog.database import Catalog
from databourse.catalog.models import to_utc
from databourse.config import load_config
from databourse.storage.opening import open_store
from databourse.storage.store import ObjectStore
from databourse.transfer.policy import facts_for

Trail = tuple[dict[str, str], Path, ObjectStore]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess (never raises: the test reads rc, stdout and stderr)."""
    return bourse(env, *args, check=False)


def gate_events(cat: Catalog) -> None:
    """Two versions through the transfer gate: version, decision and count events."""
    cat.ensure_product("p2", "P2", "sz-retail", "customer_orders")
    policy = load_config(cat_configs(cat)).policy
    facts = facts_for("CN", {"customer_ref": "CN_RESIDENT_ID"}, 400, False)
    schema = [{"name": "customer_ref", "type": "string"}]
    for content in ("h1", "h2"):
        version = cat.reserve_version("p2", content, schema, 4).version
        cat.apply_transfer_policy("p2", version, policy, facts, ["MY"], "sz-retail")


def cat_configs(cat: Catalog) -> Path:
    return Path(cat.url.removeprefix("sqlite:///")).parent.parent / "configs"


@pytest.fixture
def trail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trail]:
    """A project whose trail was written an hour ago, each write anchoring its head."""
    root = make_project(tmp_path / "project")
    env = {
        **os.environ,
        "DATABOURSE_CONFIG_DIR": str(root / "configs"),
        "DATABOURSE_KEY_DIR": str(tmp_path / "keys"),
    }
    env.pop("PREFECT_API_URL", None)
    db = root / "state" / "catalog.db"
    store = open_store(str(root / "state" / "store"))
    hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    monkeypatch.setattr(audit, "utcnow", lambda: hour_ago)
    cat = Catalog(f"sqlite:///{db}", anchor_store=lambda: store)
    cat.create_schema()
    gate_events(cat)
    cat.close()
    clean = cli(env, "audit", "verify")
    assert clean.returncode == 0 and "audit chain intact" in clean.stdout, clean.stderr
    yield env, db, store


def rows(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM audit_events ORDER BY seq")]


def rehash(row: dict[str, Any]) -> str:
    at = to_utc(dt.datetime.fromisoformat(row["at"]))
    return audit.event_hash(
        row["seq"], at, row["kind"], row["product"], row["version"], row["market"],
        row["actor"], json.loads(row["detail"]), row["prev_hash"],
    )  # fmt: skip


def sql(db: Path, *statements: str) -> None:
    with sqlite3.connect(db) as conn:
        for statement in statements:
            conn.execute(statement)


def delete_anchors(store: ObjectStore) -> None:
    for info in list(store.list(audit.ANCHORS)):
        (Path(str(store.uri(info.key)).removeprefix("file://"))).unlink()


def assert_refused(env: dict[str, str], needle: str) -> None:
    """Both `bourse audit verify` and `bourse verify --all` exit 1 and name the problem."""
    verified = cli(env, "audit", "verify")
    assert verified.returncode == 1, verified.stdout
    assert needle in verified.stderr, verified.stderr
    everything = cli(env, "verify", "--all")
    assert everything.returncode == 1, everything.stdout
    assert needle in everything.stdout, everything.stdout + everything.stderr


def test_every_write_anchors_its_head(trail: Trail) -> None:
    """Each write transaction anchored its new head: a MAC'd anchor naming hash and prev_hash."""
    _env, db, store = trail
    head = rows(db)[-1]
    body = json.loads(store.get_bytes(audit.anchor_key(head["seq"])))
    assert body["hash"] == head["hash"] and body["prev_hash"] == head["prev_hash"]
    assert body["mac"] == head["mac"] and len(body["anchor_mac"]) == 64
    assert len(list(store.list(audit.ANCHORS))) >= 3  # product, versions, decisions


def test_stripped_macs_forged_event_and_no_anchors_are_refused(trail: Trail) -> None:
    """Row 3: every MAC NULLed, an approval event forged, hashes recomputed, anchors deleted."""
    env, db, store = trail
    last = rows(db)[-1]
    forged = {**last, "seq": last["seq"] + 1, "kind": "approval", "market": "SG"}
    forged |= {"actor": "chief", "detail": "{}", "prev_hash": last["hash"]}
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_events SET mac = NULL, key_id = NULL")
        conn.execute(
            "INSERT INTO audit_events (seq, at, kind, product, version, market, actor, detail,"
            " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (forged["seq"], forged["at"], "approval", forged["product"], forged["version"],
             "SG", "chief", "{}", forged["prev_hash"], rehash(forged)),
        )  # fmt: skip
    delete_anchors(store)
    assert_refused(env, "no authenticated `keyed` marker vouches for them")


def test_deleted_anchors_are_an_error_once_the_grace_is_over(trail: Trail) -> None:
    """Store only: every anchor deleted, then only the head's; both named."""
    env, db, store = trail
    head = rows(db)[-1]["seq"]
    (Path(str(store.uri(audit.anchor_key(head))).removeprefix("file://"))).unlink()
    assert_refused(env, f"event {head} (the head) has no anchor")
    delete_anchors(store)
    assert_refused(env, "no anchor of the audit trail in the store")


def test_deleting_the_unanchored_tail_is_caught(trail: Trail) -> None:
    """Row 8, DB only: the newest event deleted; its anchor, written by the write, remains."""
    env, db, _store = trail
    head = rows(db)[-1]["seq"]
    sql(db, f"DELETE FROM audit_events WHERE seq = {head}")
    assert_refused(env, f"event {head} is missing from the chain (truncated)")


def test_cli_writes_anchor_through_the_catalog_it_opens(
    trail: Trail, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's and the CLI's catalog anchors every append (grant, withdraw, sweep...)."""
    env, db, _store = trail
    monkeypatch.setenv("DATABOURSE_CONFIG_DIR", env["DATABOURSE_CONFIG_DIR"])
    from tasks import resources

    resources.config.cache_clear()
    resources.store.cache_clear()
    resources.catalog.cache_clear()
    try:
        event = resources.catalog().audit_append("grant", product="p2", detail={"buyer": "b"})
        assert resources.store().exists(audit.anchor_key(event["seq"]))
    finally:
        resources.catalog().close()
        resources.config.cache_clear()
        resources.store.cache_clear()
        resources.catalog.cache_clear()
    sql(db, f"DELETE FROM audit_events WHERE seq = {event['seq']}")
    assert_refused(env, f"event {event['seq']} is missing from the chain")


def test_a_planted_anchor_is_an_error_naming_it(trail: Trail) -> None:
    """Row 22: garbage pre-planted where the next head's anchor goes: named, never blocking.

    (Pass 5: it blocked `audit anchor` and failed verify, a denial of service by a store writer
    without the audit key; the anchor is now written beside it and verify names it as planted.)
    """
    env, db, store = trail
    cat = Catalog(f"sqlite:///{db}")  # no anchor store: the head stays unanchored
    seq = cat.audit_append("grant", product="p2", detail={"buyer": "b"})["seq"]
    cat.close()
    store.put_bytes(audit.anchor_key(seq), b'{"seq": 1}')
    anchored = cli(env, "audit", "anchor")
    assert anchored.returncode == 0, anchored.stderr
    assert f"anchored event {seq}" in anchored.stdout
    verified = cli(env, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert f"anchor {audit.anchor_key(seq)}: not authenticated by the audit key" in verified.stdout


def test_anchor_name_cannot_inject_a_line(trail: Trail) -> None:
    """Row 21: a file name holding a newline and a fake verdict prints escaped, on no own line."""
    env, _db, store = trail
    folder = Path(str(store.uri(audit.anchor_key(1))).removeprefix("file://")).parent
    (folder / "x\naudit chain intact: 99 events\r").write_text("{}")
    verified = cli(env, "audit", "verify")  # planted, not MAC'd: named, not a break (pass 5)
    lines = (verified.stdout + verified.stderr).splitlines()
    assert not any(line.startswith("audit chain intact: 99") for line in lines), lines
    assert "x\\x0aaudit chain intact" in verified.stdout, verified.stdout
    everything = cli(env, "verify", "--all")
    lines = (everything.stdout + everything.stderr).splitlines()
    assert not any(line.lstrip().startswith("audit chain intact") for line in lines), lines


def test_a_legacy_run_is_accepted_only_under_a_keyed_marker(tmp_path: Path) -> None:
    """Pre-MAC events verify once a keyed append vouched for them; a fresh trail is MAC'd."""
    cat = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    cat.create_schema()
    for n in range(3):
        cat.audit_append("ingest", detail={"ingest_id": str(n)})
    assert all(e["mac"] for e in cat.audit_history())  # fresh: keyed from event 1
    with cat.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET mac = NULL, key_id = NULL")
    assert not cat.audit_verify().ok  # stripped: nothing vouches for them
    cat.audit_append("ingest", detail={"ingest_id": "3"})
    marker = cat.audit_history()[3]
    assert marker["kind"] == "keyed" and marker["detail"]["legacy_through"] == 3
    report = cat.audit_verify()
    assert report.ok and report.unauthenticated == 3, report.problems
    with cat.engine.begin() as conn:  # the marker moved to vouch for fewer: its MAC breaks
        conn.exec_driver_sql("UPDATE audit_events SET mac = NULL WHERE seq = 4")
    assert not cat.audit_verify().ok
    cat.close()
