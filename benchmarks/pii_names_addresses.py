"""Independent columns of names, addresses and emails for `pii_independent` (issue 16, 5-7).

- Internationalized emails: Faker's people, words and domains of the locale (Unicode local
  parts and domains, the locale's IDN top-level domains in Unicode and punycode) and RFC 5322
  special characters; each value's truth is email-validator's verdict.
- Dirty name and address columns: a quarter of Faker's values replaced by placeholders, words or
  a number; a value is true when it is still Faker's name or address (a typo keeps it personal).
- Decoys: product names (Faker's colours and words), place names, company names, city lists and
  comments of the locale, none of them personal data.
The detector takes none of its name lists from Faker: these columns test it on Faker's.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from email_validator import EmailNotValidError, validate_email
from faker import Faker

Add = Callable[..., None]  # add(name, label, values, truth flags, type)
PLACEHOLDERS = ("N/A", "-", "unknown", "TBC", "none", "未提供", "tiada", "0")
DIRTY_SHARE = 0.25
# IANA top-level domains of the markets, in Unicode and as punycode
IDN_TLDS = (
    "中国",
    "中國",
    "香港",
    "台灣",
    "新加坡",
    "ไทย",
    "xn--fiqs8s",
    "xn--j6w193g",
    "xn--o3cw4h",
)
SPECIALS = "!#$%&'*+/=?^_`{|}~-"
# Locales whose names the detector does not read yet: their plain name column shows the gap; a
# dirty one would only show it twice. (Korean names are read since issue 16's third part.)
NAME_GAPS: frozenset[str] = frozenset()


def email_ok(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
        return True
    except EmailNotValidError:
        return False


def _idn_email(fake: Faker, r: random.Random) -> str:
    local = r.choice([fake.first_name(), fake.last_name(), fake.user_name(), fake.word()])
    local = "".join(local.split()).lower()
    domain = r.choice([fake.domain_word(), "".join(fake.word().split())])
    return f"{local}@{domain}.{r.choice([*IDN_TLDS, fake.tld()])}"


def _special_email(fake: Faker, r: random.Random) -> str:
    user = fake.user_name()
    cut = r.randrange(1, len(user)) if len(user) > 1 else 1
    extra = "".join(r.choice(SPECIALS) for _ in range(r.randint(1, 3)))
    return f"{user[:cut]}{extra}{user[cut:]}@{fake.free_email_domain()}"


def _dirty(r: random.Random, fake: Faker, values: list[str]) -> tuple[list[str], list[bool]]:
    out, truth = [], []
    for value in values:
        roll = r.random()
        if roll >= DIRTY_SHARE:
            out.append(value)
            truth.append(True)
        elif roll < DIRTY_SHARE / 3:
            out.append(r.choice(PLACEHOLDERS))
            truth.append(False)
        elif roll < 2 * DIRTY_SHARE / 3:
            out.append(fake.word())
            truth.append(False)
        else:  # a typo: one character dropped, still the person's
            cut = r.randrange(len(value))
            out.append(value[:cut] + value[cut + 1 :])
            truth.append(True)
    return out, truth


def _product(fake: Faker, r: random.Random) -> str:
    words = [fake.word().title() for _ in range(r.randint(1, 2))]
    return " ".join([r.choice([fake.color_name(), fake.word().title()]), *words])


def name_address_columns(prefix: str, fake: Faker, r: random.Random, rows: int, add: Add) -> None:
    """Email, dirty and decoy columns of one Faker locale, added through `add`."""
    for kind, make in (("idn", _idn_email), ("special", _special_email)):
        values = [make(fake, r) for _ in range(rows)]
        add(f"{prefix}_{kind}_email", "EMAIL_ADDRESS", values, [email_ok(v) for v in values],
            pa.string())  # fmt: skip
    if prefix not in NAME_GAPS:
        names, truth = _dirty(r, fake, [fake.name() for _ in range(rows)])
        add(f"{prefix}_dirty_name", "PERSON_NAME", names, truth, pa.string())
    addresses = [fake.address().replace("\n", ", ") for _ in range(rows)]
    dirty, truth = _dirty(r, fake, addresses)
    add(f"{prefix}_dirty_address", "ADDRESS", dirty, truth, pa.string())
    none = [False] * rows
    decoys: dict[str, Callable[[], Any]] = {
        "product_name": lambda: _product(fake, r),
        "place": fake.city,
        "company": fake.company,
        "city_list": lambda: ", ".join(fake.city() for _ in range(r.randint(2, 4))),
        "comment": lambda: fake.sentence(nb_words=r.randint(6, 14)),
    }
    for name, make in decoys.items():
        add(f"{prefix}_decoy_{name}", None, [make() for _ in range(rows)], none, pa.string())


# ---- free text: names and addresses inside sentences -----------------------------------------


def english_mentions(f: Faker, r: random.Random) -> tuple[str, str]:
    """A sentence naming a person and one holding an address (Faker's people and streets)."""
    name = f"{f.sentence(nb_words=5)[:-1]} {r.choice(['with', 'and', 'by'])} {f.name()}."
    titled = f"Please call {r.choice(['Mr', 'Mrs', 'Dr', 'Ms'])} {f.last_name()} today."
    address = f"Please deliver to {f.street_address()} before {f.day_of_week()}."
    return r.choice([name, titled]), address


def chinese_mentions(f: Faker, r: random.Random) -> tuple[str, str]:
    name = r.choice([f"{f.sentence()}{f.name()}{r.choice(['先生', '女士', '老师'])}。",
                     f"收件人：{f.name()}，{f.sentence()}"])  # fmt: skip
    address = f.address().split(" ")
    return name, f"请寄到{address[1] if address[0].isdigit() else address[0]}，谢谢。"


def malay_mentions(f: Faker, r: random.Random) -> tuple[str, str]:
    who = r.choice([f"{f.first_name()} {r.choice(['bin', 'binti'])} {f.first_name()}",
                    f"{r.choice(['Encik', 'Puan', 'Cik'])} {f.first_name()}"])  # fmt: skip
    address = (f"Hantar ke No. {r.randint(1, 99)}, Jalan {f.last_name()} {r.randint(1, 20)}, "
               f"Taman {f.last_name()} sebelum Jumaat.")  # fmt: skip
    return f"Sila hubungi {who} untuk maklumat lanjut.", address


MENTION_LANGUAGES: dict[str, tuple[str, Callable[[Faker, random.Random], tuple[str, str]]]] = {
    "English": ("en_US", english_mentions),
    "Chinese (simplified)": ("zh_CN", chinese_mentions),
    "Chinese (traditional)": ("zh_TW", chinese_mentions),
    "Malay": ("id_ID", malay_mentions),
}


def mention_counts(rows: int = 1000, seed: int = 0) -> dict[str, dict[str, tuple[int, int]]]:
    """Per language: (true, found) values for names, addresses, and text mentioning neither."""
    from databourse.pii.text_mentions import count_mentions

    out = {}
    for language, (locale, make) in MENTION_LANGUAGES.items():
        f, r = Faker(locale), random.Random(f"{locale}/{seed}")
        f.seed_instance(seed)
        made = [make(f, r) for _ in range(rows)]
        plain = [f.text(200) for _ in range(rows)]
        found = {
            kind: count_mentions(pa.array(values, pa.large_string()))
            for kind, values in (("names", [m[0] for m in made]),
                                 ("addresses", [m[1] for m in made]), ("neither", plain))
        }  # fmt: skip
        out[language] = {
            "PERSON_NAME": (rows, found["names"].get("PERSON_NAME", 0)),
            "ADDRESS": (rows, found["addresses"].get("ADDRESS", 0)),
            "false (text without either)": (0, sum(found["neither"].values())),
        }
    return out
