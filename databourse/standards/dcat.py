"""The catalog as DCAT-AP 3.0.1 JSON-LD: a dataset series per product, a dataset per version.

The catalog names its publisher (the exchange, from settings' `catalog_export`); each series and
dataset its provider, a description, a contact point and the keywords, themes and licence its
product config gives. Distributions carry byte sizes, SPDX sha256 checksums and IANA media types;
each version its ODRL policy (`odrl:hasPolicy`, odrl.py), the markets it is available in as the
audit trail backs them (`dct:spatial`, from `Catalog.listing`), the data-protection laws of its
origin and those markets (`dcatap:applicableLegislation`) and its status (`adms:status`). Every
value that DCAT-AP gives a class range is typed, and every context is inline: the document passes
the official SHACL shapes and parses with no network (tests/unit/standards/test_standards_shacl.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from databourse.config import CatalogExportSettings, Config, ProductSpec
from databourse.transfer.odrl import EXCHANGE, place_iri

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "dcatap": "http://data.europa.eu/r5r/",
    "adms": "http://www.w3.org/ns/adms#",
    "odrl": "http://www.w3.org/ns/odrl/2/",
    "spdx": "http://spdx.org/rdf/terms#",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "dqv": "http://www.w3.org/ns/dqv#",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "eli": "http://data.europa.eu/eli/ontology#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
PARQUET = "https://www.iana.org/assignments/media-types/application/vnd.apache.parquet"
PARQUET_FORMAT = "http://publications.europa.eu/resource/authority/file-type/PARQUET"
STATUS = {"published": "Completed", "staged": "UnderDevelopment", "withdrawn": "Withdrawn"}
DATA_THEME = "http://publications.europa.eu/resource/authority/data-theme"
# skos:prefLabel of the concepts the export uses, as their vocabularies (EU data theme, ADMS
# status) give them: DCAT-AP's shapes want a label on every concept; any other concept is
# labelled by its IRI's last segment.
LABELS = {
    f"{DATA_THEME}/{code}": label
    for code, label in {
        "AGRI": "Agriculture, fisheries, forestry and food",
        "ECON": "Economy and finance",
        "EDUC": "Education, culture and sport",
        "ENER": "Energy",
        "ENVI": "Environment",
        "GOVE": "Government and public sector",
        "HEAL": "Health",
        "INTR": "International issues",
        "JUST": "Justice, legal system and public safety",
        "OP_DATPRO": "Provisional data",
        "REGI": "Regions and cities",
        "SOCI": "Population and society",
        "TECH": "Science and technology",
        "TRAN": "Transport",
    }.items()
} | {
    "http://purl.org/adms/status/Completed": "Completed",
    "http://purl.org/adms/status/UnderDevelopment": "Under Development",
    "http://purl.org/adms/status/Withdrawn": "Withdrawn",
    "http://purl.org/adms/publishertype/Company": "Company",
    DATA_THEME: "Data theme",
}


@dataclass(frozen=True)
class CatalogInfo:
    """What the configs say about the catalog: settings' `catalog_export`, each product's
    `catalog` entry and description, each provider's name."""

    export: CatalogExportSettings = field(default_factory=CatalogExportSettings)
    products: Mapping[str, ProductSpec] = field(default_factory=dict)
    providers: Mapping[str, str] = field(default_factory=dict)  # id -> name
    provider_types: Mapping[str, str] = field(default_factory=dict)  # id -> ADMS type IRI

    @classmethod
    def of(cls, cfg: Config) -> CatalogInfo:
        """The catalog's description from the project's configs."""
        return cls(
            cfg.settings.catalog_export,
            dict(cfg.products),
            {pid: p.name for pid, p in cfg.providers.items()},
            {pid: p.type for pid, p in cfg.providers.items() if p.type},
        )


