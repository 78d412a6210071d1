"""The transfer gate end to end: bypass attempts, and approvals answered through the Prefect API.

The flow tests serve `publish-product` from their own runner (deployment `publish-product/gate`)
on a copy of the configs with a 30-second approval timeout and two products of their own, so they
share nothing with the session runner of test_flows.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from helpers import REPO, bourse, make_project, sample_manifest, served_publish_flow
from sqlalchemy import text

from databourse.catalog.database import Catalog
from databourse.config import Config, CrossBorderPolicy, load_config
from databourse.errors import TransferNotApproved
from databourse.storage.opening import open_store
from databourse.transfer.policy import facts_for

BASKETS, ORDERS = "gate-baskets", "gate-orders"
EXPORTER = "sz-retail"
TIMEOUT_S = 30  # long enough for a loaded CI machine to answer; the expiry test waits it out
DEPLOYMENT = "publish-product/gate"
SCC = "standard_contract_or_certification"


# --- packaged versions without running the build ----------------------------------------------


def package(cfg: Config, product: str, rows: int, individuals: int, tag: str) -> str:
    """Write a version of `product` (customer_ref remains, CN_RESIDENT_ID) to store and catalog."""
    import pyarrow as pa

    from databourse.product.package import (
        content_hash,
        publish_files,
        schema_of,
        transfer_facts,
        write_parquet,
    )
    from databourse.transfer.odrl import usage_policy

    # The gate recounts the facts from the files (issue 15 row 4b): they hold `individuals`.
    rows = max(rows, individuals)
    table = pa.table(
        {
            "customer_ref": [f"{tag}-{i % max(individuals, 1)}" for i in range(rows)],
            "amount": [float(i) for i in range(rows)],
        }
    )
    out = cfg.state_dir / "build" / f"{product}-{tag}"
    files = write_parquet(table, out)
    remaining = {"customer_ref": "CN_RESIDENT_ID"}
    schema = [
        {**c, "personal_data": remaining[c["name"]]} if c["name"] in remaining else c
        for c in schema_of(table)
    ]  # as the build tags it
    facts = transfer_facts("CN", remaining, individuals, False)  # inside the content hash
    chash = content_hash(files, schema, "0" * 64, facts)
    cat, store = catalog_of(cfg), open_store(cfg.store_root)
    cat.ensure_product(product, product, EXPORTER, "customer_orders")
    version = cat.reserve_version(product, chash, schema, rows).version
    spec = cfg.product(product)
    manifest = sample_manifest(
        table,
        files,
        version=version,
        terms=spec.terms,
        markets=list(spec.markets),
        product=product,
        schema=schema,
        personal_data={"remaining": remaining, "individuals": individuals},
        usage_policy=usage_policy(product, version, chash, spec.terms, list(spec.markets)),
    )
    cat.set_manifest(product, version, publish_files(store, product, version, out, files, manifest))
    return version


def catalog_of(cfg: Config) -> Catalog:
    cat = Catalog(cfg.catalog_url)
    cat.create_schema()
    return cat


def snapshot(cat: Catalog) -> dict[str, list[Any]]:
    """Every row the gate could write: a bypass attempt must leave all of them as they were."""
    tables = ("versions", "availability", "approvals", "grants", "exporter_transfers")
    with cat.engine.connect() as conn:
        out = {t: list(conn.execute(text(f"SELECT * FROM {t} ORDER BY id")).all()) for t in tables}
        out["audit"] = list(conn.execute(text("SELECT * FROM audit_events ORDER BY seq")).all())
    return out


def status(cat: Catalog, product: str, version: str) -> dict[str, str]:
    shown = cat.show(product, version)["versions"][0]
    return {a["market"]: a["status"] for a in shown["availability"]}


def approvals(cat: Catalog, product: str, version: str) -> dict[str, dict[str, Any]]:
    return {a["market"]: a for a in cat.show(product, version)["versions"][0]["approvals"]}


@pytest.fixture(scope="module")
def gate_cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """A project with the repo's configs, a short approval timeout and two products of its own."""
    project = make_project(tmp_path_factory.mktemp("gate") / "project")
    configs = project / "configs"
    settings = configs / "settings.yaml"
    settings.write_text(
        settings.read_text().replace(
            "approval_timeout_seconds: 604800", f"approval_timeout_seconds: {TIMEOUT_S}"
        )
    )
    source = (configs / "products" / "sz-retail-baskets.yaml").read_text()
    (configs / "products" / f"{BASKETS}.yaml").write_text(
        source.replace("id: sz-retail-baskets", f"id: {BASKETS}")
    )
    (configs / "products" / f"{ORDERS}.yaml").write_text(
        source.replace("id: sz-retail-baskets", f"id: {ORDERS}").replace(
            "markets: [CN, MY, SG]", "markets: [CN, MY]"
        )
    )
    cfg = load_config(configs)
    assert cfg.settings.approval_timeout_seconds == TIMEOUT_S
    return cfg


