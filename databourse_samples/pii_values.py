"""PII values for the evaluation set, built from the published rules (check digits, formats)."""

from __future__ import annotations

import datetime as dt
import random
import string

import phonenumbers

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_AREAS = ("440305", "440304", "440106", "110105", "310104", "510107", "330106", "420106")


def digits(r: random.Random, n: int) -> str:
    """`n` random decimal digits."""
    return "".join(r.choice(string.digits) for _ in range(n))


def _birth(r: random.Random) -> dt.date:
    return dt.date(1940, 1, 1) + dt.timedelta(days=r.randrange(365 * 66))


def cn_id(r: random.Random, wrong: bool = False) -> str:
    """GB 11643-1999 resident id (ISO 7064 MOD 11-2)."""
    body = f"{r.choice(_AREAS)}{_birth(r):%Y%m%d}{digits(r, 3)}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]
    return body + (r.choice([c for c in "0123456789X" if c != check]) if wrong else check)


def uscc(r: random.Random, wrong: bool = False) -> str:
    """GB 32100-2015 unified social credit code: weights 3^i mod 31 over 17 symbols."""
    org = "".join(r.choice(_USCC_ALPHABET) for _ in range(9))
    body = f"{r.choice('159')}{r.choice('123')}{r.choice(_AREAS)}{org}"
    total = sum(_USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(body))
    check = _USCC_ALPHABET[(31 - total % 31) % 31]
    if wrong:
        check = r.choice([c for c in _USCC_ALPHABET if c != check])
    return body + check


def hk_id(r: random.Random, wrong: bool = False) -> str:
    """HKID: 1-2 letters, 6 digits, check (weights 9..2, one letter padded with 36)."""
    letters = "".join(r.choice(string.ascii_uppercase) for _ in range(r.choice([1, 1, 1, 2])))
    six = digits(r, 6)
    values = [36] * (2 - len(letters)) + [ord(c) - 55 for c in letters] + [int(c) for c in six]
    check = (11 - sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True)) % 11) % 11
    char = "A" if check == 10 else str(check)
    if wrong:
        char = r.choice([c for c in "0123456789A" if c != char])
    return f"{letters}{six}({char})" if r.random() < 0.7 else f"{letters}{six}{char}"


def sg_nric(r: random.Random) -> str:
    """S/T/F/G/M, 7 digits, check letter (weights 2 7 6 5 4 3 2 plus the prefix offset)."""
    prefix, seven = r.choice("STFGM"), digits(r, 7)
    offset, letters = {
        "S": (0, "JZIHGFEDCBA"),
        "T": (4, "JZIHGFEDCBA"),
        "F": (0, "XWUTRQPNMLK"),
        "G": (4, "XWUTRQPNMLK"),
        "M": (3, "XWUTRQPNJLK"),
    }[prefix]
    total = sum(int(c) * w for c, w in zip(seven, (2, 7, 6, 5, 4, 3, 2), strict=True))
    return prefix + seven + letters[(total + offset) % 11]


def my_nric(r: random.Random) -> str:
    """YYMMDD-PB-###G with an assigned place-of-birth code."""
    pb = r.choice([*range(1, 17), *range(21, 59)])
    return f"{_birth(r):%y%m%d}-{pb:02d}-{digits(r, 4)}"


def phone(r: random.Random) -> str:
    """CN mobiles, MY and SG numbers in the usual written forms; valid per phonenumbers."""
    while True:
        text, region = r.choice(
            [
                (f"1{r.choice('3589')}{digits(r, 9)}", "CN"),
                (f"+86 13{digits(r, 1)} {digits(r, 4)} {digits(r, 4)}", None),
                (f"01{r.choice('2346789')}-{digits(r, 7)}", "MY"),
                (f"+60 12-{digits(r, 3)} {digits(r, 4)}", None),
                (f"{r.choice('89')}{digits(r, 3)} {digits(r, 4)}", "SG"),
                (f"+65 {r.choice('689')}{digits(r, 3)} {digits(r, 4)}", None),
            ]
        )
        if phonenumbers.is_valid_number(phonenumbers.parse(text, region)):
            return text


