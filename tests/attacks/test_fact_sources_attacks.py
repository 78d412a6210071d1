"""Issue 15, row 4b and the mid-ingest swap: no fact comes from what an insider can write.

Row 4b: the facts the gate decides on and the privacy check come from the product's config
(which columns hold personal data, the quasi-identifiers, k) and from the files, never from the
schema tags, personal_data or privacy figures a manifest carries. Each attack is an insider's
with write access to the store: a version whose manifest was forged before it was hashed (a tag
dropped, so the content hash covers the forgery), or edited after packaging where nothing
recorded its bytes (privacy figures are outside the content hash). Then the real publish flow,
`bourse grant`, `bourse verify` and `bourse transfer explain` are run.

The swap: an ingest opens the source once and hashes, stores and reads that one descriptor's
bytes, so a file swapped at its name after discovery (or after the ingest opened it) never puts
other bytes in raw/.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import sample_manifest
from test_facts_and_grants import (
    PRODUCT,
    TODAY,
    World,
    approve_my,
    project_resources,
    world,
)

from databourse.config import DatasetSpec, load_config
from databourse.errors import FactsMismatch, IngestRejected
from databourse.ingest.files import ingest_file
from databourse.ingest.landing import discover
from databourse.product.package import (
    content_hash,
    publish_files,
    schema_of,
    transfer_facts,
    write_parquet,
)
from databourse.storage.local import LocalStore
from databourse.storage.store import ObjectInfo
from databourse.transfer.odrl import usage_policy
from databourse.transfer.policy import facts_for

__all__ = ["world"]  # the fixture, shared with test_facts_and_grants

CONFIGURED = {"customer_ref": "CN_RESIDENT_ID"}  # what the product's config leaves: a pseudonym
MODEL = {  # the product's privacy model as the build records it in the manifest
    "model": "k-anonymity",
    "k": 5,
    "quasi_identifiers": ["birth_decade", "district"],
    "sensitive_attributes": [],
    "l": None,
    "t": None,
    "max_suppression": 0.05,
}
CANARY = "CANARY-ROW-4B"


def baskets(rows: int = 30, small_classes: bool = False, tag: str = "v") -> pa.Table:
    """The product's output columns as the build writes them; classes of 5 over the config's
    quasi-identifiers, or (small_classes) of 2 while `district` alone still has classes of 10."""
    districts = ["Nanshan", "Futian", "Luohu"]
    decade = [f"19{5 + (i // 2) % 5}0" if small_classes else f"19{8 + i % 2}0" for i in range(rows)]
    return pa.table(
        {
            "order_id": [f"{tag}-o{i}" for i in range(rows)],
            "customer_ref": [f"{tag}{i:02d}" + "a7" * 31 for i in range(rows)],
            "birth_decade": decade,
            "district": [districts[(i // 2) % 3] for i in range(rows)],
            "order_month": ["2026-03"] * rows,
            "category": ["grocery", "toys"] * (rows // 2),
            "amount_cny": [float(i) for i in range(rows)],
        }
    )


def package_as(w: World, table: pa.Table, tags: dict[str, str], individuals: int, tag: str) -> str:
    """Package a version whose manifest states `tags` and `individuals`, hashed as stated: what
    a build forged before it was hashed leaves (the content hash covers the forgery)."""
    out = w.cfg.state_dir / "build" / tag
    files = write_parquet(table, out)
    schema = [
        {**c, "personal_data": tags[c["name"]]} if c["name"] in tags else c
        for c in schema_of(table)
    ]
    chash = content_hash(files, schema, "0" * 64, transfer_facts("CN", tags, individuals, False))
    w.catalog.ensure_product(PRODUCT, PRODUCT, "sz-retail", "customer_orders")
    version = w.catalog.reserve_version(PRODUCT, chash, schema, table.num_rows).version
    spec = w.cfg.product(PRODUCT)
    manifest = sample_manifest(
        table,
        files,
        version=version,
        terms=spec.terms,
        markets=list(spec.markets),
        product=PRODUCT,
        schema=schema,
        privacy=dict(MODEL),
        personal_data={"remaining": tags, "individuals": individuals},
        usage_policy=usage_policy(PRODUCT, version, chash, spec.terms, list(spec.markets)),
    )
    assert manifest["content_hash"] == chash
    w.catalog.set_manifest(
        PRODUCT, version, publish_files(w.store, PRODUCT, version, out, files, manifest)
    )
    return version


def forged(w: World, rows: int = 30) -> str:
    """Row 4b: the customer_ref tag dropped before hashing, so no personal data 'remains'."""
    return package_as(w, baskets(rows, tag="f"), {}, 0, "forged")


def old_gate(w: World, version: str, remaining: dict[str, str], individuals: int) -> None:
    """What the gate decided before this fix: on the facts the manifest states."""
    w.catalog.publish_version(PRODUCT, version)
    facts = facts_for("CN", remaining, individuals, False)
    w.catalog.apply_transfer_policy(
        PRODUCT, version, w.cfg.policy, facts, ["CN", "MY", "SG"], "sz-retail"
    )


def edit_manifest(w: World, version: str, **privacy: Any) -> None:
    """The insider's edit after packaging: privacy figures, which the content hash leaves out."""
    path = w.manifest_path(version)
    manifest = json.loads(path.read_text())
    manifest["privacy"].update(privacy)
    path.write_text(json.dumps(manifest, indent=2))


