"""The catalog as DCAT-AP 3 JSON-LD: a dataset series per product, a dataset per version.

Distributions carry byte sizes and SPDX sha256 checksums, each version its ODRL policy
(`odrl:hasPolicy`), the markets it is available in as the audit trail backs them (`dct:spatial`,
from `Catalog.listing`), the legislation the transfer
decisions cite (`dcatap:applicableLegislation`) and its status (`adms:status`).
"""

from __future__ import annotations

from typing import Any

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "dcatap": "http://data.europa.eu/r5r/",
    "adms": "http://www.w3.org/ns/adms#",
    "odrl": "http://www.w3.org/ns/odrl/2/",
    "spdx": "http://spdx.org/rdf/terms#",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "dqv": "http://www.w3.org/ns/dqv#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
PARQUET = "https://www.iana.org/assignments/media-types/application/vnd.apache.parquet"
STATUS = {"published": "Completed", "staged": "UnderDevelopment", "withdrawn": "Withdrawn"}


def country(code: str) -> dict[str, str]:
    return {"@id": f"urn:iso:std:iso:3166:-1:{code}"}


def catalog_jsonld(entries: list[dict[str, Any]], title: str) -> dict[str, Any]:
    """DCAT-AP 3 JSON-LD of the whole catalog.

    `entries`: one per product: {"product": catalog.show()["product"], "versions": [{"record":
    a version of catalog.show(), "manifest": its manifest or None, "files": {path: url}}]}
    """
    datasets: list[dict[str, Any]] = []
    for entry in entries:
        product = entry["product"]
        series_id = f"urn:databourse:{product['id']}"
        datasets.append(
            {
                "@id": series_id,
                "@type": "dcat:DatasetSeries",
                "dct:identifier": product["id"],
                "dct:title": product["name"],
                "dct:publisher": {"@type": "foaf:Agent", "foaf:name": product["provider"]},
            }
        )
        datasets += [_version(series_id, product, v) for v in entry["versions"]]
    return {
        "@context": CONTEXT,
        "@id": "urn:databourse:catalog",
        "@type": "dcat:Catalog",
        "dct:title": title,
        "dcat:dataset": datasets,
    }


def available_markets(record: dict[str, Any]) -> list[str]:
    """The markets a listed version is offered in: available (as listed) and published."""
    return sorted(
        a["market"]
        for a in record.get("availability", [])
        if a["status"] == "available" and record["status"] == "published"
    )


def listed_offers(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(product, version, market) of every offer a DCAT document of `catalog_jsonld` makes."""
    offers = set()
    for dataset in doc.get("dcat:dataset", []):
        if not isinstance(dataset, dict) or dataset.get("@type") != "dcat:Dataset":
            continue
        product, _, version = str(dataset.get("dct:identifier", "")).rpartition("@")
        for place in dataset.get("dct:spatial") or []:
            code = str(place.get("@id", "") if isinstance(place, dict) else "").rpartition(":")[2]
            offers.add((product, version, code))
    return offers


def _version(series_id: str, product: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    record, manifest = item["record"], item.get("manifest") or {}
    available = available_markets(record)
    legislation = sorted(
        {(a.get("detail") or {}).get("citation", "") for a in record.get("availability", [])} - {""}
    )
    dataset: dict[str, Any] = {
        "@id": f"{series_id}:{record['version']}",
        "@type": "dcat:Dataset",
        "dct:identifier": f"{product['id']}@{record['version']}",
        "dct:title": f"{product['name']} {record['version']}",
        "dcat:inSeries": {"@id": series_id},
        "dcat:version": record["version"],
        "dct:issued": {
            "@value": record.get("published_at") or record["created_at"],
            "@type": "xsd:dateTime",
        },
        "adms:status": {"@id": f"http://purl.org/adms/status/{STATUS[record['status']]}"},
        "dct:spatial": [country(m) for m in available],
        "dcatap:applicableLegislation": [{"dct:title": c} for c in legislation],
        "spdx:checksum": _checksum(record["content_hash"]),
        "dcat:distribution": [
            _distribution(f, item.get("files", {})) for f in manifest.get("files", [])
        ],
    }
    if manifest.get("usage_policy"):
        dataset["odrl:hasPolicy"] = manifest["usage_policy"]
    if record.get("quality_scores"):
        dataset["dqv:hasQualityMeasurement"] = [
            {
                "@type": "dqv:QualityMeasurement",
                "dqv:isMeasurementOf": {"@id": f"urn:databourse:quality:{dim}"},
                "dqv:value": value,
            }
            for dim, value in record["quality_scores"].items()
            if value is not None
        ]
    return dataset


def _distribution(entry: dict[str, Any], urls: dict[str, str]) -> dict[str, Any]:
    return {
        "@type": "dcat:Distribution",
        "dct:title": entry["path"],
        "dcat:accessURL": {"@id": urls.get(entry["path"], entry["path"])},
        "dcat:mediaType": {"@id": PARQUET},
        "dcat:byteSize": {"@value": entry["bytes"], "@type": "xsd:nonNegativeInteger"},
        "spdx:checksum": _checksum(entry["sha256"]),
    }


def _checksum(sha256: str) -> dict[str, Any]:
    return {
        "@type": "spdx:Checksum",
        "spdx:algorithm": {"@id": "http://spdx.org/rdf/terms#checksumAlgorithm_sha256"},
        "spdx:checksumValue": {"@value": sha256, "@type": "xsd:hexBinary"},
    }
