"""Differential tests of the next markets' identifiers (databourse.pii.identifiers_intl) (issue 16).

On thousands of values made at test time (Faker's providers, python-stdnum's check digits, random
mutations), our validator and an independent oracle agree; every kind of disagreement is listed
with the reason it is accepted, and any other disagreement fails. Oracles: python-stdnum (NIK,
Thai PIN, RRN, My Number, Aadhaar, PAN, SSN, IMEI, MAC), Faker's own zh_TW checksum (Taiwan);
HMRC's and the Ministry of Public Security's published rules, written here as a regex and a
table (NINO, CCCD: no package has them).
"""

from __future__ import annotations

import datetime as dt
import random
import re
import string
from collections.abc import Callable

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

from databourse.pii.identifiers import valid_mask

N = 3000
TODAY = dt.date.today()


def ours(category: str, values: list[str]) -> list[bool]:
    return valid_mask(category, pa.array(values, pa.large_string())).tolist()  # type: ignore[no-any-return]


def mutate(rng: random.Random, value: str, alphabet: str = string.digits) -> str:
    """One character of `alphabet` replaced by another (or the value unchanged, half the time)."""
    if rng.random() < 0.5:
        return value
    spots = [i for i, c in enumerate(value) if c in alphabet]
    i = rng.choice(spots)
    return value[:i] + rng.choice(alphabet.replace(value[i], "")) + value[i + 1 :]


def differ(category: str, values: list[str], oracle: Callable[[str], bool]) -> list[str]:
    """The values where we and the oracle disagree; both must accept a fair share."""
    got = ours(category, values)
    expected = [oracle(v) for v in values]
    assert N // 5 < sum(got) < N - N // 10, category  # valid and invalid values both tested
    return [v for v, g, e in zip(values, got, expected, strict=True) if g != e]


def digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def test_nik_agrees_with_stdnum() -> None:
    fake, rng = Faker("id_ID"), random.Random(21)
    fake.seed_instance(21)
    provinces = ["11", "31", "32", "35", "36", "51", "61", "65", "73", "82", "91", "94", "95", "99"]
    values = []
    for _ in range(N):
        born = fake.date_of_birth(minimum_age=0, maximum_age=90)
        day = born.day + 40 * rng.randrange(2)  # women: day + 40
        place = rng.choice(provinces) + digits(rng, 4)
        value = mutate(rng, f"{place}{day:02d}{born:%m%y}{rng.randint(1, 9999):04d}")
        values.append(value if rng.random() < 0.8 else f"{value[:6]} {value[6:12]} {value[12:]}")
    wrong = differ("ID_NIK", values, std_nik.is_valid)
    for value in wrong:
        compact = value.replace(" ", "")
        # Kalimantan Utara (65, 2012) and Papua's provinces of 2022 (92-96) are not in stdnum's
        # table; a day of 81-99 is read by stdnum as day % 40 (1-19), but 40 + 31 is the most
        assert compact[:2] in {"65", "92", "93", "95", "96"} or int(compact[6:8]) > 71, value


def test_thai_ids_agree_with_stdnum() -> None:
    fake, rng = Faker("th_TH"), random.Random(22)
    fake.seed_instance(22)
    values = [mutate(rng, fake.ssn()) for _ in range(N)]
    values = [v.replace("-", "") if rng.random() < 0.5 else v for v in values]
    assert differ("TH_ID", values, std_pin.is_valid) == []


def rrn(rng: random.Random, fake: Faker) -> str:
    """A resident registration number: birth date, sex digit, place, serial, stdnum's check."""
    born = fake.date_of_birth(minimum_age=0, maximum_age=100)
    if rng.random() < 0.05:  # some births from October 2020 and some in the future
        born = dt.date(2020, 10, 1) + dt.timedelta(days=rng.randrange(3000))
    sex = (
        rng.choice("12" if born.year < 2000 else "34") if rng.random() < 0.9 else rng.choice("5678")
    )
    body = f"{born:%y%m%d}{sex}{rng.randint(0, 99):02d}{digits(rng, 3)}"
    check = std_rrn.calc_check_digit(body) if rng.random() < 0.9 else rng.choice(string.digits)
    return body + check


