"""The next markets' identifiers in a scan: columns, look-alikes, dirty columns, text, gates.

Columns come from `benchmarks/pii_markets.py` (Faker's providers, python-stdnum's check digits,
labelled by the oracles there); decoys are digit runs of each new length, timestamps, hashes,
plain URLs. Issue 16, class 10.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any, get_args

import pyarrow as pa
import pytest
from faker import Faker
from stdnum import verhoeff as std_verhoeff
from stdnum.jp import in_ as std_my_number

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from pii_markets import device_columns, market_columns, market_decoys

from databourse.config import DIRECT_IDENTIFIERS, Category
from databourse.pii.categories import CATEGORIES, classify_array
from databourse.pii.detect import scan_table
from databourse.pii.findings import ColumnFinding
from databourse.pii.identifiers_intl import SHAPES_INTL
from databourse.pii.screening import check_declarations, check_embedded
from databourse.pii.text_spans import redact_values

ROWS = 400
NEW = set(SHAPES_INTL)


def labelled(
    locales: list[str], seed: int = 5
) -> tuple[pa.Table, dict[str, str | None], dict[str, list[bool]]]:
    cols: dict[str, pa.Array] = {}
    labels: dict[str, str | None] = {}
    truth: dict[str, list[bool]] = {}

    def add(name: str, label: str | None, values: list[Any], flags: list[bool], typ: Any) -> None:
        cols[name], labels[name], truth[name] = pa.array(values, typ), label, flags

    for locale in locales:
        fake = Faker(locale)
        fake.seed_instance(seed)
        market_columns(locale, fake, random.Random(f"{locale}/{seed}"), ROWS, add)
    fake = Faker()
    fake.seed_instance(seed)
    device_columns("devices", fake, random.Random(seed), ROWS, add)
    market_decoys("decoys", fake, random.Random(seed), ROWS, add)
    return pa.table(cols), labels, truth


LOCALES = ["id_ID", "th_TH", "vi_VN", "zh_TW", "ko_KR", "ja_JP", "en_IN", "en_US", "en_GB", "en_PH"]


@pytest.fixture(scope="module")
def scanned() -> tuple[
    dict[str, ColumnFinding], dict[str, str | None], dict[str, list[bool]], pa.Table
]:
    table, labels, truth = labelled(LOCALES)
    return {f.column: f for f in scan_table(table)}, labels, truth, table


def test_every_new_category_is_found_in_its_column(
    scanned: tuple[
        dict[str, ColumnFinding], dict[str, str | None], dict[str, list[bool]], pa.Table
    ],
) -> None:
    findings, labels, truth, _ = scanned
    positives = {name: label for name, label in labels.items() if label is not None}
    assert {label for label in positives.values()} == NEW  # every new category is tested
    for name, label in positives.items():
        found = findings[name]
        assert found.category == label, name
        # every value its oracle accepts is counted (the column keeps those that are also
        # valid for another category of the same shape: SHARED_SHAPES)
        assert found.matched == sum(truth[name]), name


def test_no_decoy_holds_a_new_category(
    scanned: tuple[
        dict[str, ColumnFinding], dict[str, str | None], dict[str, list[bool]], pa.Table
    ],
) -> None:
    findings, labels, _, _ = scanned
    decoys = [name for name, label in labels.items() if label is None]
    assert len(decoys) >= 10
    for name in decoys:
        found = findings[name]
        assert found.category not in NEW, name
        assert not NEW & set(found.whole), (name, found.whole)
        assert not NEW & {u["found"] for u in check_declarations([found], {}).undeclared}, name


def test_values_are_classified_with_their_column(
    scanned: tuple[
        dict[str, ColumnFinding], dict[str, str | None], dict[str, list[bool]], pa.Table
    ],
) -> None:
    """Value level: a value valid for several categories of one shape takes its column's."""
    _, labels, truth, table = scanned
    for name, label in labels.items():
        if label is None:
            continue
        got = classify_array(table[name].combine_chunks(), name)
        missed = [g for g, t in zip(got, truth[name], strict=True) if t and g != label]
        assert missed == [], name


