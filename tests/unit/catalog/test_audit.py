"""The audit trail: every decision chained; edits, removals and reorders detected."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest
from helpers import publish_sample_version
from sqlalchemy import text

from databourse.catalog.database import Catalog
from databourse.errors import CatalogError


def approve_my(catalog: Catalog) -> None:
    catalog.record_approval(
        "p1",
        "1.0.0",
        "MY",
        "approved",
        "Li Wei",
        "standard_contract_or_certification",
        "YUE-SC-2026-0042",
        flow_run_id="run-1",
    )


@pytest.fixture
def cat(tmp_path: Path) -> Catalog:
    catalog, _store = publish_sample_version(tmp_path)
    approve_my(catalog)
    catalog.record_grant(
        "p1", "1.0.0", "KL Mart", "MY", dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    )
    catalog.withdraw_version("p1", "1.0.0", reason="recalled")
    return catalog


def test_every_decision_is_an_event_in_a_valid_chain(cat: Catalog) -> None:
    events = cat.audit_history("p1")
    kinds = [e["kind"] for e in events]
    assert kinds == [
        "version",
        "version",  # the manifest's sha256, recorded once it is written (issue 15 R3)
        "publication",
        "decision",
        "decision",
        "approval",
        "grant",
        "withdrawal",
    ]
    assert events[1]["detail"]["manifest_sha256"] == cat.get_version("p1").manifest_sha256
    approval = events[5]
    assert approval["actor"] == "Li Wei" and approval["market"] == "MY"
    assert approval["detail"]["reference"] == "YUE-SC-2026-0042"
    assert approval["detail"]["content_hash"] == cat.get_version("p1", "1.0.0").content_hash
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(events))
    report = cat.audit_verify()
    assert report.ok and report.events == 8 and report.problems == []


def test_idempotent_reruns_add_no_events(cat: Catalog) -> None:
    before = len(cat.audit_history())
    cat.set_availability(
        "p1",
        "1.0.0",
        "MY",
        "pending_approval",
        "cn-sensitive-under-10k",
        route="standard_contract_or_certification",
    )
    approve_my(cat)  # the same answer again, as a re-run gives it
    assert len(cat.audit_history()) == before


@pytest.mark.parametrize(
    ("tamper", "finding"),
    [
        ("UPDATE audit_events SET actor = 'Mallory' WHERE seq = 5", "event 5: content"),
        ("DELETE FROM audit_events WHERE seq = 3", "event 4: expected sequence 3"),
        ("UPDATE audit_events SET detail = '{}' WHERE seq = 6", "event 6: content"),
    ],
)
def test_tampering_is_found(cat: Catalog, tamper: str, finding: str) -> None:
    with cat.engine.begin() as conn:
        conn.execute(text(tamper))
    report = cat.audit_verify()
    assert not report.ok
    assert any(p.startswith(finding) for p in report.problems), report.problems


def test_reordering_is_found(cat: Catalog) -> None:
    with cat.engine.begin() as conn:  # swap events 2 and 3, keeping each one's own hashes
        conn.execute(text("UPDATE audit_events SET seq = -2 WHERE seq = 2"))
        conn.execute(text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
        conn.execute(text("UPDATE audit_events SET seq = 3 WHERE seq = -2"))
    report = cat.audit_verify()
    assert not report.ok
    assert any("does not follow" in p for p in report.problems)


def test_gate_events_are_chained_too(tmp_path: Path) -> None:
    """Counts, carry-overs and expiries are events of the same chain; editing one is found."""
    from databourse.config import load_config
    from databourse.transfer.policy import facts_for

    policy = load_config().policy
    cat = Catalog(f"sqlite:///{tmp_path / 'gate.db'}")
    cat.create_schema()
    cat.ensure_product("p2", "P2", "sz-retail", "orders")
    facts = facts_for("CN", {"customer_ref": "CN_RESIDENT_ID"}, 400, False)
    schema = [{"name": "customer_ref", "type": "string"}]
    for content, market in (("h1", "MY"), ("h2", "MY"), ("h3", "SG")):
        version = cat.reserve_version("p2", content, schema, 4).version
        cat.apply_transfer_policy("p2", version, policy, facts, [market], "sz-retail")
        if content == "h1":
            cat.record_approval(
                "p2", version, "MY", "approved", "Li Wei", "standard_contract_or_certification",
                "YUE-SC-2026-0042", carry_over=True, flow_run_id="run-1",
            )  # fmt: skip
    cat.record_expiry("p2", "1.0.2", "SG", "run-3", "timed out")
    kinds = [e["kind"] for e in cat.audit_history("p2")]
    assert kinds.count("count") == 2 and kinds.count("carry_over") == 1
    assert kinds[-1] == "expiry"
    assert cat.audit_verify().ok
    with cat.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_events SET detail = '{\"individuals\": 1}' WHERE kind = 'count'")
        )
    report = cat.audit_verify()
    assert not report.ok and len(report.problems) == 2


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE audit_events SET product = 'other-corpus' WHERE kind = 'opt_out'",
        "UPDATE audit_events SET detail = replace(detail, 'doc-7', 'doc-8') WHERE kind = 'opt_out'",
    ],
)
def test_an_edited_opt_out_request_stops_what_reads_them(cat: Catalog, tamper: str) -> None:
    """An insider who moves a request to another product (so that its own product no longer
    sees it) or edits what it names: every read of the requests refuses, for any product."""
    cat.record_opt_out(
        "my-chats", ids=["doc-7"], authors=["Tan Ah Kow"], domains=[], reason="REQ-1", actor="ops"
    )
    events, _ = cat.opt_out_requests("my-chats")
    assert [e["detail"]["ids"] for e in events] == [["doc-7"]]
    with cat.engine.begin() as conn:
        conn.execute(text(tamper))
    for product in ("my-chats", "other-corpus"):
        with pytest.raises(CatalogError, match="do not verify"):
            cat.opt_out_requests(product)
