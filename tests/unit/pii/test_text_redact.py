"""Personal data in running text replaced by typed placeholders (issue 24, step 4).

The documents are `benchmarks/redact.py`'s evaluation set: Faker's sentences in nine locales
around Faker's people, addresses, emails, cards, IBANs, IPs, national ids and phones, each value
accepted by an independent validator (python-stdnum, phonenumbers, email-validator), and decoys
(order, invoice, PO and tracking numbers, dates, amounts, times) that must survive.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from faker import Faker

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from redact import Doc, Score, evaluation_set, run_ours, score

from databourse.pii.text_redact import leftover, redact_batch

PER_LOCALE = 150


@pytest.fixture(scope="module")
def run() -> tuple[list[Doc], list[str], Score]:
    docs = evaluation_set(PER_LOCALE, seed=7)
    outputs, _, _ = run_ours(docs)
    return docs, outputs, score(docs, outputs)


def test_planted_identifiers_are_replaced(run: tuple[list[Doc], list[str], Score]) -> None:
    """<= 0.5% of identifiers left, among the written forms the exchange's scan reads in text.

    Out of its scope by its own rules (reported by the benchmark, bounded here): 12-digit cards,
    phones as 10 bare digits, area codes in brackets without their trunk 0."""
    summary = run[2].summary()
    assert summary["identifiers_left_in_scope"] <= 0.005
    assert summary["identifiers_left"] <= 0.03  # measured 1.6% with the shapes out of scope
    by_category = run[2].by(1)
    for category in ("EMAIL_ADDRESS", "IBAN", "IP_ADDRESS", "CN_RESIDENT_ID", "MY_NRIC"):
        assert by_category[category]["left"] == 0, category


def test_text_and_decoys_are_kept(run: tuple[list[Doc], list[str], Score]) -> None:
    """>= 98% of the tokens that are no personal data survive, decoys included."""
    summary = run[2].summary()
    assert summary["kept"] >= 0.98
    assert summary["kept_decoys"] >= 0.98


def test_names_and_addresses_recall_floor(run: tuple[list[Doc], list[str], Score]) -> None:
    """Names in running text are hard: recall measured 0.54 (names), 0.89 (addresses) on this
    set (no Thai name is found, a third of Malay and Indonesian ones, most Vietnamese addresses
    are missed); the floors are those less a margin, so that a regression shows: no target is
    met by them."""
    summary = run[2].summary()
    assert summary["names_recall"] >= 0.48
    assert summary["addresses_recall"] >= 0.82


def test_placeholders_name_the_category(run: tuple[list[Doc], list[str], Score]) -> None:
    """A replaced identifier is replaced by its own category's placeholder."""
    for category, row in run[2].by(1).items():
        if category not in ("PERSON_NAME", "ADDRESS"):
            assert row["typed"] >= 0.97 * (row["planted"] - row["left"]), category


def test_counts_are_the_placeholders_written() -> None:
    """Counts per category are the placeholders added (not those the input held); nulls and
    the array's type are kept."""
    docs = evaluation_set(20, seed=3)
    texts = pa.array([d.text for d in docs] + [None, "<PHONE_NUMBER> already"], pa.string())
    out, counts = redact_batch(texts)
    assert out.type == pa.string() and out[len(docs)].as_py() is None
    assert out[len(docs) + 1].as_py() == "<PHONE_NUMBER> already"
    written = {c: sum(t.count(f"<{c}>") for t in out.to_pylist()[: len(docs)]) for c in counts}
    assert counts == written
    assert sum(counts.values()) > len(docs)


def test_leftover_rescans_with_the_same_detectors() -> None:
    """Before redaction leftover finds what is planted; after, (almost) nothing."""
    docs = evaluation_set(40, seed=5)
    texts = pa.array([d.text for d in docs], pa.large_string())
    before = leftover(texts)
    planted = sum(len(d.planted) for d in docs)
    assert sum(before.values()) >= 0.7 * planted
    out, counts = redact_batch(texts)
    assert sum(leftover(out).values()) <= 0.01 * sum(counts.values())


def test_disguised_identifiers_are_replaced() -> None:
    """Full-width digits and hidden characters read as the scan reads them (`scan_text`)."""
    texts = pa.array(
        [
            "身份证号１１０１０１１９９００３０７４５１４，谢谢",
            "call +60\u200b12-345 6789 today",
        ]
    )
    assert leftover(texts) == {"CN_RESIDENT_ID": 1, "PHONE_NUMBER": 1}
    out, counts = redact_batch(texts)
    assert counts == {"CN_RESIDENT_ID": 1, "PHONE_NUMBER": 1}
    assert leftover(out) == {}


def test_nothing_personal_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Debug logs carry counts and categories, never a value."""
    docs = evaluation_set(10, seed=11)
    with caplog.at_level(logging.DEBUG, logger="databourse"):
        redact_batch(pa.array([d.text for d in docs]))
        leftover(pa.array([d.text for d in docs]))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for doc in docs:
        for a, b, _ in doc.planted:
            assert doc.text[a:b] not in logged


@pytest.mark.parametrize("locale", ["en_US", "en_GB", "zh_CN", "zh_TW", "id_ID", "th_TH", "vi_VN"])
def test_text_without_personal_data_is_left_alone(locale: str) -> None:
    """Faker's paragraphs, companies, cities, dates and amounts: at most 1 text in 100 gets a
    placeholder (a capitalized word pair read as a name, as `text_mentions` allows)."""
    f = Faker(locale)
    f.seed_instance(13)
    texts = [f.paragraph(nb_sentences=4) for _ in range(200)] + [
        f"We signed with {f.company()} in {f.city()} on {f.date()} for {f.pricetag()}, "
        f"{f.random_int(2, 900)} units, order {f.random_int(10**5, 10**9)}."
        for _ in range(200)
    ]
    out, counts = redact_batch(pa.array(texts))
    changed = sum(a != b for a, b in zip(texts, out.to_pylist(), strict=True))
    assert changed <= len(texts) // 100, counts


def test_several_numbers_in_one_text_keep_the_text_between() -> None:
    """Phones and cards written as whole values are, several in a text, each replaced where it
    stands (the longest first, in text order)."""
    text = "gọi 0912 345 678 hoặc (0141) 496 0012, thẻ 3782 822463 10005 nhé"
    out, counts = redact_batch(pa.array([text]))
    assert out[0].as_py() == "gọi <PHONE_NUMBER> hoặc <PHONE_NUMBER>, thẻ <CREDIT_CARD> nhé"
    assert counts == {"CREDIT_CARD": 1, "PHONE_NUMBER": 2}
