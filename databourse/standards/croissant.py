"""A product version as a Croissant 1.1 card (JSON-LD) with Responsible-AI (RAI 1.0) fields.

`card` is pure: the version's manifest, its catalog record (as `Catalog.listing` shows it) and
what the configs say. `distribution` holds one `cr:FileObject` per Parquet file (its URI in the
store, as the DCAT export names it, and the manifest's sha256); a version of several files adds
a `cr:FileSet` of them that the record set reads (a hive folder column is read from the path).
The `recordSet` has one `cr:Field` per column, typed from its Arrow type. The `rai:` fields state
only what the pipeline measured or the config that made the version (its fingerprint is in the
manifest) says; a field with no such fact is left out. Counts and column names, never values.
The context is inline: nothing is fetched to read a card.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from databourse.config import ProductSpec
from databourse.product.package import HIVE_NULL

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
PARQUET = "application/x-parquet"
# The spec's Appendix 1 context, with schema.org as https (as mlcroissant and every published
# 1.1 card write it: mlcroissant refuses a dataset that is not https://schema.org/Dataset), the
# terms mlcroissant's own 1.1 context adds, and the RAI and PROV-O prefixes.
CR_TERMS = (  # the terms the context maps to cr:<term>
    "annotation arrayShape citeAs column containedIn equivalentProperty excludes extract field "
    "fileProperty fileObject fileSet format includes isArray isLiveDataset jsonPath key md5 "
    "parentField path readLines recordSet references regex repeated replace samplingRate "
    "sdVersion separator source subField transform unArchive value"
)
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#",
    "conformsTo": "dct:conformsTo",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "description": {"@container": "@language"},
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "name": {"@container": "@language"},
} | {term: f"cr:{term}" for term in CR_TERMS.split()}
RECORDS = "records"
FILE_SET = "parquet-files"
# Arrow type names (package.schema_of) -> Croissant data types; a prefix matches parametrized
# types (timestamp[us, tz=UTC], decimal128(10, 2), dictionary<values=string, ...>).
DATA_TYPES = (
    (("string", "large_string", "string_view", "dictionary<values=string"), "sc:Text"),
    (("int", "uint"), "sc:Integer"),
    (("double", "float", "halffloat", "decimal"), "sc:Float"),
    (("bool",), "sc:Boolean"),
    (("date32", "date64"), "sc:Date"),
    (("timestamp",), "sc:DateTime"),
)
TREATED = {
    "drop": "dropped",
    "pseudonymize": "pseudonymized (keyed)",
    "generalize": "generalized",
    "mask": "masked",
    "noise": "perturbed with keyed noise",
    "keep": "kept",
}


def card_key(product: str, version: str) -> str:
    """The object key of a version's card in the `catalog/` zone."""
    return f"catalog/croissant/{product}/{version}.json"


def data_type(arrow_type: str) -> str | None:
    """The Croissant data type of an Arrow type name, None for one it has no type for."""
    for prefixes, croissant in DATA_TYPES:
        if arrow_type.startswith(prefixes):
            return croissant
    return None


