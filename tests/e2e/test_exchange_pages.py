"""Issue 20: the exchange serves the catalog's pages, DCAT and manifests to buyers.

Against the real `bourse exchange serve` process: the pages list what the audited listing offers
(a published version with an available market, never a staged one; a withdrawn one says so and
offers nothing), hostile product and column names render as text in headless Chromium, every
link of the pages answers, and no location of the exchange's machine (its store, its state
folder, a `file:` URI) appears in any page, export or manifest. The deploy layouts run the
service with its health probe and the worker's audit key.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pyarrow as pa
import pytest
import rdflib
import yaml
from helpers import chromium_dom, sample_manifest
from standards_checks import DCAT_AP, results
from test_exchange_sharing import serving
from test_facts_and_grants import EXPORTER, PRODUCT, REMAINING, World, gate, world

from bourse.exchange_pages import PAGE
from databourse.product.package import (
    content_hash,
    publish_version,
    schema_of,
    transfer_facts,
    write_parquet,
)
from databourse.standards.dcat import listed_offers
from databourse.transfer.odrl import usage_policy

__all__ = ["world"]  # the fixture, shared with test_facts_and_grants

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
HOSTILE_NAME = (
    "Baskets <img src=x onerror=\"document.title='pwned'\">"
    '<script>document.title="pwned"</script> & "Co"'
)
HOSTILE_COLUMN = '<b id="pwned">basket</b>'


def package(w: World, rows: int = 30, tag: str = "v1", extra: str | None = None) -> str:
    """Package a version as the build does: its lineage and report are URIs of the store."""
    columns: dict[str, Any] = {
        "customer_ref": [f"{tag}-{i}" for i in range(rows)],
        "amount": [float(i) for i in range(rows)],
    }
    if extra is not None:
        columns[extra] = [i % 3 for i in range(rows)]
    table = pa.table(columns)
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
    raw = w.store.uri(f"raw/sz-retail/customer_orders/{tag}/orders.csv")
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
        lineage={
            "provider": "sz-retail",
            "dataset": "customer_orders",
            "origin": "CN",
            "product_config_sha256": "0" * 64,
            "ingests": [{"ingest_id": tag, "sha256": "0" * 64, "raw": raw}],
        },
        quality={"success": True, "report": w.store.uri(f"reports/{tag}/quality.json")},
    )
    assert manifest["content_hash"] == chash
    uri, sha256 = publish_version(w.store, PRODUCT, version, out, files, manifest)
    w.catalog.set_manifest(PRODUCT, version, uri, sha256)  # audited: an edit is found
    return version


class Links(HTMLParser):
    """The links, the elements and the text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs += [v for k, v in attrs if k == "href" and v is not None]
        self.ids += [v for k, v in attrs if k == "id" and v is not None]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(html: str) -> Links:
    page = Links()
    page.feed(html)
    return page


class Visitor:
    """GETs on the service; every answer is checked for locations of the exchange's machine."""

    def __init__(self, w: World, base: str) -> None:
        self.w, self.base = w, base

    def get(self, path: str) -> httpx.Response:
        answer = httpx.get(urljoin(self.base, path), timeout=60)
        body = answer.text
        for where in ("file:", "/tmp", "state/", str(self.w.store.root), str(self.w.cfg.root)):
            assert where not in body, f"{path} shows {where!r}"
        return answer


@pytest.fixture
def visit(world: World) -> Iterator[Visitor]:
    with serving(world) as base:
        yield Visitor(world, base)


