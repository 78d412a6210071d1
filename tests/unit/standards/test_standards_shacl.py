"""The exports pass the standards' own validators, offline: DCAT-AP 3.0.1's official SHACL shapes
(mandatory, recommended, ranges, deprecated URIs) and a published ODRL 2.2 shape set.

The catalog is built with the domain functions the publish flow uses (package, transfer gate,
withdrawal) from the sample configs plus an aggregate product, exported by `export_listing` (what
`bourse catalog export` and the publish flow call), parsed by rdflib with every network connection
refused, and validated by pyshacl. Warnings are printed (`pytest -s` shows them). The shapes and
their sources: tests/data/shacl/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import rdflib
from helpers import make_project
from standards_checks import (
    DCAT_AP,
    ODRL,
    RDFLIB_JSONLD_WARNING,
    parse,
    refuse_network,
    report,
    results,
)

from databourse.catalog.database import Catalog
from databourse.config import Config, UsageTerms, load_config
from databourse.product.package import (
    build_manifest,
    content_hash,
    publish_version,
    schema_of,
    transfer_facts,
    write_parquet,
)
from databourse.standards.dcat import catalog_jsonld
from databourse.standards.exports import JSONLD_KEY, export_listing, gather
from databourse.storage.opening import open_store
from databourse.storage.store import ObjectStore
from databourse.transfer.odrl import usage_policy
from databourse.transfer.policy import TransferFacts

ODRL_NS = rdflib.Namespace("http://www.w3.org/ns/odrl/2/")
DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")

# An aggregate product over my-buildops' readings: the sample configs have none.
AGGREGATE = """\
id: kl-building-climate
name: KL building climate by site and floor
description: Readings per site and floor, with cells of fewer than 10 readings suppressed.
type: aggregate
source: {provider: my-buildops, dataset: sensor_readings}
columns: {site_id: keep, floor: keep, temperature_c: keep, humidity_pct: keep}
aggregate:
  dimensions: [site_id, floor]
  measures: [{column: temperature_c, stats: [count, mean]}]
  min_cell: 10