@contextmanager
def project_resources(cfg: Config) -> Iterator[None]:
    """`tasks.resources` on the gate project (in-process flow and task calls)."""
    from tasks import resources

    before = os.environ.get("DATABOURSE_CONFIG_DIR")
    os.environ["DATABOURSE_CONFIG_DIR"] = str(cfg.root / "configs")
    for cached in (resources.config, resources.store, resources.catalog):
        cached.cache_clear()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DATABOURSE_CONFIG_DIR", None)
        else:
            os.environ["DATABOURSE_CONFIG_DIR"] = before
        for cached in (resources.config, resources.store, resources.catalog):
            cached.cache_clear()


# --- bypass attempts on the catalog (no Prefect needed) ---------------------------------------


@pytest.fixture
def gated(tmp_path: Path) -> tuple[Catalog, CrossBorderPolicy]:
    """p@1.0.0 published: CN available, MY and SG awaiting approval (sensitive data, CN origin)."""
    policy = load_config().policy
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    cat.create_schema()
    cat.ensure_product("p", "P", EXPORTER, "customer_orders")
    cat.reserve_version("p", "h1", [{"name": "customer_ref", "type": "string"}], 3)
    cat.publish_version("p", "1.0.0")
    facts = facts_for("CN", {"customer_ref": "CN_RESIDENT_ID"}, 3, False)
    cat.apply_transfer_policy("p", "1.0.0", policy, facts, ["CN", "MY", "SG"], EXPORTER)
    assert status(cat, "p", "1.0.0") == {
        "CN": "available",
        "MY": "pending_approval",
        "SG": "pending_approval",
    }
    return cat, policy


def refused(cat: Catalog, attempt: Any) -> TransferNotApproved:
    """Run a bypass attempt: it must raise TransferNotApproved and write nothing."""
    before = snapshot(cat)
    with pytest.raises(TransferNotApproved) as info:
        attempt()
    assert snapshot(cat) == before
    return info.value


GRANT_UNTIL = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


def test_direct_catalog_calls_cannot_open_a_gated_market(
    gated: tuple[Catalog, CrossBorderPolicy],
) -> None:
    cat, _policy = gated
    for rule in ("cn-sensitive-under-10k", "cn-personal-under-100k", "domestic", None):
        err = refused(cat, lambda r=rule: cat.set_availability("p", "1.0.0", "MY", "available", r))
        assert err.market == "MY" and "approval" in str(err)  # type: ignore[attr-defined]
    refused(cat, lambda: cat.record_grant("p", "1.0.0", "KL Mart", "MY", GRANT_UNTIL))
    # An undecided market (never through the gate) cannot be opened or approved by hand either.
    refused(cat, lambda: cat.set_availability("p", "1.0.0", "TH", "available", "default-personal"))
    refused(cat, lambda: cat.record_approval("p", "1.0.0", "TH", "approved", "x", "r", "R1"))
    refused(cat, lambda: cat.record_grant("p", "1.0.0", "Bangkok Co", "TH", GRANT_UNTIL))
    assert cat.record_grant("p", "1.0.0", "Shenzhen Co", "CN", GRANT_UNTIL)["market"] == "CN"


