"""Labelled PII tables this project did not generate: published test cases and Faker tables.

Two sources, both labelled by independent oracles rather than by our detector:
- `published_sets()`: values from python-stdnum's doctests and Presidio's recognizer tests
  (`tests/data/pii_independent/published_cases.csv`, see the README there), one table per
  category with the valid values and, apart, the invalid ones (which must not be flagged);
- `faker_sets(rows, seed)`: one table per Faker locale with names, addresses, phones, emails,
  national ids, cards, IBANs, IPv4/6, decoy columns (codes, registration numbers, order ids,
  amounts, order dates, free text), dirty columns (a quarter of the values malformed,
  placeholders or foreign numbers) and numbers typed as int64/float64. A value is a true
  positive only when its oracle (phonenumbers, python-stdnum, ipaddress, email-validator) says so.

Both return `databourse_samples.pii_evalset.EvalSet`s, so the benchmark scores them the same way.
"""

from __future__ import annotations

import csv
import ipaddress
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import phonenumbers
import pyarrow as pa
from email_validator import EmailNotValidError, validate_email
from faker import Faker
from pii_markets import device_columns, dirty_column, market_columns, market_decoys
from pii_names_addresses import name_address_columns
from stdnum import iban as std_iban
from stdnum import luhn as std_luhn
from stdnum.cn import ric as std_cn_ric

from databourse_samples.pii_evalset import EvalSet

REPO = Path(__file__).resolve().parents[1]
# The published cases are values taken from other projects' test files: they are kept beside the
# project (shared/ of the exchange's steering repository), not committed here; see
# tests/data/pii_independent/README.md for their sources and how they were extracted.
PUBLISHED = Path(
    os.environ.get(
        "DATABOURSE_PII_PUBLISHED_CASES",
        REPO.parent / "shared" / "pii_independent" / "published_cases.csv",
    )
)
LOCALES: dict[str, str] = {  # Faker locale -> phone region (Faker 40 has no ms_MY locale)
    "zh_CN": "CN",
    "zh_TW": "TW",
    "en_US": "US",
    "en_IN": "IN",
    "id_ID": "ID",
    "th_TH": "TH",
    "vi_VN": "VN",
    "en_GB": "GB",
    "ko_KR": "KR",
    "ja_JP": "JP",
}
# Faker's `ssn` per locale, with the category it is; the next markets' ids (and Faker's ssn of
# zh_TW, en_US, th_TH) are made and labelled in `pii_markets` (issue 16, class 10).
NATIONAL_IDS: dict[str, str] = {"zh_CN": "CN_RESIDENT_ID"}
PLACEHOLDERS = ("N/A", "-", "", "unknown", "TBC", "0000000000", "none", "未提供", "tiada")
DIRTY_SHARE = 0.25
MIN_VALID_SHARE = 0.5  # a positive column is kept when its oracle accepts this share


def published_sets() -> list[EvalSet]:
    """One single-column table per (category, validity) of the published cases."""
    groups: dict[tuple[str, bool], list[str]] = {}
    if not PUBLISHED.is_file():
        return []
    with PUBLISHED.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            groups.setdefault((row["category"], row["valid"] == "1"), []).append(row["value"])
    sets = []
    for (category, valid), values in sorted(groups.items()):
        name = f"published_{category.lower()}_{'valid' if valid else 'invalid'}"
        sets.append(
            EvalSet(
                pa.table({name: pa.array(values, pa.string())}),
                {name: category if valid else None},
                {name: [valid] * len(values)},
                {},
            )
        )
    return sets


def _phone_ok(region: str) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        if value.startswith("00"):  # the 00 exit code (Faker's en_US writes 001-...)
            value = "+" + value[2:]
        try:
            return phonenumbers.is_valid_number(phonenumbers.parse(value, region))
        except phonenumbers.NumberParseException:
            return False

    return check