terms: {purposes: [research], reidentification_prohibited: true, onward_transfer_allowed: true}
markets: [MY, SG]
catalog:
  keywords: [buildings, indoor climate]
  themes: [http://publications.europa.eu/resource/authority/data-theme/ENVI]
  contact: data-products@my-buildops.example
"""
ORIGIN = {"sz-retail": "CN", "my-buildops": "MY"}
pytestmark = RDFLIB_JSONLD_WARNING


@pytest.fixture
def configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The sample configs plus the aggregate product, as the project's configs."""
    project = make_project(tmp_path / "project")
    (project / "configs" / "products" / "kl-building-climate.yaml").write_text(AGGREGATE)
    monkeypatch.setenv("DATABOURSE_CONFIG_DIR", str(project / "configs"))
    return load_config(project / "configs")


def package(
    cat: Catalog, store: ObjectStore, cfg: Config, product: str, rows: int, work: Path
) -> str:
    """Package a version of `product` as the build does (manifest last) and run the gate on it."""
    spec = cfg.product(product)
    provider, origin = spec.source.provider, ORIGIN[spec.source.provider]
    table = pa.table({"key": [f"{product}-{i}" for i in range(rows)], "value": [1.0] * rows})
    out = work / f"{product}-{rows}"
    files = write_parquet(table, out)
    schema = schema_of(table)
    chash = content_hash(files, schema, spec.fingerprint(), transfer_facts(origin, {}, 0, False))
    cat.ensure_product(product, spec.name, provider, spec.source.dataset)
    version = cat.reserve_version(product, chash, schema, rows).version
    markets = list(spec.markets)
    manifest = build_manifest(
        product=product,
        version=version,
        content_hash=chash,
        schema=schema,
        rows=rows,
        files=files,
        lineage={
            "provider": provider,
            "dataset": spec.source.dataset,
            "origin": origin,
            "product_config_sha256": spec.fingerprint(),
            "ingests": [{"ingest_id": f"i{rows}", "sha256": "0" * 64, "raw": "file:///raw"}],
        },
        quality={"success": True, "report": store.uri(f"reports/{product}/quality.json")},
        privacy={"model": spec.type},
        personal_data={
            "remaining": {},
            "individuals": 0,
            "sensitive_categories": [],
            "important_data": False,
        },
        usage_terms=spec.terms.model_dump(mode="json"),
        usage_policy=usage_policy(product, version, chash, spec.terms, markets),
        markets=markets,
        schema_diff=None,
    )
    uri, sha256 = publish_version(store, product, version, out, files, manifest)
    cat.set_manifest(product, version, uri, sha256)
    cat.publish_version(product, version)
    facts = TransferFacts(origin=origin, personal_data=False)
    cat.apply_transfer_policy(product, version, cfg.policy, facts, markets, provider)
    cat.set_quality_scores(product, version, {"completeness": 1.0, "validity": 0.98})
    return version


@pytest.fixture
def built(configs: Config, tmp_path: Path) -> tuple[Catalog, ObjectStore]:
    """Three products (one aggregate), a withdrawn version, markets decided by the real gate."""
    store = open_store(str(tmp_path / "store"))
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    cat.create_schema()
    old = package(cat, store, configs, "sz-retail-baskets", 20, tmp_path)
    package(cat, store, configs, "sz-retail-baskets", 30, tmp_path)
    cat.withdraw_version("sz-retail-baskets", old, reason="wrong data")
    package(cat, store, configs, "kl-building-environment", 25, tmp_path)
    assert configs.product("kl-building-climate").type == "aggregate"
    package(cat, store, configs, "kl-building-climate", 12, tmp_path)
    return cat, store


@pytest.fixture
def exported(built: tuple[Catalog, ObjectStore]) -> dict[str, Any]:
    """catalog/dcat.jsonld as `bourse catalog export` and the publish flow write it."""
    cat, store = built
    export_listing(cat, store)
    doc: dict[str, Any] = json.loads(store.get_bytes(JSONLD_KEY))
    return doc


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every network connection refused and recorded: a JSON-LD context must not be fetched."""
    return refuse_network(monkeypatch, "the exports must parse offline")


def test_dcat_export_passes_dcat_ap_3_0_1_shapes_offline(
    exported: dict[str, Any], offline: list[str]
) -> None:
    graph = parse(exported, offline)
    found = results(graph, DCAT_AP)
    report("DCAT-AP 3.0.1 (mandatory + recommended + ranges + deprecated URIs)", found)
    assert found["Violation"] == []
    series = set(graph.subjects(rdflib.RDF.type, DCAT.DatasetSeries))
    versions = set(graph.subjects(DCAT.inSeries, None))
    assert (len(series), len(versions)) == (3, 4)  # every product and version was checked
    assert versions <= set(graph.subjects(rdflib.RDF.type, DCAT.Dataset))


def test_dcat_export_policies_pass_odrl_shapes_offline(
    exported: dict[str, Any], offline: list[str]
) -> None:
    graph = parse(exported, offline)
    found = results(graph, ODRL)
    report("ODRL 2.2 shapes on the policies in the DCAT export", found)
    assert found["Violation"] == []
    assert len(set(graph.subjects(rdflib.RDF.type, ODRL_NS.Offer))) == 4


def test_dcat_without_configs_passes_dcat_ap_shapes(
    built: tuple[Catalog, ObjectStore], offline: list[str]
) -> None:
    """As the exchange's service builds it today (bourse/exchange_pages.py: no CatalogInfo):
    poorer (no laws, keywords or contact), still valid."""
    cat, store = built
    found = results(parse(catalog_jsonld(gather(cat, store), "catalog"), offline), DCAT_AP)
    report("DCAT-AP 3.0.1 on the export without configs", found)
    assert found["Violation"] == []


TERMS = [
    UsageTerms(purposes=["research"]),
    UsageTerms(purposes=["research", "product-development"], onward_transfer_allowed=True),
    UsageTerms(purposes=["x"], reidentification_prohibited=False, onward_transfer_allowed=True),
]


@pytest.mark.parametrize("source", ["configs", *range(len(TERMS))])
def test_each_policy_the_configs_make_passes_odrl_shapes_offline(
    configs: Config, offline: list[str], source: str | int
) -> None:
    """Every product config's policy (and the other shapes of terms) as the manifest stores it."""
    terms = (
        {pid: (spec.terms, list(spec.markets)) for pid, spec in configs.products.items()}
        if source == "configs"
        else {"p1": (TERMS[int(source)], ["MY"])}
    )
    for product, (use, markets) in terms.items():
        policy = usage_policy(product, "1.2.3", "a" * 64, use, markets)
        found = results(parse(policy, offline), ODRL)
        report(f"ODRL 2.2 shapes on {product}'s policy", found)
        assert found["Violation"] == [], product


def test_the_offline_guard_catches_a_remote_context(offline: list[str]) -> None:
    """The guard the tests above rely on: a document with a remote @context is not parsed."""
    doc = {"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Offer", "uid": "urn:x"}
    with pytest.raises(Exception):  # noqa: B017 (rdflib wraps the refused connection variously)
        rdflib.Graph().parse(data=json.dumps(doc), format="json-ld")
    assert offline, "no connection was attempted: the guard did not see the fetch"