def test_shared_shapes_keep_their_columns_share() -> None:
    rng = random.Random(7)
    aadhaar, my_numbers = [], []
    while len(aadhaar) < 300 or len(my_numbers) < 300:
        body = f"{rng.randint(2, 9)}" + "".join(rng.choice("0123456789") for _ in range(10))
        both = body + std_verhoeff.calc_check_digit(body)
        jp_ok = std_my_number.is_valid(both)
        if jp_ok and len(aadhaar) < 300 and len(my_numbers) < 300:
            aadhaar.append(both)  # valid for both: in an Aadhaar column it is an Aadhaar
            my_numbers.append(both)
        elif len(aadhaar) < 300:
            aadhaar.append(both)
        mine = body + std_my_number.calc_check_digit(body)
        if len(my_numbers) < 300 and not std_verhoeff.is_valid(mine):
            my_numbers.append(mine)
    (a,) = scan_table(pa.table({"a": aadhaar}))
    (j,) = scan_table(pa.table({"j": my_numbers}))
    assert (a.category, a.share, set(a.whole)) == ("IN_AADHAAR", 1.0, {"IN_AADHAAR"})
    assert (j.category, j.share, set(j.whole)) == ("JP_MY_NUMBER", 1.0, {"JP_MY_NUMBER"})
    assert set(classify_array(pa.array(aadhaar))) == {"IN_AADHAAR"}


def test_a_dirty_column_of_ids_stops_an_undeclared_product() -> None:
    fake, rng = Faker("th_TH"), random.Random(8)
    fake.seed_instance(8)
    values = [
        fake.ssn() if rng.random() < 0.7 else rng.choice(["N/A", "-", "ไม่ทราบ"])
        for _ in range(ROWS)
    ]
    (found,) = scan_table(pa.table({"citizen": values}))
    share = found.shares["TH_ID"]
    assert 0.6 < share < 0.8  # not classified at 0.8, but measured and reported
    assert [u["found"] for u in check_declarations([found], {}).undeclared] == ["TH_ID"]
    assert check_declarations([found], {"citizen": "TH_ID"}).undeclared == []


SENTENCES = [
    ("Customer {v} called about the refund.", None),
    ("客户身份证号 {v}，请核实。", None),
    ("Pelanggan dengan nombor {v} telah dihubungi.", None),
]


def embedded_values(rng: random.Random) -> dict[str, str]:
    fake_tw, fake_th, fake_us, fake_in = (
        Faker("zh_TW"),
        Faker("th_TH"),
        Faker("en_US"),
        Faker("en_IN"),
    )
    for fake in (fake_tw, fake_th, fake_us, fake_in):
        fake.seed_instance(rng.random())
    return {
        "TW_ID": fake_tw.ssn(),
        "TH_ID": fake_th.ssn(),
        "US_SSN": fake_us.ssn(),
        "IN_PAN": fake_in.pan(),
        "MAC_ADDRESS": fake_us.mac_address(),
        "PERSONAL_URL": f"https://www.linkedin.com/in/{fake_us.user_name()}",
        "UK_NINO": "AB " + " ".join(f"{rng.randint(10, 99)}" for _ in range(3)) + " C",
    }


def test_identifiers_in_sentences_are_counted_and_redacted() -> None:
    rng = random.Random(9)
    texts, holds = [], []
    for _ in range(60):
        for category, value in embedded_values(rng).items():
            template, _ = rng.choice(SENTENCES)
            texts.append(template.format(v=value))
            holds.append(category)
    (found,) = scan_table(pa.table({"note": texts}))
    expected = {c: holds.count(c) for c in set(holds)}
    assert {c: n for c, n in found.embedded.items() if c in NEW} == expected
    redacted, counts = redact_values(texts)
    assert counts == expected
    assert all(f"<{c}>" in text for text, c in zip(redacted, holds, strict=True))
    (after,) = scan_table(pa.table({"note": redacted}))
    assert not NEW & set(after.embedded)
    # one checksum id in text stops a version (STRICT_EMBEDDED), whatever the column's size
    one_each = [texts[holds.index("TW_ID")], texts[holds.index("TH_ID")]]
    (rare,) = scan_table(
        pa.table({"note": one_each + ["Customer called about the refund."] * 5000})
    )
    assert {r["category"] for r in check_embedded([rare]).refused} == {"TW_ID", "TH_ID"}


def test_every_category_can_be_declared_and_identifies_a_person() -> None:
    assert set(CATEGORIES) <= set(get_args(Category))
    assert NEW <= DIRECT_IDENTIFIERS
