"""Issue 15, fifth adversarial pass, rows 2 and 3: manifests the build did not write, and grants
that ignore the version's usage terms.

Row 2: someone who can write the store plants `products/<p>/<next version>/manifest.json` (the
same files, schema, config and facts, so the same content hash, but purposes `any`, onward
transfer allowed, no expiry) before the build writes its own. Row 3: a grant ran past the terms'
expiry, was given after they expired, and neither asked nor recorded the buyer's purpose.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from helpers import bourse, sample_manifest
from test_facts_and_grants import (
    PRODUCT,
    PURPOSE,
    REMAINING,
    TODAY,
    World,
    gate,
    package,
    world,
)

from databourse.config import UsageTerms
from databourse.errors import ObjectChanged
from databourse.product.package import (
    FileEntry,
    content_hash,
    manifest_sha256,
    publish_files,
    schema_of,
    transfer_facts,
    write_parquet,
)
from databourse.storage.opening import open_store
from databourse.transfer.odrl import usage_policy

__all__ = ["world"]  # the fixture, shared with test_facts_and_grants
LOOSE = UsageTerms(purposes=["any"], onward_transfer_allowed=True, expires=None)


def loosened(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as the watcher plants it: same content hash, terms and ODRL policy loosened."""
    policy = usage_policy(
        manifest["product"], manifest["version"], manifest["content_hash"], LOOSE, ["CN", "SG"]
    )
    return {
        **manifest,
        "usage_terms": LOOSE.model_dump(mode="json"),
        "usage_policy": policy,
        "markets": ["CN", "SG"],
    }


# ---------------------------------------------------------------- row 2: the packaging race
def test_a_planted_manifest_is_refused_not_adopted(tmp_path: Path) -> None:
    """The old `publish_files` returned as soon as a manifest existed: the planted one stood."""
    store = open_store(str(tmp_path / "store"))
    table = pa.table({"id": ["a", "b"], "amount": [1.0, 2.0]})
    files = write_parquet(table, tmp_path / "out")
    built = sample_manifest(table, files, version="1.0.1")
    planted = json.dumps(loosened(built), indent=2).encode()
    store.put_bytes("products/p1/1.0.1/manifest.json", planted)
    with pytest.raises(ObjectChanged) as refused:
        publish_files(store, "p1", "1.0.1", tmp_path / "out", files, built)
    assert "p1@1.0.1" in str(refused.value) and refused.value.key.endswith("manifest.json")
    assert store.get_bytes("products/p1/1.0.1/manifest.json") == planted  # left for the operator


def test_a_crashed_runs_own_manifest_is_kept(tmp_path: Path) -> None:
    """A run that died after writing its manifest is re-run: the same build at another time is
    this build's manifest (not a foreign one), and byte-identical bytes are kept as they are."""
    store = open_store(str(tmp_path / "store"))
    table = pa.table({"id": ["a", "b"], "amount": [1.0, 2.0]})
    files = write_parquet(table, tmp_path / "out")
    first = sample_manifest(table, files)
    publish_files(store, "p1", "1.0.0", tmp_path / "out", files, first)
    kept = store.get_bytes("products/p1/1.0.0/manifest.json")
    again = {**first, "created_at": "2031-01-01T00:00:00+00:00"}  # rebuilt by the next run
    publish_files(store, "p1", "1.0.0", tmp_path / "out", files, again)
    assert store.get_bytes("products/p1/1.0.0/manifest.json") == kept
    older = {**first, "created_at": "not a time"}
    store.put_bytes("products/p1/1.0.2/manifest.json", json.dumps(older, indent=2).encode())
    with pytest.raises(ObjectChanged):  # only a real build time differs in a re-run
        publish_files(store, "p1", "1.0.2", tmp_path / "out", files, {**first, "version": "1.0.2"})


def package_under_config(w: World, tag: str = "cfg") -> tuple[str, dict[str, Any]]:
    """A version packaged as the build does it, under the product's config fingerprint (so its
    terms can be compared with that config); its version and manifest (not yet written)."""
    rows = 30
    table = pa.table(
        {
            "customer_ref": [f"{tag}-{i}" for i in range(rows)],
            "amount": [1.0 * i for i in range(rows)],
        }
    )
    out = w.cfg.state_dir / "build" / tag
    files = write_parquet(table, out)
    schema = [
        {**c, "personal_data": REMAINING[c["name"]]} if c["name"] in REMAINING else c
        for c in schema_of(table)
    ]
    spec = w.cfg.product(PRODUCT)
    sha = spec.fingerprint()
    chash = content_hash(files, schema, sha, transfer_facts("CN", REMAINING, rows, False))
    w.catalog.ensure_product(PRODUCT, PRODUCT, "sz-retail", "customer_orders")
    version = w.catalog.reserve_version(PRODUCT, chash, schema, rows).version
    lineage = {
        "provider": "sz-retail",
        "dataset": "customer_orders",
        "origin": "CN",
        "product_config_sha256": sha,
        "ingests": [{"ingest_id": f"ingest-{tag}", "sha256": "1" * 64, "raw": "file:///raw"}],
    }
    manifest = sample_manifest(
        table, files, version=version, terms=spec.terms, markets=list(spec.markets),
        product=PRODUCT, schema=schema, personal_data={"remaining": REMAINING, "individuals": rows},
        usage_policy=usage_policy(PRODUCT, version, chash, spec.terms, list(spec.markets)),
        content_hash=chash, lineage=lineage,
    )  # fmt: skip
    return version, manifest


