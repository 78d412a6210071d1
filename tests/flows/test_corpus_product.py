"""A corpus product (type `corpus`) through the same flows, versions, catalog and gate as a
table product, against a real Prefect server: the sample chat transcripts of my-chatdesk become
my-chat-corpus, cleaned, de-duplicated across versions and free of the identifiers they held."""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databourse_samples.demo import generate_corpus_drop
from databourse_samples.demo_chats import OPTED_OUT_AUTHOR, chat_bytes, chat_documents

pytestmark = pytest.mark.prefect
PRODUCT = "my-chat-corpus"
MYKAD = re.compile(r"\b\d{6}-\d{2}-\d{4}\b")


@pytest.fixture(scope="module")
def drop(project: Path) -> Path:
    return generate_corpus_drop(project / "corpus-drops", scale=0.25).path


def store_root(project: Path) -> Path:
    return project / "state" / "store"


def availability(version: str) -> dict[str, str]:
    from tasks import resources

    [shown] = resources.catalog().show(PRODUCT, version)["versions"]
    return {a["market"]: a["status"] for a in shown["availability"]}


def process(path: Path) -> dict[str, Any]:
    from flows.process_drop import process_drop

    result = process_drop("my-chatdesk", "chat_transcripts", str(path), 120)
    [product] = result["products"]
    assert product["product"] == PRODUCT
    return product


def test_a_corpus_version_is_built_published_and_carries_what_it_measured(
    runner: Any, project: Path, drop: Path
) -> None:
    from databourse.corpus.build import OUTPUT
    from tests.standards_checks import croissant_issues

    sent = [json.loads(line) for line in drop.read_text(encoding="utf-8").splitlines()]
    product = process(drop)
    assert product["version"] == "1.0.0" and product["new"] is True
    assert product["publish_state"] == "Completed"
    assert availability("1.0.0") == {"MY": "available", "CN": "available"}

    folder = store_root(project) / "products" / PRODUCT / "1.0.0"
    manifest = json.loads((folder / "manifest.json").read_text())
    measured = manifest["corpus"]
    assert measured["documents_in"] == len(sent)
    assert measured["kept"] == manifest["row_count"] == product["rows"]
    assert measured["kept"] + sum(measured["removed"].values()) == len(sent)
    assert measured["removed"]["opt_out"] == 1 and measured["removed"]["licence"] > 0
    assert measured["removed"]["exact_duplicate"] > 0  # the desk's canned greeting
    assert set(measured["languages"]) <= {"ms", "en", "zh-Hans", "zh-Hant", "mixed"}
    assert measured["redacted"]["MY_NRIC"] > 0 and measured["leftover"] == {}
    assert manifest["personal_data"]["remaining"] == {}
    assert manifest["personal_data"]["individuals"] == 0

    shards = pq.read_table([folder / f["path"] for f in manifest["files"]])
    assert shards.schema.names == OUTPUT.names and shards.num_rows == measured["kept"]
    texts = "\n".join(shards.column("text").to_pylist())
    planted = {MYKAD.search(d["text"]).group(0) for d in sent if MYKAD.search(d["text"])}
    assert planted and not any(mykad in texts for mykad in planted)
    assert "<MY_NRIC>" in texts and "ORD-2026-" in texts  # order numbers are kept
    kept_ids = set(shards.column("id").to_pylist())
    assert not {d["id"] for d in sent if d["author"] == OPTED_OUT_AUTHOR} & kept_ids
    assert all(d["licence"] in ("CC-BY-4.0", "ODC-By-1.0") for d in sent if d["id"] in kept_ids)

    reports = store_root(project) / "reports" / "products" / PRODUCT / "1.0.0"
    errors, warnings, _ = croissant_issues(reports / "croissant.json")
    assert errors == [] and warnings == []
    assert (reports / "dedup_index.npz").is_file()
    listed = store_root(project) / "catalog" / "croissant" / PRODUCT / "1.0.0.json"
    errors, warnings, _ = croissant_issues(listed)  # the catalog's card: the shards' URIs
    assert errors == [] and warnings == []
    card = json.loads(listed.read_text())
    assert "Opt-out" in card["rai:dataPreprocessingProtocol"][0]
    assert "MY_NRIC" in card["rai:personalSensitiveInformation"]
    assert {d["contentUrl"] for d in card["distribution"] if "contentUrl" in d} == {
        (folder / f["path"]).as_uri() for f in manifest["files"]
    }
    assert {f["path"] for f in manifest["files"]} == {p.name for p in folder.glob("*.parquet")}

    from test_flows import read_artifact

    shown = read_artifact(f"corpus-{PRODUCT}")  # what an operator sees in the UI: counts only
    rows = json.loads(shown.data) if isinstance(shown.data, str) else shown.data
    counted = {r["measure"]: r["count"] for r in rows}
    assert counted["identifiers replaced: MY_NRIC"] == measured["redacted"]["MY_NRIC"]
    assert counted["removed: opt_out"] == 1 and not any(m in str(rows) for m in planted)

    again = process(drop)  # the same ingest: the version that holds it, nothing new
    assert again["version"] == "1.0.0" and again["new"] is False
    assert sorted(p.name for p in folder.parent.iterdir()) == ["1.0.0"]


