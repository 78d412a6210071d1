"""Keyed pseudonyms in running text (`redaction: pseudonym`: `databourse.corpus.pseudonyms`,
`pii.pseudonym_tokens`) on documents nobody here wrote: `benchmarks/redact.py`'s Faker text in
several locales around identifiers validated by python-stdnum and phonenumbers.

What a pseudonym must do: one value, one token, wherever and however it is written; nothing
without the key tells it; the re-scan finds no more in a pseudonymized text than in a
placeholder one; its tokens count as personal data left, in the stats and in a re-scan of the
shards alike.
"""

from __future__ import annotations

import json
import pickle
import random
import re
import secrets
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from redact import IDENTIFIERS, evaluation_set, out_of_scope
from standards_checks import croissant_issues

from databourse.config.corpus import CorpusRules, QualityRules
from databourse.corpus.build import build_version, measure
from databourse.corpus.documents import read_documents
from databourse.corpus.pseudonyms import TextPseudonyms, normalized
from databourse.errors import ConfigError
from databourse.pii.pseudonym_tokens import DistinctTokens, token_ids
from databourse.pii.text_redact import leftover, redact_batch
from databourse.pii.text_spans import PSEUDONYM_LETTERS, find_spans, pseudonym_token
from databourse.product.corpus_facts import corpus_facts, remaining_of, rescan
from databourse.standards.corpus_card import CARD_NAME, write_card

TOKEN = re.compile(rf"<([A-Z_]+):[{PSEUDONYM_LETTERS}]{{10}}>")
KEY = bytes(range(32, 64))
RELAXED = QualityRules(min_stop_words=None, c4_min_sentences=None, min_doc_words=5)


def _pseudonyms(key: bytes = KEY) -> TextPseudonyms:
    return TextPseudonyms(key, "test-key-id", "default")


@pytest.fixture(scope="module")
def docs() -> list:
    return evaluation_set(40, seed=11)


def _redacted(texts: list[str], replace: TextPseudonyms | None = None) -> list[str]:
    out, _ = redact_batch(pa.array(texts, pa.large_string()), replace)
    return list(out.to_pylist())


def test_a_value_gets_one_token_wherever_it_is_written(docs: list) -> None:
    """Each planted identifier alone in a short sentence gets the token it gets inside its
    document (phones as bare 10 digits aside: the scan does not read those in text)."""
    alone, where = [], []
    for i, doc in enumerate(docs):
        for a, b, category in doc.planted:
            value = doc.text[a:b]
            if category in IDENTIFIERS and not out_of_scope(category, value):
                alone.append(f"Please note: {value} thanks")
                where.append((i, category))
    whole = _redacted([d.text for d in docs], _pseudonyms())
    found = Counter[str]()
    for (i, category), text in zip(where, _redacted(alone, _pseudonyms()), strict=True):
        tokens = TOKEN.findall(text)
        marks = re.findall(TOKEN.pattern.replace("(", "(?:"), text)
        if tokens and all(t in whole[i] for t in marks):
            found[category] += 1
    assert len(where) > 300
    assert sum(found.values()) >= 0.99 * len(where), (sum(found.values()), len(where))


def test_one_value_written_two_ways_is_one_pseudonym() -> None:
    """The normalization: separators and case of an identifier, spacing and case of a name,
    case of an e-mail; and two categories never share a token for one text."""
    p = _pseudonyms()
    assert p("MY_NRIC", "900101-14-5678") == p("MY_NRIC", "900101145678")
    assert p("IBAN", "GB82 WEST 1234 5698 7654 32") == p("IBAN", "gb82west12345698765432")
    assert p("PERSON_NAME", "Tan  Wei Ming") == p("PERSON_NAME", "TAN WEI MING")
    assert p("EMAIL_ADDRESS", "Siti@Example.com ") == p("EMAIL_ADDRESS", "siti@example.com")
    assert p("PERSON_NAME", "Tan Wei Ming") != p("PERSON_NAME", "Tan Wei Min")
    assert (
        p("PHONE_NUMBER", "0123456789")[len("<PHONE_NUMBER:") :]
        != (p("MY_NRIC", "0123456789")[len("<MY_NRIC:") :])
    )
    assert normalized("PHONE_NUMBER", "+60 12-345 6789") == "60123456789"


def test_another_key_gives_unrelated_pseudonyms_and_the_key_is_nowhere(docs: list) -> None:
    texts = [d.text for d in docs[:80]]
    ours, theirs = _redacted(texts, _pseudonyms()), _redacted(texts, _pseudonyms(KEY[::-1]))
    mine = {t for text in ours for t in re.findall(r"<[A-Z_]+:[a-z]+>", text)}
    other = {t for text in theirs for t in re.findall(r"<[A-Z_]+:[a-z]+>", text)}
    assert len(mine) > 100 and not mine & other
    p = _pseudonyms()
    assert KEY.hex() not in repr(p) and str(KEY) not in repr(p)
    with pytest.raises(TypeError):
        pickle.dumps(p)