def catalog_jsonld(
    entries: list[dict[str, Any]], title: str, info: CatalogInfo | None = None
) -> dict[str, Any]:
    """DCAT-AP 3 JSON-LD of the whole catalog.

    `entries`: one per product: {"product": catalog.show()["product"], "versions": [{"record":
    a version of catalog.show(), "manifest": its manifest or None, "files": {path: url}}]}
    """
    info = info or CatalogInfo()
    export = info.export
    datasets: list[dict[str, Any]] = []
    for entry in entries:
        markets = sorted({m for v in entry["versions"] for m in available_markets(v["record"])})
        datasets.append(_series(entry["product"], markets, info))
        datasets += [_version(entry["product"], v, info) for v in entry["versions"]]
    records = [v["record"] for entry in entries for v in entry["versions"]]
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@id": "urn:databourse:catalog",
        "@type": "dcat:Catalog",
        "dct:title": title,
        "dct:description": export.description
        or f"Data products published by {export.publisher}: {len(entries)} product(s), every "
        "version with its usage terms (ODRL) and the markets it is offered in.",
        "dct:publisher": _agent(EXCHANGE, export.publisher, export.publisher_type),
        "dct:spatial": _places(sorted({m for r in records for m in available_markets(r)})),
        "dct:language": [{"@id": iri, "@type": "dct:LinguisticSystem"} for iri in export.languages],
        "dcat:dataset": datasets,
    }
    if records:
        doc["dct:issued"] = _when(min(r["created_at"] for r in records))
        doc["dct:modified"] = _when(max(_changed(r) for r in records))
    if export.homepage:
        doc["foaf:homepage"] = {"@id": export.homepage, "@type": "foaf:Document"}
    if export.license:
        doc["dct:license"] = {"@id": export.license, "@type": "dct:LicenseDocument"}
    listed = [info.products.get(entry["product"]["id"]) for entry in entries]
    schemes = sorted({t.rpartition("/")[0] for s in listed if s for t in s.catalog.themes})
    if schemes:
        doc["dcat:themeTaxonomy"] = [
            {"@id": s, "@type": "skos:ConceptScheme", "dct:title": _label(s)} for s in schemes
        ]
    return doc


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
        for where in dataset.get("dct:spatial") or []:
            where = where if isinstance(where, dict) else {}
            # the market's code; an export written before places were typed has only a URN
            code = where.get("dct:identifier") or str(where.get("@id", "")).rpartition(":")[2]
            offers.add((product, version, str(code)))
    return offers


def _series(product: dict[str, Any], markets: list[str], info: CatalogInfo) -> dict[str, Any]:
    spec = info.products.get(product["id"])
    provider = info.providers.get(product["provider"], product["provider"])
    series = {
        "@id": _series_id(product),
        # a series is a dataset (DCAT 3): said outright, for readers without the DCAT ontology
        "@type": ["dcat:DatasetSeries", "dcat:Dataset"],
        "dct:identifier": product["id"],
        "dct:title": product["name"],
        "dct:description": (spec.description if spec else "")
        or f"The versions of {product['name']}, a data product of {provider}.",
        "dct:publisher": _provider(product, info),
        "dct:spatial": _places(markets),  # where any of its versions is offered
    }
    return series | _described(spec, info)


def _version(product: dict[str, Any], item: dict[str, Any], info: CatalogInfo) -> dict[str, Any]:
    record, manifest = item["record"], item.get("manifest") or {}
    spec = info.products.get(product["id"])
    available = available_markets(record)
    files = manifest.get("files", [])
    # the licence the product's config names, else the version's ODRL policy: its terms
    licence = (spec.catalog.license if spec else None) or (manifest.get("usage_policy") or {}).get(
        "uid"
    )
    dataset: dict[str, Any] = {
        "@id": f"{_series_id(product)}:{record['version']}",
        "@type": "dcat:Dataset",
        "dct:identifier": f"{product['id']}@{record['version']}",
        "dct:title": f"{product['name']} {record['version']}",
        "dct:description": f"Version {record['version']} of {product['name']}: "
        f"{record['row_count']} rows in {len(files)} Parquet file(s)"
        + (", withdrawn: offered nowhere." if record["status"] == "withdrawn" else "."),
        "dct:publisher": _provider(product, info),
        "dcat:inSeries": {"@id": _series_id(product)},
        "dcat:version": record["version"],
        "dct:issued": _when(record.get("published_at") or record["created_at"]),
        "adms:status": _concept(f"http://purl.org/adms/status/{STATUS[record['status']]}"),
        "dct:spatial": _places(available),
        "dcatap:applicableLegislation": _legislation(manifest, available, info),
        "spdx:checksum": _checksum(record["content_hash"]),
        "dcat:distribution": [
            _distribution(f, item.get("files", {}), f"{product['id']}@{record['version']}", licence)
            for f in files
        ],
    }
    if manifest.get("usage_policy"):
        dataset["odrl:hasPolicy"] = manifest["usage_policy"]
    if item.get("card") and record["status"] == "published":  # the Croissant 1.1 card
        dataset["foaf:page"] = [{"@id": item["card"], "@type": "foaf:Document"}]
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
    return dataset | _described(spec, info)


