"""Croissant 1.1 cards: what a card holds, and the standard's own tool (mlcroissant) reading them.

A realistic version is built with the domain functions the build uses (`productize` with the
sample product sz-retail-baskets: pseudonymized ids, generalized dates, k-anonymity) from a seeded
raw table, packaged in hive folders, published and exported by `export_listing` beside the
single-file sample version p1. mlcroissant validates every card the export wrote with every
network connection refused, reads the records through each card from a buyer's copy of the files
and must give what pyarrow reads, and refuses a file whose sha256 is not the card's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import random
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import mlcroissant as mlc
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from helpers import REPO, publish_sample_version, sample_manifest
from standards_checks import croissant_issues, refuse_network

from databourse.catalog.database import Catalog
from databourse.config import Config, load_config
from databourse.consistency.verify import check_all
from databourse.product.package import (
    HIVE_NULL,
    content_hash,
    manifest_sha256,
    publish_files,
    schema_of,
    transfer_facts,
    write_parquet,
)
from databourse.product.productize import productize
from databourse.standards.croissant import CONFORMS_TO, card, card_key
from databourse.standards.croissant_checks import file_problems, manifest_problems
from databourse.standards.dcat import listed_offers
from databourse.standards.exports import JSONLD_KEY, export_listing
from databourse.standards.listing_seal import seal_findings
from databourse.storage.store import ObjectStore
from databourse.transfer.odrl import usage_policy

# mlcroissant 1.1.1 reads Parquet with pandas' reset_index(inplace=True), deprecated in pandas 3.1
pytestmark = pytest.mark.filterwarnings(
    "ignore:The inplace keyword in DataFrame.reset_index:pandas.errors.Pandas4Warning"
)
PRODUCT = "sz-retail-baskets"
KEY = b"croissant-test-key-0123456789abcdef!"
DISTRICTS = ["Nanshan", "Futian", "Luohu", "Baoan"]


@pytest.fixture(scope="module")
def cfg() -> Config:
    return load_config(REPO / "configs")


def raw_orders(n: int = 200, seed: int = 7) -> pa.Table:
    """Seeded raw orders of sz-retail's contract: names, phones, e-mails, ids, birth dates."""
    rnd = random.Random(seed)
    return pa.table(
        {
            "order_id": [f"ORD{i:06d}" for i in range(n)],
            "customer_id_number": [f"44030{rnd.randrange(10**12, 10**13)}" for _ in range(n)],
            "customer_name": [f"Customer Zq{rnd.randrange(10**6)}" for _ in range(n)],
            "mobile": [f"138{rnd.randrange(10**8):08d}" for _ in range(n)],
            "email": [f"buyer{rnd.randrange(10**6)}@mail.example" for _ in range(n)],
            "birth_date": [dt.date(rnd.choice([1962, 1975, 1984, 1991]), 5, 1) for _ in range(n)],
            "district": [rnd.choice(DISTRICTS[:3]) if i else DISTRICTS[3] for i in range(n)],
            "order_date": [dt.date(2025, rnd.randrange(1, 13), 3) for _ in range(n)],
            "category": [rnd.choice(["food", "toys", "home"]) for _ in range(n)],
            "amount_cny": [round(rnd.uniform(5, 500), 2) for _ in range(n)],
        }
    )