def test_an_approval_for_another_market_or_content_opens_nothing(
    gated: tuple[Catalog, CrossBorderPolicy],
) -> None:
    cat, policy = gated
    cat.record_approval("p", "1.0.0", "SG", "approved", "dpo", SCC, "SCC-1", carry_over=False)
    assert status(cat, "p", "1.0.0")["MY"] == "pending_approval"
    refused(cat, lambda: cat.set_availability("p", "1.0.0", "MY", "available", "domestic"))
    refused(cat, lambda: cat.record_grant("p", "1.0.0", "KL Mart", "MY", GRANT_UNTIL))
    cat.record_approval("p", "1.0.0", "MY", "approved", "dpo", SCC, "SCC-2", carry_over=False)

    # The next version has new content: the approvals of 1.0.0 do not count for it.
    cat.reserve_version("p", "h2", [{"name": "customer_ref", "type": "string"}], 3)
    cat.publish_version("p", "1.0.1")
    facts = facts_for("CN", {"customer_ref": "CN_RESIDENT_ID"}, 3, False)
    refused(cat, lambda: cat.set_availability("p", "1.0.1", "MY", "available", "r"))
    refused(cat, lambda: cat.record_grant("p", "1.0.1", "KL Mart", "MY", GRANT_UNTIL))
    # Before the gate has seen it, a version has no known home: a "domestic" claim fixes one,
    # after which no second market can be claimed, and the gate re-decides the claimed one.
    cat.set_availability("p", "1.0.1", "MY", "available", "domestic")
    refused(cat, lambda: cat.set_availability("p", "1.0.1", "SG", "available", "domestic"))
    cat.apply_transfer_policy("p", "1.0.1", policy, facts, ["CN", "MY", "SG"], EXPORTER)
    assert status(cat, "p", "1.0.1")["MY"] == "pending_approval"  # not offered for later versions
    refused(cat, lambda: cat.set_availability("p", "1.0.1", "MY", "available", "domestic"))
    refused(cat, lambda: cat.record_grant("p", "1.0.1", "KL Mart", "MY", GRANT_UNTIL))
    refused(  # an answer given for 1.0.0's bytes cannot be recorded against 1.0.1
        cat,
        lambda: cat.record_approval(
            "p", "1.0.1", "MY", "approved", "dpo", SCC, "SCC-2", content_hash="h1"
        ),
    )


def test_the_cli_has_no_way_around_the_gate() -> None:
    """No CLI module writes a market's status or an approval itself: only flows and tasks do."""
    writers = ("set_availability(", "record_approval(", "apply_transfer_policy(", "record_expiry(")
    for module in sorted((REPO / "bourse").glob("*.py")):
        code = module.read_text()
        assert not [w for w in writers if w in code], module.name


# --- the gate through the Prefect API ---------------------------------------------------------


@pytest.fixture(scope="module")
def gate_runner(prefect_api: str, gate_cfg: Config) -> Iterator[subprocess.Popen[bytes]]:
    """Serves publish-product as `publish-product/gate` with the gate project's configs."""
    with served_publish_flow(prefect_api, gate_cfg.root, "gate") as proc:
        yield proc


def start(product: str, version: str) -> str:
    """Start a publish run from the gate deployment; return its id once it waits or ends."""
    from prefect.deployments import run_deployment

    run = run_deployment(DEPLOYMENT, parameters={"product": product, "version": version}, timeout=0)
    return str(run.id)  # type: ignore[union-attr]


def wait_state(run_id: str, names: set[str], timeout: float = 120) -> str:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            state = client.read_flow_run(UUID(run_id)).state
            if state is not None and state.name in names:
                return state.name
            time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not reach {names}")


def waiting_market(run_id: str, cfg: Config) -> str:
    from bourse.approvals import waiting

    [w] = [w for w in waiting(catalog=catalog_of(cfg)) if w.run_id == run_id]
    return w.market


