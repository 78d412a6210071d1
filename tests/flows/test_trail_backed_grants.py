"""Issue 15, slice R3: a grant trusts no catalog row that the authenticated audit trail contradicts.

Each attack is an insider's: rows of the catalog rewritten with SQL (no audit key), then the real
CLI is run. `bourse grant` must refuse, and `bourse verify --all` must exit 1 naming the row.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import text
from test_facts_and_grants import (
    PRODUCT,
    SCC,
    TODAY,
    World,
    _publish_run,
    approve_my,
    gate,
    package,
    world,
)

from databourse.product.package import manifest_sha256

__all__ = ["world"]  # the fixture, shared with test_facts_and_grants


def sql(w: World, statement: str, **params: Any) -> None:
    with w.catalog.engine.begin() as conn:
        conn.execute(text(statement), params)


def grant(w: World, version: str, market: str, expires: str = "7d") -> Any:
    return w.cli(
        "grant", f"{PRODUCT}@{version}", "--buyer", "KL Mart", "--market", market,
        "--expires", expires,
    )  # fmt: skip


def refused_by_trail(proc: Any) -> None:
    assert proc.returncode == 1, proc.stdout
    assert "contradicts the authenticated audit trail" in proc.stderr, proc.stderr


def trail_findings(w: World) -> list[dict[str, Any]]:
    proc = w.cli("verify", "--all", "--json")
    report = json.loads(proc.stdout)
    found = [f for f in report["findings"] if f["kind"].startswith("trail-")]
    assert (proc.returncode == 1) == bool(found) or proc.returncode == 1
    return found


def test_a_clean_catalog_is_backed_by_its_trail(world: World) -> None:
    """The control: approved, granted and counted rows all agree with the audit trail."""
    version = package(world)
    gate(world, version)
    approve_my(world, version, TODAY + dt.timedelta(days=90))
    assert grant(world, version, "MY").returncode == 0
    assert grant(world, version, "CN").returncode == 0
    assert trail_findings(world) == []
    proc = world.cli("verify", "--all", "--json")
    errors = {f["kind"] for f in json.loads(proc.stdout)["findings"] if f["severity"] == "error"}
    assert errors == {"approval-unverified"}  # recorded outside a publish run: no Prefect answer


def test_a_rewritten_content_hash_is_refused(world: World) -> None:
    """Row 4a: versions.content_hash is compared with the MAC'd `version` event."""
    version = package(world)
    gate(world, version)
    sql(world, "UPDATE versions SET content_hash = :h", h="f" * 64)
    refused_by_trail(grant(world, version, "CN"))
    assert world.catalog.grants(PRODUCT) == []
    kinds = {f["kind"] for f in trail_findings(world)}
    assert "trail-version" in kinds


def test_a_pending_market_relabelled_denied_stays_gated(world: World) -> None:
    """Row 4c: a market audited as pending_approval is not re-decided from a forged row."""
    version = package(world)
    gate(world, version)
    assert world.status(version)["MY"] == "pending_approval"
    sql(
        world,
        "UPDATE availability SET status = 'denied', "
        "detail = json_set(detail, '$.policy_sha256', '0') WHERE market = 'MY'",
    )
    refused_by_trail(grant(world, version, "MY"))
    assert world.status(version)["MY"] == "denied"  # not re-decided to available
    assert not [e for e in world.catalog.audit_history(PRODUCT) if e["kind"] == "grant"]
    assert "trail-market" in {f["kind"] for f in trail_findings(world)}


def test_a_gated_market_opened_with_sql_is_refused(world: World) -> None:
    """Row 6: status 'available' and decision 'allowed' without an audited decision or approval."""
    version = package(world)
    gate(world, version)
    sql(
        world,
        "UPDATE availability SET status = 'available', "
        "detail = json_set(detail, '$.decision', 'allowed') WHERE market = 'MY'",
    )
    refused_by_trail(grant(world, version, "MY"))
    assert world.catalog.grants(PRODUCT) == []
    [finding] = [f for f in trail_findings(world) if f["kind"] == "trail-market"][:1]
    assert "MY" in finding["message"]


def test_an_unwithdrawn_version_is_refused(world: World) -> None:
    """Row 7: the trail's withdrawal wins over a row set back to published."""
    version = package(world)
    gate(world, version)
    world.catalog.withdraw_version(PRODUCT, version, "recall")  # what `catalog withdraw` records
    sql(world, "UPDATE versions SET status = 'published', withdrawn_at = NULL")
    refused_by_trail(grant(world, version, "CN"))
    messages = [f["message"] for f in trail_findings(world) if f["kind"] == "trail-version"]
    assert any("withdrawal" in m for m in messages)


def test_an_extended_approval_is_refused(world: World) -> None:
    """Row 5: approvals.valid_until is compared with the MAC'd approval event."""
    version = package(world)
    gate(world, version)
    approve_my(world, version, TODAY + dt.timedelta(days=10))
    sql(world, "UPDATE approvals SET valid_until = '2099-12-31', reference = 'FORGED'")
    refused_by_trail(grant(world, version, "MY", "300d"))
    assert world.catalog.grants(PRODUCT) == []
    messages = [f["message"] for f in trail_findings(world) if f["kind"] == "trail-approval"]
    assert any("valid until 2099-12-31" in m for m in messages)