def test_rrns_agree_with_stdnum() -> None:
    fake, rng = Faker("ko_KR"), random.Random(23)
    fake.seed_instance(23)
    values = [mutate(rng, rrn(rng, fake)) for _ in range(N - 300)]
    values += [fake.ssn() for _ in range(300)]  # Faker's own: random digits, mostly invalid
    values = [f"{v[:6]}-{v[6:]}" if rng.random() < 0.7 and "-" not in v else v for v in values]
    for value in differ("KR_RRN", values, std_rrn.is_valid):
        compact = value.replace("-", "")
        century = {"1": 1900, "2": 1900, "5": 1900, "6": 1900, "9": 1800, "0": 1800}
        year = century.get(compact[6], 2000) + int(compact[:2])
        born = dt.date(year, int(compact[2:4]), int(compact[4:6]))
        # numbered at random since October 2020 (no check digit); a future birth date is no
        # one's (stdnum allows it by default)
        assert born >= dt.date(2020, 10, 1), value
        assert (born > TODAY) == std_rrn.is_valid(value), value


def test_my_numbers_agree_with_stdnum() -> None:
    rng = random.Random(24)
    values = []
    for _ in range(N):
        body = digits(rng, 11)
        value = mutate(rng, body + std_my_number.calc_check_digit(body))
        values.append(value if rng.random() < 0.6 else std_my_number.format(value))
    assert differ("JP_MY_NUMBER", values, std_my_number.is_valid) == []


def test_aadhaar_agrees_with_stdnum() -> None:
    fake, rng = Faker("en_IN"), random.Random(25)
    fake.seed_instance(25)
    values = []
    for _ in range(N):
        body = fake.aadhaar_id()[:11]  # Faker ends with a Luhn digit; Aadhaar uses Verhoeff
        value = mutate(rng, body + std_verhoeff.calc_check_digit(body))
        sep = rng.choice(["", " ", "-"])
        values.append(sep.join([value[:4], value[4:8], value[8:]]))
    values += ["234567765432", "2345 6776 5432"]  # palindromes: never issued
    assert differ("IN_AADHAAR", values, std_aadhaar.is_valid) == []


def test_pans_agree_with_stdnum() -> None:
    fake, rng = Faker("en_IN"), random.Random(26)
    fake.seed_instance(26)
    values = []
    for _ in range(N):
        value = mutate(rng, fake.pan(), string.ascii_uppercase + string.digits)
        if rng.random() < 0.1:
            value = value[:5] + "0000" + value[9:]
        values.append(value.lower() if rng.random() < 0.1 else value)
    assert differ("IN_PAN", values, std_pan.is_valid) == []


def test_ssns_agree_with_stdnum() -> None:
    fake, rng = Faker("en_US"), random.Random(27)
    fake.seed_instance(27)
    values = []
    for _ in range(N):
        kind = "INVALID_SSN" if rng.random() < 0.3 else "SSN"
        value = mutate(rng, fake.ssn(taxpayer_identification_number_type=kind))
        values.append(value.replace("-", rng.choice(["-", "-", " "])))
    values += ["078-05-1120", "219-09-9999", "457-55-5462"]  # voided by the SSA
    for value in differ("US_SSN", values, std_ssn.is_valid):
        # written with spaces (Presidio reads "078 05 1123"); stdnum only strips dashes
        assert " " in value and std_ssn.is_valid(value.replace(" ", "-")), value
    # a bare 9-digit number is any code: stdnum takes it, we do not
    bare = [fake.ssn().replace("-", "") for _ in range(100)]
    assert sum(ours("US_SSN", bare)) == 0
    assert all(std_ssn.is_valid(v) for v in bare)


# HMRC, National Insurance Manual NIM39110: neither prefix letter D, F, I, Q, U or V; the second
# not O; BG, GB, KN, NK, NT, TN and ZZ never allocated; six digits; suffix A, B, C or D.
HMRC_NINO = re.compile(
    r"^(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$", re.IGNORECASE
)