def _described(spec: ProductSpec | None, info: CatalogInfo) -> dict[str, Any]:
    """The contact point, keywords and themes the product's config (or settings) give."""
    out: dict[str, Any] = {}
    email = (spec.catalog.contact if spec else None) or info.export.email
    if email:
        out["dcat:contactPoint"] = {
            "@type": "vcard:Kind",
            "vcard:fn": info.export.publisher,
            "vcard:hasEmail": {"@id": f"mailto:{email}"},
        }
    if spec and spec.catalog.keywords:
        out["dcat:keyword"] = [{"@value": k, "@language": "en"} for k in spec.catalog.keywords]
    if spec and spec.catalog.themes:
        out["dcat:theme"] = [_concept(t) for t in spec.catalog.themes]
    return out


def _distribution(
    entry: dict[str, Any], urls: dict[str, str], name: str, licence: str | None
) -> dict[str, Any]:
    distribution = {
        "@type": "dcat:Distribution",
        "dct:title": entry["path"],
        "dct:description": f"Parquet file {entry['path']} of {name}: {entry['bytes']} bytes.",
        "dcat:accessURL": {"@id": urls.get(entry["path"], entry["path"])},
        "dcat:mediaType": {"@id": PARQUET, "@type": "dct:MediaType"},
        "dct:format": {"@id": PARQUET_FORMAT, "@type": "dct:MediaTypeOrExtent"},
        "dcat:byteSize": {"@value": entry["bytes"], "@type": "xsd:nonNegativeInteger"},
        "spdx:checksum": _checksum(entry["sha256"]),
    }
    if licence:
        distribution["dct:license"] = {"@id": licence, "@type": "dct:LicenseDocument"}
    return distribution


def _legislation(
    manifest: dict[str, Any], markets: list[str], info: CatalogInfo
) -> list[dict[str, str]]:
    """The data-protection laws (settings) of the version's origin and of its markets."""
    where = {*markets, (manifest.get("lineage") or {}).get("origin")} - {None}
    laws = {iri for m in where for iri in info.export.legislation.get(str(m), [])}
    return [{"@id": iri, "@type": "eli:LegalResource"} for iri in sorted(laws)]


def _places(markets: list[str]) -> list[dict[str, str]]:
    """The markets as `dct:Location`s; `dct:identifier` keeps each market's code."""
    return [{"@id": place_iri(m), "@type": "dct:Location", "dct:identifier": m} for m in markets]


def _agent(iri: str, name: str, kind: str | None = None) -> dict[str, Any]:
    agent: dict[str, Any] = {"@id": iri, "@type": "foaf:Agent", "foaf:name": name}
    if kind:
        agent["dct:type"] = _concept(kind)
    return agent


def _concept(iri: str) -> dict[str, Any]:
    return {"@id": iri, "@type": "skos:Concept", "skos:prefLabel": _label(iri)}


def _label(iri: str) -> dict[str, str]:
    return {"@value": LABELS.get(iri) or iri.rstrip("/").rpartition("/")[2], "@language": "en"}


def _provider(product: dict[str, Any], info: CatalogInfo) -> dict[str, Any]:
    provider = product["provider"]
    name, kind = info.providers.get(provider, provider), info.provider_types.get(provider)
    return _agent(f"urn:databourse:provider:{provider}", name, kind)


def _series_id(product: dict[str, Any]) -> str:
    return f"urn:databourse:{product['id']}"


def _changed(record: dict[str, Any]) -> str:
    return str(
        max(t for t in (record.get(k) for k in ("created_at", "published_at", "withdrawn_at")) if t)
    )


def _when(iso: str) -> dict[str, str]:
    return {"@value": iso, "@type": "xsd:dateTime"}


def _checksum(sha256: str) -> dict[str, Any]:
    return {
        "@type": "spdx:Checksum",
        "spdx:algorithm": {
            "@id": "http://spdx.org/rdf/terms#checksumAlgorithm_sha256",
            "@type": "spdx:ChecksumAlgorithm",
        },
        "spdx:checksumValue": {"@value": sha256, "@type": "xsd:hexBinary"},
    }