def baskets(cfg: Config, out: Path, partition_by: str | None = "district") -> dict[str, Any]:
    """A version of sz-retail-baskets as the build makes it: rules, model, files, manifest."""
    spec = cfg.product(PRODUCT)
    declared = cfg.dataset("sz-retail", "customer_orders").declared_categories
    made = productize(raw_orders(), spec, declared, KEY, {})
    files = write_parquet(made.table, out, partition_by=partition_by, max_rows_per_file=40)
    remaining = made.personal_data["remaining"]
    schema = [
        {**c, "personal_data": remaining[c["name"]]} if c["name"] in remaining else c
        for c in schema_of(made.table)
    ]
    personal = made.personal_data | {"embedded": {"redacted": {}, "left": {}}}
    facts = transfer_facts("CN", remaining, personal["individuals"], False)
    manifest = sample_manifest(
        made.table,
        files,
        terms=spec.terms,
        markets=list(spec.markets),
        schema=schema,
        personal_data=personal,
        privacy=made.privacy,
        product=PRODUCT,
        content_hash=content_hash(files, schema, spec.fingerprint(), facts),
        lineage={
            "provider": "sz-retail",
            "dataset": "customer_orders",
            "origin": "CN",
            "product_config_sha256": spec.fingerprint(),
            "ingests": [{"ingest_id": "i-7", "sha256": "ab" * 32, "raw": "file:///raw"}],
        },
    )
    manifest["usage_policy"] = usage_policy(
        PRODUCT, "1.0.0", manifest["content_hash"], spec.terms, list(spec.markets)
    )
    return {"manifest": manifest, "files": files, "table": made.table, "raw": raw_orders()}


def publish(
    cat: Catalog, store: ObjectStore, cfg: Config, built: dict[str, Any], out: Path
) -> None:
    """Publish the version as the build and the gate do (manifest last, CN available)."""
    manifest = built["manifest"]
    spec = cfg.product(PRODUCT)
    cat.ensure_product(PRODUCT, spec.name, "sz-retail", "customer_orders")
    version = cat.reserve_version(
        PRODUCT, manifest["content_hash"], manifest["schema"], manifest["row_count"]
    ).version
    assert version == manifest["version"]
    uri = publish_files(store, PRODUCT, version, out, built["files"], manifest)
    cat.set_manifest(PRODUCT, version, uri, manifest_sha256(store, PRODUCT, version))
    cat.publish_version(PRODUCT, version)
    cat.set_availability(PRODUCT, version, "CN", "available", "domestic", detail={"citation": "-"})