def test_ninos_agree_with_hmrc_rules() -> None:
    fake, rng = Faker("en_GB"), random.Random(28)
    fake.seed_instance(28)
    values = []
    for _ in range(N):
        if rng.random() < 0.1:
            values.append(fake.ssn())  # Faker's: the ZZ prefix, never allocated
            continue
        letters = "".join(
            rng.choice("ABCEGHJKLMNPRSTWXYZ" if rng.random() < 0.8 else string.ascii_uppercase)
            for _ in range(2)
        )
        suffix = rng.choice("ABCD" if rng.random() < 0.85 else string.ascii_uppercase)
        value = letters + digits(rng, 6) + suffix
        spaced = " ".join([value[:2], value[2:4], value[4:6], value[6:8], value[8]])
        values.append(spaced if rng.random() < 0.5 else value)
    assert differ("UK_NINO", values, lambda v: bool(HMRC_NINO.match(v.replace(" ", "")))) == []


def test_taiwan_ids_agree_with_fakers_checksum() -> None:
    fake, rng = Faker("zh_TW"), random.Random(29)
    fake.seed_instance(29)
    values = []
    for _ in range(N):
        value = fake.ssn()
        if rng.random() < 0.1:  # resident certificates since 2021: 8 or 9 after the letter
            value = value[0] + rng.choice("89") + value[2:]
        if rng.random() < 0.2:
            value = rng.choice(string.ascii_uppercase) + value[1:]
        values.append(mutate(rng, value))

    def oracle(value: str) -> bool:
        return value[1] in "1289" and faker_tw_checksum(value) % 10 == 0

    assert differ("TW_ID", values, oracle) == []


# GSMA TS.06 annex A: reporting bodies that allocate (or allocated) type codes
ALLOCATED = {"01", "10", "30", "33", "35", "44", "45", "49", "50", "51", "52", "53", "54", "86"}
ALLOCATED |= {"91", "98", "99"}


def test_imeis_agree_with_stdnum() -> None:
    rng = random.Random(30)
    values = []
    for _ in range(N):
        head = rng.choice(sorted(ALLOCATED)) if rng.random() < 0.85 else digits(rng, 2)
        body = head + digits(rng, 12)
        value = mutate(rng, body + std_luhn.calc_check_digit(body))
        values.append(value if rng.random() < 0.6 else std_imei.format(value))
    for value in differ("IMEI", values, std_imei.is_valid):
        # a type code no reporting body allocated (test IMEIs 00, 02-09 or unassigned)
        assert value[:2] not in ALLOCATED and std_imei.is_valid(value), value


