"""Issue 15, slice C: the facts behind a transfer decision are inside the content hash, grants
check everything again, and `bourse verify` re-derives both from the files and from Prefect.

Each attack is made as an insider would: editing `manifest.json` or a product file in the store,
rows of the catalog with SQL, form answers through the Prefect API; then the real CLI is run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from helpers import bourse, make_project, sample_manifest
from sqlalchemy import text

from databourse.catalog.database import Catalog
from databourse.config import Config, load_config
from databourse.errors import ManifestMismatch
from databourse.product.package import (
    content_hash,
    publish_files,
    schema_of,
    transfer_facts,
    write_parquet,
)
from databourse.storage.local import LocalStore
from databourse.storage.opening import open_store
from databourse.transfer.odrl import usage_policy
from databourse.transfer.policy import facts_for, policy_fingerprint

PRODUCT = "facts-baskets"
EXPORTER = "sz-retail"
SCC = "standard_contract_or_certification"
REMAINING = {"customer_ref": "CN_RESIDENT_ID"}
TODAY = dt.date.today()
PURPOSE = "market-research"  # permitted by sz-retail-baskets' terms, which PRODUCT copies


@dataclass(frozen=True)
class World:
    """A project of its own: configs, catalog and store, and the environment of its CLI."""

    cfg: Config
    catalog: Catalog
    store: LocalStore
    env: dict[str, str]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        if args[:1] == ("grant",) and "--purpose" not in args:  # one the product's terms permit
            args = (*args, "--purpose", PURPOSE)
        proc = bourse(self.env, *args, check=False)
        assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
        return proc

    def manifest_path(self, version: str) -> Path:
        return self.store.root / "products" / PRODUCT / version / "manifest.json"

    def status(self, version: str) -> dict[str, str]:
        [shown] = self.catalog.show(PRODUCT, version)["versions"]
        return {a["market"]: a["status"] for a in shown["availability"]}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    project = make_project(tmp_path / "project")
    configs = project / "configs"
    source = (configs / "products" / "sz-retail-baskets.yaml").read_text()
    (configs / "products" / f"{PRODUCT}.yaml").write_text(
        source.replace("id: sz-retail-baskets", f"id: {PRODUCT}")
    )
    cfg = load_config(configs)
    catalog = Catalog(cfg.catalog_url)
    catalog.create_schema()
    store = open_store(cfg.store_root)
    assert isinstance(store, LocalStore)
    env = {**os.environ, "DATABOURSE_CONFIG_DIR": str(configs)}
    env.pop("DATABOURSE_MANAGED_PREFECT", None)  # the session's server when there is one
    yield World(cfg, catalog, store, env)
    catalog.close()


def package(w: World, rows: int = 30, tag: str = "v1") -> str:
    """Package a version whose customer_ref is a CN_RESIDENT_ID pseudonym, as the build does."""
    table = pa.table(
        {
            "customer_ref": [f"{tag}-{i}" for i in range(rows)],
            "amount": [float(i) for i in range(rows)],
        }
    )
    out = w.cfg.state_dir / "build" / tag
    files = write_parquet(table, out)
    schema = [
        {**c, "personal_data": REMAINING[c["name"]]} if c["name"] in REMAINING else c
        for c in schema_of(table)
    ]
    chash = content_hash(files, schema, "0" * 64, transfer_facts("CN", REMAINING, rows, False))
    w.catalog.ensure_product(PRODUCT, PRODUCT, EXPORTER, "customer_orders")
    version = w.catalog.reserve_version(PRODUCT, chash, schema, rows).version
    spec = w.cfg.product(PRODUCT)
    manifest = sample_manifest(
        table,
        files,
        version=version,
        terms=spec.terms,
        markets=list(spec.markets),
        product=PRODUCT,
        schema=schema,
        personal_data={"remaining": REMAINING, "individuals": rows},
        usage_policy=usage_policy(PRODUCT, version, chash, spec.terms, list(spec.markets)),
    )
    assert manifest["content_hash"] == chash
    uri = publish_files(w.store, PRODUCT, version, out, files, manifest)
    w.catalog.set_manifest(PRODUCT, version, uri)
    return version


def gate(w: World, version: str, rows: int = 30) -> None:
    """What the publish run's decide-transfers does: publish, then the gate on every market."""
    w.catalog.publish_version(PRODUCT, version)
    facts = facts_for("CN", REMAINING, rows, False)
    w.catalog.apply_transfer_policy(
        PRODUCT, version, w.cfg.policy, facts, ["CN", "MY", "SG"], EXPORTER
    )