def test_a_later_version_holds_only_documents_new_to_the_product(
    runner: Any, project: Path, drop: Path
) -> None:
    earlier = [json.loads(line) for line in drop.read_text(encoding="utf-8").splitlines()]
    fresh = chat_documents(random.Random(99), 0.1)
    for doc in fresh:
        doc["id"] = doc["id"].replace("chat-", "chat-b")
    later = project / "corpus-drops" / "later.jsonl"
    later.write_bytes(chat_bytes(earlier[:30] + fresh))

    product = process(later)
    assert product["version"] == "1.0.1" and product["new"] is True
    folder = store_root(project) / "products" / PRODUCT / "1.0.1"
    manifest = json.loads((folder / "manifest.json").read_text())
    files = [folder / f["path"] for f in manifest["files"]]
    kept = set(pq.read_table(files).column("id").to_pylist())
    assert kept and all(i.startswith("chat-b") for i in kept)  # the first 30 were seen in 1.0.0
    assert manifest["corpus"]["removed"]["exact_duplicate"] > 0

    only_old = project / "corpus-drops" / "old.jsonl"
    only_old.write_bytes(chat_bytes(earlier[:20]))
    nothing = process(only_old)
    assert nothing["version"] is None and nothing["publish_state"] == "nothing new"


def test_the_gate_decides_on_the_shards_not_on_the_manifest(
    runner: Any, project: Path, drop: Path
) -> None:
    """An insider who puts identifiers back into a shard (and its hash into the manifest) is
    refused: the manifest no longer hashes to the version's content hash; and the re-scan of
    the files finds them."""
    from databourse.errors import ManifestMismatch
    from databourse.product.facts import confirmed_facts, rederived_problems
    from tasks import resources

    process(drop)
    folder = store_root(project) / "products" / PRODUCT / "1.0.0"
    manifest = json.loads((folder / "manifest.json").read_text())
    cfg, store = resources.config(), resources.store()
    [shown] = resources.catalog().show(PRODUCT, "1.0.0")["versions"]
    facts = confirmed_facts(cfg, store, manifest, shown["content_hash"], "no grant")
    assert facts.personal_data is False

    copy = project / "corpus-tampered"
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir()
    for f in manifest["files"]:
        shutil.copy(folder / f["path"], copy / f["path"])
    shard = copy / manifest["files"][0]["path"]
    table = pq.read_table(shard)
    texts = table.column("text").to_pylist()
    texts[0] = texts[0].replace("<MY_NRIC>", "900101-14-5678", 1) + " Call +60 12-345 6789."
    column = table.schema.get_field_index("text")
    pq.write_table(table.set_column(column, "text", pa.array(texts, pa.large_string())), shard)
    spec = cfg.dataset("my-chatdesk", "chat_transcripts")
    problems = rederived_problems(
        copy, manifest, cfg.product(PRODUCT), spec.declared_categories, "MY", False
    )
    assert any("personal_data.remaining" in p for p in problems), problems

    import hashlib

    edited = {**manifest, "files": [dict(f) for f in manifest["files"]]}
    edited["files"][0]["sha256"] = hashlib.sha256(shard.read_bytes()).hexdigest()
    with pytest.raises(ManifestMismatch):
        confirmed_facts(cfg, store, edited, shown["content_hash"], "no grant")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # dask/distributed internals
