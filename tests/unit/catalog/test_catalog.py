"""Tests of the catalog (databourse.catalog) on SQLite and PostgreSQL, concurrent writers too."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from databourse.catalog.database import Catalog, make_engine
from databourse.catalog.models import Approval, Version
from databourse.catalog.versioning import Schema
from databourse.config import CrossBorderPolicy, load_config
from databourse.errors import CatalogError, TransferNotApproved, VersionNotFound
from databourse.transfer.policy import TransferFacts, calendar_year, facts_for

PG_URL = os.environ.get(
    "DATABOURSE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PRODUCT = "sz-orders-anon"
SCHEMA: Schema = [
    {"name": "order_id", "type": "string"},
    {"name": "amount", "type": "double"},
    {"name": "district", "type": "string"},
]
SPAWN_TIMEOUT_S = 120


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty catalog database: a tmp SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    admin = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    schema = f"test_catalog_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {reason}")
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    """A catalog with its tables and one product."""
    with Catalog(catalog_url) as cat:
        cat.create_schema()
        cat.ensure_product(PRODUCT, "Shenzhen orders (anonymized)", "shenzhen", "orders")
        yield cat


def _staged(catalog: Catalog, content_hash: str = "h1", market: str = "SG") -> str:
    """Reserve a version and mark one market as awaiting approval; returns the version."""
    version = catalog.reserve_version(PRODUCT, content_hash, SCHEMA, 100).version
    catalog.set_availability(
        PRODUCT, version, market, "pending_approval", "cn-scc", route="standard_contract"
    )
    return version


def _market(catalog: Catalog, version: str, market: str) -> dict[str, Any]:
    shown = catalog.show(PRODUCT, version)["versions"][0]
    return next(a for a in shown["availability"] if a["market"] == market)


# --- versions --------------------------------------------------------------------------------


def test_reserve_is_idempotent_per_content_hash(catalog: Catalog) -> None:
    first = catalog.reserve_version(PRODUCT, "a" * 64, SCHEMA, 100)
    again = catalog.reserve_version(PRODUCT, "a" * 64, SCHEMA, 100)
    assert (first.version, first.new, first.status) == ("1.0.0", True, "staged")
    assert (again.version, again.new) == ("1.0.0", False)
    assert again.created_at == first.created_at
    assert catalog.list_products()[0]["version_count"] == 1


def test_versions_follow_the_schema(catalog: Catalog) -> None:
    added = [*SCHEMA, {"name": "channel", "type": "string"}]
    removed = [c for c in added if c["name"] != "district"]
    steps = [("h1", SCHEMA), ("h2", SCHEMA), ("h3", added), ("h4", removed), ("h5", removed)]
    versions = [catalog.reserve_version(PRODUCT, h, s, 10).version for h, s in steps]
    assert versions == ["1.0.0", "1.0.1", "1.1.0", "2.0.0", "2.0.1"]
    assert catalog.get_version(PRODUCT).version == "2.0.1"
    minor = catalog.get_version(PRODUCT, "1.1.0")
    assert minor.schema == added
    assert minor.schema_diff == {
        "added": ["channel"],
        "removed": [],
        "retyped": [],
        "exposed": [],
        "bump": "minor",
    }
    assert catalog.get_version(PRODUCT, "1.0.0").schema_diff is None
    assert catalog.get_version(PRODUCT, "2.0.0").schema_diff["removed"] == ["district"]  # type: ignore[index]
    # An old content hash comes back with its old number, not a new one.
    assert catalog.reserve_version(PRODUCT, "h2", SCHEMA, 10).version == "1.0.1"


def test_ordering_is_numeric_not_textual(catalog: Catalog) -> None:
    for i in range(12):
        catalog.reserve_version(PRODUCT, f"h{i}", SCHEMA, 1)
    assert catalog.get_version(PRODUCT).version == "1.0.11"
    assert catalog.reserve_version(PRODUCT, "next", SCHEMA, 1).version == "1.0.12"


def test_reserve_unknown_product_and_bad_schema(catalog: Catalog) -> None:
    with pytest.raises(CatalogError) as info:
        catalog.reserve_version("nope", "h", SCHEMA, 1)
    assert info.value.product == "nope"  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        catalog.reserve_version(PRODUCT, "h", [{"name": "a", "type": "x"}] * 2, 1)


def test_get_version_not_found(catalog: Catalog) -> None:
    with pytest.raises(VersionNotFound) as info:
        catalog.get_version(PRODUCT)
    assert (info.value.product, info.value.version) == (PRODUCT, None)  # type: ignore[attr-defined]
    catalog.reserve_version(PRODUCT, "h1", SCHEMA, 1)
    with pytest.raises(VersionNotFound) as info:
        catalog.get_version(PRODUCT, "9.9.9")
    assert info.value.version == "9.9.9"  # type: ignore[attr-defined]


def test_manifest_publish_withdraw(catalog: Catalog) -> None:
    version = catalog.reserve_version(PRODUCT, "h1", SCHEMA, 5).version
    catalog.set_manifest(PRODUCT, version, "s3://bucket/products/p/1.0.0/manifest.json")
    catalog.publish_version(PRODUCT, version)
    record = catalog.get_version(PRODUCT, version)
    assert record.status == "published"
    assert record.manifest_uri == "s3://bucket/products/p/1.0.0/manifest.json"
    assert record.published_at is not None and record.published_at.tzinfo is not None
    catalog.publish_version(PRODUCT, version)  # idempotent: the first publication time stays
    assert catalog.get_version(PRODUCT, version).published_at == record.published_at
    catalog.withdraw_version(PRODUCT, version)
    with pytest.raises(CatalogError, match="withdrawn"):
        catalog.publish_version(PRODUCT, version)
    with pytest.raises(VersionNotFound):
        catalog.publish_version(PRODUCT, "3.0.0")


def test_ensure_product_updates(catalog: Catalog) -> None:
    catalog.ensure_product(PRODUCT, "Renamed", "shenzhen", "orders_v2")
    product = catalog.show(PRODUCT)["product"]
    assert (product["name"], product["dataset"]) == ("Renamed", "orders_v2")


# --- markets and approvals ------------------------------------------------------------------


def test_approval_required_market_needs_an_approval(catalog: Catalog) -> None:
    version = _staged(catalog)
    assert catalog.pending_approvals()[0]["market"] == "SG"
    with pytest.raises(TransferNotApproved) as info:
        catalog.set_availability(PRODUCT, version, "SG", "available", "cn-scc")
    err = info.value
    assert (err.product, err.version, err.market) == (PRODUCT, version, "SG")  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(err)).market == "SG"  # type: ignore[attr-defined]
    assert _market(catalog, version, "SG")["status"] == "pending_approval"

    approval = catalog.record_approval(
        PRODUCT, version, "SG", "approved", "dpo@exchange", "standard_contract", "SCC-2024-17",
        valid_until=date.today() + timedelta(days=365), flow_run_id="run-1",
    )  # fmt: skip
    assert approval.new and approval.content_hash == "h1" and approval.decision == "approved"
    assert _market(catalog, version, "SG")["status"] == "available"
    assert catalog.pending_approvals() == []
    # Now the policy's caller may (re)state "available", and a re-run asking again keeps it.
    catalog.set_availability(PRODUCT, version, "SG", "available", "cn-scc")
    stored = catalog.set_availability(PRODUCT, version, "SG", "pending_approval", "cn-scc")
    assert stored == "available"
    assert catalog.list_products()[0]["markets"] == []  # staged: not offered anywhere yet
    catalog.publish_version(PRODUCT, version)
    assert catalog.list_products()[0]["markets"] == ["SG"]


def test_markets_without_approval_need_are_set_directly(catalog: Catalog) -> None:
    version = catalog.reserve_version(PRODUCT, "h1", SCHEMA, 1).version
    catalog.set_availability(
        PRODUCT, version, "CN", "available", "domestic", detail={"exemption": "domestic"}
    )
    catalog.set_availability(PRODUCT, version, "US", "denied", "cn-pi-us", detail={"reason": "x"})
    markets = catalog.show(PRODUCT)["versions"][0]["availability"]
    assert {a["market"]: a["status"] for a in markets} == {"CN": "available", "US": "denied"}
    with pytest.raises(TransferNotApproved):  # an approval cannot override a policy denial
        catalog.record_approval(PRODUCT, version, "US", "approved", "dpo", "scc", "R1")
    for bad in ("sg", "SGP", ""):
        with pytest.raises(CatalogError):
            catalog.set_availability(PRODUCT, version, bad, "available", "r")
    with pytest.raises(CatalogError):
        catalog.set_availability(PRODUCT, version, "SG", "maybe", "r")


def test_rejected_approval_leaves_market_rejected(catalog: Catalog) -> None:
    version = _staged(catalog)
    record = catalog.record_approval(
        PRODUCT, version, "SG", "rejected", "dpo@exchange", "standard_contract", "SCC-9"
    )
    assert record.decision == "rejected"
    assert _market(catalog, version, "SG")["status"] == "rejected"
    with pytest.raises(TransferNotApproved):
        catalog.set_availability(PRODUCT, version, "SG", "available", "cn-scc")
    assert _market(catalog, version, "SG")["status"] == "rejected"


def test_expired_decision_revokes_an_approval(catalog: Catalog) -> None:
    version = _staged(catalog)
    catalog.record_approval(PRODUCT, version, "SG", "approved", "dpo", "scc", "R1")
    catalog.record_approval(PRODUCT, version, "SG", "expired", "system", "scc", "R1")
    assert _market(catalog, version, "SG")["status"] == "expired"
    with pytest.raises(TransferNotApproved):
        catalog.set_availability(PRODUCT, version, "SG", "available", "cn-scc")
    with pytest.raises(TransferNotApproved, match="expired"):
        catalog.record_approval(
            PRODUCT, version, "SG", "approved", "dpo", "scc", "R2",
            valid_until=date.today() - timedelta(days=1),
        )  # fmt: skip


def test_approval_bound_to_another_content_hash_does_not_count(catalog: Catalog) -> None:
    version = _staged(catalog, content_hash="h-current")
    with pytest.raises(TransferNotApproved, match="h-stale"):
        catalog.record_approval(
            PRODUCT, version, "SG", "approved", "dpo", "scc", "R1", content_hash="h-stale"
        )
    assert catalog.show(PRODUCT, version)["versions"][0]["approvals"] == []
    # A stored approval row whose hash is not the version's is ignored by the gate.
    with Session(catalog.engine) as session, session.begin():
        row = session.scalars(
            select(Version).where(Version.product_id == PRODUCT, Version.version == version)
        ).one()
        session.add(
            Approval(
                version_id=row.id, market="SG", content_hash="h-stale", decision="approved",
                approver="dpo", route="scc", reference="R0",
            )
        )  # fmt: skip
    with pytest.raises(TransferNotApproved):
        catalog.set_availability(PRODUCT, version, "SG", "available", "cn-scc")
    assert _market(catalog, version, "SG")["status"] == "pending_approval"


def test_record_approval_is_idempotent_per_flow_run(catalog: Catalog) -> None:
    version = _staged(catalog)
    first = catalog.record_approval(
        PRODUCT, version, "SG", "approved", "dpo", "scc", "R1", flow_run_id="run-7",
        prefect_identity="user:alice",
    )  # fmt: skip
    again = catalog.record_approval(
        PRODUCT, version, "SG", "approved", "dpo", "scc", "R1", flow_run_id="run-7"
    )
    assert first.new and not again.new and again.id == first.id
    assert again.prefect_identity == "user:alice"
    assert len(catalog.show(PRODUCT, version)["versions"][0]["approvals"]) == 1


# --- browsing -------------------------------------------------------------------------------


def test_list_and_show_json_shapes(catalog: Catalog) -> None:
    catalog.ensure_product("kl-trips", "KL trips", "kuala_lumpur", "trips")
    version = _staged(catalog)
    catalog.set_availability(PRODUCT, version, "CN", "available", "domestic")
    catalog.record_approval(
        PRODUCT, version, "SG", "approved", "dpo", "scc", "R1",
        conditions="no onward transfer", valid_until=date(2099, 1, 31),
    )  # fmt: skip
    catalog.publish_version(PRODUCT, version)

    listed = catalog.list_products()
    assert [p["id"] for p in listed] == ["kl-trips", PRODUCT]
    assert set(listed[1]) == {
        "id", "name", "provider", "dataset", "created_at",
        "latest_version", "latest_status", "version_count", "markets",
    }  # fmt: skip
    assert listed[0]["latest_version"] is None and listed[0]["version_count"] == 0
    assert (listed[1]["latest_version"], listed[1]["markets"]) == ("1.0.0", ["CN", "SG"])

    shown = catalog.show(PRODUCT)
    json.dumps(shown)  # JSON-ready, no datetimes or ORM objects
    assert shown["product"]["id"] == PRODUCT and shown["product"]["provider"] == "shenzhen"
    entry = shown["versions"][0]
    assert entry["version"] == "1.0.0" and entry["status"] == "published"
    assert entry["schema"] == SCHEMA and entry["row_count"] == 100
    assert [a["market"] for a in entry["availability"]] == ["CN", "SG"]
    assert set(entry["availability"][1]) == {
        "market", "status", "rule_id", "route", "detail", "updated_at",
    }  # fmt: skip
    (approval,) = entry["approvals"]
    assert approval["valid_until"] == "2099-01-31"
    assert approval["content_hash"] == "h1" and approval["conditions"] == "no onward transfer"
    with pytest.raises(VersionNotFound):
        catalog.show("nope")


def test_sqlite_pragmas(tmp_path: Path) -> None:
    with Catalog(f"sqlite:///{tmp_path / 'sub' / 'c.db'}") as cat:
        cat.create_schema()
        with cat.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_engine_urls() -> None:
    assert make_engine("postgres://u@db:5432/c").url.drivername == "postgresql+psycopg"
    assert make_engine("postgresql://u@db:5432/c").url.drivername == "postgresql+psycopg"
    for bad in ("mysql://u@db/c", "not a url"):
        with pytest.raises(CatalogError):
            make_engine(bad)


# --- concurrency ----------------------------------------------------------------------------


OTHER = "kl-trips-anon"


def _reserve_in_process(url: str, own_hash: str, barrier: Any, results: Any) -> None:
    """Child process: race the others twice, on one shared content hash, then on its own hash."""
    try:
        with Catalog(url) as cat:
            cat.ensure_product(PRODUCT, "Shenzhen orders (anonymized)", "shenzhen", "orders")
            cat.ensure_product(OTHER, "KL trips (anonymized)", "kuala_lumpur", "trips")
            cat.list_products()  # connect before the barrier so that the reservations race
            barrier.wait(timeout=SPAWN_TIMEOUT_S)
            shared = cat.reserve_version(PRODUCT, "same-content", SCHEMA, 10)
            barrier.wait(timeout=SPAWN_TIMEOUT_S)
            own = cat.reserve_version(OTHER, own_hash, SCHEMA, 10)
            results.put((shared.version, shared.new, own.version, own.new, own.content_hash))
    except BaseException as exc:
        barrier.abort()  # the others fail fast instead of waiting for this one
        results.put(("error", type(exc).__name__, str(exc)))


def test_concurrent_reservations_across_processes(catalog: Catalog, catalog_url: str) -> None:
    """4 spawned processes: one shared hash gives one version; 4 hashes give 4 numbers."""
    hashes = ["ha", "hb", "hc", "hd"]
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(hashes)), ctx.Queue()
    procs = [
        ctx.Process(target=_reserve_in_process, args=(catalog_url, h, barrier, results))
        for h in hashes
    ]
    for proc in procs:
        proc.start()
    out = [results.get(timeout=SPAWN_TIMEOUT_S) for _ in procs]
    for proc in procs:
        proc.join(timeout=SPAWN_TIMEOUT_S)
    assert not [r for r in out if r[0] == "error"], out
    assert [p.exitcode for p in procs] == [0] * len(procs)

    assert {r[0] for r in out} == {"1.0.0"}
    assert sorted(r[1] for r in out) == [False, False, False, True]
    assert sorted(r[2] for r in out) == ["1.0.0", "1.0.1", "1.0.2", "1.0.3"]
    assert all(r[3] for r in out)
    assert sorted(r[4] for r in out) == hashes
    counts = {p["id"]: p["version_count"] for p in catalog.list_products()}
    assert counts == {PRODUCT: 1, OTHER: 4}
    assert catalog.get_version(OTHER).version == "1.0.3"


# --- the transfer gate: running counts, carry-over, expiry -----------------------------------

EXPORTER = "shenzhen"
ORIGIN_TZ_YEAR = "Asia/Shanghai"


@pytest.fixture(scope="module")
def policy() -> CrossBorderPolicy:
    return load_config().policy


def _facts(individuals: int, *categories: str) -> TransferFacts:
    remaining = {f"c{i}": c for i, c in enumerate(categories or ("PHONE_NUMBER",))}
    return facts_for("CN", remaining, individuals, False)


def _gate(
    catalog: Catalog,
    policy: CrossBorderPolicy,
    content_hash: str,
    facts: TransferFacts,
    product: str = PRODUCT,
    schema: Schema = SCHEMA,
    markets: tuple[str, ...] = ("CN", "MY", "SG"),
) -> dict[str, dict[str, Any]]:
    version = catalog.reserve_version(product, content_hash, schema, 10).version
    out = catalog.apply_transfer_policy(product, version, policy, facts, list(markets), EXPORTER)
    return {d["market"]: d for d in out}


def _year() -> int:
    return calendar_year(ORIGIN_TZ_YEAR, datetime.now(UTC))


def test_running_count_per_exporter_and_year(catalog: Catalog, policy: CrossBorderPolicy) -> None:
    first = _gate(catalog, policy, "h1", _facts(60_000))
    assert {m: d["status"] for m, d in first.items()} == {m: "available" for m in first}
    assert first["MY"]["rule_id"] == "cn-personal-under-100k"
    count = catalog.running_count(EXPORTER, _year())
    assert count["individuals"] == 60_000  # two foreign markets, counted once
    assert [(v["version"], v["market"]) for v in count["versions"]] == [("1.0.0", "MY")]

    # The next version of the same product does not start from zero...
    second = _gate(catalog, policy, "h2", _facts(50_000))
    assert second["MY"]["facts"]["sent_this_year"] == 60_000
    assert (second["MY"]["rule_id"], second["MY"]["status"]) == (
        "cn-personal-100k",
        "pending_approval",
    )
    # ...nor does another product of the same exporter.
    catalog.ensure_product("sz-other", "Other", EXPORTER, "other")
    other = _gate(catalog, policy, "o1", _facts(45_000), product="sz-other")
    assert other["SG"]["status"] == "pending_approval"
    assert catalog.running_count(EXPORTER, _year())["individuals"] == 60_000  # nothing left yet

    # A re-run of the first version does not count it against itself, nor twice.
    again = _gate(catalog, policy, "h1", _facts(60_000))
    assert again["MY"]["facts"]["sent_this_year"] == 0 and again["MY"]["status"] == "available"
    for market in ("MY", "SG"):
        catalog.record_approval(PRODUCT, "1.0.1", market, "approved", "dpo", "scc", f"R-{market}")
    count = catalog.running_count(EXPORTER, _year())
    assert count["individuals"] == 110_000 and len(count["versions"]) == 2
    assert catalog.running_count("another-exporter", _year())["individuals"] == 0
    counts = [e for e in catalog.audit_history(PRODUCT) if e["kind"] == "count"]
    assert [(e["version"], e["detail"]["individuals"]) for e in counts] == [
        ("1.0.0", 60_000),
        ("1.0.1", 50_000),
    ]


def test_nothing_counted_without_personal_data_or_at_home(
    catalog: Catalog, policy: CrossBorderPolicy
) -> None:
    anonymized = facts_for("CN", {}, 5_000, False)
    assert _gate(catalog, policy, "h1", anonymized)["SG"]["rule_id"] == "cn-anonymized"
    _gate(catalog, policy, "h2", _facts(500), markets=("CN",))
    assert catalog.running_count(EXPORTER, _year())["individuals"] == 0


def test_calendar_year_in_the_origin_time_zone(
    catalog: Catalog, policy: CrossBorderPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    import databourse.catalog.database as module

    monkeypatch.setattr(module, "utcnow", lambda: datetime(2026, 12, 31, 15, 30, tzinfo=UTC))
    _gate(catalog, policy, "h1", _facts(70_000))  # 23:30 on 31 December 2026 in Shanghai
    assert catalog.running_count(EXPORTER, 2026)["individuals"] == 70_000
    catalog.publish_version(PRODUCT, "1.0.0")
    until = datetime(2027, 3, 1, tzinfo=UTC)
    catalog.record_grant(PRODUCT, "1.0.0", "KL Mart", "MY", until)  # same year: counted once
    assert catalog.running_count(EXPORTER, 2026)["individuals"] == 70_000

    monkeypatch.setattr(module, "utcnow", lambda: datetime(2026, 12, 31, 16, 30, tzinfo=UTC))
    assert _gate(catalog, policy, "h2", _facts(40_000))["MY"]["facts"]["sent_this_year"] == 0
    assert catalog.running_count(EXPORTER, 2027)["individuals"] == 40_000  # 00:30, 1 January
    # A version sold abroad in the new year counts in the new year as well, once.
    catalog.record_grant(PRODUCT, "1.0.0", "KL Mart", "MY", until)
    catalog.record_grant(PRODUCT, "1.0.0", "SG Shop", "SG", until)
    assert catalog.running_count(EXPORTER, 2027)["individuals"] == 110_000


def _approve(catalog: Catalog, version: str, carry_over: bool = True) -> None:
    catalog.record_approval(
        PRODUCT, version, "MY", "approved", "Li Wei", "standard_contract_or_certification",
        "YUE-SC-2026-0042", valid_until=date.today() + timedelta(days=365),
        basis="standard_contract", carry_over=carry_over, flow_run_id=f"run-{version}",
    )  # fmt: skip


def test_an_approval_carries_over_to_the_next_version(
    catalog: Catalog, policy: CrossBorderPolicy
) -> None:
    first = _gate(catalog, policy, "h1", _facts(400, "CN_RESIDENT_ID"), markets=("MY",))
    assert first["MY"]["status"] == "pending_approval"
    _approve(catalog, "1.0.0")
    second = _gate(catalog, policy, "h2", _facts(300, "CN_RESIDENT_ID"), markets=("MY",))
    assert second["MY"]["status"] == "available"
    [carried] = catalog.show(PRODUCT, "1.0.1")["versions"][0]["approvals"]
    source = catalog.show(PRODUCT, "1.0.0")["versions"][0]["approvals"][0]
    assert carried["carried_over_from"] == {
        "version": "1.0.0", "approval_id": source["id"], "content_hash": "h1",
    }  # fmt: skip
    assert (carried["content_hash"], carried["reference"], carried["approver"]) == (
        "h2", "YUE-SC-2026-0042", "Li Wei",
    )  # fmt: skip
    [event] = [e for e in catalog.audit_history(PRODUCT) if e["kind"] == "carry_over"]
    assert (
        event["version"] == "1.0.1" and event["detail"]["carried_over_from"]["version"] == "1.0.0"
    )
    assert catalog.running_count(EXPORTER, _year())["individuals"] == 700
    # A third version carries over from the carried record in turn.
    third = _gate(catalog, policy, "h3", _facts(200, "CN_RESIDENT_ID"), markets=("MY",))
    assert third["MY"]["carried_over_from"]["version"] == "1.0.1"


def _expire_reference(catalog: Catalog, version: str) -> None:
    with Session(catalog.engine) as session, session.begin():  # time passes
        row = session.scalars(select(Version).where(Version.version == version)).one()
        for approval in session.scalars(select(Approval).where(Approval.version_id == row.id)):
            approval.valid_until = date.today() - timedelta(days=1)


@pytest.mark.parametrize(
    ("change", "finding"),
    [
        ("not_offered", "not given for later versions"),
        ("schema", "schema changed"),
        ("categories", "categories changed"),
        ("threshold", "rule is cn-sensitive-10k"),
        ("expired", "expired on"),
        ("rejected", "latest decision for 1.0.1 is rejected"),
    ],
)
def test_each_condition_that_stops_a_carry_over(
    catalog: Catalog, policy: CrossBorderPolicy, change: str, finding: str
) -> None:
    _gate(catalog, policy, "h1", _facts(400, "CN_RESIDENT_ID"), markets=("MY",))
    _approve(catalog, "1.0.0", carry_over=change != "not_offered")
    schema, individuals = SCHEMA, 300
    categories: tuple[str, ...] = ("CN_RESIDENT_ID",)
    if change == "schema":
        schema = [*SCHEMA, {"name": "channel", "type": "string"}]
    elif change == "categories":
        categories = ("CN_RESIDENT_ID", "PHONE_NUMBER")
    elif change == "threshold":
        individuals = 9_700  # 400 already sent this year: 10,100 sensitive individuals
    elif change == "expired":
        _expire_reference(catalog, "1.0.0")
    elif change == "rejected":  # the latest decision on an earlier version is a refusal
        _gate(catalog, policy, "h1b", _facts(400, "BANK_ACCOUNT"), markets=("MY",))
        catalog.record_approval(PRODUCT, "1.0.1", "MY", "rejected", "dpo", "scc", "none")
    facts = _facts(individuals, *categories)
    [latest] = _gate(catalog, policy, "h2", facts, schema=schema, markets=("MY",)).values()
    assert latest["status"] == "pending_approval" and latest["carried_over_from"] is None
    assert any(finding in p for p in latest["carry_over_problems"]), latest["carry_over_problems"]
    version = catalog.get_version(PRODUCT).version
    assert catalog.show(PRODUCT, version)["versions"][0]["approvals"] == []


def test_expiry_is_recorded_once_and_only_while_pending(catalog: Catalog) -> None:
    version = _staged(catalog)
    catalog.set_availability(PRODUCT, version, "MY", "pending_approval", "r", route="scc")
    waited = "suspended 2026-11-20T00:00:00+00:00, timed out 2026-11-27T00:00:00+00:00"
    first = catalog.record_expiry(PRODUCT, version, "SG", "run-1", waited)
    assert first is not None and first.decision == "expired" and first.flow_run_id == "run-1"
    assert catalog.record_expiry(PRODUCT, version, "SG", "run-1", waited) is None  # idempotent
    assert _market(catalog, version, "SG")["status"] == "expired"
    # Answered meanwhile by another run: an old run's timeout changes nothing.
    catalog.record_approval(
        PRODUCT, version, "MY", "approved", "dpo", "scc", "R1", flow_run_id="run-3"
    )
    assert catalog.record_expiry(PRODUCT, version, "MY", "run-2", waited) is None
    assert _market(catalog, version, "MY")["status"] == "available"
    assert catalog.expired_runs() == {("run-1", "SG")}
    kinds = [e["kind"] for e in catalog.audit_history(PRODUCT)]
    assert kinds.count("expiry") == 1
    decided = {(d["market"], d["decision"]) for d in catalog.transfer_decisions(PRODUCT)}
    assert decided == {("SG", "expired"), ("MY", "approved")}
    with pytest.raises(TransferNotApproved):  # nobody can approve a market that expired
        catalog.record_approval(PRODUCT, version, "SG", "approved", "dpo", "scc", "R2")