def email(r: random.Random) -> str:
    user = r.choice(["li.wei", "ahmad.ali", "tan_mei", "siti88", "k.lim"]) + str(r.randrange(999))
    return f"{user}@{r.choice(['gmail.com', 'qq.com', '163.com', 'example.com.sg', 'tm.net.my'])}"


def ip(r: random.Random) -> str:
    if r.random() < 0.8:
        return ".".join(str(r.randrange(1, 255)) for _ in range(4))
    return ":".join(f"{r.getrandbits(16):x}" for _ in range(8))


def _mod97_check(country: str, bban: str) -> str:
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{98 - int(digits) % 97:02d}"


def iban(r: random.Random, wrong: bool = False) -> str:
    """IBANs of countries whose banks trade with the region (GB, DE, FR, NL, CH)."""
    country, bban = r.choice(
        [
            ("GB", "".join(r.choice("ABCDEFHLMNW") for _ in range(4)) + digits(r, 14)),
            ("DE", digits(r, 18)),
            ("FR", digits(r, 10) + "".join(r.choice("0123456789ABC") for _ in range(11)) + "00"),
            ("NL", r.choice(["ABNA", "INGB", "RABO"]) + digits(r, 10)),
            ("CH", digits(r, 17)),
        ]
    )
    check = _mod97_check(country, bban)
    if wrong:
        check = f"{(int(check) + r.randint(1, 90)) % 97 + 2:02d}"
    text = country + check + bban
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4)) if r.random() < 0.5 else text