def refusals(w: World, version: str) -> list[dict[str, Any]]:
    return [
        e
        for e in w.catalog.audit_history(PRODUCT)
        if e["kind"] == "quarantine" and e["version"] == version
    ]


def test_an_honest_version_agrees_with_its_config_and_is_granted(world: World) -> None:
    """The control: the config and the files make the facts the manifest states."""
    version = package_as(world, baskets(), CONFIGURED, 30, "honest")
    proc = world.cli("verify", f"{PRODUCT}@{version}")
    assert proc.returncode == 0, proc.stderr
    old_gate(world, version, CONFIGURED, 30)
    assert world.status(version) == {
        "CN": "available",
        "MY": "pending_approval",
        "SG": "pending_approval",
    }
    granted = world.cli("grant", f"{PRODUCT}@{version}", "--buyer", "SZ Co", "--market", "CN")
    assert granted.returncode == 0, granted.stderr
    assert refusals(world, version) == []


@pytest.mark.prefect
def test_a_tag_dropped_before_hashing_opens_no_market(prefect_api: str, world: World) -> None:
    """Row 4b: the publish flow recounts from the config and files, refuses and audits it."""
    from flows.publish_product import publish_product

    version = forged(world)
    with project_resources(world.cfg), pytest.raises(FactsMismatch) as caught:
        publish_product(PRODUCT, version)
    message = str(caught.value)
    assert "the product's config makes it {'customer_ref': 'CN_RESIDENT_ID'}" in message
    assert "the files hold 30 distinct individuals" in message
    assert world.status(version) == {}  # not MY and SG under the "anonymized" rule
    assert world.catalog.get_version(PRODUCT, version).status == "staged"
    [event] = refusals(world, version)
    assert event["detail"]["stage"] == "gate" and event["detail"]["error"] == "FactsMismatch"


def test_a_tag_dropped_before_hashing_is_not_granted_and_verify_names_it(world: World) -> None:
    """Row 4b: a market the old gate opened on the forged facts grants nothing."""
    version = forged(world)
    old_gate(world, version, {}, 0)
    assert world.status(version)["MY"] == "available"  # what the forgery bought before
    ref = f"{PRODUCT}@{version}"
    refused = world.cli("grant", ref, "--buyer", "KL Mart", "--market", "MY")
    assert refused.returncode == 1, refused.stdout
    assert "disagrees with the product's config and files" in refused.stderr
    assert "no grant" in refused.stderr and CANARY not in refused.stderr
    assert world.catalog.grants(PRODUCT) == []
    [event] = refusals(world, version)
    assert (event["market"], event["detail"]["stage"]) == ("MY", "grant")

    checked = world.cli("verify", ref)
    assert checked.returncode == 1
    assert "the schema marks no column as personal data" in checked.stderr
    assert "personal_data.individuals says 0" in checked.stderr
    report = json.loads(world.cli("verify", "--all", "--json").stdout)
    found = [f["message"] for f in report["findings"] if f["kind"] == "facts-mismatch"]
    assert any("the product's config makes it" in m for m in found), found
    explained = world.cli("transfer", "explain", ref, "--market", "MY")
    assert explained.returncode == 1 and "disagrees with the product's config" in explained.stderr