def cli(cfg: Config, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABOURSE_CONFIG_DIR": str(cfg.root / "configs")}
    env.pop("DATABOURSE_MANAGED_PREFECT", None)  # the session's server, not one of its own
    return bourse(env, *args, check=check)


def approve_my(basis: str = "standard_contract", **extra: Any) -> dict[str, Any]:
    """MY's approval as the form in the UI sends it; `extra` sets the decision's fields."""
    decision = {
        f"approve_{basis}": True,
        "reference": "YUE-SC-2026-0042",
        "valid_until": "2029-11-20",
        **extra,
    }
    return {"approver": "Li Wei", "decision": {k: v for k, v in decision.items() if v is not None}}


@pytest.mark.prefect
def test_flow_gate_cannot_be_skipped(prefect_api: str, gate_cfg: Config) -> None:
    """Outside its deployment the flow stops at the gate; the tasks after it refuse made-up runs."""
    import uuid

    from flows.publish_product import publish_product
    from tasks.approving import record_approval
    from tasks.publishing import approval_key

    # `market` asks one market alone (tasks.asking): no parameter skips the gate
    assert set(publish_product.parameters.properties) == {"product", "version", "market"}
    version = package(gate_cfg, BASKETS, rows=5, individuals=5, tag="skip")
    cat = catalog_of(gate_cfg)
    with project_resources(gate_cfg):
        with pytest.raises(TransferNotApproved, match="deployment"):
            publish_product(BASKETS, version)
        assert status(cat, BASKETS, version) == {
            "CN": "available",
            "MY": "pending_approval",
            "SG": "pending_approval",
        }
        before = snapshot(cat)
        for run_id in (str(uuid.uuid4()), "not-a-run", _publish_run_of(BASKETS, version)):
            with pytest.raises(TransferNotApproved):  # no such run, or nobody answered in it
                record_approval.fn(BASKETS, version, "MY", SCC, approval_key("MY"), run_id)
        assert snapshot(cat) == before


def _publish_run_of(product: str, version: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    name = f"publish/{product}/{version}"
    with get_client(sync_client=True) as client:
        [run] = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
        )
    return str(run.id)


@pytest.mark.prefect
def test_approve_and_reject_through_the_api(gate_runner: Any, gate_cfg: Config) -> None:
    from bourse.approvals import ApprovalError, answer, waiting
    from tasks.approving import record_approval
    from tasks.publishing import approval_key

    cat = catalog_of(gate_cfg)
    version = package(gate_cfg, BASKETS, rows=40, individuals=400, tag="v1")
    run_id = start(BASKETS, version)
    assert wait_state(run_id, {"Suspended", "Completed", "Failed"}) == "Suspended"
    assert waiting_market(run_id, gate_cfg) == "MY"
    # SG was asked at once, on a run of its own (issue 21). It is answered first: both forms
    # time out TIMEOUT_S after they opened, and the checks on MY's form below take a while.
    [sg_run] = [w.run_id for w in waiting(catalog=cat) if (w.version, w.market) == (version, "SG")]
    assert sg_run != run_id
    rejected = cli(
        gate_cfg, "reject", sg_run, "--approver", "Tan Mei Ling", "--reason", "no contract"
    )
    assert "publish run is now Completed" in rejected.stdout
    # The answer is refused when the route's basis misses what it requires; the run waits on.
    bad = cli(gate_cfg, "approve", run_id, "--approver", "Li Wei", "--reference", "none",
              check=False)  # fmt: skip
    assert bad.returncode == 1 and "needs a reference" in bad.stderr
    assert "provincial CAC filing number" in bad.stderr
    # The server's own check: on this basis the expiry is required (its words name no field).
    with pytest.raises(ApprovalError, match="Validation failed for field 'decision'"):
        answer(run_id, approve_my(basis="certification", valid_until=None))
    with pytest.raises(ApprovalError, match="route"):  # the route is the policy's, no input
        answer(run_id, {**approve_my(), "route": "cac_security_assessment"})
    assert wait_state(run_id, {"Suspended"}) == "Suspended"
    assert waiting_market(run_id, gate_cfg) == "MY"
    # The task after the gate records nothing for a form the run never opened.
    with project_resources(gate_cfg), pytest.raises(TransferNotApproved, match="no approval form"):
        record_approval.fn(BASKETS, version, "SG", SCC, approval_key("SG"), run_id)

    assert answer(run_id, approve_my(basis="standard_contract", carry_over=True)) == "Completed"
    assert status(cat, BASKETS, version) == {"CN": "available", "MY": "available", "SG": "rejected"}

    given = approvals(cat, BASKETS, version)
    my = given["MY"]
    assert (my["decision"], my["basis"], my["reference"], my["valid_until"]) == (
        "approved", "standard_contract", "YUE-SC-2026-0042", "2029-11-20",
    )  # fmt: skip
    assert my["rule_id"] == "cn-sensitive-under-10k" and my["carry_over"] is True
    assert my["prefect_identity"] is None and "no identity" in my["identity_note"]
    assert (
        my["flow_run_id"] == run_id
        and my["content_hash"] == cat.get_version(BASKETS, version).content_hash
    )
    assert given["SG"]["decision"] == "rejected" and given["SG"]["conditions"] == "no contract"
    events = [e for e in cat.audit_history(BASKETS) if e["kind"] == "approval"]
    assert events[-1]["detail"]["prefect_identity"] is None
    assert "no identity" in events[-1]["detail"]["identity_note"]
    year = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).year
    assert cat.running_count(EXPORTER, year)["individuals"] == 400

    listed = json.loads(cli(gate_cfg, "approvals", "list", "--all", "--json").stdout)
    assert {(d["version"], d["market"], d["decision"]) for d in listed["decided"]} >= {
        (version, "MY", "approved"),
        (version, "SG", "rejected"),
    }
    shown = cli(gate_cfg, "catalog", "show", f"{BASKETS}@{version}").stdout
    assert "approval MY: approved by Li Wei (no Prefect identity)" in shown


