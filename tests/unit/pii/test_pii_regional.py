"""Tests of the regional categories (USCC, HKID, IBAN, names, plates...) and `bourse scan`."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import string
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from stdnum import iban as stdnum_iban
from stdnum.cn import uscc as stdnum_uscc

from bourse.scan import scan_file
from databourse.pii.categories import classify_array, classify_value
from databourse.pii.detect import scan_table
from databourse.pii.findings import ColumnFinding
from databourse_samples import pii_values as gen
from databourse_samples.pii_evalset import make_evalset


def only(values: list[str | None], name: str = "c", **kwargs: float) -> ColumnFinding:
    (finding,) = scan_table(pa.table({name: values}), **kwargs)  # type: ignore[arg-type]
    return finding


def many(make: Callable[[random.Random], str], n: int = 300, seed: int = 1) -> list[str | None]:
    rng = random.Random(seed)
    return [make(rng) for _ in range(n)]


def test_known_values_of_new_categories() -> None:
    assert classify_value("91110000600037341L") == "CN_USCC"  # python-stdnum's example
    assert classify_value("A123456(3)") == "HK_ID"
    assert classify_value("C668668(9)") == "HK_ID"
    assert classify_value("GB82 WEST 1234 5698 7654 32") == "IBAN"
    assert classify_value("SBS 3229 P") == "LICENSE_PLATE"  # the published check example
    assert classify_value("粤B12345") == "LICENSE_PLATE"
    assert classify_value("粤BD12345") == "LICENSE_PLATE"
    assert classify_value("1.352083, 103.819836") == "GEO_COORDINATES"
    for name in ["张伟", "欧阳娜娜", "Zhang Wei", "Tan Mei Ling", "TAN MEI LING", "John Smith"]:
        assert classify_value(name) == "PERSON_NAME", name
    for name in ["Ahmad bin Ali", "Siti binti Abdullah", "Suresh a/l Rajendran", "Priya a/p Kumar"]:
        assert classify_value(name) == "PERSON_NAME", name
    for address in [
        "广东省深圳市南山区科技园路88号",
        "12 Jalan Ampang, Taman Maju, 50450 Kuala Lumpur",
        "Blk 123 Ang Mo Kio Ave 3 #01-23 Singapore 560123",
    ]:
        assert classify_value(address) == "ADDRESS", address


@pytest.mark.parametrize(
    "wrong",
    ["91110000600037341K", "A123456(4)", "GB83 WEST 1234 5698 7654 32", "SBS 3229 Q", "粤I12345"],
)
def test_wrong_checks_are_nothing(wrong: str) -> None:
    assert classify_value(wrong) is None


def test_uscc_and_iban_agree_with_python_stdnum() -> None:
    rng = random.Random(2)
    codes = [gen.uscc(rng, wrong=rng.random() < 0.5) for _ in range(2000)]
    ibans = [gen.iban(rng, wrong=rng.random() < 0.5) for _ in range(2000)]
    got_uscc = classify_array(pa.array(codes))
    assert got_uscc == ["CN_USCC" if stdnum_uscc.is_valid(c) else None for c in codes]
    got_iban = classify_array(pa.array(ibans))
    assert got_iban == ["IBAN" if stdnum_iban.is_valid(c) else None for c in ibans]
    assert 800 < got_uscc.count("CN_USCC") < 1200


def hk_independent(letters: str, six: str) -> str:
    """HKID check computed from the published rule, written out by hand."""
    padded = letters.rjust(2, " ")
    values = [36 if c == " " else string.ascii_uppercase.index(c) + 10 for c in padded]
    total = sum(v * w for v, w in zip([*values, *map(int, six)], range(9, 1, -1), strict=True))
    check = 11 - total % 11
    return {10: "A", 11: "0"}.get(check, str(check))


def test_hk_id_check_digit_matches_the_rule() -> None:
    rng = random.Random(3)
    good, bad = [], []
    for _ in range(300):
        letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.choice([1, 2])))
        six = "".join(rng.choice(string.digits) for _ in range(6))
        check = hk_independent(letters, six)
        good.append(f"{letters}{six}({check})" if rng.random() < 0.5 else letters + six + check)
        bad.append(f"{letters}{six}({rng.choice([c for c in '0123456789A' if c != check])})")
    assert classify_array(pa.array(good)) == ["HK_ID"] * 300
    assert classify_array(pa.array(bad)) == [None] * 300


COLUMNS: dict[str, tuple[str, Callable[[random.Random], str]]] = {
    "CN_USCC": ("c", gen.uscc),
    "HK_ID": ("c", gen.hk_id),
    "IBAN": ("c", gen.iban),
    "PERSON_NAME": ("c", gen.person),
    "ADDRESS": ("c", gen.address),
    "LICENSE_PLATE": ("c", gen.plate),
    "GEO_COORDINATES": ("c", gen.geo),
    "PASSPORT": ("c", gen.passport),
    "DATE_OF_BIRTH": ("date_of_birth", gen.dob),
    "BANK_ACCOUNT": ("bank_account_no", gen.bank_account),
}
FACTORS = {"CN_USCC": 1.0, "HK_ID": 1.0, "IBAN": 1.0, "PASSPORT": 0.7, "GEO_COORDINATES": 0.9}
FACTORS |= {"DATE_OF_BIRTH": 0.9, "BANK_ACCOUNT": 0.9}


@pytest.mark.parametrize("category", sorted(COLUMNS))
def test_new_category_columns(category: str) -> None:
    name, make = COLUMNS[category]
    found = only(many(make), name=name)
    assert found.category == category
    assert found.share > 0.95
    assert found.confidence == pytest.approx(found.share * FACTORS.get(category, 0.8))


def test_column_name_cues_decide_birth_dates_and_bank_accounts() -> None:
    dates = many(gen.dob)
    assert only(dates, name="dob").category == "DATE_OF_BIRTH"
    assert only(dates, name="出生日期").category == "DATE_OF_BIRTH"
    assert only(dates, name="created").category is None
    assert only(dates, name="created").whole == {}
    birth = pa.array([dt.date(1990, 1, 1) + dt.timedelta(days=i) for i in range(50)])
    (typed,) = scan_table(pa.table({"birth_date": birth}))
    assert (typed.category, typed.checked) == ("DATE_OF_BIRTH", 50)
    (other,) = scan_table(pa.table({"order_date": birth}))
    assert (other.category, other.checked) == (None, 0)
    plain = many(lambda r: r.choice("15") + "".join(r.choice(string.digits) for _ in range(11)))
    assert only(plain, name="akaun_bank").category == "BANK_ACCOUNT"
    assert only(plain, name="账号").category == "BANK_ACCOUNT"
    assert only(plain, name="ref").category is None  # plain digits without a cue: not decidable
    dbs = many(lambda r: f"{r.randint(100, 999)}-{r.randint(100000, 999999)}-{r.randint(0, 9)}")
    grouped = only(dbs, name="ref")
    assert (grouped.category, grouped.confidence) == ("BANK_ACCOUNT", pytest.approx(0.7))
    assert classify_value("1990-05-17") is None  # a date alone is no birth date
    assert classify_value("1990-05-17", column_name="dob") == "DATE_OF_BIRTH"


def test_passport_needs_one_country() -> None:
    rng = random.Random(4)
    cn = [f"E{rng.randrange(10**8):08d}" for _ in range(200)]
    my = [f"A{rng.randrange(10**8):08d}" for _ in range(200)]
    assert only(cn).category == "PASSPORT"
    assert only(cn[:100] + my[:100]).category is None  # no single country's pattern dominates


DECOYS: dict[str, Callable[[random.Random], str]] = {
    "uscc_typo": lambda r: gen.uscc(r, wrong=True),
    "hk_typo": lambda r: gen.hk_id(r, wrong=True),
    "iban_typo": lambda r: gen.iban(r, wrong=True),
    "sg_plate_typo": lambda r: gen.sg_plate(r, wrong=True),
    "random_codes": lambda r: "".join(r.choice(string.ascii_uppercase) for _ in range(8)),
    "alnum_codes": lambda r: "".join(
        r.choice(string.ascii_uppercase + string.digits) for _ in range(10)
    ),
    "tracking_16": lambda r: "".join(r.choice(string.digits) for _ in range(16)),
    "order_20": lambda r: f"2025{r.randint(1, 12):02d}{r.randint(10**13, 10**14 - 1)}",
    "amounts": lambda r: f"{r.uniform(1, 1e6):.2f}",
    "ratio_pairs": lambda r: f"{r.uniform(0, 90):.2f}, {r.uniform(0, 180):.2f}",
    "words_cn": lambda r: r.choice(
        ["马上处理", "周末", "高兴", "罗湖区", "黄色", "生鲜", "日用品"]
    ),
    "places": lambda r: r.choice(["Kuala Lumpur", "Shah Alam", "Petaling Jaya", "Jurong East"]),
    "skus": lambda r: f"{r.choice(['AB', 'QX', 'ZZ'])}-{r.randint(1000, 9999)}",
}


@pytest.mark.parametrize("decoy", sorted(DECOYS))
def test_new_look_alikes_are_not_flagged(decoy: str) -> None:
    found = only(many(DECOYS[decoy], n=400, seed=5), name="account_ref")
    assert (found.category, found.embedded) == (None, {})
    assert set(found.whole) <= {"CREDIT_CARD"}  # 16 random digits are sometimes real card numbers


def test_checksum_identifiers_inside_chinese_text() -> None:
    rng = random.Random(6)
    texts = [f"统一社会信用代码{gen.uscc(rng)}，已备案" for _ in range(6)]
    hk = [gen.hk_id(rng) for _ in range(40)]
    texts += [f"香港身份证{v}已核验" for v in hk if "(" in v][:5]
    texts += [f"汇款至{gen.iban(rng).replace(' ', '')}谢谢" for _ in range(4)]
    texts += [f"代码{gen.uscc(rng, wrong=True)}有误" for _ in range(5)]  # decoys inside text
    texts += [f"编号{gen.hk_id(rng, wrong=True)}" for _ in range(5)]
    texts += [f"账户{gen.iban(rng, wrong=True).replace(' ', '')}" for _ in range(5)]
    texts += [f"护照号码E{rng.randrange(10**8):08d}" for _ in range(3)]  # never embedded
    found = only(texts)
    assert found.embedded == {"CN_USCC": 6, "HK_ID": 5, "IBAN": 4}


def test_existing_callers_still_work() -> None:
    table = pa.table({"x": many(gen.uscc, n=50)})
    (found,) = scan_table(table, threshold=0.5, sample_rows=10)
    assert found.category == "CN_USCC"


def test_no_value_leaks(caplog: pytest.LogCaptureFixture) -> None:
    ev = make_evalset(60, seed=7)
    with caplog.at_level(logging.DEBUG, logger="databourse"):
        findings = scan_table(ev.table)
    rendered = repr(findings) + json.dumps([f.to_json() for f in findings]) + caplog.text
    for name in ev.table.column_names:
        for value in ev.table[name].to_pylist():
            if value and len(value) > 6:
                assert value not in rendered


# ---- bourse scan --------------------------------------------------------------------------------


def sample_table() -> pa.Table:
    rng = random.Random(8)
    return pa.table(
        {
            "org": [gen.uscc(rng) for _ in range(100)],
            "phone": [f"01{rng.choice('2346789')}-{rng.randrange(10**7):07d}" for _ in range(100)],
            "note": [f"联系 {gen.email(rng)}" if i % 4 == 0 else f"ok {i}" for i in range(100)],
            "amount": [str(i * 3) for i in range(100)],
        }
    )


def test_scan_file_json_for_csv_parquet_jsonl(tmp_path: Path) -> None:
    table = sample_table()
    csv = tmp_path / "drop.csv"
    csv.write_text(
        "org,phone,note,amount\n"
        + "".join(
            ",".join(str(table[c][i]) for c in table.column_names) + "\n" for i in range(100)
        ),
        encoding="utf-8",
    )
    pq.write_table(table, tmp_path / "drop.parquet")
    rows = (
        json.dumps(dict(zip(table.column_names, r, strict=True)))
        for r in zip(*table.to_pydict().values(), strict=True)
    )
    (tmp_path / "drop.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    outputs = []
    for name in ["drop.csv", "drop.parquet", "drop.jsonl"]:
        code, text = scan_file(tmp_path / name, as_json=True, threshold=0.8, sample_rows=2000)
        assert code == 0
        doc = json.loads(text)
        assert list(doc) == ["columns"]
        outputs.append(doc)
    assert outputs[0] == outputs[1] == outputs[2]
    columns = {c["name"]: c for c in outputs[0]["columns"]}
    assert list(columns) == ["org", "phone", "note", "amount"]
    assert columns["org"] == {
        "name": "org",
        "category": "CN_USCC",
        "confidence": 1.0,
        "share": 1.0,
        "shares": {"CN_USCC": 1.0},
        "read_as": "text",
        "lost_digits": 0,
        "zero_padded": 0,
        "empty": 0,
        "embedded": {},
    }
    assert columns["phone"]["category"] == "PHONE_NUMBER"  # leading 0 kept: read as strings
    assert columns["note"]["embedded"] == {"EMAIL_ADDRESS": 25}
    assert columns["amount"]["category"] is None
    for column in columns.values():
        assert set(column) == {
            *("name", "category", "confidence", "share", "embedded"),
            *("shares", "read_as", "lost_digits", "zero_padded", "empty"),
        }


def test_scan_file_table_and_unreadable(tmp_path: Path) -> None:
    pq.write_table(sample_table(), tmp_path / "d.parquet")
    code, text = scan_file(tmp_path / "d.parquet", as_json=False, threshold=0.8, sample_rows=100)
    assert code == 0 and "CN_USCC" in text and text.splitlines()[0].startswith("column")
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 not really S1234567D")
    code, text = scan_file(bad, as_json=True, threshold=0.8, sample_rows=100)
    assert code == 2 and str(bad) in text and "S1234567D" not in text and "\n" not in text
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,S1234567D\n", encoding="utf-8")
    code, text = scan_file(ragged, as_json=True, threshold=0.8, sample_rows=100)
    assert code == 2 and "ragged.csv" in text and "S1234567D" not in text
    code, text = scan_file(tmp_path / "missing.csv", as_json=False, threshold=0.8, sample_rows=10)
    assert code == 2 and "missing.csv" in text