def test_a_lowered_k_and_fewer_quasi_identifiers_in_the_manifest_do_not_pass(world: World) -> None:
    """Row 4b: k and the QIs of the privacy check are the config's; the manifest's are compared."""
    table = baskets(small_classes=True, tag="k")  # classes of 2 over birth_decade x district
    version = package_as(world, table, CONFIGURED, 30, "k2")
    edit_manifest(world, version, k=2, quasi_identifiers=["district"])
    old_gate(world, version, CONFIGURED, 30)
    approve_my(world, version, TODAY + dt.timedelta(days=90))
    ref = f"{PRODUCT}@{version}"
    checked = world.cli("verify", ref)
    assert checked.returncode == 1, checked.stdout
    assert "privacy.k is 2, the product's config says 5" in checked.stderr
    assert "privacy.quasi_identifiers is ['district']" in checked.stderr
    assert (
        "privacy model not met by the files: k=5 over ['birth_decade', 'district'] "
        "(the product's config), smallest class 2"
    ) in checked.stderr
    for market in ("CN", "MY"):
        refused = world.cli("grant", ref, "--buyer", "KL Mart", "--market", market)
        assert refused.returncode == 1 and "privacy model not met" in refused.stderr, market
    assert world.catalog.grants(PRODUCT) == []
    assert [e["market"] for e in refusals(world, version)] == ["CN", "MY"]


def test_a_column_the_config_drops_counts_when_the_files_hold_it(world: World) -> None:
    """A declared personal source column found in the files counts, whatever the tags say."""
    table = baskets(tag="n").append_column("customer_name", pa.array([CANARY] * 30))
    version = package_as(world, table, CONFIGURED, 30, "named")
    checked = world.cli("verify", f"{PRODUCT}@{version}")
    assert checked.returncode == 1 and "'customer_name': 'PERSON_NAME'" in checked.stderr
    assert CANARY not in checked.stderr + checked.stdout
    from databourse.product.facts import recount  # here: the code before this fix had none

    spec = world.cfg.product(PRODUCT)
    declared = world.cfg.dataset("sz-retail", "customer_orders").declared_categories
    counted = recount(world.cfg.state_dir / "build" / "named", spec, declared, "CN", False)
    assert counted.remaining == {**CONFIGURED, "customer_name": "PERSON_NAME"}
    assert counted.individuals == 30  # the most distinct values of any personal column


# --- the mid-ingest swap -------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
SPEC = DatasetSpec.model_validate(
    {
        "primary_key": ["id"],
        "columns": [
            {"name": "id", "type": "string", "nullable": False},
            {"name": "name", "type": "string"},
            {"name": "amount", "type": "int64"},
        ],
    }
)
DROPPED = b"id,name,amount\n1,a,2\n2,b,3\n"
SECRET = f"id,name,amount\n9,{CANARY},1\n".encode()


class AttackerStore(LocalStore):
    """The local store, with an attacker acting on the landing file at one step of an ingest:
    `head` (the ingest has opened the source, nothing is stored) or `raw` (raw/ holds the copy,
    nothing is parsed yet). The ingest's own code runs unchanged."""

    def __init__(self, root: Path, at: str, act: Callable[[], None]) -> None:
        super().__init__(root)
        self.at, self.act, self.armed, self.fired = at, act, False, False

    def fire(self, step: str) -> None:
        if self.armed and step == self.at and not self.fired:
            self.fired = True
            self.act()

    def head(self, key: str) -> ObjectInfo | None:
        if key.startswith("raw/") and key.endswith("/_ingest.json"):
            self.fire("head")
        return super().head(key)

    def put_file(self, key: str, path: Path, *, if_absent: bool = False) -> ObjectInfo:
        info = super().put_file(key, path, if_absent=if_absent)
        if key.startswith("raw/"):
            self.fire("raw")
        return info


