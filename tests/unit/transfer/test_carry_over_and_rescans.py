"""Issue 15 and 16 leftovers: the prior decision of a carry-over is the audited trail's, tests that
do not depend on the calendar, and product re-scans at the configured dirty threshold.

(1) The gate carried over "the latest decision on an earlier version" as the catalog's
`decided_at` ordered them: an insider with SQL moved an older approval that covered later
versions ahead of a later refusal, expiry or approval-not-for-later-versions (or moved that later
answer back, or deleted its row), and a market opened without anybody being asked. Replayed here
through the catalog's gate (what the publish run's decide-transfers does) and the real CLI.
(2) The sample products' usage terms expire on a fixed day: every test that grants them failed
from that day on. A test project's terms now expire two years from today (helpers.make_project),
and `bourse demo` says when a sample's terms have expired.
(3) Issue 16: the build's re-scan of the written files and `bourse verify`'s classified messy
columns at the default 0.5, not at settings.pii_dirty_threshold as the ingest's scan does.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any

import helpers
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from faker import Faker
from helpers import sample_manifest
from test_facts_and_grants import (
    EXPORTER,
    PRODUCT,
    REMAINING,
    SCC,
    TODAY,
    World,
    package,
    world,
)
from test_trail_backed_grants import grant, sql

from bourse.demo import terms_expired
from databourse.config import ProductSpec, Settings, load_config
from databourse.errors import PersonalDataFound
from databourse.pii.detect import scan_table
from databourse.product.assembly import build
from databourse.product.package import (
    content_hash,
    publish_files,
    schema_of,
    transfer_facts,
    write_parquet,
)
from databourse.transfer.grant_terms import check_terms_expiry
from databourse.transfer.odrl import usage_policy
from databourse.transfer.policy import facts_for

__all__ = ["world"]  # the fixture, shared with test_facts_and_grants

# --- (1) the prior decision and its age come from the audited trail ----------------------------

BEFORE = {"customer_ref": "CN_RESIDENT_ID"}
AFTER = {**BEFORE, "mobile_ref": "PHONE_NUMBER"}  # v2's categories: v1's approval cannot cover it


def gate_my(w: World, version: str, remaining: dict[str, str]) -> dict[str, Any]:
    """Publish and gate `version` (30 individuals, these categories); its MY decision."""
    w.catalog.publish_version(PRODUCT, version)
    facts = facts_for("CN", remaining, 30, False)
    decisions = w.catalog.apply_transfer_policy(
        PRODUCT, version, w.cfg.policy, facts, ["CN", "MY"], EXPORTER
    )
    return {d["market"]: d for d in decisions}["MY"]


def approve_my(w: World, version: str, carry: bool) -> int:
    return w.catalog.record_approval(
        PRODUCT, version, "MY", "approved", approver="Li Wei", route=SCC,
        reference="YUE-SC-2026-0042", valid_until=TODAY + dt.timedelta(days=300),
        carry_over=carry,
    ).id  # fmt: skip


def answer_v2(w: World, version: str, how: str) -> int:
    """The later answer on v2's MY form: a refusal, no answer in time, or an approval that does
    not cover later versions."""
    if how == "rejected":
        return w.catalog.record_approval(
            PRODUCT, version, "MY", "rejected", approver="Li Wei", route=SCC, reference="none"
        ).id
    if how == "expired":
        waited = "suspended 7 days, timed out"
        expired = w.catalog.record_expiry(PRODUCT, version, "MY", "run-v2", waited)
        assert expired is not None
        return expired.id
    return approve_my(w, version, carry=False)


def history(w: World, how: str) -> tuple[int, int, str, str]:
    """v1 approved for later versions; v2 (other categories) asked and answered `how`; v3 (v1's
    categories again) honestly asked again. Returns (v1's approval, v2's answer, v2, v3)."""
    v1 = package(w, tag="v1")
    assert gate_my(w, v1, BEFORE)["status"] == "pending_approval"
    first = approve_my(w, v1, carry=True)
    v2 = package(w, tag="v2")
    assert gate_my(w, v2, AFTER)["status"] == "pending_approval"  # categories changed
    later = answer_v2(w, v2, how)
    v3 = package(w, tag="v3")
    honest = gate_my(w, v3, BEFORE)
    assert honest["status"] == "pending_approval", honest["carry_over_problems"]
    assert honest["carried_over_from"] is None
    return first, later, v2, v3


def asked_again(w: World, version: str, my: dict[str, Any]) -> None:
    """The market stays gated: no carry-over, no grant through the CLI."""
    assert my["status"] == "pending_approval", "carried over on a decision the trail superseded"
    assert my["carried_over_from"] is None
    assert w.status(version)["MY"] == "pending_approval"
    assert w.catalog.show(PRODUCT, version)["versions"][0]["approvals"] == []
    proc = grant(w, version, "MY")
    assert proc.returncode == 1, proc.stdout
    assert "not offered in MY" in " ".join(proc.stderr.split()), proc.stderr


@pytest.mark.parametrize("how", ["rejected", "expired", "not-for-later"])
def test_an_older_approval_moved_ahead_with_sql_carries_nothing(world: World, how: str) -> None:
    """decided_at of v1's approval set to 2099: the trail's latest decision on an earlier
    version is still v2's answer."""
    first, _, _, v3 = history(world, how)
    sql(
        world,
        "UPDATE approvals SET decided_at = '2099-01-01 00:00:00.000000' WHERE id = :a",
        a=first,
    )
    asked_again(world, v3, gate_my(world, v3, BEFORE))  # the next publish run of v3