@pytest.fixture
def exported(tmp_path: Path, cfg: Config) -> tuple[Catalog, ObjectStore, dict[str, Any]]:
    """p1@1.0.0 (one file) and sz-retail-baskets@1.0.0 (hive folders), exported and sealed."""
    cat, store = publish_sample_version(tmp_path)
    built = baskets(cfg, tmp_path / "baskets")
    publish(cat, store, cfg, built, tmp_path / "baskets")
    export_listing(cat, store)
    return cat, store, built


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every network connection refused and recorded: nothing may be fetched to read a card."""
    return refuse_network(monkeypatch, "a card must be read offline")


def cell_values(*tables: pa.Table) -> set[str]:
    """Every cell of the tables as text (3 characters or more: a value, not a digit)."""
    return {
        str(v) for t in tables for col in t.columns for v in col.to_pylist() if len(str(v)) >= 3
    }


# --- (1) what a card holds --------------------------------------------------------------------


def test_card_of_a_built_version_holds_the_measured_facts(cfg: Config, tmp_path: Path) -> None:
    built = baskets(cfg, tmp_path / "out")
    manifest = built["manifest"]
    urls = {f.path: f"s3://bucket/products/{PRODUCT}/1.0.0/{f.path}" for f in built["files"]}
    record = {"status": "published", "created_at": "2026-01-02T03:04:05+00:00"}
    doc = card(
        manifest, record, urls, title="Baskets", provider="SZ Retail", publisher="Exchange",
        spec=cfg.product(PRODUCT),
        declared=cfg.dataset("sz-retail", "customer_orders").declared_categories,
    )  # fmt: skip
    assert doc["conformsTo"] == CONFORMS_TO and doc["version"] == "1.0.0"
    assert isinstance(doc["@context"], dict)  # inline: nothing to fetch
    assert doc["rai:dataCollection"].count("ab" * 32) == 1  # provenance: the raw ingest's hash
    assert (doc["datePublished"], doc["creator"]["name"]) == (record["created_at"], "SZ Retail")
    assert doc["usageInfo"] == manifest["usage_policy"]
    objects = [d for d in doc["distribution"] if d["@type"] == "cr:FileObject"]
    assert [(o["contentUrl"], o["sha256"], o["encodingFormat"]) for o in objects] == [
        (urls[f["path"]], f["sha256"], "application/x-parquet") for f in manifest["files"]
    ]
    [file_set] = [d for d in doc["distribution"] if d["@type"] == "cr:FileSet"]
    assert file_set["includes"] == ["district=*/*.parquet"]
    [records] = doc["recordSet"]
    types = {f["name"]: f.get("dataType") for f in records["field"]}
    assert types == {
        "order_id": "sc:Text", "customer_ref": "sc:Text", "birth_decade": "sc:Text",
        "district": "sc:Text", "order_month": "sc:Text", "category": "sc:Text",
        "amount_cny": "sc:Float",
    }  # fmt: skip
    assert list(types) == [c["name"] for c in manifest["schema"]]
    personal = doc["rai:personalSensitiveInformation"]
    assert "customer_name (PERSON_NAME): dropped" in personal
    assert "mobile (PHONE_NUMBER): dropped" in personal
    assert (
        "customer_id_number (CN_RESIDENT_ID): pseudonymized (keyed) as column customer_ref, "
        "still personal data (CN_RESIDENT_ID)"
    ) in personal
    assert "birth_date (DATE_OF_BIRTH): generalized as column birth_decade" in personal
    undeclared = card(manifest, record, urls, title="B", provider="P", publisher="X",
                      spec=cfg.product(PRODUCT))["rai:personalSensitiveInformation"]  # fmt: skip
    assert "column customer_ref still holds personal data (CN_RESIDENT_ID)" in undeclared
    individuals = manifest["personal_data"]["individuals"]
    assert f"{individuals} distinct individual(s) in the version" in personal
    privacy = manifest["privacy"]
    assert privacy["suppressed"] >= 1  # the one Baoan order is in a class of one
    [k_line] = [x for x in doc["rai:dataLimitations"] if "privacy model" in x]
    assert f"k=5 over birth_decade, district: {privacy['suppressed']} of 200 rows" in k_line
    assert any("prosecutor re-identification risk" in x for x in doc["rai:dataLimitations"])
    assert doc["rai:dataBiases"] and "suppressed" in doc["rai:dataBiases"][0]
    assert any(x.endswith(": market-research") for x in doc["rai:dataUseCases"])
    assert "re-identification of individuals is prohibited" in doc["rai:dataUseCases"]
    text = json.dumps(doc, ensure_ascii=False)
    # the hive folders are named after the partition column's values, in every path of the
    # version (store, manifest, DCAT): by design, and only those
    folders = set(built["table"]["district"].to_pylist())
    assert {v for v in cell_values(built["table"], built["raw"]) if v in text} == folders
    assert all(v in json.dumps(doc["distribution"]) for v in folders)
    without = {**doc, "distribution": [], "recordSet": []}
    assert not any(v in json.dumps(without) for v in folders)


def test_a_field_without_a_fact_is_left_out(cfg: Config, tmp_path: Path) -> None:
    """No model, no suppression, no config that made it: no biases, limitations or treatments."""
    table = pa.table({"id": ["a", "b"], "amount": [1.0, 2.0]})
    files = write_parquet(table, tmp_path / "out")
    manifest = sample_manifest(table, files)
    record = {"status": "published", "created_at": "2026-01-02T03:04:05+00:00"}
    spec = cfg.product(PRODUCT)  # not the config that made it: its fingerprint differs
    doc = card(manifest, record, {}, title="T", provider="P", publisher="X", spec=spec)
    assert "rai:dataBiases" not in doc and "rai:dataLimitations" not in doc
    assert doc["rai:personalSensitiveInformation"] == [
        "no column of the version holds personal data"
    ]
    assert "keywords" not in doc and doc["license"] == manifest["usage_policy"]["uid"]
    assert [d["@type"] for d in doc["distribution"]] == ["cr:FileObject"]  # one file: no set
    assert doc["recordSet"][0]["field"][0]["source"] == {
        "fileObject": {"@id": "part-00000.parquet"},
        "extract": {"column": "id"},
    }


# --- (2) the export writes a sealed card per version; mlcroissant validates each -------------


def test_export_writes_a_sealed_card_per_version(
    exported: tuple[Catalog, ObjectStore, dict[str, Any]],
) -> None:
    cat, store, _ = exported
    keys = sorted(i.key for i in store.list("catalog/croissant/"))
    assert keys == [card_key("p1", "1.0.0"), card_key(PRODUCT, "1.0.0")]
    sealing = {k.key_id: k.material for k in cat.listing_keys()}
    offers = listed_offers(json.loads(store.get_bytes(JSONLD_KEY)))
    assert seal_findings(store, sealing, JSONLD_KEY, offers) == []
    store.put_bytes(keys[0], store.get_bytes(keys[0]).replace(b"1.0.0", b"9.9.9"))
    found = seal_findings(store, sealing, JSONLD_KEY, offers)
    assert [(f[1], f[2]) for f in found] == [("listing-tampered", keys[0])]


def test_mlcroissant_validates_every_exported_card_offline(
    exported: tuple[Catalog, ObjectStore, dict[str, Any]], offline: list[str]
) -> None:
    _, store, _ = exported
    for info in store.list("catalog/croissant/"):
        path = store.local_path(info.key)
        assert path is not None
        errors, warnings, said = croissant_issues(path)
        print(f"\nmlcroissant on {info.key}: {said or 'no errors, no warnings'}")
        assert (errors, warnings) == ([], [])
    assert offline == []


# --- (3) mlcroissant reads the records through the card: what pyarrow reads ------------------


def buyer_copy(store: ObjectStore, product: str, folder: Path) -> tuple[Path, dict[str, str]]:
    """The version's files and its card copied as a buyer downloads them: the card's path and
    mlcroissant's mapping of each file object to its copy."""
    doc = json.loads(store.get_bytes(card_key(product, "1.0.0")))
    version = store.local_path(f"products/{product}/1.0.0")
    assert version is not None
    shutil.copytree(version, folder, ignore=shutil.ignore_patterns("manifest.json"))
    (folder / "_croissant.json").write_text(json.dumps(doc))
    mapping = {d["@id"]: str(folder / d["@id"]) for d in doc["distribution"] if "sha256" in d}
    return folder / "_croissant.json", mapping


