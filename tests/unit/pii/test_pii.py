"""Tests of content-based personal-data detection (databourse.pii), with independent generators."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import random
import uuid
from collections.abc import Callable

import phonenumbers
import pyarrow as pa
import pytest

from databourse.pii import detect as pii
from databourse.pii.categories import classify_array, classify_value
from databourse.pii.detect import scan_batches, scan_table
from databourse.pii.findings import ColumnFinding
from databourse.pii.phones import TRUNK_ZERO_REGIONS

# ---- independent generators (no call into the code under test) ----------------------------------

CN_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CN_PROVINCES = [11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46]
CN_PROVINCES += [50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82]
SG_TABLES = {"S": (0, "JZIHGFEDCBA"), "T": (4, "JZIHGFEDCBA"), "F": (0, "XWUTRQPNMLK")}
SG_TABLES |= {"G": (4, "XWUTRQPNMLK"), "M": (3, "XWUTRQPNJLK")}
MY_ASSIGNED_PB = [pb for pb in range(1, 100) if pb not in {17, 18, 19, 20, 69, 70, 73, 80, 81}]
MY_ASSIGNED_PB = [pb for pb in MY_ASSIGNED_PB if pb not in {94, 95, 96, 97}]


def digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(n))


def birth_date(rng: random.Random) -> dt.date:
    return dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(365 * 90))


def cn_check(body: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(body, CN_WEIGHTS, strict=True)) % 11]


def cn_id(rng: random.Random, provinces: list[int] = CN_PROVINCES) -> str:
    body = f"{rng.choice(provinces)}{digits(rng, 4)}{birth_date(rng):%Y%m%d}{digits(rng, 3)}"
    return body + cn_check(body)


def cn_id_wrong_check(rng: random.Random) -> str:
    good = cn_id(rng, [p for p in CN_PROVINCES if p not in (35, 62, 65)])  # not card IINs
    return good[:17] + rng.choice([c for c in "0123456789X" if c != good[17]])


def sg_letter(prefix: str, seven: str) -> str:
    offset, letters = SG_TABLES[prefix]
    total = sum(int(c) * w for c, w in zip(seven, [2, 7, 6, 5, 4, 3, 2], strict=True))
    return letters[(total + offset) % 11]


def sg_id(rng: random.Random) -> str:
    prefix, seven = rng.choice("STFGM"), digits(rng, 7)
    return prefix + seven + sg_letter(prefix, seven)


def sg_id_wrong_letter(rng: random.Random) -> str:
    good = sg_id(rng)
    return good[:8] + rng.choice([c for c in "ABCDEFGHIJKLMNPQRTUWXZ" if c != good[8]])


def my_nric(rng: random.Random) -> str:
    pb = f"{rng.choice(MY_ASSIGNED_PB):02d}"
    value = f"{birth_date(rng):%y%m%d}{pb}{digits(rng, 4)}"
    return f"{value[:6]}-{value[6:8]}-{value[8:]}" if rng.random() < 0.5 else value


def luhn_digit(partial: str) -> str:
    total = 0
    for i, c in enumerate(reversed(partial)):
        d = int(c) * (2 if i % 2 == 0 else 1)  # the check digit will take position 0
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


CARD_BRANDS = [("4", 16), ("4", 13), ("53", 16), ("2221", 16), ("2720", 16), ("37", 15)]
CARD_BRANDS += [("62", 16), ("62", 19), ("3528", 16), ("3589", 16), ("6011", 16), ("65", 16)]


def card_number(rng: random.Random, *, valid: bool = True) -> str:
    prefix, length = rng.choice(CARD_BRANDS)
    partial = prefix + digits(rng, length - len(prefix) - 1)
    check = luhn_digit(partial)
    return partial + (check if valid else str((int(check) + rng.randint(1, 9)) % 10))


def card_formatted(rng: random.Random) -> str:
    number = card_number(rng)
    sep = rng.choice(["", " ", "-"]) if len(number) != 13 else ""
    if len(number) == 15:
        return sep.join([number[:4], number[4:10], number[10:]])
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


def valid_phone(rng: random.Random, make: Callable[[], tuple[str, str | None]]) -> str:
    while True:  # phonenumbers is the oracle, not our code
        text, region = make()
        if phonenumbers.is_valid_number(phonenumbers.parse(text, region)):
            return text


def phone(rng: random.Random) -> str:
    makers: list[Callable[[], tuple[str, str | None]]] = [
        lambda: (f"1{rng.choice('3589')}{digits(rng, 9)}", "CN"),
        lambda: (f"+86 13{rng.randrange(10)} {digits(rng, 4)} {digits(rng, 4)}", None),
        lambda: (f"01{rng.choice('2346789')}-{digits(rng, 7)}", "MY"),
        lambda: (f"+60 12-{digits(rng, 3)} {digits(rng, 4)}", None),
        lambda: (f"9{digits(rng, 3)} {digits(rng, 4)}", "SG"),
        lambda: (f"+65 8{digits(rng, 3)} {digits(rng, 4)}", None),
        lambda: (f"+852 9{digits(rng, 3)} {digits(rng, 4)}", None),
        lambda: (f"+44 20 7{digits(rng, 3)} {digits(rng, 4)}", None),
    ]
    return valid_phone(rng, rng.choice(makers))


def ip(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return str(ipaddress.IPv4Address(rng.getrandbits(32)))
    return str(ipaddress.IPv6Address(rng.getrandbits(128)))


def email(rng: random.Random) -> str:
    return f"{rng.choice(['li.wei', 'ahmad_ali', 'tan+news'])}{rng.randrange(999)}@example.com.sg"


GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "CN_RESIDENT_ID": cn_id,
    "SG_NRIC_FIN": sg_id,
    "MY_NRIC": my_nric,
    "CREDIT_CARD": card_formatted,
    "EMAIL_ADDRESS": email,
    "PHONE_NUMBER": phone,
    "IP_ADDRESS": ip,
}
FACTOR = {"CN_RESIDENT_ID": 1.0, "SG_NRIC_FIN": 1.0, "CREDIT_CARD": 1.0}


def column(values: list[str] | list[int] | list[str | None], name: str = "c") -> pa.Table:
    return pa.table({name: values})


def only(table: pa.Table, **kwargs: float) -> ColumnFinding:
    (finding,) = scan_table(table, **kwargs)  # type: ignore[arg-type]
    return finding


# ---- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("category", sorted(GENERATORS))
def test_clean_column_is_found_at_full_share(category: str) -> None:
    rng = random.Random(category)
    values = [GENERATORS[category](rng) for _ in range(400)]
    found = only(column([*values, None]))
    assert (found.category, found.share, found.matched, found.checked) == (category, 1.0, 400, 400)
    assert found.confidence == pytest.approx(FACTOR.get(category, 0.9))
    assert found.embedded == {}


def test_known_values() -> None:
    assert classify_value("11010519491231002X") == "CN_RESIDENT_ID"
    assert classify_value("11010519491231002x") == "CN_RESIDENT_ID"
    assert classify_value(" S1234567D ") == "SG_NRIC_FIN"
    assert classify_value("M1234567" + sg_letter("M", "1234567")) == "SG_NRIC_FIN"
    assert classify_value("4111 1111 1111 1111") == "CREDIT_CARD"
    assert classify_value("+65 9123 4567") == "PHONE_NUMBER"
    assert classify_value("2001:db8::1") == "IP_ADDRESS"
    for wrong in ["110105194912310021", "S1234567A", "990101-17-1234", "000000-14-1234"]:
        assert classify_value(wrong) is None
    future = (dt.date.today() + dt.timedelta(days=400)).strftime("%Y%m%d")
    body = f"110105{future}123"
    assert classify_value(body + cn_check(body)) is None  # born in the future
    body = "11010518991231002"  # born before 1900
    assert classify_value(body + cn_check(body)) is None
    body = "10010519491231002"  # province 10 does not exist
    assert classify_value(body + cn_check(body)) is None


DECOYS: dict[str, Callable[[random.Random], str | int]] = {
    "cn_id_wrong_check": cn_id_wrong_check,
    "order_number_18": lambda r: f"2024{r.randint(1, 12):02d}{digits(r, 12)}",
    "nric_wrong_letter": sg_id_wrong_letter,
    "timestamp_ms": lambda r: str(r.randint(1_500_000_000_000, 1_900_000_000_000)),
    "timestamp_ms_int": lambda r: r.randint(1_500_000_000_000, 1_900_000_000_000),
    "amount_8": lambda r: str(r.randint(10_000_000, 99_999_999)),
    "amount_8_int": lambda r: r.randint(10_000_000, 99_999_999),
    "card_not_luhn": lambda r: card_number(r, valid=False),
    "date_iso": lambda r: f"{birth_date(r):%Y-%m-%d}",
    "date_compact": lambda r: f"{birth_date(r):%Y%m%d}",
    "date_dmy": lambda r: f"{birth_date(r):%d/%m/%Y}",
    "date_dotted": lambda r: f"{birth_date(r):%d.%m.%Y}",
    "datetime": lambda r: (
        f"{birth_date(r):%Y-%m-%d} {r.randrange(24):02d}:{r.randrange(60):02d}:00"
    ),
    "uuid": lambda r: str(uuid.UUID(int=r.getrandbits(128))),
    "uuid_digit_tail": lambda r: f"{uuid.UUID(int=r.getrandbits(128))}"[:24] + digits(r, 12),
}


@pytest.mark.parametrize("decoy", sorted(DECOYS))
def test_look_alikes_are_not_flagged(decoy: str) -> None:
    rng = random.Random(decoy)
    found = only(column([DECOYS[decoy](rng) for _ in range(500)]))
    assert (found.category, found.embedded, found.whole) == (None, {}, {})
    assert found.checked == 500


def test_emails_inside_free_text_are_embedded_not_a_category() -> None:
    rng = random.Random(5)
    notes = [f"备注 {i} 已处理, 金额 {rng.randint(100, 99999)}" for i in range(950)]
    notes += [f"请联系{email(rng)}谢谢" for _ in range(25)]
    notes += [f"contact {email(rng)} before 2024-05-17" for _ in range(25)]
    rng.shuffle(notes)
    found = only(column(notes))
    assert (found.category, found.matched, found.share, found.checked) == (None, 0, 0.0, 1000)
    assert found.embedded == {"EMAIL_ADDRESS": 50}


def test_identifiers_glued_to_chinese_text() -> None:
    rng = random.Random(6)
    texts = [f"身份证{cn_id(rng)}" for _ in range(7)]
    texts += [
        f"电话{valid_phone(rng, lambda: (f'138{digits(rng, 8)}', 'CN'))}联系" for _ in range(5)
    ]
    texts += [f"证件号{sg_id(rng)}已核验" for _ in range(3)]
    texts += [f"卡号{card_number(rng)}。" for _ in range(2)]
    texts += [f"订单号{cn_id_wrong_check(rng)}" for _ in range(4)]  # decoys inside text
    texts += [f"时间{rng.randint(1_500_000_000_000, 1_800_000_000_000)}毫秒" for _ in range(4)]
    found = only(column(texts * 2))  # repeats count per row, not per distinct value
    assert found.category is None
    expected = {"CN_RESIDENT_ID": 14, "PHONE_NUMBER": 10, "SG_NRIC_FIN": 6, "CREDIT_CARD": 4}
    assert found.embedded == expected


def test_integer_columns_are_scanned() -> None:
    rng = random.Random(8)
    cards = [int(card_number(rng)) for _ in range(200)]
    found = only(pa.table({"card": pa.array(cards, pa.int64())}))
    assert (found.category, found.share) == ("CREDIT_CARD", 1.0)
    mobiles = [int(valid_phone(rng, lambda: (f"139{digits(rng, 8)}", "CN"))) for _ in range(50)]
    assert only(column(mobiles)).category == "PHONE_NUMBER"


@pytest.mark.parametrize(
    "array",
    [
        pa.array([True, False]),
        pa.array([dt.date(1990, 1, 1), dt.date(2000, 1, 1)]),
        pa.array([dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)]),
        pa.array([b"S1234567D", b"a@b.com"]),
    ],
)
def test_other_types_are_not_scanned(array: pa.Array) -> None:
    found = only(pa.table({"x": array}))
    assert found == ColumnFinding("x", None, 0.0, 0.0, 0, 0, {})


def mixed_table(rows: int) -> pa.Table:
    rng = random.Random(9)
    ids: list[str | None] = [cn_id(rng) if rng.random() < 0.9 else None for _ in range(rows)]
    return pa.table(
        {
            "id": ids,
            "note": [f"联系 {email(rng)}" if i % 7 == 0 else f"note {i}" for i in range(rows)],
            "card": [int(card_number(rng)) for _ in range(rows)],
            "amount": [rng.random() * 1000 for _ in range(rows)],
            "sg": [sg_id(rng) for _ in range(rows // 2)]
            + [f"x{i}" for i in range(rows - rows // 2)],
            "late": [f"x{i}" for i in range(90)] + [sg_id(rng) for _ in range(rows - 90)],
        }
    )


def test_scan_batches_equals_scan_table() -> None:
    table = mixed_table(500)
    whole = scan_table(table, sample_rows=100)
    streamed = scan_batches(table.to_batches(max_chunksize=37), table.schema, sample_rows=100)
    assert streamed == whole
    by_name = {f.column: f for f in whole}
    assert by_name["id"].category == "CN_RESIDENT_ID" and by_name["id"].checked < 500
    assert by_name["note"].embedded == {"EMAIL_ADDRESS": 72}
    assert by_name["card"].category == "CREDIT_CARD"
    # floats with a fraction are measures: checked, but never read as identifiers
    assert (by_name["amount"].checked, by_name["amount"].embedded) == (500, {})
    assert (by_name["amount"].whole, by_name["amount"].read_as) == ({}, "decimal text")
    # clean on the sample, but confirmation over all values fails
    assert (by_name["sg"].category, by_name["sg"].whole) == (None, {"SG_NRIC_FIN": 250})
    # 82% valid overall, but the sample (first 100 rows) is 10% valid: classified on the sample
    assert (by_name["late"].category, by_name["late"].whole) == (None, {"SG_NRIC_FIN": 410})


@pytest.mark.parametrize("scan_rows", [1, 40, 64, 1000])
def test_batches_joined_and_counted_ahead_give_the_same_findings(
    monkeypatch: pytest.MonkeyPatch, scan_rows: int
) -> None:
    """Small batches are joined to SCAN_BATCH_ROWS and counted IN_FLIGHT ahead, in order: the
    sample boundary (100 rows) falls inside a joined batch, dictionaries hold nulls."""
    table = mixed_table(500)
    codes = pa.array([None if i % 9 == 0 else f"c{i % 5}" for i in range(500)]).dictionary_encode()
    table = table.append_column("code", codes)
    whole = scan_table(table, sample_rows=100)
    monkeypatch.setattr(pii, "SCAN_BATCH_ROWS", scan_rows)
    streamed = scan_batches(table.to_batches(max_chunksize=37), table.schema, sample_rows=100)
    assert streamed == whole
    assert {f.column: f.checked for f in streamed}["code"] == 500 - 56


def test_threshold_is_respected() -> None:
    rng = random.Random(10)
    values = [cn_id(rng) for _ in range(70)] + [f"n/a {i}" for i in range(30)]
    # (a messy column is classified at pii_dirty_threshold: test_pii_dirty.py)
    assert only(column(values), threshold=0.8, dirty_threshold=0.8).category is None
    found = only(column(values), threshold=0.6)
    assert (found.category, found.share, found.matched) == ("CN_RESIDENT_ID", 0.7, 70)
    assert found.confidence == pytest.approx(0.7)


def test_no_value_leaks_into_findings_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(11)
    columns = {name: [make(rng) for _ in range(30)] for name, make in GENERATORS.items()}
    columns["text"] = [f"身份证{cn_id(rng)} 邮箱{email(rng)}" for _ in range(30)]
    table = pa.table(columns)
    with caplog.at_level(logging.DEBUG, logger="databourse"):
        findings = scan_table(table)
    rendered = repr(findings) + json.dumps([f.to_json() for f in findings]) + caplog.text
    assert "EMAIL_ADDRESS" in rendered and "text" in rendered
    for values in columns.values():
        for value in values:
            assert value not in rendered
            assert value.split("邮箱")[-1] not in rendered


def test_to_json_shape() -> None:
    found = only(column(["a@b.com", "x"]), threshold=0.5)
    assert found.to_json() == {
        "column": "c",
        "category": "EMAIL_ADDRESS",
        "confidence": 0.45,
        "share": 0.5,
        "matched": 1,
        "checked": 2,
        "embedded": {},
        "whole": {"EMAIL_ADDRESS": 1},
        "shares": {"EMAIL_ADDRESS": 0.5},
        "read_as": "text",
        "lost_digits": 0,
        "mentions": {},
        "empty": 0,
        "zero_padded": 0,
    }


TRUNK_ZERO = list(TRUNK_ZERO_REGIONS)  # a national number is valid in any of the markets


def _valid_phone(text: str, region: str | None) -> bool:
    """Valid as a number of `region` (None: international). JP dials abroad with 010: the
    oracle would read '0103-5299...' as a Luxembourg number; we read it as a national one."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return False
    home = region is None or number.country_code == phonenumbers.country_code_for_region(region)
    return home and phonenumbers.is_valid_number(number)


