"""The corpus step without Prefect (`databourse.steps.corpus`), on documents the project did not
write (the Faker evaluation set of benchmarks/redact.py, in which the redaction misses some
addresses): a version over its leftover limit is refused before it has a version (audited, no
value in the refusal), and one within it carries what is left into the gate's facts, so the
cross-border gate asks for a route instead of opening the market."""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from helpers import make_project

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from redact import evaluation_set

from databourse.catalog.database import Catalog
from databourse.config import load_config
from databourse.errors import PersonalDataFound
from databourse.ingest.files import ingest_file
from databourse.ingest.records import IngestResult
from databourse.pii.text_redact import leftover, redact_batch
from databourse.steps import corpus, publishing
from databourse.steps.resources import Resources
from databourse.storage.opening import open_store

PRODUCT, PROVIDER, DATASET = "my-chat-corpus", "my-chatdesk", "chat_transcripts"


@dataclass
class Drop:
    """The project's resources, the documents' ingest and the values planted in them."""

    res: Resources
    record: IngestResult
    planted: list[str]

    @contextmanager
    def copy(self, record: IngestResult) -> Iterator[Path]:
        path = self.res.store.local_path(record.staged_key)
        assert path is not None
        yield path


@functools.cache
def _missed() -> tuple[list[str], list[str]]:
    """JSON lines of the evaluation set's documents in which the re-scan finds something after
    redaction, and the values planted in them."""
    docs = evaluation_set(100, seed=24)
    redacted, _ = redact_batch(pa.array([d.text for d in docs], pa.large_string()))
    missed = [i for i, t in enumerate(redacted.to_pylist()) if leftover(pa.array([t]))]
    assert missed, "the redaction now misses nothing here: pick other documents"
    lines = [
        json.dumps({"id": f"d{i}", "text": docs[i].text, "source": f"https://forum.example/{i}",
                    "licence": "CC-BY-4.0", "date": "2026-11-02", "author": None,
                    "consent": True}, ensure_ascii=False)
        for i in missed
    ]  # fmt: skip
    return lines, [docs[i].text[a:b] for i in missed for a, b, _ in docs[i].planted]


def _project(tmp_path: Path, limit: float, redaction: str = "placeholder") -> Drop:
    """The shipped configs with the product's rules opened to every language and text (the
    evaluation set is Faker's, in ten locales) and `limit`; the documents of the evaluation
    set in which the re-scan finds something after redaction, ingested."""
    configs = make_project(tmp_path / "project") / "configs"
    path = configs / "products" / f"{PRODUCT}.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["corpus"] = {
        "quality": {"min_doc_words": 5, "min_stop_words": None, "c4_min_sentences": None,
                    "min_mean_word_length": None, "min_alpha_words_ratio": None,
                    "max_symbol_word_ratio": None},
        "leftover_limit": limit, "redaction": redaction,
    }  # fmt: skip
    path.write_text(yaml.safe_dump(spec))
    lines, planted = _missed()
    drop = tmp_path / "docs.jsonl"
    drop.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = load_config(configs)
    store, catalog = open_store(cfg.store_root), Catalog(cfg.catalog_url)
    catalog.create_schema()
    dataset = cfg.dataset(PROVIDER, DATASET)
    record = ingest_file(store, PROVIDER, DATASET, dataset, drop, limits=cfg.settings.ingest)
    return Drop(Resources(cfg, store, catalog), record, planted)


@pytest.fixture
def over(tmp_path: Path) -> Iterator[Drop]:
    p = _project(tmp_path, 0.0)
    yield p
    p.res.catalog.close()


@pytest.fixture
def within(tmp_path: Path) -> Iterator[Drop]:
    p = _project(tmp_path, 1.0)
    yield p
    p.res.catalog.close()


