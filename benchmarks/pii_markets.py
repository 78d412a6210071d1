"""Independent columns of the next markets' identifiers for `pii_independent` (issue 16, class 10).

Values come from Faker's providers where Faker has them (Thai, Taiwanese and US ids, PANs, MAC
addresses, Philippine SSS/PhilHealth/UMID numbers), else from Faker's dates and random digits
completed by python-stdnum's check digits (NIK, RRN, My Number, Aadhaar: Faker's own Aadhaar
uses Luhn, its RRNs have no check digit, its NINOs the never-allocated ZZ prefix). Each value's
truth is its oracle's verdict (python-stdnum, Faker's zh_TW checksum, HMRC's published NINO
rules), never our detector's; CCCDs, Philippine ids and profile URLs, which no package checks,
are true by construction (CCCDs from the Circular's province codes and Faker's birth dates).
Decoys: digit runs of each new length, millisecond timestamps, hashes, plain URLs, dashed codes.
"""

from __future__ import annotations

import hashlib
import random
import re
import string
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from faker import Faker
from faker.providers.ssn.zh_TW import checksum as faker_tw_checksum
from stdnum import imei as std_imei
from stdnum import luhn as std_luhn
from stdnum import mac as std_mac
from stdnum import verhoeff as std_verhoeff
from stdnum.id import nik as std_nik
from stdnum.in_ import aadhaar as std_aadhaar
from stdnum.in_ import pan as std_pan
from stdnum.jp import in_ as std_my_number
from stdnum.kr import rrn as std_rrn
from stdnum.th import pin as std_pin
from stdnum.us import ssn as std_ssn

Add = Callable[..., None]  # add(name, label, values, truth flags, type)
# HMRC, National Insurance Manual NIM39110
HMRC_NINO = re.compile(
    r"^(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$", re.IGNORECASE
)
NIK_PROVINCES = ("11", "12", "31", "32", "33", "34", "35", "36", "51", "61", "64", "73", "91")
SOCIAL = (
    "https://www.facebook.com/{u}",
    "https://twitter.com/{u}",
    "https://www.instagram.com/{u}/",
    "https://www.linkedin.com/in/{u}",
    "https://github.com/{u}",
    "https://www.tiktok.com/@{u}",
    "https://t.me/{u}",
    "https://medium.com/@{u}",
    "https://www.reddit.com/user/{u}",
    "https://{d}/~{u}/",
    "https://{d}/users/{u}",
    "https://{d}/author/{u}/",
)


def _digits(r: random.Random, n: int) -> str:
    return "".join(r.choice(string.digits) for _ in range(n))


def _nik(r: random.Random, fake: Faker) -> str:
    born = fake.date_of_birth(minimum_age=0, maximum_age=90)
    day = born.day + 40 * r.randrange(2)
    return f"{r.choice(NIK_PROVINCES)}{_digits(r, 4)}{day:02d}{born:%m%y}{r.randint(1, 9999):04d}"


def _rrn(r: random.Random, fake: Faker) -> str:
    born = fake.date_of_birth(minimum_age=1, maximum_age=90)
    sex = r.choice("12" if born.year < 2000 else "34")
    body = f"{born:%y%m%d}{sex}{r.randint(0, 96):02d}{_digits(r, 3)}"
    value = body + std_rrn.calc_check_digit(body)
    return f"{value[:6]}-{value[6:]}" if r.random() < 0.7 else value


def _my_number(r: random.Random) -> str:
    body = _digits(r, 11)
    value = body + std_my_number.calc_check_digit(body)
    return std_my_number.format(value) if r.random() < 0.5 else value


def _aadhaar(r: random.Random, fake: Faker) -> str:
    body = fake.aadhaar_id()[:11]
    value = body + std_verhoeff.calc_check_digit(body)
    return r.choice(["", " ", "-"]).join([value[:4], value[4:8], value[8:]])


def _nino(r: random.Random) -> str:
    value = "".join(r.choice("ABCEGHJKLMNPRSTWXYZ") for _ in range(2)) + _digits(r, 6)
    value += r.choice("ABCD")
    return (
        " ".join([value[:2], value[2:4], value[4:6], value[6:8], value[8]])
        if r.random() < 0.5
        else value
    )


def _imei(r: random.Random) -> str:
    body = r.choice(["35", "86", "01", "99", "35", "86"]) + _digits(r, 12)
    value = body + std_luhn.calc_check_digit(body)
    return std_imei.format(value) if r.random() < 0.3 else value


def _profile(r: random.Random, fake: Faker) -> str:
    user = re.sub(r"[^a-z0-9._-]", "", fake.user_name().lower()) or "user"
    return r.choice(SOCIAL).format(u=user, d=fake.domain_name())


def _ph_id(r: random.Random, fake: Faker) -> str:
    return r.choice([fake.sss, fake.philhealth, fake.umid])()


def _cccd(r: random.Random, fake: Faker) -> str:
    born = fake.date_of_birth(minimum_age=0, maximum_age=90)
    code = r.choice([1, 31, 48, 79, 92, 96, 22, 38])
    return f"{code:03d}{r.randrange(2) + (0 if born.year < 2000 else 2)}{born:%y}{_digits(r, 6)}"


