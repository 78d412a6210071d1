"""Issue 15, second adversarial pass: the gate and grants trust no row the audited trail does not.

The reviewer (SQL write access to the catalog, no audit key) opened markets without an answer:
(row 2) flipped an approval's `carry_over` so a later version inherited it; (row 5) deleted the
exporter's running count so a threshold rule no longer applied; (row 6) deleted a withdrawal
event from the middle of the trail and un-withdrew the version; (row 7) pointed a long approval
at another version to outlast that version's own. Each is replayed here through the catalog's
real gate and the real CLI.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from helpers import bourse, cli_env, make_project, publish_sample_version, with_sample_product
from test_facts_and_grants import (
    EXPORTER,
    PRODUCT,
    TODAY,
    World,
    approve_my,
    gate,
    package,
    world,
)
from test_trail_backed_grants import grant, sql

from databourse.errors import TransferNotApproved
from databourse.transfer.policy import facts_for

__all__ = ["world"]  # the fixture, shared with test_facts_and_grants


def refused(proc: Any, why: str) -> None:
    assert proc.returncode == 1, proc.stdout
    assert why in " ".join(proc.stderr.split()), proc.stderr


def test_a_carry_over_flag_set_with_sql_carries_nothing(world: World) -> None:
    """Row 2: the answer did not say "covers later versions"; the row is made to say so."""
    v1 = package(world, tag="v1")
    gate(world, v1)
    first = approve_my(world, v1, TODAY + dt.timedelta(days=300))  # carry_over not given
    v2 = package(world, tag="v2")
    gate(world, v2)
    assert world.status(v2)["MY"] == "pending_approval"  # the honest outcome
    v3 = package(world, tag="v3")
    sql(world, "UPDATE approvals SET carry_over = 1 WHERE id = :a", a=first)
    gate(world, v3)
    assert world.status(v3)["MY"] == "pending_approval", "carried over on a flag SQL set"
    refused(grant(world, v3, "MY"), "not offered in MY")


def test_an_audited_carry_over_still_carries(world: World) -> None:
    """The control: an answer that covers later versions carries over, as before."""
    v1 = package(world, tag="v1")
    gate(world, v1)
    world.catalog.record_approval(
        PRODUCT, v1, "MY", "approved", approver="Li Wei",
        route="standard_contract_or_certification", reference="YUE-SC-2026-0042",
        valid_until=TODAY + dt.timedelta(days=300), carry_over=True,
    )  # fmt: skip
    v2 = package(world, tag="v2")
    gate(world, v2)
    assert world.status(v2)["MY"] == "available"
    assert grant(world, v2, "MY").returncode == 0


def _gate_counted(w: World, version: str) -> None:
    """60,000 individuals, no sensitive category: the 100k-a-year rule applies from the 2nd."""
    w.catalog.publish_version(PRODUCT, version)
    facts = facts_for("CN", {"phone": "PHONE_NUMBER"}, 60_000, False)
    w.catalog.apply_transfer_policy(
        PRODUCT, version, w.cfg.policy, facts, ["CN", "MY", "SG"], EXPORTER
    )


def test_a_running_count_deleted_with_sql_stops_the_gate(world: World) -> None:
    """Row 5: with the exporter's counted transfers deleted, no market is decided at all."""
    _gate_counted(world, package(world, tag="v1"))
    _gate_counted(world, package(world, tag="v2"))
    v3 = package(world, tag="v3")
    sql(world, "DELETE FROM exporter_transfers")
    try:
        _gate_counted(world, v3)
    except TransferNotApproved as exc:
        assert "running count" in str(exc) and "not the audited" in str(exc)
    else:
        raise AssertionError(f"the gate decided on an erased count: {world.status(v3)}")
    assert world.status(v3) == {}  # nothing stored for any market
    refused(grant(world, v3, "MY"), "not offered in MY")


def test_a_withdrawal_cut_out_of_the_trail_grants_nothing(world: World) -> None:
    """Row 6: the withdrawal event deleted from the middle, the version row set back."""
    version = package(world)
    gate(world, version)
    world.catalog.withdraw_version(PRODUCT, version, "recall")
    world.catalog.audit_append("ingest", product="other", detail={"files": 1})  # not the head
    sql(world, "DELETE FROM audit_events WHERE kind = 'withdrawal'")
    sql(world, "UPDATE versions SET status = 'published', withdrawn_at = NULL")
    refused(grant(world, version, "CN"), "the audit trail is broken")