def _luhn_ok(number: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(number)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def card(r: random.Random, valid: bool = True) -> str:
    """Visa, Mastercard, UnionPay (16 and 19 digits), JCB; Luhn-valid unless `valid` is False."""
    prefix, length = r.choice([("4", 16), ("5", 16), ("62", 16), ("62", 19), ("35", 16)])
    prefix += r.choice("12345") if prefix == "5" else ""
    prefix += str(r.randint(28, 89)) if prefix == "35" else ""  # JCB is 3528-3589
    while True:
        number = prefix + digits(r, length - len(prefix))
        if _luhn_ok(number) == valid:
            return number


def sg_plate(r: random.Random, wrong: bool = False) -> str:
    """Singapore plate with its check letter (weights 9 4 5 4 3 2, mod 19)."""
    letters = "S" + "".join(r.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
    number = str(r.randint(1, 9999))
    values = [ord(c) - 64 for c in letters[1:]] + [int(c) for c in number.rjust(4, "0")]
    total = sum(v * w for v, w in zip(values, (9, 4, 5, 4, 3, 2), strict=True))
    check = "AZYXUTSRPMLKJHGEDCB"[total % 19]
    if wrong:
        check = r.choice([c for c in "AZYXUTSRPMLKJHGEDCB" if c != check])
    return f"{letters} {number} {check}"


def plate(r: random.Random) -> str:
    kind = r.randrange(3)
    if kind == 0:
        body = "".join(r.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(5))
        nev = r.random() < 0.3
        return r.choice("粤京沪苏浙闽") + r.choice("ABCDE") + ("D" + digits(r, 5) if nev else body)
    if kind == 1:
        prefix = r.choice("WVBJPK") + r.choice("ABCDEFGHJKLMNPRSTUVWXY") + r.choice("ABCDEFGHJK")
        return f"{prefix} {r.randint(1, 9999)}"
    return sg_plate(r)


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰"
PINYIN = ["Zhang", "Wang", "Li", "Liu", "Chen", "Tan", "Lim", "Lee", "Ng", "Wong", "Goh", "Ong"]
SYLL = ["Wei", "Mei", "Ling", "Jun", "Hui", "Xin", "Ming", "Kah", "Boon", "Siew", "Yi", "Hao"]
MALAY = ["Ahmad", "Nur Aisyah", "Mohd Faizal", "Siti", "Azlan", "Farah", "Hafiz", "Aminah"]
FATHERS = ["Abdullah", "Ismail", "Ibrahim", "Hassan", "Othman", "Yusof", "Abdul Rahman"]
INDIAN = ["Suresh", "Kavitha", "Rajesh", "Priya", "Arun", "Lakshmi", "Muthu", "Deepa"]
INDIAN_F = ["Subramaniam", "Rajendran", "Muniandy", "Krishnan", "Arumugam", "Perumal"]
WESTERN = ["James", "Mary", "David", "Sarah", "Michael", "Emily", "Peter", "Anna"]
LASTS = ["Smith", "Brown", "Taylor", "Wilson", "Johnson", "Walker", "Hughes", "Clarke"]


def person(r: random.Random) -> str:
    kind = r.randrange(5)
    if kind == 0:
        return r.choice(SURNAMES) + "".join(r.choice(GIVEN) for _ in range(r.choice([1, 2])))
    if kind == 1:
        given = " ".join(r.choice(SYLL) for _ in range(r.choice([1, 2])))
        name = f"{r.choice(PINYIN)} {given}"
        return name.upper() if r.random() < 0.2 else name
    if kind == 2:
        return f"{r.choice(MALAY)} {r.choice(['bin', 'binti'])} {r.choice(FATHERS)}"
    if kind == 3:
        return f"{r.choice(INDIAN)} {r.choice(['a/l', 'a/p'])} {r.choice(INDIAN_F)}"
    return f"{r.choice(WESTERN)} {r.choice(LASTS)}"


def address(r: random.Random) -> str:
    kind = r.randrange(3)
    if kind == 0:
        district = r.choice(["南山区", "福田区", "天河区", "浦东新区"])
        road = r.choice(["科技园路", "深南大道", "中山二路", "建设街"])
        return f"广东省深圳市{district}{road}{r.randint(1, 999)}号{r.randint(1, 30)}栋"
    if kind == 1:
        street = r.choice(["Jalan Ampang", "Jalan Tun Razak", "Lorong Maarof", "Jalan SS2/24"])
        return f"{r.randint(1, 99)}, {street}, Taman Maju, {r.randint(40000, 59999)} Kuala Lumpur"
    street = r.choice(["Ang Mo Kio Ave 3", "Tampines St 21", "Jurong West St 52"])
    unit = f"#{r.randint(1, 30):02d}-{r.randint(1, 999):02d}"
    return f"Blk {r.randint(1, 999)} {street} {unit} Singapore {r.randint(100000, 829999)}"


def geo(r: random.Random) -> str:
    lat, lon = r.choice([(22.54, 114.05), (3.139, 101.68), (1.352, 103.82)])
    return f"{lat + r.uniform(-0.2, 0.2):.6f}, {lon + r.uniform(-0.2, 0.2):.6f}"


def passport(r: random.Random) -> str:
    return "E" + digits(r, 8) if r.random() < 0.8 else "E" + r.choice("ABCDEF") + digits(r, 7)


def dob(r: random.Random) -> str:
    d = _birth(r)
    return r.choice([f"{d:%Y-%m-%d}", f"{d:%d/%m/%Y}", f"{d:%Y%m%d}"])


def bank_account(r: random.Random) -> str:
    while True:  # Maybank 12, CIMB 14, DBS 10 (3-6-1), ICBC 19 digits; never a valid card
        value = r.choice(
            [
                lambda: r.choice("15") + digits(r, 11),
                lambda: "8" + digits(r, 13),
                lambda: f"{digits(r, 3)}-{digits(r, 6)}-{digits(r, 1)}",
                lambda: "4000" + digits(r, 15),
            ]
        )()
        if not _luhn_ok(value.replace("-", "")):
            return value