def _tw_ok(value: str) -> bool:
    return (
        re.fullmatch(r"[A-Z][1289]\d{8}", value) is not None and faker_tw_checksum(value) % 10 == 0
    )


def _mac_ok(value: str) -> bool:
    return std_mac.is_valid(value, validate_manufacturer=False)


# locale -> [(label, make(r, fake), oracle or None for labelled by construction)]
Maker = Callable[[random.Random, Faker], str]
MARKET_IDS: dict[str, list[tuple[str, Maker, Callable[[str], bool] | None]]] = {
    "id_ID": [("ID_NIK", _nik, std_nik.is_valid)],
    "th_TH": [("TH_ID", lambda r, f: f.ssn(), std_pin.is_valid)],
    "vi_VN": [("VN_CCCD", _cccd, None)],
    "zh_TW": [("TW_ID", lambda r, f: f.ssn(), _tw_ok)],
    "ko_KR": [("KR_RRN", _rrn, std_rrn.is_valid)],
    "ja_JP": [("JP_MY_NUMBER", lambda r, f: _my_number(r), std_my_number.is_valid)],
    "en_IN": [
        ("IN_AADHAAR", _aadhaar, std_aadhaar.is_valid),
        ("IN_PAN", lambda r, f: f.pan(), std_pan.is_valid),
    ],
    "en_US": [("US_SSN", lambda r, f: f.ssn(), std_ssn.is_valid)],
    "en_GB": [
        ("UK_NINO", lambda r, f: _nino(r), lambda v: bool(HMRC_NINO.match(v.replace(" ", ""))))
    ],
    "en_PH": [("PH_ID", _ph_id, None)],
}
DEVICE_IDS: list[tuple[str, Maker, Callable[[str], bool] | None]] = [
    ("MAC_ADDRESS", lambda r, f: f.mac_address(), _mac_ok),
    ("IMEI", lambda r, f: _imei(r), std_imei.is_valid),
    ("PERSONAL_URL", _profile, None),
]
# numbers typed as numbers: (label, make, oracle) of ids that keep their digits as an int64
NUMERIC_IDS = {"IN_AADHAAR", "ID_NIK", "TH_ID"}  # a My Number or a CCCD may lose a leading 0


def market_columns(locale: str, fake: Faker, r: random.Random, rows: int, add: Add) -> None:
    """The locale's national ids (as text, and as int64 where the digits survive)."""
    for label, make, oracle in MARKET_IDS.get(locale, []):
        values = [make(r, fake) for _ in range(rows)]
        flags = [oracle(v) if oracle else True for v in values]
        add(f"{locale}_{label.lower()}", label, values, flags, pa.string())
        if label in NUMERIC_IDS:
            numbers = [int(re.sub(r"\D", "", v)) for v in values]
            add(f"{locale}_{label.lower()}_int64", label, numbers, flags, pa.int64())


def dirty_column(locale: str, fake: Faker, r: random.Random, rows: int, add: Add) -> None:
    """The locale's first national id with a quarter of the values placeholders or typos."""
    if locale not in MARKET_IDS:
        return
    label, make, oracle = MARKET_IDS[locale][0]
    values, flags = [], []
    for _ in range(rows):
        value = make(r, fake)
        if r.random() < 0.25:  # a typo (its oracle says whether it is still valid) or a placeholder
            cut = r.randrange(len(value))
            typo = value[:cut] + value[cut + 1 :]
            value = r.choice([typo, typo, "N/A", "-", "unknown", "0" * len(value)])
            flags.append(value == typo and oracle is not None and oracle(value))
        else:
            flags.append(oracle(value) if oracle else True)
        values.append(value)
    add(f"{locale}_dirty_{label.lower()}", label, values, flags, pa.string())


def device_columns(prefix: str, fake: Faker, r: random.Random, rows: int, add: Add) -> None:
    """MAC addresses, IMEIs and profile URLs."""
    for label, make, oracle in DEVICE_IDS:
        values = [make(r, fake) for _ in range(rows)]
        add(
            f"{prefix}_{label.lower()}",
            label,
            values,
            [oracle(v) if oracle else True for v in values],
            pa.string(),
        )


def market_decoys(prefix: str, fake: Faker, r: random.Random, rows: int, add: Add) -> None:
    """Columns of no one's data in the new categories' lengths and shapes."""
    gen: dict[str, tuple[Callable[[], Any], pa.DataType]] = {
        **{f"digits_{n}": (lambda n=n: _digits(r, n), pa.string()) for n in (12, 13, 15, 16)},
        "digits_13_int64": (lambda: int("1" + _digits(r, 12)), pa.int64()),
        "timestamp_ms": (lambda: str(r.randint(1_500_000_000_000, 1_900_000_000_000)), pa.string()),
        "md5": (lambda: hashlib.md5(_digits(r, 20).encode()).hexdigest(), pa.string()),
        "url": (lambda: r.choice([fake.url, fake.uri, fake.image_url])(), pa.string()),
        "gift_code": (lambda: "-".join(_digits(r, 4) for _ in range(3)), pa.string()),
        "serial_2_7_1": (lambda: f"SN-{_digits(r, 7)}-{_digits(r, 1)}", pa.string()),
    }
    none = [False] * rows
    for name, (make, typ) in gen.items():
        add(f"{prefix}_decoy_{name}", None, [make() for _ in range(rows)], none, typ)