def test_a_carry_over_of_an_expired_approval_is_no_authority(world: World) -> None:
    """Row 3: forged rows (an expired approval and a carry-over from it) open nothing."""
    version = package(world)
    gate(world, version)
    [vid] = [r[0] for r in world.catalog.engine.connect().execute(text("SELECT id FROM versions"))]
    chash = world.catalog.show(PRODUCT, version)["versions"][0]["content_hash"]
    common = "version_id, market, content_hash, approver, decided_at, carry_over, rule_id"
    values = f":v, 'MY', :h, 'Li Wei', '{dt.datetime.now(dt.UTC).isoformat()}'"
    sql(
        world,
        f"INSERT INTO approvals (id, decision, flow_run_id, {common}) "
        f"VALUES (50, 'expired', 'RUN', {values}, 0, 'cn-sensitive-under-10k')",
        v=vid,
        h=chash,
    )
    sql(
        world,
        f"INSERT INTO approvals (id, decision, valid_until, carried_over_from, {common}) "
        f"VALUES (51, 'approved', '2099-12-31', '{{\"approval_id\": 50}}', {values}, 1, "
        "'cn-sensitive-under-10k')",
        v=vid,
        h=chash,
    )
    sql(world, "UPDATE availability SET status = 'available' WHERE market = 'MY'")
    refused_by_trail(grant(world, version, "MY", "300d"))
    messages = [f["message"] for f in trail_findings(world) if f["kind"] == "trail-approval"]
    assert any("approval 51" in m for m in messages) and any("approval 50" in m for m in messages)


def test_an_injected_grant_and_an_erased_count_are_flagged(world: World) -> None:
    """Rows 17 and 18: grants need their audited event; counts re-sum the audited ones."""
    version = package(world)
    gate(world, version)
    approve_my(world, version, TODAY + dt.timedelta(days=90))
    assert grant(world, version, "MY").returncode == 0
    assert trail_findings(world) == []
    sql(
        world,
        "INSERT INTO grants (version_id, content_hash, buyer, market, expires_at, granted_at) "
        "SELECT id, 'x', 'Shadow Buyer', 'US', '2099-01-01 00:00:00', '2026-01-01 00:00:00' "
        "FROM versions",
    )
    sql(world, "DELETE FROM exporter_transfers")
    kinds = {f["kind"]: f["message"] for f in trail_findings(world)}
    assert "(US): no authenticated grant event" in kinds["trail-grant"]
    assert "0 individuals counted, the audited count events sum to 30" in kinds["trail-count"]
    assert world.cli("verify", "--all").returncode == 1


def test_a_manifest_edited_outside_the_content_hash_is_refused(world: World) -> None:
    """Row 9: the whole manifest is under the sha256 recorded (and audited) at packaging."""
    version = package(world)
    world.catalog.set_manifest(  # what the build records once the manifest is written
        PRODUCT,
        version,
        world.store.uri(f"products/{PRODUCT}/{version}/manifest.json"),
        manifest_sha256(world.store, PRODUCT, version),
    )
    gate(world, version)
    assert world.cli("catalog", "export").returncode == 0
    assert grant(world, version, "CN").returncode == 0
    path = world.manifest_path(version)
    manifest = json.loads(path.read_text())
    manifest["usage_terms"]["purposes"] = ["any"]
    manifest["markets"] = [*manifest["markets"], "US"]
    path.write_text(json.dumps(manifest, indent=2))
    refused = grant(world, version, "CN")
    assert refused.returncode == 1 and "manifest.json hashes to" in refused.stderr
    assert len(world.catalog.grants(PRODUCT)) == 1
    exported = world.cli("catalog", "export")
    assert exported.returncode == 1 and "not exported" in exported.stderr
    proc = world.cli("verify", "--all", "--json")
    assert proc.returncode == 1
    assert "manifest-edited" in {f["kind"] for f in json.loads(proc.stdout)["findings"]}
    # The row cannot be rebound: the catalog's column is checked against the audited event.
    sql(world, "UPDATE versions SET manifest_sha256 = NULL")
    assert "trail-version" in {f["kind"] for f in trail_findings(world)}


def _unverified(w: World) -> list[str]:
    report = json.loads(w.cli("verify", "--all", "--json").stdout)
    return [f["message"] for f in report["findings"] if f["kind"] == "approval-unverified"]


@pytest.mark.prefect
def test_prefect_answers_count_only_on_forms_the_catalog_opened(
    prefect_api: str, world: World
) -> None:
    """Rows 5, 23, 3 (cross-check): the answer must sit on a pending row's form, with its nonce,
    content hash and market; edited run parameters do not matter; expiries carry nothing."""
    from prefect.client.orchestration import get_client

    version = package(world)
    gate(world, version)
    chash = world.catalog.get_version(PRODUCT, version).content_hash
    run = _publish_run(PRODUCT, version, {})
    asked = world.catalog.open_pending(
        PRODUCT, version, "MY", SCC, "cn-sensitive-under-10k", run, "approval-my"
    )
    until = TODAY + dt.timedelta(days=10)
    given = {
        "approver": "Li Wei",
        "decision": {
            "approve_standard_contract": True,
            "reference": "YUE-SC-2026-0042",
            "valid_until": until.isoformat(),
        },
        "nonce": asked["nonce"],
        "content_hash": chash,
        "market": "MY",
    }
    with get_client(sync_client=True) as client:
        client.create_flow_run_input(run, "suspended-approval-my-response", json.dumps(given))
        approval = approve_my(world, version, until, run=run)
        assert _unverified(world) == []
        # Row 23: the run's parameters edited afterwards; the pending row says what was asked.
        client.update_flow_run(run, parameters={"product": PRODUCT, "version": "9.9.9"})
        assert _unverified(world) == []
        # Row 5: a matching answer (2099) under a key the catalog never opened, and the row.
        forged = {**given, "decision": {**given["decision"], "valid_until": "2099-12-31"}}
        client.create_flow_run_input(run, "suspended-approval-my-9-response", json.dumps(forged))
    sql(world, "UPDATE approvals SET valid_until = '2099-12-31'")
    [msg] = _unverified(world)
    assert f"approval {approval}" in msg
    refused_by_trail(grant(world, version, "MY", "300d"))