@pytest.mark.parametrize("how", ["rejected", "expired", "not-for-later"])
def test_a_later_answer_moved_back_with_sql_carries_nothing(world: World, how: str) -> None:
    """decided_at of v2's answer set to 2000, before v1's approval."""
    _, later, v2, v3 = history(world, how)
    sql(
        world,
        "UPDATE approvals SET decided_at = '2000-01-01 00:00:00.000000' WHERE id = :a",
        a=later,
    )
    my = gate_my(world, v3, BEFORE)
    asked_again(world, v3, my)
    assert any(v2 in p for p in my["carry_over_problems"]), my["carry_over_problems"]


def test_a_later_answer_deleted_or_rebound_with_sql_carries_nothing(world: World) -> None:
    """v2's refusal rewritten to another content hash (out of the old query), then deleted: the
    trail's latest decision is that refusal, whose rows no longer say what it said."""
    _, later, _, v3 = history(world, "rejected")
    sql(world, "UPDATE approvals SET content_hash = :h WHERE id = :a", h="0" * 64, a=later)
    my = gate_my(world, v3, BEFORE)
    asked_again(world, v3, my)
    assert any("content hash is not the audited one" in p for p in my["carry_over_problems"])
    sql(world, "DELETE FROM approvals WHERE id = :a", a=later)
    my = gate_my(world, v3, BEFORE)
    asked_again(world, v3, my)
    assert [f"approval {later}, the audited latest decision for MY, is gone"] == my[
        "carry_over_problems"
    ]


def test_the_audited_latest_approval_still_carries_over(world: World) -> None:
    """The control: the trail's latest approval covers later versions; decided_at moved around
    (both rows, the order reversed) changes nothing."""
    v1 = package(world, tag="v1")
    gate_my(world, v1, BEFORE)
    first = approve_my(world, v1, carry=True)
    v2 = package(world, tag="v2")
    assert gate_my(world, v2, AFTER)["status"] == "pending_approval"
    second = approve_my(world, v2, carry=True)
    sql(world, "UPDATE approvals SET decided_at = '2099-01-01 00:00:00.000000' WHERE id = :a",
        a=first)  # fmt: skip
    sql(world, "UPDATE approvals SET decided_at = '2000-01-01 00:00:00.000000' WHERE id = :a",
        a=second)  # fmt: skip
    v3 = package(world, tag="v3")
    my = gate_my(world, v3, AFTER)
    assert my["status"] == "available", my["carry_over_problems"]
    assert my["carried_over_from"]["approval_id"] == second
    assert grant(world, v3, "MY").returncode == 0