def test_partitions_on_dask_workers_build_the_version_one_pass_builds(
    runner: Any, project: Path, tmp_path: Path
) -> None:
    """The build-corpus passes over partitions, on two Dask worker processes, make the version a
    single pass (`build_version`, in this process) makes of the same staged documents against
    the same earlier version: the same shards, byte for byte, and the same counts."""
    from helpers import two_dask_workers
    from prefect_dask import DaskTaskRunner

    from databourse.corpus.build import build_version
    from databourse.corpus.documents import read_documents
    from databourse.steps.corpus import earlier_index, manifests, rules_now
    from flows.build_corpus import build_corpus_parts
    from flows.ingest_dataset import ingest_dataset
    from tasks import resources

    fresh = chat_documents(random.Random(7), 0.2)
    for doc in fresh:
        doc["id"] = doc["id"].replace("chat-", "chat-d")
    path = project / "corpus-drops" / "dask.jsonl"
    path.write_bytes(chat_bytes(fresh))
    ingest_id = ingest_dataset("my-chatdesk", "chat_transcripts", str(path))["ingest_id"]
    staging = store_root(project) / "staging" / "my-chatdesk" / "chat_transcripts"
    [staged] = [p for p in staging.rglob("*.parquet") if ingest_id in p.as_posix()]
    assert pq.ParquetFile(staged).metadata.num_rows > 75

    res = resources.bundle()
    product = res.config.product(PRODUCT)
    rules, keys = rules_now(res, product)
    earlier = earlier_index(res, manifests(res, PRODUCT), tmp_path / "earlier")
    one_pass = tmp_path / "one-pass"
    pseudonyms = resources.text_pseudonyms(product)
    stats = build_version(read_documents(staged), rules, one_pass, earlier, keys, pseudonyms)
    assert earlier is not None and stats.kept > 0

    with two_dask_workers() as workers:
        dask = build_corpus_parts.with_options(
            task_runner=DaskTaskRunner(address=workers["address"])
        )
        result = dask(PRODUCT, ingest_id, partition_rows=25)
    assert all(n > 0 for n in workers["tasks"].values()) and len(workers["tasks"]) == 2
    assert result["new"] is True and result["rows"] == stats.kept

    folder = store_root(project) / "products" / PRODUCT / result["version"]
    manifest = json.loads((folder / "manifest.json").read_text())
    built = {f["path"]: (folder / f["path"]).read_bytes() for f in manifest["files"]}
    assert built == {p.name: p.read_bytes() for p in one_pass.glob("part-*.parquet")}
    counts = stats.to_dict()
    assert manifest["corpus"]["removed"] == counts["removed"]
    assert manifest["corpus"]["languages"] == counts["languages"]
    assert not list((project / "state" / "work" / PRODUCT).iterdir())  # the work folder dropped


def swapped_index_findings() -> list[str]:
    """The keys `bourse verify --all` (the consistency walk) names as changed dedup indexes."""
    from databourse.consistency.verify import check_all
    from tasks import resources

    report = check_all(resources.store(), resources.catalog(), deep=False)
    return [f.key for f in report.findings if f.kind == "dedup-index-changed"]


def test_a_swapped_dedup_index_of_the_earlier_version_stops_the_next_build(
    runner: Any, project: Path
) -> None:
    """A store writer replaces the newest version's dedup index with an empty one (every
    document of the earlier versions would be new again, and be sold twice): the next build
    stops, naming the index, and the trail records it. Recording the forged index's sha256 in
    that version's manifest too is refused: the manifest no longer hashes to what the trail
    recorded."""
    from databourse.corpus.dedup_index import DedupIndex
    from databourse.errors import ManifestMismatch, ObjectChanged
    from databourse.steps.corpus import manifests
    from tasks import resources

    res = resources.bundle()
    newest = next(
        m for m in manifests(res, PRODUCT)
        if (store_root(project) / "reports" / "products" / PRODUCT / m["version"]).is_dir()
    )  # fmt: skip
    folder = store_root(project) / "reports" / "products" / PRODUCT / newest["version"]
    index = folder / "dedup_index.npz"
    manifest_path = store_root(project) / "products" / PRODUCT / newest["version"] / "manifest.json"
    original_index, original_manifest = index.read_bytes(), manifest_path.read_bytes()
    fresh = chat_documents(random.Random(11), 0.05)
    for doc in fresh:
        doc["id"] = doc["id"].replace("chat-", "chat-e")
    drop = project / "corpus-drops" / "after-swap.jsonl"
    drop.write_bytes(chat_bytes(fresh))
    try:
        assert swapped_index_findings() == []
        with DedupIndex(res.config.product(PRODUCT).corpus.dedup) as empty:  # type: ignore[union-attr]
            empty.save(index)
        index_key = f"reports/products/{PRODUCT}/{newest['version']}/dedup_index.npz"
        assert swapped_index_findings() == [index_key]  # bourse verify --all names it too
        with pytest.raises(ObjectChanged) as refused:
            process(drop)
        assert "dedup_index.npz" in str(refused.value)
        events = resources.catalog().audit_history()
        assert any(
            e["kind"] == "quarantine" and e["detail"].get("stage") == "dedup-index" for e in events
        )
        forged = json.loads(original_manifest)
        forged["corpus"]["dedup_index_sha256"] = hashlib.sha256(index.read_bytes()).hexdigest()
        manifest_path.write_text(json.dumps(forged, indent=2))
        with pytest.raises(ManifestMismatch):
            process(drop)
    finally:
        index.write_bytes(original_index)
        manifest_path.write_bytes(original_manifest)
    product = process(drop)  # the real index again: the build goes on
    assert product["new"] is True