def test_over_its_leftover_limit_a_corpus_gets_no_version(over: Drop) -> None:
    with pytest.raises(PersonalDataFound, match="over the limit") as caught:
        corpus.build_corpus(over.res, PRODUCT, over.record.ingest_id, over.copy)
    assert not any(value in str(caught.value) for value in over.planted)
    assert over.res.catalog.show(PRODUCT)["versions"] == []
    assert not list(over.res.store.list(f"products/{PRODUCT}/"))
    [refusal] = [e for e in over.res.catalog.audit_history() if e["kind"] == "quarantine"]
    assert refusal["detail"]["product"] == PRODUCT
    assert refusal["detail"]["error"] == "PersonalDataFound"
    assert not any(value in json.dumps(refusal) for value in over.planted)


def test_what_is_left_is_a_fact_the_gate_decides_on(within: Drop) -> None:
    built = corpus.build_corpus(within.res, PRODUCT, within.record.ingest_id, within.copy)
    assert built.version == "1.0.0" and built.new
    manifest = json.loads(
        within.res.store.get_bytes(f"products/{PRODUCT}/1.0.0/manifest.json").decode()
    )
    personal = manifest["personal_data"]
    left = manifest["corpus"]["leftover"]
    assert left and personal["remaining"] == {f"text#{c}": c for c in left}
    assert personal["individuals"] == sum(left.values())

    facts, _ = publishing.version_facts(within.res, PRODUCT, "1.0.0")
    assert facts.personal_data and set(facts.categories) == set(left)
    decisions = {
        d["market"]: d["status"] for d in publishing.decide_transfers(within.res, PRODUCT, "1.0.0")
    }
    assert decisions["MY"] == "available"  # domestic
    assert decisions["CN"] != "available"  # personal data left: a route first, not "anonymized"
    _catalog_cards_state_the_rules_of_the_config_that_built_them(within)


def test_a_table_build_refuses_a_corpus_product(within: Drop) -> None:
    from databourse.errors import ConfigError
    from databourse.steps import building

    with pytest.raises(ConfigError, match="my-chat-corpus is a corpus product"):
        building.open_build(within.res.config, within.res.store, PRODUCT, None)


def test_verify_names_shards_that_differ_from_the_manifests_counts(within: Drop) -> None:
    """`corpus_problems`: documents or languages in the shards other than the manifest says."""
    from databourse.product.corpus_facts import corpus_problems

    corpus.build_corpus(within.res, PRODUCT, within.record.ingest_id, within.copy)
    manifest = json.loads(within.res.store.get_bytes(f"products/{PRODUCT}/1.0.0/manifest.json"))
    folder = within.res.store.local_path(f"products/{PRODUCT}/1.0.0")
    assert folder is not None
    table = pq.read_table([folder / f["path"] for f in manifest["files"]]).drop_columns(["text"])
    assert corpus_problems(manifest, table) == []
    fewer = corpus_problems(manifest, table.slice(1))
    assert len(fewer) == 2 and "the shards hold" in fewer[0] and "languages" in fewer[1]
    relabelled = table.set_column(
        table.schema.get_field_index("language"), "language",
        pa.array(["xx"] * table.num_rows, pa.string()),
    )  # fmt: skip
    assert corpus_problems(manifest, relabelled) == [
        f"the shards' languages are {{'xx': {table.num_rows}}}, the manifest says "
        f"{manifest['corpus']['languages']}"
    ]
    assert corpus_problems({**manifest, "corpus": None}, table) == [
        "the manifest of a corpus version has no corpus: measurements"
    ]