def test_pages_show_what_the_catalog_offers_and_nothing_staged(
    world: World, visit: Visitor
) -> None:
    offered = package(world, rows=40)
    gate(world, offered, rows=40)
    staged = package(world, rows=25, tag="v2")  # reserved and packaged, never published
    markets = sorted(m for m, s in world.status(offered).items() if s == "available")
    assert markets and staged != offered

    index = visit.get("/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert "script-src" not in index.headers["content-security-policy"]  # no script at all
    links = parsed(index.text).hrefs
    assert f"/products/{PRODUCT}" in links and f"/products/{PRODUCT}/{offered}" in links
    assert staged not in index.text

    page = visit.get(f"/products/{PRODUCT}")
    assert page.status_code == 200
    text = " ".join(" ".join(parsed(page.text).text).split())
    assert "customer_ref string personal data remains: CN_RESIDENT_ID" in text
    assert "amount double no personal data" in text
    assert "Use it only for: market-research" in text  # the usage terms in words
    assert "not a cross-border transfer" in text  # CN's legal basis: the provider's own market
    assert f"grant of {PRODUCT}@{offered}" in text and "/delta-sharing" in text
    assert staged not in page.text

    for missing in (f"/products/{PRODUCT}/{staged}", f"/products/{PRODUCT}/{staged}/manifest.json",
                    "/products/no-such-product", "/products/no-such-product/1.0.0"):  # fmt: skip
        refused = visit.get(missing)
        assert refused.status_code == 404, missing
        assert PRODUCT not in refused.text and offered not in refused.text  # names nothing else

    dcat = visit.get("/catalog/dcat.jsonld")
    assert dcat.headers["content-type"].startswith("application/ld+json")
    doc = dcat.json()
    assert listed_offers(doc) == {(PRODUCT, offered, m) for m in markets}
    ids = {d["dct:identifier"] for d in doc["dcat:dataset"]}
    assert f"{PRODUCT}@{offered}" in ids and f"{PRODUCT}@{staged}" not in ids
    [dataset] = [d for d in doc["dcat:dataset"] if d["dct:identifier"] == f"{PRODUCT}@{offered}"]
    for dist in dataset["dcat:distribution"]:
        assert dist["dcat:accessURL"]["@id"] == f"{visit.base}/products/{PRODUCT}/{offered}"

    served = visit.get(f"/products/{PRODUCT}/{offered}/manifest.json").json()
    stored = json.loads(world.manifest_path(offered).read_text())
    assert stored["lineage"]["ingests"][0]["raw"].startswith("file:")  # what is withheld
    assert served["lineage"]["ingests"][0]["raw"] == served["quality"]["report"] == "withheld"
    for same in ("content_hash", "schema", "files", "usage_policy", "usage_terms", "privacy"):
        assert served[same] == stored[same], same


def test_the_croissant_card_is_served_for_what_is_offered_and_mlcroissant_validates_it(
    world: World, visit: Visitor, tmp_path: Path
) -> None:
    import mlcroissant as mlc

    offered = package(world, rows=40)
    gate(world, offered, rows=40)
    staged = package(world, rows=25, tag="v2")
    page = visit.get(f"/products/{PRODUCT}/{offered}")
    assert f"/products/{PRODUCT}/{offered}/croissant.json" in parsed(page.text).hrefs
    answer = visit.get(f"/products/{PRODUCT}/{offered}/croissant.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/ld+json")
    card = answer.json()
    assert card["version"] == offered and card["creativeWorkStatus"] == "published"
    urls = {d["contentUrl"] for d in card["distribution"] if "contentUrl" in d}
    assert urls == {f"{visit.base}/products/{PRODUCT}/{offered}"}  # never a store location
    path = tmp_path / "card.json"
    path.write_text(answer.text)
    issues = mlc.Dataset(jsonld=path).metadata.ctx.issues
    assert (sorted(issues.errors), sorted(issues.warnings)) == ([], []), issues.report()
    assert visit.get(f"/products/{PRODUCT}/{staged}/croissant.json").status_code == 404
    doc = visit.get("/catalog/dcat.jsonld").json()  # the DCAT dataset links its card
    [dataset] = [d for d in doc["dcat:dataset"] if d["dct:identifier"] == f"{PRODUCT}@{offered}"]
    card_url = f"{visit.base}/products/{PRODUCT}/{offered}/croissant.json"
    assert dataset["foaf:page"] == [{"@id": card_url, "@type": "foaf:Document"}]
    world.catalog.withdraw_version(PRODUCT, offered, "a provider asked")
    assert visit.get(f"/products/{PRODUCT}/{offered}/croissant.json").status_code == 404


def test_a_withdrawn_version_says_so_and_offers_nothing(world: World, visit: Visitor) -> None:
    version = package(world)
    gate(world, version)
    world.catalog.withdraw_version(PRODUCT, version, "a provider asked")
    page = visit.get(f"/products/{PRODUCT}/{version}")
    assert page.status_code == 200 and "withdrawn" in page.text
    assert "How to get access" not in page.text and "manifest.json" not in page.text
    assert "a provider asked" not in page.text  # the operator's reason is not the buyer's
    assert visit.get(f"/products/{PRODUCT}/{version}/manifest.json").status_code == 410
    doc = visit.get("/catalog/dcat.jsonld").json()
    assert listed_offers(doc) == set()
    [dataset] = [d for d in doc["dcat:dataset"] if d["@type"] == "dcat:Dataset"]
    assert dataset["adms:status"]["@id"].endswith("/Withdrawn")
    assert dataset["dcat:distribution"] == [] and "odrl:hasPolicy" not in dataset
    assert "none (withdrawn)" in visit.get("/").text


def test_a_manifest_edited_after_packaging_is_not_offered(world: World, visit: Visitor) -> None:
    version = package(world)
    gate(world, version)
    path = world.manifest_path(version)
    manifest = json.loads(path.read_text())
    manifest["usage_terms"]["purposes"].append("resale")  # an insider widens the terms
    path.write_text(json.dumps(manifest))
    page = visit.get(f"/products/{PRODUCT}/{version}")
    assert page.status_code == 200 and "not offered now" in page.text and "resale" not in page.text
    assert visit.get(f"/products/{PRODUCT}/{version}/manifest.json").status_code == 404
    doc = visit.get("/catalog/dcat.jsonld").json()
    assert listed_offers(doc) == set() and "resale" not in json.dumps(doc)


def test_the_index_and_the_dcat_export_are_paged(world: World, visit: Visitor) -> None:
    """100 products a page (exchange_pages.PAGE), Hydra's view in the DCAT; every page valid."""
    offered = package(world)
    gate(world, offered)
    for n in range(PAGE):  # products sorted before PRODUCT, each with nothing listed yet
        world.catalog.ensure_product(f"a-filler-{n:03d}", f"Filler {n}", EXPORTER, "orders")
    first, second = visit.get("/"), visit.get("/?page=2")
    assert f"/products/{PRODUCT}" not in parsed(first.text).hrefs
    assert "/?page=2" in parsed(first.text).hrefs and "/?page=1" in parsed(second.text).hrefs
    assert f"/products/{PRODUCT}/{offered}" in parsed(second.text).hrefs
    one = visit.get("/catalog/dcat.jsonld").json()
    two = visit.get("/catalog/dcat.jsonld?page=2").json()
    assert listed_offers(one) == set() and listed_offers(two)
    assert one["hydra:view"]["hydra:next"]["@id"].endswith("/catalog/dcat.jsonld?page=2")
    assert "hydra:next" not in two["hydra:view"] and "hydra:previous" in two["hydra:view"]
    for bad in ("/?page=0", "/?page=x", "/catalog/dcat.jsonld?page=-1"):
        assert visit.get(bad).status_code == 422, bad
    for doc in (one, two):  # what the exchange serves passes the official shapes too
        graph = rdflib.Graph().parse(data=json.dumps(doc), format="json-ld")
        assert results(graph, DCAT_AP)["Violation"] == []


def test_a_manifest_edited_after_the_pages_showed_it_is_not_offered_any_more(
    world: World, visit: Visitor
) -> None:
    """The pages keep the manifests they checked (ManifestMemo) only while the store's object
    is unchanged: an edit after a first visit is checked again and refused."""
    version = package(world)
    gate(world, version)
    assert visit.get(f"/products/{PRODUCT}/{version}/manifest.json").status_code == 200
    assert listed_offers(visit.get("/catalog/dcat.jsonld").json())
    path = world.manifest_path(version)
    manifest = json.loads(path.read_text())
    manifest["usage_terms"]["purposes"].append("resale")
    path.write_text(json.dumps(manifest))
    assert visit.get(f"/products/{PRODUCT}/{version}/manifest.json").status_code == 404
    doc = visit.get("/catalog/dcat.jsonld").json()
    assert listed_offers(doc) == set() and "resale" not in json.dumps(doc)


def test_hostile_names_render_as_text_in_chromium_and_links_work(
    world: World, visit: Visitor
) -> None:
    version = package(world, extra=HOSTILE_COLUMN)
    gate(world, version)
    world.catalog.ensure_product(PRODUCT, HOSTILE_NAME, EXPORTER, "customer_orders")
    for path in ("/", f"/products/{PRODUCT}/{version}"):
        raw = visit.get(path).text
        assert "&lt;img src=x onerror=" in raw and "<script>" not in raw, path
        dom = chromium_dom(urljoin(visit.base, path))
        seen = parsed(dom)
        assert "img" not in seen.tags and "script" not in seen.tags, path  # nothing injected
        assert "<title>pwned</title>" not in dom and "pwned" not in seen.ids, path
        text = "".join(seen.text)
        assert HOSTILE_NAME in text, path  # the name, shown as the text it is
        if path != "/":
            assert HOSTILE_COLUMN in text
        for href in seen.hrefs:  # every link of the rendered page answers
            answer = visit.get(urljoin(visit.base + path, href))
            assert answer.status_code == 200, (path, href)
    index_links = parsed(chromium_dom(visit.base + "/")).hrefs
    assert f"/products/{PRODUCT}/{version}" in index_links


# ---------------------------------------------------------------- deploy layouts
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def exchange_docs() -> list[dict[str, Any]]:
    folder = DEPLOY / "k8s" / "exchange"
    kust = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return [
        d for name in kust["resources"] for d in yaml.safe_load_all((folder / name).read_text())
    ]


def test_compose_runs_the_exchange_with_its_health_check_and_the_audit_key() -> None:
    services = compose()["services"]
    exchange, worker = services["exchange"], services["worker"]
    assert exchange["image"] == worker["image"] and exchange["build"] == worker["build"]
    assert exchange["command"] == ["bourse", "exchange", "serve", "--host", "0.0.0.0"]
    assert "http://127.0.0.1:8780/health" in " ".join(exchange["healthcheck"]["test"])
    assert exchange["ports"] == ["127.0.0.1:8780:8780"]
    env = exchange["environment"]
    for same in ("DATABOURSE_AUDIT_KEY", "DATABOURSE_CATALOG_URL", "DATABOURSE_STORE_ROOT"):
        assert env[same] == worker["environment"][same], same
    # what it does not need, it does not get: no pseudonym key, no Prefect API credentials
    assert "DATABOURSE_PSEUDONYM_KEY" not in env and "PREFECT_API_AUTH_STRING" not in env
    assert exchange["depends_on"]["setup"]["condition"] == "service_completed_successfully"


def test_k8s_exchange_is_a_deployment_and_service_probed_on_health() -> None:
    top = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    assert "exchange" in top["resources"]
    docs = {d["kind"]: d for d in exchange_docs()}
    assert set(docs) == {"Deployment", "Service"}
    deployment, service = docs["Deployment"], docs["Service"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    template = json.loads((DEPLOY / "k8s" / "base-job-template.json").read_text())
    assert container["image"] == template["variables"]["properties"]["image"]["default"]
    assert container["args"][:5] == ["bourse", "exchange", "serve", "--host", "0.0.0.0"]
    [port] = container["ports"]
    assert port["containerPort"] == 8780
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/health" and get["port"] in (port["name"], 8780), probe
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in (port["name"], 8780)
    # the audit key from the same Secret entry the flow-run pods (the worker's jobs) read
    pods_env = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"][
        "containers"
    ][0]["env"]
    audit = {e["name"]: e for e in pods_env}["DATABOURSE_AUDIT_KEY"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DATABOURSE_AUDIT_KEY"] == audit
    assert "DATABOURSE_PSEUDONYM_KEY" not in env and "PREFECT_API_AUTH_STRING" not in env
    secret_keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in pods_env if "valueFrom" in e}
    for entry in container["env"]:  # every secret by name, from the flow-run pods' Secret
        ref = entry["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "databourse-secrets" and ref["key"] in secret_keys, entry
    assert container["envFrom"] == [{"configMapRef": {"name": "databourse-settings"}}]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}


def test_kustomize_renders_the_exchange_into_the_namespace() -> None:
    """`kubectl kustomize deploy/k8s` (what `apply -k` applies) holds the exchange, namespaced."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "k8s")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    exchange = {d["kind"]: d for d in docs if d["metadata"]["name"] == "databourse-exchange"}
    assert set(exchange) == {"Deployment", "Service"}
    assert {d["metadata"]["namespace"] for d in exchange.values()} == {"databourse"}
    workers = [
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"] != "databourse-exchange"
    ]
    assert [w["metadata"]["name"] for w in workers] == ["prefect-worker"]