def plain(value: Any) -> Any:
    """A value as mlcroissant or pyarrow gives it, as Python compares it (types kept)."""
    if isinstance(value, bytes):
        return value.decode()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "to_pydatetime"):  # pandas' Timestamp
        value = value.to_pydatetime()
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    return value


def croissant_rows(path: Path, mapping: dict[str, str]) -> list[dict[str, Any]]:
    records = mlc.Dataset(jsonld=path, mapping=mapping).records("records")
    return [{k.split("/", 1)[1]: plain(v) for k, v in r.items()} for r in records]


def arrow_rows(table: pa.Table) -> list[dict[str, Any]]:
    rows = table.to_pylist()
    for row in rows:  # a Croissant sc:Date is read as a datetime at midnight
        row.update({k: dt.datetime.combine(v, dt.time()) for k, v in row.items()
                    if type(v) is dt.date})  # fmt: skip
    return rows


def ordered(rows: list[dict[str, Any]]) -> list[list[tuple[str, str, Any]]]:
    shown = [sorted((k, type(v).__name__, v) for k, v in r.items()) for r in rows]
    return sorted(shown, key=repr)


def test_records_through_a_single_file_card_equal_pyarrow(
    exported: tuple[Catalog, ObjectStore, dict[str, Any]], tmp_path: Path, offline: list[str]
) -> None:
    _, store, _ = exported
    path, mapping = buyer_copy(store, "p1", tmp_path / "p1")
    got = croissant_rows(path, mapping)
    assert got and ordered(got) == ordered(arrow_rows(pq.read_table(tmp_path / "p1")))