def test_a_manifest_with_loosened_terms_is_named_and_never_granted(world: World) -> None:
    """Won another way (recorded as packaged): the terms are re-derived from the config at the
    grant and by `verify`, which names it terms-mismatch; before, both passed."""
    from bourse.datatools import verify_all

    version, built = package_under_config(world)
    out = world.cfg.state_dir / "build" / "cfg"
    files = [FileEntry(**f) for f in built["files"]]
    uri = publish_files(world.store, PRODUCT, version, out, files, loosened(built))
    world.catalog.set_manifest(
        PRODUCT, version, uri, manifest_sha256(world.store, PRODUCT, version)
    )
    report, _ = verify_all(world.store, world.catalog, 0.0, True, world.cfg)
    mismatched = [f for f in report.findings if f.kind == "terms-mismatch"]
    assert {f.version for f in mismatched} == {version} and not report.ok
    assert any("usage_terms" in f.message for f in mismatched)
    assert any("lineage.ingests[0]" in f.message for f in mismatched)  # no audited ingest
    gate(world, version)
    refused = world.cli("grant", f"{PRODUCT}@{version}", "--buyer", "SZ Co", "--market", "CN")
    assert refused.returncode == 1 and "usage_terms" in refused.stderr, refused.stderr
    assert world.catalog.grants(PRODUCT) == []
    checked = world.cli("verify", f"{PRODUCT}@{version}")
    assert checked.returncode == 1 and "usage_policy" in checked.stderr


def test_the_manifest_the_config_makes_is_not_called_a_terms_mismatch(world: World) -> None:
    """The check names only what differs: the build's own manifest passes it."""
    from databourse.product.facts import configured_terms_problems

    _, built = package_under_config(world, "own")
    assert configured_terms_problems(world.cfg, built) == []
    assert configured_terms_problems(world.cfg, loosened(built)) != []


# ---------------------------------------------------------------- row 3: grants and terms
def set_terms_expiry(w: World, day: dt.date) -> None:
    path = w.cfg.root / "configs" / "products" / f"{PRODUCT}.yaml"
    config = yaml.safe_load(path.read_text())
    config["terms"]["expires"] = day.isoformat()
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def grant_cn(w: World, *extra: str) -> Any:
    return bourse(
        w.env, "grant", f"{PRODUCT}@{package_once(w)}", "--buyer", "SZ Co", "--market", "CN",
        *extra, check=False,
    )  # fmt: skip


def package_once(w: World) -> str:
    versions = w.catalog.show(PRODUCT)["versions"] if w.catalog.list_products() else []
    if versions:
        return str(versions[0]["version"])
    version = package(w)
    gate(w, version)
    return version


def test_a_grant_needs_a_purpose_the_terms_permit_and_records_it(world: World) -> None:
    missing = grant_cn(world)
    assert missing.returncode == 1 and "--purpose" in missing.stderr
    assert "market-research, assortment-planning" in missing.stderr
    other = grant_cn(world, "--purpose", "credit-scoring")
    assert other.returncode == 1 and "not permitted" in other.stderr
    assert "credit-scoring" not in other.stderr  # the permitted ones are listed, not the input
    assert world.catalog.grants(PRODUCT) == []
    given = grant_cn(world, "--purpose", PURPOSE)
    assert given.returncode == 0, given.stderr
    [event] = [e for e in world.catalog.audit_history(PRODUCT) if e["kind"] == "grant"]
    assert event["detail"]["purpose"] == PURPOSE


def test_no_grant_past_the_terms_expiry_nor_after_it(world: World) -> None:
    set_terms_expiry(world, TODAY + dt.timedelta(days=3))
    longer = grant_cn(world, "--purpose", PURPOSE, "--expires", "7d")
    day = (TODAY + dt.timedelta(days=3)).isoformat()
    assert longer.returncode == 1 and f"outlast its usage terms (they expire on {day})" in (
        longer.stderr
    )
    assert grant_cn(world, "--purpose", PURPOSE, "--expires", "2d").returncode == 0
    set_terms_expiry(world, TODAY - dt.timedelta(days=1))
    late = grant_cn(world, "--purpose", PURPOSE, "--expires", "1d")
    assert late.returncode == 1 and "usage terms" in late.stderr and "expired on" in late.stderr
    assert len(world.catalog.grants(PRODUCT)) == 1
