"""Names and addresses inside running text, counted by value (issue 16, free text).

Sentences are Faker's (English, Chinese, Malay-language templates around Faker's Indonesian
names); names and addresses are Faker's. The counts are reported in a finding's `mentions` and
never decide its category.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from faker import Faker

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from pii_names_addresses import chinese_mentions as _chinese
from pii_names_addresses import english_mentions as _english
from pii_names_addresses import malay_mentions as _malay

from databourse.pii.detect import scan_table
from databourse.pii.screening import check_declarations
from databourse.pii.text_mentions import count_mentions

N = 300


def fake(locale: str, seed: int) -> Faker:
    f = Faker(locale)
    f.seed_instance(seed)
    return f


@pytest.mark.parametrize(
    ("locale", "make"),
    [("en_US", _english), ("zh_CN", _chinese), ("zh_TW", _chinese), ("id_ID", _malay)],
)
def test_mentions_are_counted_by_value(locale: str, make: object) -> None:
    f, r = fake(locale, 1), random.Random(1)
    plain = [f.sentence(nb_words=10) for _ in range(N)]
    made = [make(f, r) for _ in range(N)]  # type: ignore[operator]
    names, addresses = [m[0] for m in made], [m[1] for m in made]
    counts = count_mentions(pa.array(names[:100] + addresses[:50] + plain, pa.large_string()))
    # Faker's English sentences hold "Mrs" and "Mr" before capitalized words: at most 1%
    assert 98 <= counts.get("PERSON_NAME", 0) <= 100 + len(plain) // 100
    assert counts.get("ADDRESS", 0) == 50


@pytest.mark.parametrize("locale", ["en_US", "en_GB", "zh_CN", "zh_TW", "id_ID", "vi_VN"])
def test_text_without_people_mentions_nobody(locale: str) -> None:
    f = fake(locale, 2)
    texts = [f.text(200) for _ in range(N)] + [f"We signed with {f.company()} in {f.city()}."
                                               for _ in range(N)]  # fmt: skip
    counts = count_mentions(pa.array(texts, pa.large_string()))
    # A capitalized word that starts a sentence and is also a given name, before a capitalized
    # word that is also a surname ("Wonder Congress ...") reads as a name: at most 1 in 200.
    assert counts.get("PERSON_NAME", 0) <= len(texts) // 200
    assert "ADDRESS" not in counts


def test_scan_reports_mentions_without_deciding_or_gating() -> None:
    f, r = fake("en_US", 3), random.Random(3)
    notes = [f.sentence(nb_words=8) for _ in range(900)]
    notes += [_english(f, r)[0] for _ in range(60)] + [_english(f, r)[1] for _ in range(40)]
    (found,) = scan_table(pa.table({"notes": notes}))
    assert found.category is None and found.whole == {}
    assert found.mentions["ADDRESS"] == 40 and 58 <= found.mentions["PERSON_NAME"] <= 60
    assert found.to_json()["mentions"] == found.mentions
    assert check_declarations([found], {}).ok