def test_phone_validity_agrees_with_phonenumbers() -> None:
    rng = random.Random(12)
    forms: list[Callable[[], tuple[str, list[str | None]]]] = [
        lambda: (f"1{rng.randint(3, 9)}{digits(rng, 9)}", ["CN"]),
        lambda: (f"0{rng.randint(1, 9)}{digits(rng, rng.choice([8, 9]))}", TRUNK_ZERO),
        lambda: (f"{rng.randint(2, 9)}{digits(rng, 3)} {digits(rng, 4)}", ["SG", "HK"]),
        lambda: (f"+{rng.choice(['86', '60', '65', '852'])} {digits(rng, 9)}", [None]),
        lambda: (f"0{rng.randint(1, 9)}{digits(rng, 2)}-{digits(rng, 8)}", TRUNK_ZERO),
        lambda: (f"+{rng.choice(['1', '44', '61', '81'])} {digits(rng, 9)}", [None]),
    ]
    samples = [rng.choice(forms)() for _ in range(3000)]
    got = classify_array(pa.array([text for text, _ in samples]))
    expected = [
        "PHONE_NUMBER" if any(_valid_phone(text, r) for r in regions) else None
        for text, regions in samples
    ]
    assert got == expected
    assert 500 < expected.count("PHONE_NUMBER") < 2500


def test_a_large_mixed_table_is_classified() -> None:
    """100k rows of ten kinds of column; its speed is measured in benchmarks/pii.py, not here."""
    rng = random.Random(13)
    n = 100_000
    ids = [cn_id(rng) for _ in range(10_000)]
    table = pa.table(
        {
            "id": [ids[i % 10_000] for i in range(n)],
            "email": [f"user{i}@example.com" for i in range(n)],
            "phone": [f"+65 9{i % 1000:03d} {i % 10000:04d}" for i in range(n)],
            "note": [f"订单{i:018d} 备注 {i % 97}" for i in range(n)],
            "amount": list(range(10_000_000, 10_000_000 + n)),
            "ts": list(range(1_700_000_000_000, 1_700_000_000_000 + n)),
            "uuid": [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(n)],
            "name": [f"Tan Wei {i}" for i in range(n)],
            "ip": [f"10.0.{i // 256 % 256}.{i % 256}" for i in range(n)],
            "price": [i * 0.5 for i in range(n)],
        }
    )
    findings = scan_table(table)
    assert [f.category for f in findings][:3] == ["CN_RESIDENT_ID", "EMAIL_ADDRESS", "PHONE_NUMBER"]
    assert [f.category for f in findings][3:8] == [None] * 5