def test_an_approval_pointed_at_another_version_is_refused(world: World) -> None:
    """Row 7: v1's 300-day approval rebound to v2 (2-day approval) to grant v2 for 30 days."""
    v1 = package(world, tag="v1")
    gate(world, v1)
    long = approve_my(world, v1, TODAY + dt.timedelta(days=300))
    v2 = package(world, tag="v2")
    gate(world, v2)
    short = approve_my(world, v2, TODAY + dt.timedelta(days=2))
    refused(grant(world, v2, "MY", "30d"), "")  # honest: the approval ends sooner
    sql(
        world,
        "UPDATE approvals SET version_id = (SELECT version_id FROM approvals WHERE id = :s),"
        " content_hash = (SELECT content_hash FROM approvals WHERE id = :s),"
        " decided_at = '2099-01-01 00:00:00' WHERE id = :l",
        s=short,
        l=long,
    )
    refused(grant(world, v2, "MY", "30d"), "contradicts the authenticated audit trail")


# --- third pass: what a carry-over compares is the audited answer's, not the catalog's ---------

SCC_ROUTE = "standard_contract_or_certification"


def _approve_carrying(w: World, version: str) -> int:
    """MY approved for `version`, the answer saying it covers later versions."""
    return w.catalog.record_approval(
        PRODUCT, version, "MY", "approved", approver="Li Wei", route=SCC_ROUTE,
        reference="YUE-SC-2026-0042", valid_until=TODAY + dt.timedelta(days=300),
        carry_over=True,
    ).id  # fmt: skip


def _gate_with(w: World, version: str, remaining: dict[str, str], important: bool) -> None:
    w.catalog.publish_version(PRODUCT, version)
    facts = facts_for("CN", remaining, 30, important)
    w.catalog.apply_transfer_policy(
        PRODUCT, version, w.cfg.policy, facts, ["CN", "MY", "SG"], EXPORTER
    )


def test_categories_rewritten_on_the_earlier_version_carry_nothing(world: World) -> None:
    """Pass 3, row 1: v2 holds one more category; v1's row is made to hold it too."""
    before = {"customer_ref": "CN_RESIDENT_ID"}
    after = {**before, "mobile_ref": "PHONE_NUMBER"}
    v1 = package(world, tag="v1")
    _gate_with(world, v1, before, False)
    _approve_carrying(world, v1)
    v2 = package(world, tag="v2")
    _gate_with(world, v2, after, False)
    assert world.status(v2)["MY"] == "pending_approval"  # honest: the categories changed
    sql(
        world,
        "UPDATE versions SET transfer_facts = json_set(transfer_facts, '$.categories',"
        " json(:c)) WHERE version = :v",
        c='["CN_RESIDENT_ID", "PHONE_NUMBER"]',
        v=v1,
    )
    _gate_with(world, v2, after, False)  # the next publish run of v2
    assert world.status(v2)["MY"] == "pending_approval", "carried over on rewritten categories"


def test_a_route_rewritten_on_the_earlier_approval_carries_nothing(world: World) -> None:
    """Pass 3, row 2: v2 is important data (a CAC assessment); v1's approval is made to say so."""
    remaining = {"customer_ref": "CN_RESIDENT_ID"}
    v1 = package(world, tag="v1")
    _gate_with(world, v1, remaining, False)
    first = _approve_carrying(world, v1)
    v2 = package(world, tag="v2")
    _gate_with(world, v2, remaining, True)
    assert world.status(v2)["MY"] == "pending_approval"  # honest: another rule and route
    [shown] = world.catalog.show(PRODUCT, v2)["versions"]
    wanted = {a["market"]: a for a in shown["availability"]}["MY"]
    sql(
        world,
        "UPDATE approvals SET rule_id = :r, route = :o WHERE id = :a",
        r=wanted["rule_id"],
        o=wanted["route"],
        a=first,
    )
    _gate_with(world, v2, remaining, True)
    assert world.status(v2)["MY"] == "pending_approval", "carried over on a rewritten route"


def test_an_operator_without_the_audit_key_gets_an_error_not_a_traceback(tmp_path: Path) -> None:
    """Pass 3, row 9: `catalog withdraw` with no audit key was refused, with a traceback."""
    publish_sample_version(tmp_path)
    project = with_sample_product(make_project(tmp_path / "project"))
    (project / "state" / "prefect").mkdir(parents=True, exist_ok=True)
    env = cli_env(
        project,
        DATABOURSE_CATALOG_URL=f"sqlite:///{tmp_path / 'catalog.db'}",
        DATABOURSE_STORE_ROOT=str(tmp_path / "store"),
        XDG_CONFIG_HOME=str(tmp_path / "no-keys"),
    )
    env.pop("DATABOURSE_AUDIT_KEY", None)
    proc = bourse(env, "catalog", "withdraw", "p1@1.0.0", "--reason", "recall", check=False)
    assert proc.returncode == 1, proc.stdout
    assert "Traceback" not in proc.stderr and re.search("^error: ", proc.stderr, re.M), proc.stderr
    assert "audit key" in proc.stderr, proc.stderr