def approve_my(w: World, version: str, valid_until: dt.date, run: str | None = None) -> int:
    rec = w.catalog.record_approval(
        PRODUCT,
        version,
        "MY",
        "approved",
        approver="Li Wei",
        route=SCC,
        reference="YUE-SC-2026-0042",
        valid_until=valid_until,
        flow_run_id=run,
    )
    return rec.id


def tamper_facts(w: World, version: str) -> None:
    """The insider's edit: no personal data remains, no individuals (the hash is left alone)."""
    path = w.manifest_path(version)
    manifest = json.loads(path.read_text())
    manifest["personal_data"].update(remaining={}, individuals=0, sensitive_categories=[])
    path.write_text(json.dumps(manifest, indent=2))


@contextmanager
def project_resources(cfg: Config) -> Iterator[None]:
    """`tasks.resources` on the world's project (in-process flow and task calls)."""
    from tasks import resources

    before = os.environ.get("DATABOURSE_CONFIG_DIR")
    os.environ["DATABOURSE_CONFIG_DIR"] = str(cfg.root / "configs")
    cached = (resources.config, resources.store, resources.catalog)
    for fn in cached:
        fn.cache_clear()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DATABOURSE_CONFIG_DIR", None)
        else:
            os.environ["DATABOURSE_CONFIG_DIR"] = before
        for fn in cached:
            fn.cache_clear()


# --- attack 4: the facts behind a decision ------------------------------------------------------


def test_an_untouched_version_verifies_from_its_files(world: World) -> None:
    """The control: facts recounted from the files agree with the manifest and the hash."""
    version = package(world)
    proc = world.cli("verify", f"{PRODUCT}@{version}")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.prefect
def test_facts_edited_between_build_and_publish_open_no_market(
    prefect_api: str, world: World
) -> None:
    """Attack 4: the gate refuses an edited manifest; verify and explain name it."""
    from flows.publish_product import publish_product

    version = package(world)
    tamper_facts(world, version)
    with project_resources(world.cfg), pytest.raises(ManifestMismatch, match="was edited"):
        publish_product(PRODUCT, version)
    assert world.status(version) == {}  # no market decided, let alone opened
    assert world.catalog.get_version(PRODUCT, version).status == "staged"

    proc = world.cli("verify", f"{PRODUCT}@{version}")
    assert proc.returncode == 1
    assert "manifest.json: content hash does not match" in proc.stderr
    assert "transfer facts" in proc.stderr
    assert "the schema marks ['customer_ref'] as personal data" in proc.stderr
    assert "the files hold 30 distinct individuals" in proc.stderr
    explained = world.cli("transfer", "explain", f"{PRODUCT}@{version}", "--market", "MY")
    assert explained.returncode == 1 and "was edited after packaging" in explained.stderr