@pytest.mark.prefect
def test_carry_over_then_an_unanswered_approval_expires(gate_runner: Any, gate_cfg: Config) -> None:
    from bourse.approvals import ApprovalError, answer
    from tasks.publishing import sweep_expired

    cat = catalog_of(gate_cfg)
    first = cat.get_version(BASKETS).version
    version = package(gate_cfg, BASKETS, rows=30, individuals=300, tag="v2")
    run_id = start(BASKETS, version)
    assert wait_state(run_id, {"Suspended", "Completed", "Failed"}) == "Suspended"
    # MY: the approval of the previous version was given for later ones and still holds.
    assert waiting_market(run_id, gate_cfg) == "SG"  # SG was rejected for the previous version
    my = approvals(cat, BASKETS, version)["MY"]
    assert my["carried_over_from"]["version"] == first and my["reference"] == "YUE-SC-2026-0042"
    assert any(e["kind"] == "carry_over" for e in cat.audit_history(BASKETS))

    # Nobody answers SG: Prefect fails the run after the timeout, the sweep records the expiry.
    assert wait_state(run_id, {"Failed"}, timeout=TIMEOUT_S + 60) == "Failed"
    with pytest.raises(ApprovalError, match="not waiting"):
        answer(run_id, approve_my())
    [expired] = sweep_expired(cat)
    assert (expired["version"], expired["market"], expired["decision"]) == (
        version, "SG", "expired",
    )  # fmt: skip
    assert expired["flow_run_id"] == run_id and "timed out" in expired["conditions"]
    assert sweep_expired(cat) == []  # idempotent
    assert [(p["market"], p["status"]) for p in cat.pending_of_run(run_id)] == [("SG", "expired")]
    assert status(cat, BASKETS, version) == {"CN": "available", "MY": "available", "SG": "expired"}
    expiries = [e for e in cat.audit_history(BASKETS) if e["kind"] == "expiry"]
    assert [(e["version"], e["market"]) for e in expiries] == [(version, "SG")], expiries
    listed = json.loads(cli(gate_cfg, "approvals", "list", "--all", "--json").stdout)
    assert (version, "SG", "expired") in {
        (d["version"], d["market"], d["decision"]) for d in listed["decided"]
    }
    assert run_id not in {w["run_id"] for w in listed["waiting"]}
    assert "SG: expired" in cli(gate_cfg, "catalog", "show", f"{BASKETS}@{version}").stdout


@pytest.mark.prefect
def test_a_count_that_crosses_a_threshold_while_waiting_asks_again(
    gate_runner: Any, gate_cfg: Config
) -> None:
    """Another version of the exporter leaves while the form waits: the route changes."""
    from bourse.approvals import answer

    cat = catalog_of(gate_cfg)
    sent = cat.running_count(EXPORTER, _year())["individuals"]
    version = package(gate_cfg, ORDERS, rows=20, individuals=9_990 - sent, tag="o1")
    run_id = start(ORDERS, version)
    assert wait_state(run_id, {"Suspended", "Completed", "Failed"}) == "Suspended"
    assert cat.show(ORDERS, version)["versions"][0]["availability"][1]["rule_id"] == (
        "cn-sensitive-under-10k"
    )
    # Meanwhile 20 more individuals of the same exporter go abroad.
    policy = gate_cfg.policy
    other = package(gate_cfg, BASKETS, rows=2, individuals=20, tag="v3")
    facts = facts_for("CN", {"customer_ref": "CN_RESIDENT_ID", "x": "PHONE_NUMBER"}, 20, False)
    cat.apply_transfer_policy(BASKETS, other, policy, facts, ["MY"], EXPORTER)
    cat.record_approval(BASKETS, other, "MY", "approved", "dpo", SCC, "SCC-77")

    assert answer(run_id, approve_my(basis="standard_contract")) == "Suspended"
    assert waiting_market(run_id, gate_cfg) == "MY"  # asked again, on the stricter route
    market = next(a for a in cat.show(ORDERS, version)["versions"][0]["availability"]
                  if a["market"] == "MY")  # fmt: skip
    assert (market["status"], market["rule_id"], market["route"]) == (
        "pending_approval", "cn-sensitive-10k", "cac_security_assessment",
    )  # fmt: skip
    assert approvals(cat, ORDERS, version) == {}
    security = {
        "approver": "Li Wei",
        "decision": {
            "approve_security_assessment": True,
            "reference": "CAC-SA-2026-001",
            "valid_until": "2029-06-30",
            "evidence_url": "https://dms.example/cac/sa-001",
        },
    }
    assert answer(run_id, security) == "Completed"
    recorded = approvals(cat, ORDERS, version)["MY"]
    assert (recorded["route"], recorded["basis"], recorded["rule_id"]) == (
        "cac_security_assessment", "security_assessment", "cn-sensitive-10k",
    )  # fmt: skip


def _year() -> int:
    return dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).year
