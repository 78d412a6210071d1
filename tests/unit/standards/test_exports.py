"""Catalog exports: DCAT-AP 3 JSON-LD and the HTML page, the page checked in headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import chromium_dom, publish_sample_version

from databourse.catalog.database import Catalog
from databourse.config import load_config
from databourse.standards.exports import JSONLD_KEY, PAGE_KEY, export_catalog
from databourse.storage.store import ObjectStore

HOSTILE = 'Retail <script>alert("x")</script> & co'


@pytest.fixture
def published(tmp_path: Path) -> tuple[Catalog, ObjectStore]:
    return publish_sample_version(tmp_path, name=HOSTILE)


def test_dcat_jsonld(published: tuple[Catalog, ObjectStore]) -> None:
    cat, store = published
    export_catalog(cat, store)
    doc = json.loads(store.get_bytes(JSONLD_KEY))
    assert doc["@type"] == "dcat:Catalog"
    series, dataset = doc["dcat:dataset"]
    assert series["@type"] == ["dcat:DatasetSeries", "dcat:Dataset"]  # a series is a dataset
    assert series["dct:title"] == HOSTILE
    assert dataset["dcat:inSeries"] == {"@id": series["@id"]}
    assert dataset["dcat:version"] == "1.0.0"
    assert dataset["dct:spatial"] == [  # MY pending
        {
            "@id": "http://publications.europa.eu/resource/authority/country/CHN",
            "@type": "dct:Location",
            "dct:identifier": "CN",
        }
    ]
    # the laws of its origin and markets (CN: settings' catalog_export), as eli:LegalResource IRIs
    laws = load_config().settings.catalog_export.legislation["CN"]
    assert dataset["dcatap:applicableLegislation"] == [
        {"@id": iri, "@type": "eli:LegalResource"} for iri in laws
    ]
    assert doc["dct:publisher"]["foaf:name"] == load_config().settings.catalog_export.publisher
    assert dataset["odrl:hasPolicy"]["@type"] == "Offer"
    [dist] = dataset["dcat:distribution"]
    manifest = json.loads(store.get_bytes("products/p1/1.0.0/manifest.json"))
    assert dist["dcat:byteSize"]["@value"] == manifest["files"][0]["bytes"]
    assert dist["spdx:checksum"]["spdx:checksumValue"]["@value"] == manifest["files"][0]["sha256"]
    assert dist["dcat:accessURL"]["@id"].endswith("products/p1/1.0.0/part-00000.parquet")
    measures = {
        m["dqv:isMeasurementOf"]["@id"]: m["dqv:value"]
        for m in dataset["dqv:hasQualityMeasurement"]
    }
    assert measures["urn:databourse:quality:validity"] == 0.99


def test_withdrawn_version_is_marked_and_offered_nowhere(
    published: tuple[Catalog, ObjectStore],
) -> None:
    cat, store = published
    cat.withdraw_version("p1", "1.0.0", reason="wrong data")
    export_catalog(cat, store)
    dataset = json.loads(store.get_bytes(JSONLD_KEY))["dcat:dataset"][1]
    assert dataset["adms:status"]["@id"].endswith("/Withdrawn")
    assert dataset["dct:spatial"] == []


def test_html_page_in_a_real_browser(
    published: tuple[Catalog, ObjectStore], tmp_path: Path
) -> None:
    cat, store = published
    uris = export_catalog(cat, store)
    page = store.local_path(PAGE_KEY)
    assert page is not None and uris["page"].endswith(PAGE_KEY)
    dom = chromium_dom(page.as_uri())
    assert "<script>" not in dom  # the hostile name was escaped, not executed
    assert "Retail &lt;script&gt;" in dom
    assert 'class="available">CN: available' in dom
    assert 'class="pending_approval">MY: pending_approval' in dom
    assert "validity 0.99" in dom and "1.0.0" in dom