def test_pseudonyms_are_personal_data_the_gate_and_verify_count_from_the_shards(
    tmp_path: Path,
) -> None:
    """`redaction: pseudonym`: each category pseudonymized is remaining personal data, the most
    distinct pseudonyms of any category (plus what is left) the individuals; the gate's facts
    (re-derived from the shards) and `verify`'s re-derivation agree with the manifest, which
    names the key's version and public id, never the key."""
    from databourse.corpus.pseudonyms import TextPseudonyms
    from databourse.product.facts import rederived_problems

    drop = _project(tmp_path, 1.0, "pseudonym")
    key = bytes(range(100, 132))
    pseudonyms = TextPseudonyms(key, "k-public-id", "default")
    try:
        built = corpus.build_corpus(drop.res, PRODUCT, drop.record.ingest_id, drop.copy, pseudonyms)
        manifest = json.loads(drop.res.store.get_bytes(f"products/{PRODUCT}/1.0.0/manifest.json"))
        personal, measured = manifest["personal_data"], manifest["corpus"]
        assert built.version == "1.0.0" and measured["pseudonyms"] == personal["pseudonyms"]
        held = set(measured["pseudonyms"]) | set(measured["leftover"])
        assert set(measured["redacted"]) <= held and personal["remaining"] == {
            f"text#{c}": c for c in sorted(held)
        }
        assert personal["individuals"] == max(measured["pseudonyms"].values()) + sum(
            measured["leftover"].values()
        )
        assert personal["pseudonym_keys"] == {
            "text": {"key_version": "default", "key_id": "k-public-id"}
        }
        text = drop.res.store.get_bytes(f"products/{PRODUCT}/1.0.0/manifest.json").decode()
        assert key.hex() not in text and not any(v in text for v in drop.planted if len(v) > 5)

        facts, _ = publishing.version_facts(drop.res, PRODUCT, "1.0.0")
        assert facts.personal_data and facts.individuals == personal["individuals"]
        decisions = {
            d["market"]: d["status"]
            for d in publishing.decide_transfers(drop.res, PRODUCT, "1.0.0")
        }
        assert decisions["MY"] == "available" and decisions["CN"] != "available"
        folder = drop.res.store.local_path(f"products/{PRODUCT}/1.0.0")
        assert folder is not None
        spec = drop.res.config.dataset(PROVIDER, DATASET)
        product = drop.res.config.product(PRODUCT)
        files = tmp_path / "files"  # the version's files, as verify downloads them
        files.mkdir()
        for f in manifest["files"]:
            (files / f["path"]).write_bytes((folder / f["path"]).read_bytes())
        assert (
            rederived_problems(files, manifest, product, spec.declared_categories, "MY", False)
            == []
        )
        shards = pq.read_table([folder / f["path"] for f in manifest["files"]])
        texts = "\n".join(shards.column("text").to_pylist())
        assert ":" in texts and not any(v in texts for v in drop.planted if len(v) > 8)
    finally:
        drop.res.catalog.close()


def _catalog_cards_state_the_rules_of_the_config_that_built_them(within: Drop) -> None:
    """The catalog's Croissant card of a corpus version is its corpus card (RAI fields from the
    rules) while the product's config is the one that built it; after the config changed, the
    rules in force no longer describe that version, so the card is the general one, built from
    the manifest alone. Both read cleanly with mlcroissant."""
    from standards_checks import croissant_issues

    from databourse.standards.dcat import CatalogInfo
    from databourse.standards.exports import croissant_cards, gather

    entries = [e for e in gather(within.res.catalog, within.res.store)
               if e["product"]["id"] == PRODUCT]  # fmt: skip
    assert entries and entries[0]["versions"]
    cfg = within.res.config
    cards = croissant_cards(entries, CatalogInfo.of(cfg), cfg)
    [(key, made)] = cards.items()
    card = json.loads(made)
    assert "Opt-out" in card["rai:dataPreprocessingProtocol"][0]

    product = cfg.product(PRODUCT)
    assert product.corpus is not None
    changed = product.model_copy(
        update={"corpus": product.corpus.model_copy(update={"leftover_limit": 0.5})}
    )
    assert changed.fingerprint() != product.fingerprint()
    later = dataclasses.replace(cfg, products={**cfg.products, PRODUCT: changed})
    [(same_key, fallback)] = croissant_cards(entries, CatalogInfo.of(later), later).items()
    general = json.loads(fallback)
    assert same_key == key and general != card
    assert "rai:dataPreprocessingProtocol" not in general or not any(
        "Opt-out" in step for step in general["rai:dataPreprocessingProtocol"]
    )
    assert general["name"].startswith(card["name"]) and general["version"] == "1.0.0"
    for doc in (made, fallback):
        path = within.res.store.local_path("croissant-check.json")
        assert path is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(doc)
        errors, _warnings, _ = croissant_issues(path)
        assert errors == [], errors