# --- (2) no test or demo depends on the sample terms' expiry being ahead ------------------------


def test_a_test_project_s_terms_expire_relative_to_today(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on the day after the samples' terms pass: the repo's configs say yesterday, a test
    project's still say TERMS_LEFT from today, and a 30-day grant fits in them."""
    repo = tmp_path / "repo"
    shutil.copytree(helpers.REPO / "configs", repo / "configs")
    yesterday = TODAY - dt.timedelta(days=1)
    for path in (repo / "configs" / "products").glob("*.yaml"):
        config = yaml.safe_load(path.read_text())
        if config.get("terms", {}).get("expires") is not None:
            path.write_text(
                path.read_text().replace(str(config["terms"]["expires"]), str(yesterday))
            )
    assert load_config(repo / "configs").product("sz-retail-baskets").terms.expires == yesterday
    monkeypatch.setattr(helpers, "REPO", repo)
    cfg = load_config(helpers.make_project(tmp_path / "project") / "configs")
    now = dt.datetime.now(dt.UTC)
    dated = {p.id: p.terms.expires for p in cfg.products.values() if p.terms.expires}
    assert set(dated) >= {"sz-retail-baskets", "kl-building-environment"}
    for product in dated:  # TransferNotApproved (expired) or CatalogError (outlasts them)
        check_terms_expiry(product, "1.0.0", dated[product], now + dt.timedelta(days=30), now)
    assert set(dated.values()) == {TODAY + helpers.TERMS_LEFT}


def test_the_demo_says_when_a_sample_product_s_terms_have_expired(tmp_path: Path) -> None:
    """`bourse demo` prints this under its catalog for a product whose terms passed."""
    configs = helpers.make_project(tmp_path / "project") / "configs"
    path = configs / "products" / "sz-retail-baskets.yaml"
    day = TODAY - dt.timedelta(days=1)
    path.write_text(re.sub(r"(?m)^(\s+expires:).*$", rf"\1 {day}", path.read_text()))
    cfg = load_config(configs)
    said = terms_expired(cfg, "sz-retail-baskets", "1.0.0")
    assert said is not None
    assert f"the usage terms of sz-retail-baskets@1.0.0 expired on {day}: no grant" in said
    assert "configs/products/sz-retail-baskets.yaml" in said
    assert terms_expired(cfg, "kl-building-environment", "1.0.0") is None  # two years left
    assert terms_expired(cfg, "not-configured", "1.0.0") is None


# --- (3) issue 16: product re-scans at settings.pii_dirty_threshold ----------------------------


def messy(rows: int, kind: str = "ssn") -> list[str]:
    """A messy column: two values in five are CN resident ids (`ssn`) or addresses, the rest
    placeholders: 0.4 of its non-empty values, under the default dirty threshold 0.5 and over a
    configured 0.3."""
    fake = Faker("zh_CN")
    fake.seed_instance(16)
    made = fake.ssn if kind == "ssn" else fake.address
    return [made() if i % 5 < 2 else ("N/A", "000", "-")[i % 3] for i in range(rows)]


@pytest.mark.parametrize(("kind", "category"), [("ssn", "CN_RESIDENT_ID"), ("address", "ADDRESS")])
def test_the_scan_itself_tells_the_two_thresholds_apart(kind: str, category: str) -> None:
    """The control: at 0.5 the column is not classified, at 0.3 it is."""
    table = pa.table({"memo": messy(500, kind)})
    assert scan_table(table)[0].category is None
    assert scan_table(table, dirty_threshold=0.3)[0].category == category


def memos_product() -> ProductSpec:
    return ProductSpec.model_validate({
        "id": "memos", "name": "Memos", "source": {"provider": "p", "dataset": "d"},
        "columns": {"ticket": "keep", "memo": "keep"},
        "terms": {"purposes": ["research"]}, "markets": ["CN"],
    })  # fmt: skip


def memos_build(tmp: Path, dirty_threshold: float) -> Any:
    """`assembly.build` (the build tasks' passes, then the written files' re-scan) with the
    scan settings the build tasks pass: pii_threshold, pii_sample_rows, pii_dirty_threshold."""
    rows = 500
    staged = tmp / "staged.parquet"
    staged.parent.mkdir(parents=True)
    table = pa.table({"ticket": [f"T{i:05d}" for i in range(rows)], "memo": messy(rows)})
    pq.write_table(table, staged)
    pii = (0.8, 2000, dirty_threshold)
    return build(
        staged, memos_product(), {}, None, {}, tmp / "work", tmp / "out", pii=pii, origin="CN"
    )


def test_the_build_s_rescan_uses_the_configured_dirty_threshold(tmp_path: Path) -> None:
    """The written files' re-scan (`rescan_written`) classified at 0.5 whatever the settings:
    the ids were refused as identifiers inside text, never as the column's category."""
    with pytest.raises(PersonalDataFound) as default:
        memos_build(tmp_path / "default", Settings().pii_dirty_threshold)
    assert "identifiers inside the written text" in str(default.value)
    with pytest.raises(PersonalDataFound) as strict:
        memos_build(tmp_path / "strict", 0.3)
    assert "the written files hold direct identifiers in ['memo']" in str(strict.value)


def package_with(w: World, extra: dict[str, list[str]]) -> str:
    """`package` (test_facts_and_grants) of 30 rows with more columns, none personal data."""
    rows = 30
    table = pa.table({"customer_ref": [f"c-{i}" for i in range(rows)],
                      "amount": [float(i) for i in range(rows)], **extra})  # fmt: skip
    files = write_parquet(table, w.cfg.state_dir / "build" / "with")
    schema = [
        {**c, "personal_data": REMAINING[c["name"]]} if c["name"] in REMAINING else c
        for c in schema_of(table)
    ]
    chash = content_hash(files, schema, "0" * 64, transfer_facts("CN", REMAINING, rows, False))
    w.catalog.ensure_product(PRODUCT, PRODUCT, EXPORTER, "customer_orders")
    version = w.catalog.reserve_version(PRODUCT, chash, schema, rows).version
    spec = w.cfg.product(PRODUCT)
    manifest = sample_manifest(
        table, files, version=version, terms=spec.terms, markets=list(spec.markets),
        product=PRODUCT, schema=schema,
        personal_data={"remaining": REMAINING, "individuals": rows},
        usage_policy=usage_policy(PRODUCT, version, chash, spec.terms, list(spec.markets)),
    )  # fmt: skip
    out = w.cfg.state_dir / "build" / "with"
    uri = publish_files(w.store, PRODUCT, version, out, files, manifest)
    w.catalog.set_manifest(PRODUCT, version, uri)
    return version


def test_verify_re_scans_at_the_configured_dirty_threshold(world: World) -> None:
    """`bourse verify` (facts.rederived_problems and the identifier re-scan) on a version whose
    files hold a messy column of addresses: fine at 0.5, refused under `pii_dirty_threshold:
    0.3` (an address is no direct identifier: the embedded check lets it through)."""
    version = package_with(world, {"memo": messy(30, "address")})
    ref = f"{PRODUCT}@{version}"
    assert world.cli("verify", ref).returncode == 0
    settings = world.cfg.root / "configs" / "settings.yaml"
    text = settings.read_text()
    assert "pii_dirty_threshold: 0.5" in text
    settings.write_text(text.replace("pii_dirty_threshold: 0.5", "pii_dirty_threshold: 0.3"))
    proc = world.cli("verify", ref)
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 1, proc.stdout
    assert "re-scan finds ADDRESS in column memo" in said, said