def card(
    manifest: dict[str, Any],
    record: dict[str, Any],
    urls: Mapping[str, str],
    *,
    title: str,
    provider: str,
    publisher: str,
    spec: ProductSpec | None = None,
    declared: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Croissant 1.1 card of a version.

    `record`: the version as `Catalog.listing` shows it; `urls`: file path -> its URI in the
    store; `title`: the product's name; `provider`, `publisher`: names of the provider and the
    exchange; `spec`: the product's config, used only if it is the one that made the version
    (its fingerprint is the manifest's); `declared`: the provider's declared personal-data
    categories by source column."""
    product, version = manifest["product"], manifest["version"]
    lineage = manifest.get("lineage") or {}
    made_by = spec if spec and spec.fingerprint() == lineage.get("product_config_sha256") else None
    licence = (made_by.catalog.license if made_by else None) or manifest["usage_policy"]["uid"]
    published = record.get("published_at") or record["created_at"]
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": f"{title} {version}",
        "description": (made_by.description if made_by else "")
        or f"Version {version} of {title}: {manifest['row_count']} rows in "
        f"{len(manifest['files'])} Parquet file(s).",
        "identifier": f"urn:databourse:{product}:{version}",
        "version": version,
        "creativeWorkStatus": record["status"],
        "dateCreated": manifest["created_at"],
        "datePublished": published,
        "citeAs": f"@misc{{{product}_{version.replace('.', '_')}, title = {{{title} {version}}}, "
        f"author = {{{provider}}}, publisher = {{{publisher}}}, year = {{{str(published)[:4]}}}, "
        f"version = {{{version}}}, note = {{urn:databourse:{product}:{version}, content sha256 "
        f"{manifest['content_hash']}}}}}",
        "license": licence,
        "creator": {"@type": "sc:Organization", "name": provider},
        "publisher": {"@type": "sc:Organization", "name": publisher},
        "usageInfo": manifest["usage_policy"],
        "distribution": distribution(manifest["files"], urls),
        "recordSet": [record_set(manifest)],
        "prov:wasDerivedFrom": [
            {
                "@id": f"urn:databourse:ingest:{lineage.get('provider')}:"
                f"{lineage.get('dataset')}:{i['ingest_id']}",
                "sha256": i["sha256"],
            }
            for i in lineage.get("ingests", [])
        ],
    }
    if made_by and made_by.catalog.keywords:
        doc["keywords"] = list(made_by.catalog.keywords)
    rai = {
        "rai:dataCollection": _collection(manifest),
        "rai:personalSensitiveInformation": _personal(manifest, made_by, declared or {}),
        "rai:dataLimitations": _limitations(manifest, record),
        "rai:dataBiases": _biases(manifest),
        "rai:dataUseCases": _use_cases(manifest),
    }
    return doc | {k: v for k, v in rai.items() if v}


def _hive(files: list[dict[str, Any]]) -> set[str]:
    """The columns of the version's hive folders (`column=value/`), read from the path."""
    return {p.split("=", 1)[0] for f in files for p in f["path"].split("/")[:-1] if "=" in p}


def distribution(files: list[dict[str, Any]], urls: Mapping[str, str]) -> list[dict[str, Any]]:
    """One `cr:FileObject` per Parquet file, and a `cr:FileSet` of them when there are several."""
    objects: list[dict[str, Any]] = [
        {
            "@type": "cr:FileObject",
            "@id": f["path"],
            "name": f["path"],
            "contentUrl": urls.get(f["path"], f["path"]),
            "contentSize": f"{f['bytes']} B",
            "encodingFormat": PARQUET,
            "sha256": f["sha256"],
        }
        for f in files
    ]
    if len(files) > 1 or _hive(files):  # read as a set, relative to the version's folder
        objects.append(
            {
                "@type": "cr:FileSet",
                "@id": FILE_SET,
                "name": FILE_SET,
                "description": f"The {len(files)} Parquet files above, as paths relative to "
                "the version's folder.",
                "encodingFormat": PARQUET,
                "includes": sorted({_glob(f["path"]) for f in files}),
            }
        )
    return objects


def _glob(path: str) -> str:
    """The file's path with its hive folder values and its name as wildcards."""
    *folders, _ = path.split("/")
    return "/".join([*(f"{p.split('=', 1)[0]}=*" for p in folders), "*.parquet"])


def record_set(manifest: dict[str, Any]) -> dict[str, Any]:
    """The `cr:RecordSet` of a manifest's "files", "schema" and "row_count": a field a column."""
    files = manifest["files"]
    hive = _hive(files)
    origin = {"fileSet": {"@id": FILE_SET}} if len(files) > 1 or hive else None
    origin = origin or {"fileObject": {"@id": files[0]["path"]}}
    fields = []
    for column in manifest["schema"]:
        name, arrow = column["name"], column["type"]
        about = f"Column {name} (Arrow type {arrow})"
        if column.get("personal_data"):
            about += f"; personal data: {column['personal_data']}"
        extract: dict[str, Any] = {"extract": {"column": name}}
        if name in hive:  # the value is in the file's folder name, URL-quoted
            extract = {
                "extract": {"fileProperty": "fullpath"},
                "transform": {"regex": f"(?:^|/){name}=([^/]+)/"},
            }
            about += f"; read from the hive folder name, URL-quoted ({HIVE_NULL}: null)"
        field: dict[str, Any] = {
            "@type": "cr:Field",
            "@id": f"{RECORDS}/{name}",
            "name": name,
            "description": about + ".",
            "source": origin | extract,
        }
        if kind := ("sc:Text" if name in hive else data_type(arrow)):
            field["dataType"] = kind
        fields.append(field)
    return {
        "@type": "cr:RecordSet",
        "@id": RECORDS,
        "name": RECORDS,
        "description": f"The {manifest['row_count']} rows of the version.",
        "field": fields,
    }


def _collection(manifest: dict[str, Any]) -> str:
    lineage = manifest.get("lineage") or {}
    ingests = "; ".join(
        f"ingest {i['ingest_id']} (sha256 {i['sha256']})" for i in lineage.get("ingests", [])
    )
    return (
        f"Dataset {lineage.get('dataset')} of provider {lineage.get('provider')} (origin "
        f"{lineage.get('origin')}), received as {ingests}; checked by the quality gate "
        f"({'passed' if (manifest.get('quality') or {}).get('success') else 'not passed'}), "
        f"scanned for personal data, transformed by the product's rules and packaged by databourse "
        f"{lineage.get('code_version')} under product config sha256 "
        f"{lineage.get('product_config_sha256')}."
    )


def _personal(
    manifest: dict[str, Any], spec: ProductSpec | None, declared: Mapping[str, str]
) -> list[str]:
    personal = manifest.get("personal_data") or {}
    remaining: dict[str, str] = personal.get("remaining") or {}
    out, told = [], set()
    for source, rule in spec.columns.items() if spec else []:
        if (category := declared.get(source)) is None:
            continue
        into = rule.rename or source
        out.append(
            f"{source} ({category}): {TREATED.get(rule.action, rule.action)}"
            + ("" if rule.action == "drop" else f" as column {into}")
            + (f", still personal data ({remaining[into]})" if into in remaining else "")
        )
        told.add(into)
    out += [
        f"column {c} still holds personal data ({category})"
        for c, category in sorted(remaining.items())
        if c not in told
    ]
    embedded = personal.get("embedded") or {}
    for kind, verb in (("redacted", "redacted to typed placeholders"), ("left", "left")):
        for column, counts in sorted((embedded.get(kind) or {}).items()):
            out += [
                f"column {column}: {n} value(s) holding {category} inside text {verb}"
                for category, n in sorted(counts.items())
                if n
            ]
    if "rescan_direct_identifiers" in personal:
        out.append(
            "direct identifiers found by the re-scan of the written files: "
            f"{personal['rescan_direct_identifiers']}"
        )
    if remaining:
        out.append(f"{personal.get('individuals', 0)} distinct individual(s) in the version")
    if personal.get("sensitive_categories"):
        out.append(f"sensitive categories remaining: {', '.join(personal['sensitive_categories'])}")
    if not remaining and "remaining" in personal:
        out.append("no column of the version holds personal data")
    return out


def _limitations(manifest: dict[str, Any], record: dict[str, Any]) -> list[str]:
    out = privacy_statements(manifest.get("privacy") or {})
    scores = record.get("quality_scores") or (manifest.get("quality") or {}).get("scores") or {}
    if scores:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(scores.items()) if v is not None)
        out.append(f"quality scores measured on the source: {shown}")
    return out


def privacy_statements(privacy: dict[str, Any]) -> list[str]:
    """What a privacy report says, a sentence per model, risk or aggregation (figures only)."""
    out = []
    if privacy.get("k") is not None:
        out.append(
            f"privacy model {privacy.get('model')}, k={privacy['k']} over "
            f"{', '.join(privacy.get('quasi_identifiers', []))}: {privacy.get('suppressed', 0)} "
            f"of {privacy.get('rows_in')} rows suppressed (rate {privacy.get('suppression_rate')})"
            f", {privacy.get('classes')} classes, the smallest of {privacy.get('smallest_class')};"
            f" model satisfied: {privacy.get('satisfied')}"
        )
    if privacy.get("l") is not None:
        attributes = ", ".join(privacy.get("sensitive_attributes", []))
        out.append(
            f"l-diversity ({privacy.get('l_diversity')}) l={privacy['l']} over {attributes}: "
            f"lowest {privacy.get('lowest_l')}"
        )
    if privacy.get("t") is not None:
        out.append(f"t-closeness t={privacy['t']}: highest distance {privacy.get('highest_t')}")
    if levels := (privacy.get("search") or {}).get("transformation"):
        out.append(
            "quasi-identifiers generalized to hierarchy levels "
            + ", ".join(f"{q}={lv}" for q, lv in sorted(levels.items()))
        )
    if risk := privacy.get("risk"):
        out.append(
            f"prosecutor re-identification risk: highest {risk.get('highest_risk')}, average "
            f"{risk.get('average_risk')}; {risk.get('records_at_risk')} record(s) above "
            f"{risk.get('threshold')}"
        )
    if agg := privacy.get("aggregate"):
        out.append(
            f"aggregated over {', '.join(agg.get('dimensions', []))} from {agg.get('records')} "
            f"records into {agg.get('cells')} cells; cells under {agg.get('min_cell')} records "
            f"suppressed: {agg.get('primary_suppressed')} primary, "
            f"{agg.get('secondary_suppressed')} complementary"
            + (f"; Laplace noise, epsilon {agg['epsilon']}" if agg.get("epsilon") else "")
        )
    return out


def _biases(manifest: dict[str, Any]) -> list[str]:
    privacy = manifest.get("privacy") or {}
    out = []
    if privacy.get("suppressed"):
        out.append(
            f"{privacy['suppressed']} row(s) in rare quasi-identifier combinations were "
            "suppressed to reach k-anonymity: such combinations are under-represented"
        )
    agg = privacy.get("aggregate") or {}
    if agg.get("primary_suppressed") or agg.get("secondary_suppressed"):
        out.append("small cells were suppressed: rare groups are under-represented")
    return out


def _use_cases(manifest: dict[str, Any]) -> list[str]:
    terms = manifest.get("usage_terms") or {}
    uid = manifest["usage_policy"]["uid"]
    out = [f"permitted purpose (ODRL policy {uid}): {p}" for p in terms.get("purposes", [])]
    if terms.get("reidentification_prohibited"):
        out.append("re-identification of individuals is prohibited")
    if terms.get("onward_transfer_allowed") is False:
        out.append("onward transfer to third parties is not allowed")
    if terms.get("expires"):
        out.append(f"the usage terms expire on {terms['expires']}")
    return out