def leaked(store: LocalStore) -> list[str]:
    """Keys of objects outside landing/ holding the canary: bytes, or a Parquet file's values."""
    found = []
    for info in store.list(""):
        if info.key.startswith("landing/"):
            continue  # where the attacker put it
        path = store.root / info.key
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            text = json.dumps(table.to_pylist(), default=str)
        else:
            text = path.read_bytes().decode("utf-8", "replace")
        if CANARY in text:
            found.append(info.key)
    return found


def swap_in(drop: Path, secret: Path) -> Callable[[], None]:
    return lambda: os.replace(secret, drop)  # another file takes the drop's name


def rewrite(drop: Path) -> Callable[[], None]:
    def act() -> None:
        with drop.open("ab") as fh:  # the same file, other bytes
            fh.write(SECRET.split(b"\n", 1)[1])

    return act


@pytest.mark.parametrize("at", ["head", "raw"])
@pytest.mark.parametrize("how", ["swap", "rewrite"])
def test_bytes_swapped_in_during_an_ingest_never_reach_the_store(
    tmp_path: Path, at: str, how: str
) -> None:
    """The swap: discovery hashed the drop; once the ingest has opened it, another file takes its
    name (or it is rewritten in place), before raw/ is written or after. Only the discovered
    bytes reach raw/ (and quarantine/), and nothing of the other bytes reaches staging/."""
    drop = tmp_path / "store" / "landing" / "sz-retail" / "customer_orders" / "rb-7.csv"
    drop.parent.mkdir(parents=True)
    drop.write_bytes(DROPPED)
    secret = tmp_path / "secret.csv"
    secret.write_bytes(SECRET)
    act = swap_in(drop, secret) if how == "swap" else rewrite(drop)
    store = AttackerStore(tmp_path / "store", at, act)
    providers = load_config(REPO / "configs").providers
    [seen] = [
        d for d in discover(store, providers, "sz-retail").drops if d.key.endswith("rb-7.csv")
    ]
    assert seen.sha256 == hashlib.sha256(DROPPED).hexdigest()

    store.armed = True  # from here on, the ingest
    with pytest.raises(IngestRejected, match="changed while it was being ingested") as caught:
        ingest_file(store, "sz-retail", "customer_orders", SPEC, drop, expected_sha256=seen.sha256)
    assert store.fired and CANARY not in str(caught.value)
    assert leaked(store) == []
    kept = [o.key for o in store.list("") if o.key.startswith(("raw/", "quarantine/"))]
    copies = [k for k in kept if not k.endswith(".json")]
    assert copies and all(
        hashlib.sha256(store.get_bytes(k)).hexdigest() == seen.sha256 for k in copies
    ), copies
    assert not [k for k in kept if k.endswith("/_ingest.json")]  # the ingest did not happen


def test_a_held_source_is_the_bytes_opened_whatever_the_name_holds_next(tmp_path: Path) -> None:
    """The one descriptor: the private copy keeps the opened bytes; links are never held."""
    from databourse.ingest.held_source import hold

    drop = tmp_path / "drop.csv"
    drop.write_bytes(DROPPED)
    secret = tmp_path / "secret.csv"
    secret.write_bytes(SECRET)
    with hold(drop, "drop.csv") as held:
        os.replace(secret, drop)
        assert held.path.read_bytes() == DROPPED
        assert held.sha256 == hashlib.sha256(DROPPED).hexdigest() and held.size == len(DROPPED)
    assert not held.path.exists()  # removed on exit
    os.link(drop, tmp_path / "second-name")
    with pytest.raises(IngestRejected, match="hard link"), hold(drop, "drop.csv"):
        pass
    (tmp_path / "link.csv").symlink_to(drop)
    with pytest.raises(IngestRejected, match="symbolic link"), hold(tmp_path / "link.csv", "x"):
        pass