def test_the_rescan_finds_no_more_than_with_placeholders(docs: list) -> None:
    """Pseudonyms leave no identifier placeholders would not (the tokens are never read as one),
    and replace as many of each category, within a few where a token's length changes what a
    later stage reads."""
    texts = pa.array([d.text for d in docs], pa.large_string())
    placed, placed_counts = redact_batch(texts)
    tokened, token_counts = redact_batch(texts, _pseudonyms())
    left_placed, left_tokened = leftover(placed), leftover(tokened)
    assert sum(left_tokened.values()) <= sum(left_placed.values())
    assert set(token_counts) == set(placed_counts)
    for category, n in placed_counts.items():
        assert abs(token_counts[category] - n) <= max(3, n // 100), category
    for text, doc in zip(tokened.to_pylist(), docs, strict=True):
        for a, b, _ in doc.planted:
            value = doc.text[a:b]
            assert len(value) < 6 or value not in text or value in re.sub(TOKEN, "", text)


def test_tokens_are_never_read_as_personal_data() -> None:
    """Thousands of random tokens of every category, in sentences, glued to digits and to each
    other: the detectors find nothing in them."""
    rng = random.Random(5)
    categories = ["PERSON_NAME", "PHONE_NUMBER", "IP_ADDRESS", "EMAIL_ADDRESS", "IBAN", "TW_ID"]
    texts = []
    for _ in range(600):
        tokens = [pseudonym_token(rng.choice(categories), secrets.token_hex(8)) for _ in range(6)]
        texts.append(
            f"Dear {tokens[0]}, call {tokens[1]}:{tokens[2]} or {tokens[3]}{tokens[4]} "
            f"at the office. Mr {tokens[5]} said so."
        )
    assert leftover(pa.array(texts, pa.large_string())) == {}
    assert all(not spans for spans in find_spans(texts))
    _, counts = redact_batch(pa.array(texts, pa.large_string()), _pseudonyms())
    assert counts == {}


def test_distinct_tokens_over_batches_are_the_set_of_tokens() -> None:
    rng = random.Random(3)
    pool = [pseudonym_token("PERSON_NAME", secrets.token_hex(8)) for _ in range(3000)]
    pool += [pseudonym_token("MY_NRIC", secrets.token_hex(8)) for _ in range(500)]
    seen: dict[str, set[str]] = {}
    tokens = DistinctTokens()
    for _ in range(40):  # batches of growing and shrinking sizes: merges happen in between
        batch = [" x ".join(rng.sample(pool, rng.randint(1, 8))) for _ in range(rng.randint(1, 90))]
        tokens.add(pa.array([*batch, None], pa.large_string()))
        for text in batch:
            for token in TOKEN.finditer(text):
                seen.setdefault(token.group(1), set()).add(token.group())
    assert tokens.counts() == {c: len(s) for c, s in sorted(seen.items())}
    ids = token_ids(pa.array([pool[0] + pool[0]], pa.large_string()))
    assert list(ids) == ["PERSON_NAME"] and len(ids["PERSON_NAME"]) == 2
    assert np.unique(ids["PERSON_NAME"]).size == 1


def test_a_pseudonymized_version_carries_personal_data_and_its_rescan_agrees(
    tmp_path: Path, docs: list
) -> None:
    """Built with pseudonyms: the stats count the distinct tokens per category, the facts make
    each category remaining and the most of any category the individuals, and a re-scan of the
    shards (what the gate and `verify` do) gives the same counts."""
    source = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"id": f"d{i}", "text": d.text, "licence": "CC0-1.0"}, ensure_ascii=False)
        for i, d in enumerate(docs)
    ]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rules = CorpusRules(
        redaction="pseudonym", quality=RELAXED, leftover_limit=0.05, shard_documents=97
    )
    stats = build_version(read_documents(source), rules, tmp_path / "v", pseudonyms=_pseudonyms())
    assert stats.kept > 200 and len(stats.shards) >= 3
    assert stats.pseudonyms and sum(stats.pseudonyms.values()) > 500
    assert set(stats.pseudonyms) == set(stats.redacted)
    write_card(tmp_path / "v", stats, rules, "linked-chats", "1.0.0", "a provider")
    errors, warnings, _ = croissant_issues(tmp_path / "v" / CARD_NAME)  # mlcroissant's checks
    card = json.loads((tmp_path / "v" / CARD_NAME).read_text(encoding="utf-8"))
    assert errors == [] and warnings == []
    assert "keyed pseudonyms" in card["rai:personalSensitiveInformation"]
    assert "still personal data" in card["rai:personalSensitiveInformation"]
    shards = tmp_path / "shards"  # the version's files, as the gate and verify read them
    shards.mkdir()
    for name in stats.shards:
        (tmp_path / "v" / name).rename(shards / name)
    left, distinct = rescan(shards)
    assert (left, distinct) == (dict(sorted(stats.leftover.items())), stats.pseudonyms)
    remaining, individuals = remaining_of(left, distinct)
    assert set(remaining.values()) == set(stats.redacted) | set(left)
    assert individuals == max(distinct.values()) + sum(left.values())
    personal, facts = corpus_facts(left, distinct, "MY", False)
    assert personal["pseudonyms"] == distinct and facts["individuals"] == individuals
    placed = measure(read_documents(source), rules.model_copy(update={"redaction": "placeholder"}))
    assert placed.pseudonyms == {} and sum(placed.leftover.values()) >= sum(left.values())


def test_the_rules_and_the_key_go_together(tmp_path: Path) -> None:
    source = tmp_path / "docs.jsonl"
    source.write_text('{"id": "a", "text": "Call 012-345 6789 today."}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="needs the pseudonym key"):
        measure(read_documents(source), CorpusRules(redaction="pseudonym"))
    with pytest.raises(ConfigError, match="takes no pseudonym key"):
        measure(read_documents(source), CorpusRules(), pseudonyms=_pseudonyms())
    with pytest.raises(ValueError, match="key_version only applies"):
        CorpusRules(key_version="v2")
    assert "key_version" not in CorpusRules().as_json()  # fingerprints of earlier products stay
    assert CorpusRules(redaction="pseudonym", key_version="v2").as_json()["key_version"] == "v2"