def test_macs_agree_with_stdnum() -> None:
    fake, rng = Faker(), random.Random(31)
    fake.seed_instance(31)
    values = []
    for _ in range(N):
        value = fake.mac_address(multicast=rng.random() < 0.1)
        value = mutate(rng, value, string.hexdigits.lower()) if rng.random() < 0.5 else value
        if rng.random() < 0.1:
            value = value[:-3]
        values.append(value.upper().replace(":", "-") if rng.random() < 0.3 else value)
    values += ["00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "0012.3456.789a"]

    def oracle(value: str) -> bool:  # shape only: an OUI need not be registered
        return std_mac.is_valid(value, validate_manufacturer=False)

    for value in differ("MAC_ADDRESS", values, oracle):
        hexes = value.replace(":", "").replace("-", "").replace(".", "")
        # a group address (multicast, broadcast) or all zeros is no device's; Cisco's dotted
        # form (0012.3456.789a) is one device's address that stdnum does not read
        assert int(hexes[:2], 16) & 1 or set(hexes) == {"0"} or "." in value, value


# Circular 07/2016/TT-BCA, annex 1: the 63 provinces' codes (a table transcribed apart from the
# validator's, by name: Hà Nội 001 ... Cà Mau 096)
VN_CODES = {
    "Hà Nội": 1, "Hà Giang": 2, "Cao Bằng": 4, "Bắc Kạn": 6, "Tuyên Quang": 8, "Lào Cai": 10,
    "Điện Biên": 11, "Lai Châu": 12, "Sơn La": 14, "Yên Bái": 15, "Hòa Bình": 17,
    "Thái Nguyên": 19, "Lạng Sơn": 20, "Quảng Ninh": 22, "Bắc Giang": 24, "Phú Thọ": 25,
    "Vĩnh Phúc": 26, "Bắc Ninh": 27, "Hải Dương": 30, "Hải Phòng": 31, "Hưng Yên": 33,
    "Thái Bình": 34, "Hà Nam": 35, "Nam Định": 36, "Ninh Bình": 37, "Thanh Hóa": 38,
    "Nghệ An": 40, "Hà Tĩnh": 42, "Quảng Bình": 44, "Quảng Trị": 45, "Thừa Thiên Huế": 46,
    "Đà Nẵng": 48, "Quảng Nam": 49, "Quảng Ngãi": 51, "Bình Định": 52, "Phú Yên": 54,
    "Khánh Hòa": 56, "Ninh Thuận": 58, "Bình Thuận": 60, "Kon Tum": 62, "Gia Lai": 64,
    "Đắk Lắk": 66, "Đắk Nông": 67, "Lâm Đồng": 68, "Bình Phước": 70, "Tây Ninh": 72,
    "Bình Dương": 74, "Đồng Nai": 75, "Bà Rịa - Vũng Tàu": 77, "Hồ Chí Minh": 79, "Long An": 80,
    "Tiền Giang": 82, "Bến Tre": 83, "Trà Vinh": 84, "Vĩnh Long": 86, "Đồng Tháp": 87,
    "An Giang": 89, "Kiên Giang": 91, "Cần Thơ": 92, "Hậu Giang": 93, "Sóc Trăng": 94,
    "Bạc Liêu": 95, "Cà Mau": 96,
}  # fmt: skip


def test_cccds_agree_with_the_circulars_rules() -> None:
    fake, rng = Faker("vi_VN"), random.Random(32)
    fake.seed_instance(32)
    values = []
    for _ in range(N):
        born = fake.date_of_birth(minimum_age=0, maximum_age=100)
        code = rng.choice(list(VN_CODES.values())) if rng.random() < 0.8 else rng.randint(0, 99)
        sex = rng.randrange(2) + (0 if born.year < 2000 else 2)
        values.append(mutate(rng, f"{code:03d}{sex}{born:%y}{digits(rng, 6)}"))

    def oracle(value: str) -> bool:  # century and sex: 0/1 for 1900-1999, 2/3 for 2000-2099
        century = {"0": 1900, "1": 1900, "2": 2000, "3": 2000}.get(value[3])
        placed = int(value[:3]) in VN_CODES.values()
        return placed and century is not None and century + int(value[4:6]) <= TODAY.year

    assert differ("VN_CCCD", values, oracle) == []


def test_each_listed_departure_is_what_we_say() -> None:
    """The disagreements above, one by one, so that undoing one of them fails here."""
    rng = random.Random(33)
    late = dt.date(2021, 3, 4)
    body = f"{late:%y%m%d}3{rng.randint(0, 96):02d}{digits(rng, 3)}"
    wrong_check = body + str((int(std_rrn.calc_check_digit(body)) + 1) % 10)
    early = "850304" + wrong_check[6:]  # born 1985 (sex digit 1): numbered with a check digit
    early = early[:6] + "1" + early[7:]
    assert ours("KR_RRN", [wrong_check, early]) == [True, False]
    assert ours("ID_NIK", ["6501011708450001", "3171018108450001"]) == [True, False]
    body = "00" + digits(rng, 12)  # a test IMEI
    assert ours("IMEI", [body + std_luhn.calc_check_digit(body)]) == [False]
    assert ours("MAC_ADDRESS", ["01:00:5e:00:00:fb", "00:00:00:00:00:00", "0012.3456.789a"]) == [
        False,
        False,
        True,
    ]
    assert ours("US_SSN", ["536 90 4399", "536904399"]) == [True, False]
    # one repeated digit is a form's placeholder (stdnum takes 000000000000 as a My Number)
    assert std_my_number.is_valid("000000000000")
    assert ours("JP_MY_NUMBER", ["000000000000"]) == [False]
    assert ours("PH_ID", ["00-0000000-0", "99-9999999-9"]) == [False, False]