def _email_ok(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
        return True
    except EmailNotValidError:
        return False


def _ip_ok(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _cn_id_ok(value: str) -> bool:
    compact = std_cn_ric.compact(value)
    return len(compact) == 18 and std_cn_ric.calc_check_digit(compact) == compact[-1]


ORACLES: dict[str, Callable[[str], bool]] = {
    "EMAIL_ADDRESS": _email_ok,
    "IP_ADDRESS": _ip_ok,
    "CREDIT_CARD": lambda v: std_luhn.is_valid(v.replace(" ", "").replace("-", "")),
    "IBAN": std_iban.is_valid,
    "CN_RESIDENT_ID": _cn_id_ok,
}


def _dirty(r: random.Random, fake: Faker, values: list[str], kind: str) -> list[str]:
    """A quarter of the values replaced by placeholders, typos and values from elsewhere.

    `kind` "phone": other values are German numbers in their national form (no country code: not
    a number of the column's region); "email": words. The truth of each value is then its
    oracle's verdict: a typo that leaves a valid address is still personal data."""
    out = []
    other = Faker("de_DE")
    other.seed_instance(r.random())
    for value in values:
        if r.random() >= DIRTY_SHARE:
            out.append(value)
            continue
        roll = r.randrange(3)
        if roll == 0:
            out.append(r.choice(PLACEHOLDERS))
        elif roll == 1:  # a typo: a character dropped
            cut = r.randrange(len(value)) if value else 0
            out.append(value[:cut] + value[cut + 1 :])
        elif kind == "phone":
            out.append(_national(other.phone_number(), "DE"))
        else:
            out.append(fake.word())
    return out


def _national(text: str, region: str) -> str:
    """A number in its national form (no country code), or the text when it does not parse."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return text
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def faker_sets(rows: int = 500, seed: int = 0) -> list[EvalSet]:
    """One labelled table per locale, and one of the markets' device ids, Philippine ids and
    decoys (deterministic for a seed and a Faker version)."""
    sets = [_locale_set(locale, region, rows, seed) for locale, region in LOCALES.items()]
    return [*sets, _markets_set(rows, seed)]


def _markets_set(rows: int, seed: int) -> EvalSet:
    fake = Faker("en_PH")
    fake.seed_instance(seed)
    r = random.Random(f"markets/{seed}")
    cols: dict[str, pa.Array] = {}
    labels: dict[str, str | None] = {}
    truth: dict[str, list[bool]] = {}

    def add(name: str, label: str | None, values: list[Any], flags: list[bool], typ: Any) -> None:
        if label is None or sum(flags) >= MIN_VALID_SHARE * len(flags):
            cols[name], labels[name], truth[name] = pa.array(values, typ), label, flags

    market_columns("en_PH", fake, r, rows, add)
    device_columns("markets", fake, r, rows, add)
    market_decoys("markets", fake, r, rows, add)
    return EvalSet(pa.table(cols), labels, truth, {})


def _locale_set(locale: str, region: str, rows: int, seed: int) -> EvalSet:
    fake = Faker(locale)
    fake.seed_instance(seed)
    r = random.Random(f"{locale}/{seed}")
    cols: dict[str, pa.Array] = {}
    labels: dict[str, str | None] = {}
    truth: dict[str, list[bool]] = {}

    def add(
        name: str, label: str | None, values: list[Any], flags: list[bool], typ: pa.DataType
    ) -> None:
        if label is not None and sum(flags) < MIN_VALID_SHARE * len(flags):
            return  # Faker's output is not valid by the oracle (its TW, VN phones): not a test
        cols[name], labels[name], truth[name] = pa.array(values, typ), label, flags

    def strings(label: str, make: Callable[[], str], oracle: Callable[[str], bool] | None) -> None:
        values = [make() for _ in range(rows)]
        check = oracle or (lambda _v: True)
        add(f"{locale}_{label.lower()}", label, values, [check(v) for v in values], pa.string())

    phone_ok = _phone_ok(region)
    strings("PERSON_NAME", fake.name, None)
    strings("ADDRESS", lambda: fake.address().replace("\n", ", "), None)
    strings("PHONE_NUMBER", fake.phone_number, phone_ok)
    strings("EMAIL_ADDRESS", fake.email, _email_ok)
    strings("IP_ADDRESS", fake.ipv4, _ip_ok)
    add(f"{locale}_ipv6", "IP_ADDRESS", v6 := [fake.ipv6() for _ in range(rows)],
        [_ip_ok(v) for v in v6], pa.string())  # fmt: skip
    strings("CREDIT_CARD", fake.credit_card_number, ORACLES["CREDIT_CARD"])
    strings("IBAN", fake.iban, std_iban.is_valid)
    if locale in NATIONAL_IDS:
        label = NATIONAL_IDS[locale]
        strings(label, fake.ssn, ORACLES.get(label))
    # dirty columns: the category holds, a quarter of the values are not it
    dirty = _dirty(r, fake, [fake.phone_number() for _ in range(rows)], "phone")
    add(f"{locale}_dirty_phone", "PHONE_NUMBER", dirty, [phone_ok(v) for v in dirty], pa.string())
    dirty = _dirty(r, fake, [fake.email() for _ in range(rows)], "email")
    add(f"{locale}_dirty_email", "EMAIL_ADDRESS", dirty, [_email_ok(v) for v in dirty], pa.string())
    # numbers typed as numbers, as a CSV reader leaves them
    cards = [fake.credit_card_number(card_type=r.choice(["visa", "mastercard"]))
             for _ in range(rows)]  # fmt: skip
    add(f"{locale}_card_int64", "CREDIT_CARD", [int(c) for c in cards],
        [std_luhn.is_valid(c) for c in cards], pa.int64())  # fmt: skip
    if region == "CN":
        mobiles = [f"1{r.choice('3589')}{r.randrange(10**9):09d}" for _ in range(rows)]
        add(f"{locale}_mobile_int64", "PHONE_NUMBER", [int(m) for m in mobiles],
            [phone_ok(m) for m in mobiles], pa.int64())  # fmt: skip
        add(f"{locale}_mobile_float64", "PHONE_NUMBER", [float(m) for m in mobiles],
            [phone_ok(m) for m in mobiles], pa.float64())  # fmt: skip
    _decoys(locale, fake, r, rows, add)
    market_columns(locale, fake, r, rows, add)
    dirty_column(locale, fake, r, rows, add)
    name_address_columns(locale, fake, r, rows, add)
    return EvalSet(pa.table(cols), labels, truth, {})


def _decoys(
    prefix: str, fake: Faker, r: random.Random, rows: int, add: Callable[..., None]
) -> None:
    """Columns that hold no personal data, shaped like some that do."""
    none = [False] * rows
    gen: dict[str, tuple[Callable[[], object], pa.DataType]] = {
        "product_code": (lambda: fake.bothify("??-####-??").upper(), pa.string()),
        # MY SSM numbers since 2019: year, entity type 01-06, serial
        "company_reg_no": (
            lambda: f"{r.randint(2019, 2025)}0{r.randint(1, 6)}" + fake.numerify("######"),
            pa.string(),
        ),
        "company_reg_grouped": (lambda: fake.numerify("#### #### #### ##"), pa.string()),
        "order_id": (lambda: fake.numerify("ORD-##########"), pa.string()),
        "order_number": (lambda: int(fake.numerify("1##########")), pa.int64()),
        "amount": (lambda: round(r.uniform(1, 99999), 2), pa.float64()),
        "order_date": (lambda: fake.date_this_decade().isoformat(), pa.string()),
        "sku_barcode": (lambda: fake.ean13(), pa.string()),
        "notes": (lambda: fake.sentence(nb_words=8), pa.string()),
    }
    for name, (make, typ) in gen.items():
        add(f"{prefix}_decoy_{name}", None, [make() for _ in range(rows)], none, typ)