def test_records_through_a_hive_file_set_card_equal_pyarrow(
    exported: tuple[Catalog, ObjectStore, dict[str, Any]], tmp_path: Path, offline: list[str]
) -> None:
    _, store, built = exported
    path, mapping = buyer_copy(store, PRODUCT, tmp_path / "b")
    assert len(mapping) >= 4  # several files in several hive folders
    got = croissant_rows(path, mapping)
    for row in got:  # the card says: URL-quoted folder names, HIVE_NULL for null
        row["district"] = None if row["district"] == HIVE_NULL else unquote(row["district"])
    hive = pads.partitioning(pa.schema([("district", pa.string())]), flavor="hive")
    expected = pq.read_table(tmp_path / "b", partitioning=hive)
    assert expected.num_rows == built["manifest"]["row_count"] == len(got)
    assert ordered(got) == ordered(arrow_rows(expected))


# --- (4) a file that is not the card's sha256 --------------------------------------------------


def test_a_file_not_matching_the_card_is_refused(
    exported: tuple[Catalog, ObjectStore, dict[str, Any]], tmp_path: Path, offline: list[str]
) -> None:
    """mlcroissant checks the sha256 of a file object a record set reads (one file); the members
    of a file set it reads unchecked, so `file_problems` checks every file object."""
    _, store, _ = exported
    path, mapping = buyer_copy(store, "p1", tmp_path / "p1")
    changed = Path(mapping["part-00000.parquet"])
    table = pq.read_table(changed)
    pq.write_table(table.set_column(1, "amount", pa.array([1.0, 2.5])), changed)
    with pytest.raises(mlc.GenerationError) as caught:
        croissant_rows(path, mapping)
    assert "Hash of downloaded file" in str(caught.value.__cause__)
    assert file_problems(json.loads(path.read_text()), tmp_path / "p1") == [
        f"part-00000.parquet: sha256 {hashed(changed)[:16]} is not the card's "
        f"{json.loads(path.read_text())['distribution'][0]['sha256'][:16]}"
    ]

    path, mapping = buyer_copy(store, PRODUCT, tmp_path / "b")
    member = Path(sorted(mapping.values())[0])
    member.write_bytes(pq.read_table(member).to_pandas().to_parquet())  # same rows, new bytes
    assert croissant_rows(path, mapping)  # mlcroissant: no check of a file set's members
    doc = json.loads(path.read_text())
    assert [p.split(":")[0] for p in file_problems(doc, tmp_path / "b")] == [
        str(member.relative_to(tmp_path / "b"))
    ]
    assert file_problems(json.loads(store.get_bytes(card_key("p1", "1.0.0"))), tmp_path / "x") == [
        "part-00000.parquet: missing"
    ]


def hashed(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_verify_all_finds_a_card_that_names_other_files_than_its_manifest(
    exported: tuple[Catalog, ObjectStore, dict[str, Any]],
) -> None:
    """`bourse verify --all` reads each card against its version's manifest: a card rewritten
    (with the listing's seal made again by an insider holding the audit key, or before sealing)
    to name another sha256 or another file is an error, not only a seal mismatch."""
    cat, store, _ = exported
    kinds = {f.kind for f in check_all(store, cat).findings}
    assert "card-mismatch" not in kinds
    key = card_key("p1", "1.0.0")
    doc = json.loads(store.get_bytes(key))
    [first] = [d for d in doc["distribution"] if d["@type"] == "cr:FileObject"]
    first["sha256"] = "0" * 64
    doc["distribution"].append({**first, "@id": "part-9.parquet"})
    store.put_bytes(key, json.dumps(doc).encode())
    found = [f for f in check_all(store, cat).findings if f.kind == "card-mismatch"]
    assert sorted(f.message.split(":")[0] for f in found) == [first["@id"], "part-9.parquet"]
    assert {(f.severity, f.key) for f in found} == {("error", key)}
    manifest = json.loads(store.get_bytes("products/p1/1.0.0/manifest.json"))
    assert manifest_problems(doc, []) == [f"{first['@id']}: not a file of the version",
                                          "part-9.parquet: not a file of the version"]  # fmt: skip
    assert manifest_problems({"distribution": []}, manifest["files"]) == [
        f"{f['path']}: missing from the card" for f in manifest["files"]
    ]