def test_verify_all_recounts_the_facts_of_every_version(world: World) -> None:
    """Attack 4 after publication: verify --all flags the hash and the recount, not only sizes."""
    version = package(world)
    gate(world, version)
    assert world.cli("verify", "--all").returncode == 0
    tamper_facts(world, version)
    proc = world.cli("verify", "--all", "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    kinds = {f["kind"] for f in report["findings"] if f["severity"] == "error"}
    assert {"content-hash-mismatch", "facts-mismatch"} <= kinds
    [recount] = [f["message"] for f in report["findings"] if "distinct individuals" in f["message"]]
    assert "30" in recount and f"products/{PRODUCT}/{version}/manifest.json" in json.dumps(report)


def test_every_decision_records_the_policy_it_was_made_under(world: World) -> None:
    """Decisions carry the policy's fingerprint and rule: a reverted policy edit stays visible."""
    version = package(world)
    gate(world, version)
    fingerprint = policy_fingerprint(world.cfg.policy)
    [shown] = world.catalog.show(PRODUCT, version)["versions"]
    for market in shown["availability"]:
        assert market["detail"]["policy_sha256"] == fingerprint
        assert market["detail"]["rule_id"] == market["rule_id"]
    decisions = [e for e in world.catalog.audit_history(PRODUCT) if e["kind"] == "decision"]
    assert {e["detail"]["policy_sha256"] for e in decisions} == {fingerprint}
    assert {e["market"]: e["detail"]["rule"] for e in decisions}["MY"] == "cn-sensitive-under-10k"
    proc = world.cli("transfer", "explain", f"{PRODUCT}@{version}", "--market", "MY", "--json")
    explained = json.loads(proc.stdout)
    assert explained["policy_sha256"] == fingerprint
    assert explained["stored"]["detail"]["policy_sha256"] == fingerprint


# --- attack 5: grants -------------------------------------------------------------------------


def test_a_file_overwritten_after_approval_is_not_granted(world: World) -> None:
    """Attack 5a: grant refused naming the file; verify reports it cleanly (no traceback)."""
    version = package(world)
    gate(world, version)
    approve_my(world, version, TODAY + dt.timedelta(days=90))
    granted = world.cli("grant", f"{PRODUCT}@{version}", "--buyer", "KL Mart", "--market", "MY")
    assert granted.returncode == 0, granted.stderr
    target = world.store.root / "products" / PRODUCT / version / "part-00000.parquet"
    target.write_bytes(b"PAR1 not the product PAR1")
    refused = world.cli("grant", f"{PRODUCT}@{version}", "--buyer", "Other Co", "--market", "MY")
    assert refused.returncode == 1
    assert f"products/{PRODUCT}/{version}/part-00000.parquet" in refused.stderr
    assert "changed or removed after packaging" in refused.stderr
    assert len(world.catalog.grants(PRODUCT)) == 1
    checked = world.cli("verify", f"{PRODUCT}@{version}")
    assert checked.returncode == 1 and "part-00000.parquet: sha256 differs" in checked.stderr
    target.unlink()
    gone = world.cli("verify", f"{PRODUCT}@{version}")
    assert gone.returncode == 1 and "part-00000.parquet: listed in the manifest, missing" in (
        gone.stderr
    )
    assert world.cli("grant", f"{PRODUCT}@{version}", "--buyer", "X", "--market", "MY").returncode


def test_no_grant_after_the_approval_expired_or_beyond_it(world: World) -> None:
    """Attack 5b: a grant is bounded by the approval's valid_until, and refused once it passed."""
    version = package(world)
    gate(world, version)
    until = TODAY + dt.timedelta(days=10)
    approve_my(world, version, until)
    ref = f"{PRODUCT}@{version}"
    longer = world.cli("grant", ref, "--buyer", "KL Mart", "--market", "MY", "--expires", "30d")
    assert longer.returncode == 1
    assert f"outlast the approval it rests on (valid until {until.isoformat()})" in longer.stderr
    ok = world.cli("grant", ref, "--buyer", "KL Mart", "--market", "MY", "--expires", "5d")
    assert ok.returncode == 0, ok.stderr
    # Time passes: the approval's validity ends (the row as it stands after its date).
    with world.catalog.engine.begin() as conn:
        conn.execute(text("UPDATE approvals SET valid_until = :d"), {"d": TODAY - dt.timedelta(1)})
    late = world.cli("grant", ref, "--buyer", "KL Mart", "--market", "MY", "--expires", "1d")
    assert late.returncode == 1 and "expired on" in late.stderr and "no grant" in late.stderr
    assert len(world.catalog.grants(PRODUCT)) == 1


@pytest.mark.parametrize(
    ("expires", "says"),
    [
        ("2999-12-31", "more than 365 days away"),
        ("366d", "more than 365 days away"),
        ("99999999999d", "give 24h, 7d"),
        ("2020-01-01", "not in the future"),
    ],
)
def test_absurd_or_past_expiry_refused(world: World, expires: str, says: str) -> None:
    """Attack 5c: `--expires 2999-12-31` and friends are refused with a clear error."""
    version = package(world)
    gate(world, version)
    proc = world.cli(
        "grant", f"{PRODUCT}@{version}", "--buyer", "SZ Co", "--market", "CN", "--expires", expires
    )
    assert proc.returncode == 1 and says in proc.stderr
    assert world.catalog.grants(PRODUCT) == []


def test_a_changed_policy_is_decided_again_at_grant_time(world: World) -> None:
    """A market opened under one policy is re-decided under today's before a grant."""
    version = package(world)
    gate(world, version)
    ref = f"{PRODUCT}@{version}"
    assert world.cli("grant", ref, "--buyer", "SZ Co", "--market", "CN").returncode == 0
    approve_my(world, version, TODAY + dt.timedelta(days=90))
    assert world.status(version)["MY"] == "available"
    assert world.cli("catalog", "export").returncode == 0
    assert _exported_markets(world, version) == ["CN", "MY"]
    # The rules change after the approval: sensitive personal data may no longer leave CN.
    path = world.cfg.root / "configs" / "policies" / "cross_border.yaml"
    policy = yaml.safe_load(path.read_text())
    [rule] = [r for r in policy["origins"]["CN"]["rules"] if r["id"] == "cn-sensitive-under-10k"]
    for name in ("route", "evidence", "obligations"):
        rule.pop(name, None)
    rule.update(decision="denied", reason="no longer allowed")
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    refused = world.cli("grant", ref, "--buyer", "KL Mart", "--market", "MY")
    assert refused.returncode == 1 and "not offered in MY" in refused.stderr
    assert world.status(version)["MY"] == "denied"
    [event] = [
        e
        for e in world.catalog.audit_history(PRODUCT)
        if e["kind"] == "decision" and e["market"] == "MY" and e["detail"]["status"] == "denied"
    ]
    now = policy_fingerprint(load_config(world.cfg.root / "configs").policy)
    assert event["detail"]["policy_sha256"] == now != policy_fingerprint(world.cfg.policy)
    # The public listing follows at once (issue 19): MY is offered no more, nothing is stale.
    assert _exported_markets(world, version) == ["CN"]
    report = json.loads(world.cli("verify", "--all", "--json").stdout)
    assert not [f for f in report["findings"] if f["kind"].startswith("listing-")]


def _exported_markets(w: World, version: str) -> list[str]:
    """The markets the exported DCAT JSON-LD offers `version` in."""
    doc = json.loads((w.store.root / "catalog" / "dcat.jsonld").read_text())
    [dataset] = [d for d in doc["dcat:dataset"] if d["dct:identifier"] == f"{PRODUCT}@{version}"]
    return sorted(place["dct:identifier"] for place in dataset["dct:spatial"])


# --- attack 3 (part): approvals against the Prefect runs that answered them --------------------


def _publish_run(product: str, version: str, answers: dict[str, dict[str, Any]]) -> str:
    """A `publish-product` run holding `answers` on its forms, made through the Prefect API."""
    from prefect import flow
    from prefect.client.orchestration import get_client

    @flow(name="publish-product")
    def publish_product(product: str, version: str) -> None:  # a run record only, never run
        raise AssertionError("not run")

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(
            publish_product, parameters={"product": product, "version": version}
        )
        for key, value in answers.items():
            client.create_flow_run_input(run.id, f"suspended-{key}-response", json.dumps(value))
    return str(run.id)


def _findings(world: World) -> list[str]:
    proc = world.cli("verify", "--all", "--json")
    report = json.loads(proc.stdout)
    return [f["message"] for f in report["findings"] if f["kind"] == "approval-unverified"]


@pytest.mark.prefect
def test_verify_all_cross_checks_approvals_with_prefect(prefect_api: str, world: World) -> None:
    """Approvals Prefect never answered (or answered otherwise) are flagged by verify --all."""
    import uuid

    version = package(world)
    gate(world, version)
    given: dict[str, Any] = {
        "approver": "Li Wei",
        "decision": {
            "approve_standard_contract": True,
            "reference": "YUE-SC-2026-0042",
            "valid_until": (TODAY + dt.timedelta(days=90)).isoformat(),
        },
    }
    run = _publish_run(PRODUCT, version, {})
    # The form the publish run opens: the answer carries its nonce, content hash and market.
    asked = world.catalog.open_pending(
        PRODUCT, version, "MY", SCC, "cn-sensitive-under-10k", run, "approval-my"
    )
    given.update(nonce=asked["nonce"], content_hash=asked["content_hash"], market="MY")
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.create_flow_run_input(run, "suspended-approval-my-response", json.dumps(given))
    approval = approve_my(world, version, TODAY + dt.timedelta(days=90), run=run)
    assert _findings(world) == []  # the answer stored in Prefect is the one recorded

    # The insider rewrites the recorded approval (another reference) or its run.
    with world.catalog.engine.begin() as conn:
        conn.execute(text("UPDATE approvals SET reference = 'FORGED-1'"))
    [msg] = _findings(world)
    assert f"approval {approval}" in msg and "reference differs" in msg
    other = _publish_run("sz-retail-baskets", "9.9.9", {"approval-my": given})
    for run_id, says in (
        (other, "a form the catalog never opened"),  # issue 15 R3: answers need a pending row
        (str(uuid.uuid4()), "does not exist in Prefect"),
        (None, "no publish run answered it and it is not a carry-over"),
    ):
        with world.catalog.engine.begin() as conn:
            conn.execute(text("UPDATE approvals SET flow_run_id = :r"), {"r": run_id})
        [msg] = _findings(world)
        assert says in msg, msg
