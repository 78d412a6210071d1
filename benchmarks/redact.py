"""Personal data in running text: leftover and kept rates of `text_redact`, its speed, and
Presidio's on the same documents (issue 24, step 4).

The evaluation set is none of the detector's making: the sentences around the planted values are
Faker's (per locale), the values are Faker's people, addresses, emails, cards, IBANs, IPs and
national ids and the locale's phones, each kept only when an independent validator accepts it
(python-stdnum for ids, cards, IBANs; phonenumbers for phones; email-validator for emails; the
published TW id checksum, written here, for Taiwan's). Decoys that must survive: order, invoice,
PO and tracking numbers without a checksum, dates, amounts, times, quantities.

Scoring compares each document with its output: the characters each placeholder replaced are
found by aligning the two texts, so a planted value is *left* when any of its letters or digits
was not replaced, and a non-personal token is *kept* when none of its characters was. Nothing
here prints a value: categories, locales, counts and rates only.

Presidio (`presidio-analyzer` + `presidio-anonymizer`) runs when PRESIDIO_PYTHON names the
python of a venv that has them: its pattern recognizers on a blank spaCy English pipeline (no
NER model: nothing is downloaded), every document analysed as English, replaced by
`<ENTITY_TYPE>`; figures for all its recognizers and without DATE_TIME (dates are decoys here).

Ours runs twice: with typed placeholders, and with keyed pseudonyms (`redaction: pseudonym`,
`<PERSON_NAME:kqzbtrmhcw>`, under a random key of this run), scored and timed alike.

    .venv/bin/python benchmarks/redact.py [--docs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
import pyarrow as pa
import regex
from email_validator import EmailNotValidError, validate_email
from faker import Faker
from stdnum import iban, luhn
from stdnum.cn import ric
from stdnum.id import nik
from stdnum.in_ import aadhaar
from stdnum.my import nric
from stdnum.th import pin
from stdnum.us import ssn

from databourse.corpus.pseudonyms import TextPseudonyms
from databourse.pii.text_redact import leftover, redact_batch
from databourse.pii.text_spans import Replace

Span = tuple[int, int, str]
# Categories whose leftover the issue bounds at 0.5%: identifiers, phones, emails, cards...
IDENTIFIERS = frozenset(
    {"CN_RESIDENT_ID", "TW_ID", "TH_ID", "MY_NRIC", "ID_NIK", "IN_AADHAAR", "US_SSN"}
    | {"CREDIT_CARD", "IBAN", "IP_ADDRESS", "PHONE_NUMBER", "EMAIL_ADDRESS"}
)
REGION = {
    "en_US": "US",
    "en_GB": "GB",
    "en_IN": "IN",
    "zh_CN": "CN",
    "zh_TW": "TW",
    "id_ID": "ID",
    "ms": "MY",
    "th_TH": "TH",
    "vi_VN": "VN",
}
LOCALES = tuple(REGION)
PLACEHOLDER = regex.compile(r"<([A-Z][A-Z_]*)(?::[g-z]{10})?>")  # or a keyed pseudonym
TOKEN = regex.compile(r"\p{Han}|\p{Thai}+|[^\s\p{Han}\p{Thai}]+")


@dataclass
class Doc:
    """One document: its text, the spans planted in it and the spans that must be kept."""

    locale: str
    text: str = ""
    planted: list[Span] = field(default_factory=list)  # (start, end, category)
    kept: list[Span] = field(default_factory=list)  # (start, end, "text" or "decoy")

    def add(self, piece: str, kind: str | None = None) -> None:
        """Append `piece`: personal data of category `kind`, a decoy, or text (kind None)."""
        start = len(self.text)
        self.text += piece
        if kind == "neutral":  # a title: neither personal nor counted as kept
            return
        if kind in (None, "decoy"):
            for m in TOKEN.finditer(piece):
                self.kept.append((start + m.start(), start + m.end(), kind or "text"))
        else:
            self.planted.append((start, start + len(piece), kind))


# -- identifiers, each accepted by a validator that is not the detector's ------------------


def _until(make: Callable[[], str], ok: Callable[[str], bool], tries: int = 500) -> str:
    for _ in range(tries):
        value = make()
        if ok(value):
            return value
    raise RuntimeError("no valid value generated")


def _tw_id_ok(value: str) -> bool:
    """Taiwan's national id check: the letter's two-digit code, weights 1 9 8 ... 1."""
    codes = "ABCDEFGHJKLMNPQRSTUVXYWZIO"
    if not regex.fullmatch(r"[A-Z][12]\d{8}", value):
        return False
    n = codes.index(value[0]) + 10
    digits = [n // 10, n % 10, *map(int, value[1:])]
    weights = [1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1]
    return sum(d * w for d, w in zip(digits, weights, strict=True)) % 10 == 0


def _nik(r: random.Random) -> str:
    def make() -> str:
        day = r.randint(1, 28) + r.choice((0, 40))
        place = f"{r.randint(11, 94):02d}{r.randint(1, 20):02d}{r.randint(1, 20):02d}"
        born = f"{day:02d}{r.randint(1, 12):02d}{r.randint(50, 99):02d}"
        return f"{place}{born}{r.randint(1, 9999):04d}"

    return _until(make, nik.is_valid)


def _mykad(r: random.Random) -> str:
    def make() -> str:
        born = f"{r.randint(50, 99):02d}{r.randint(1, 12):02d}{r.randint(1, 28):02d}"
        return f"{born}-{r.randint(1, 16):02d}-{r.randint(1, 9999):04d}"

    return _until(make, nric.is_valid)


def national_id(locale: str, f: Faker, r: random.Random) -> tuple[str, str] | None:
    """A national id of the locale's country (category, value), or None."""
    if locale == "zh_CN":
        return "CN_RESIDENT_ID", _until(f.ssn, ric.is_valid)
    if locale == "zh_TW":
        return "TW_ID", _until(f.ssn, _tw_id_ok)
    if locale == "th_TH":
        return "TH_ID", _until(f.ssn, pin.is_valid)
    if locale == "en_US":
        return "US_SSN", _until(f.ssn, ssn.is_valid)
    if locale == "en_IN":
        return "IN_AADHAAR", _until(lambda: _grouped(f.aadhaar_id(), 4, " "), aadhaar.is_valid)
    if locale == "id_ID":
        return "ID_NIK", _nik(r)
    if locale == "ms":
        return "MY_NRIC", _mykad(r)
    return None


# Faker's card types whose prefixes are issuers' ranges (its "jcb16" draws any 35xx, of which
# 3500-3527 and 3590-3599 are no issuer's, and its "jcb15" 1800 is UATP's range).
CARDS = Faker("en_US")  # the card types below (some locales' providers have others)
CARD_TYPES = ("visa16", "visa13", "visa19", "mastercard", "amex", "discover", "diners", "maestro")


def _card_written(card: str) -> str:
    """A card number grouped as printed on the card: Amex 4-6-5, Diners 4-6-4, others by 4."""
    if len(card) in (14, 15):
        return f"{card[:4]} {card[4:10]} {card[10:]}"
    return _grouped(card, 4, " ") if len(card) == 16 else card


def _grouped(value: str, size: int, sep: str) -> str:
    return sep.join(value[i : i + size] for i in range(0, len(value), size))


def phone(locale: str, f: Faker, r: random.Random) -> str:
    """A phone of the locale's region that phonenumbers calls valid, as Faker writes it or in
    the international or national format."""
    region = REGION[locale]

    def make() -> str:
        if locale == "ms":  # Faker has no Malaysian locale: a mobile range of the metadata
            raw = f"01{r.choice('0123456789')}{r.randint(1000000, 9999999)}"
        else:
            raw = f.phone_number()
        try:
            parsed = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            return raw  # refused below
        style = r.choice(("as written", "international", "national"))
        if style == "international":
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        if style == "national":
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        return raw

    def ok(value: str) -> bool:
        try:
            return phonenumbers.is_valid_number(phonenumbers.parse(value, region))
        except phonenumbers.NumberParseException:
            return False

    return _until(make, ok)


def _iban(r: random.Random) -> str:
    """A German, British or Dutch IBAN: random account, the ISO 7064 check digits computed."""
    country, bban = r.choice(
        [
            ("DE", f"{r.randint(10**17, 10**18 - 1)}"),
            (
                "GB",
                "".join(r.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=4))
                + f"{r.randrange(10**14):014d}",
            ),
            (
                "NL",
                "".join(r.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=4))
                + f"{r.randrange(10**10):010d}",
            ),
        ]
    )
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


def _email_ok(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
        return True
    except EmailNotValidError:
        return False


def identifier(locale: str, f: Faker, r: random.Random) -> tuple[str, str]:
    """One identifier (category, value) of a kind drawn at random."""
    kind = r.choice(("phone", "phone", "email", "email", "id", "id", "card", "iban", "ip"))
    if kind == "id" and (found := national_id(locale, f, r)) is not None:
        return found
    if kind == "card":
        card = _until(lambda: CARDS.credit_card_number(r.choice(CARD_TYPES)), luhn.is_valid)
        return "CREDIT_CARD", _card_written(card) if r.random() < 0.5 else card
    if kind == "iban":
        value = _until(lambda: _iban(r), iban.is_valid)
        return "IBAN", _grouped(value, 4, " ") if r.random() < 0.5 else value
    if kind == "ip":
        return "IP_ADDRESS", f.ipv4_public()
    if kind == "email":
        return "EMAIL_ADDRESS", _until(f.email, _email_ok)
    return "PHONE_NUMBER", phone(locale, f, r)


# -- decoys: numbers and dates that identify nobody ------------------------------------------

CURRENCY = {"zh_CN": "¥", "zh_TW": "NT$", "id_ID": "Rp ", "ms": "RM ", "th_TH": "฿", "vi_VN": "₫"}


def decoy(locale: str, f: Faker, r: random.Random) -> str:
    """An order, invoice, PO or tracking number, a date, an amount, a time or a quantity."""
    kind = r.randrange(9)
    if kind == 0:
        return f"ORD-{r.randint(2019, 2026)}-{r.randint(0, 999999):06d}"
    if kind == 1:
        return f"INV{r.randint(0, 99999999):08d}"
    if kind == 2:
        return f"PO {r.randint(4500000000, 4599999999)}"  # an SAP purchase order: ten digits
    if kind == 3:
        return f"{r.choice(['SF', 'JD', 'YT', 'EE'])}{r.randint(10**11, 10**12 - 1)}"
    if kind == 4:
        day = f.date_between("-5y", "+1y")
        return r.choice([day.isoformat(), day.strftime("%d/%m/%Y"), day.strftime("%d.%m.%Y")])
    if kind == 5:
        return f"{CURRENCY.get(locale, '$')}{r.randint(1, 999999):,}.{r.randint(0, 99):02d}"
    if kind == 6:
        return f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}"
    if kind == 7:
        return f"{r.randint(2, 5000)} pcs"
    return f"#{r.randint(100000, 9999999)}"


# -- documents -----------------------------------------------------------------------------

# Cue words before a planted value, per language: the only words here not Faker's.
CUES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "PERSON_NAME": ("{} called us", "please ask {} to reply", "signed by {}", "Dear {},"),
        "ADDRESS": ("ship it to {} please", "I live at {}"),
        "id": ("my number is {}", "reach me: {}", "use {} instead"),
        "decoy": ("ref {}", "on {}", "total {}"),
    },
    "zh": {
        "PERSON_NAME": ("我叫{}", "{}先生", "联系人：{}", "{}说"),
        "ADDRESS": ("地址：{}", "住在{}"),
        "id": ("号码{}", "联系方式：{}", "请用{}"),
        "decoy": ("单号{}", "日期{}", "金额{}"),
    },
    "ms": {
        "PERSON_NAME": ("Saya {}", "Encik {} telah", "sila hubungi {} segera"),
        "ADDRESS": ("alamat saya {}", "hantar ke {}"),
        "id": ("nombor saya {}", "hubungi {}"),
        "decoy": ("rujukan {}", "pada {}", "jumlah {}"),
    },
    "th": {
        "PERSON_NAME": ("คุณ{} ", "ติดต่อ {} ได้"),
        "ADDRESS": ("ที่อยู่ {}", "ส่งไปที่ {}"),
        "id": ("เลข {}", "ติดต่อ {}"),
        "decoy": ("เลขที่ {}", "วันที่ {}", "ยอด {}"),
    },
    "vi": {
        "PERSON_NAME": ("anh {} đã gọi", "chị {} nói", "{} đã đến"),
        "ADDRESS": ("địa chỉ {}", "giao đến {}"),
        "id": ("số của tôi là {}", "liên hệ {}"),
        "decoy": ("mã đơn {}", "ngày {}", "tổng {}"),
    },
}
LANGUAGE = {"zh_CN": "zh", "zh_TW": "zh", "id_ID": "ms", "ms": "ms", "th_TH": "th", "vi_VN": "vi"}


def _planted(doc: Doc, cue: str, value: str, kind: str, f: Faker) -> None:
    before, _, after = cue.partition("{}")
    doc.add(before)
    if kind == "PERSON_NAME":  # Faker's titles and degrees are no part of the person's name
        head, value, tail = _honorifics(f, value)
        doc.add(head, "neutral")
        doc.add(value, kind)
        doc.add(tail, "neutral")
    else:
        doc.add(value, kind)
    doc.add(after)


def _honorifics(f: Faker, name: str) -> tuple[str, str, str]:
    """`name` as (title, name, degree): the titles and suffixes of Faker's person provider
    (not Thai "ณ ..." which is part of a family name)."""
    provider = next(p for p in f.providers if ".person." in type(p).__module__)
    words: dict[str, set[str]] = {"prefixes": set(), "suffixes": set()}
    for attr in dir(provider):
        for kind in words:
            if attr.startswith(kind):
                value = getattr(provider, attr)
                words[kind] |= set(value.keys() if isinstance(value, dict) else value)
    head = tail = ""
    for prefix in sorted(words["prefixes"], key=len, reverse=True):
        if name.startswith(prefix + " "):
            head, name = prefix + " ", name[len(prefix) + 1 :]
            break
    for suffix in sorted(words["suffixes"], key=len, reverse=True):
        if not suffix.startswith("ณ") and regex.search(rf",? {regex.escape(suffix)}$", name):
            cut = regex.search(rf",? {regex.escape(suffix)}$", name)
            assert cut is not None
            name, tail = name[: cut.start()], cut.group()
            break
    return head, name, tail


def document(locale: str, f: Faker, r: random.Random) -> Doc:
    """Faker's sentences around planted values and decoys, in a random order."""
    cues = CUES[LANGUAGE.get(locale, "en")]
    gap = "" if locale.startswith("zh") else " "
    pieces: list[tuple[str, str, str]] = []  # (cue, value, kind)
    for _ in range(r.randint(2, 4)):
        category, value = identifier(locale, f, r)
        pieces.append((r.choice(cues["id"]), value, category))
    if r.random() < 0.7:
        pieces.append((r.choice(cues["PERSON_NAME"]), f.name(), "PERSON_NAME"))
        if r.random() < 0.3:  # the name alone, as in a signature or a greeting
            pieces.append(("{}", f.name(), "PERSON_NAME"))
    if r.random() < 0.4:
        address = regex.sub(r"\s*\n\s*", ", ", f.address())
        pieces.append((r.choice(cues["ADDRESS"]), address, "ADDRESS"))
    for _ in range(r.randint(1, 3)):
        pieces.append((r.choice(cues["decoy"]), decoy(locale, f, r), "decoy"))
    r.shuffle(pieces)
    doc = Doc(locale)
    doc.add(f.sentence(nb_words=8))
    for cue, value, kind in pieces:
        doc.add(gap)
        _planted(doc, cue, value, kind, f)
        doc.add(("，" if gap == "" else ", ") if r.random() < 0.5 else gap)
        if r.random() < 0.5:
            doc.add(f.sentence(nb_words=r.randint(4, 12)))
    return doc


def evaluation_set(per_locale: int = 400, seed: int = 24) -> list[Doc]:
    """`per_locale` documents in each of LOCALES (Malay: Faker's Indonesian people)."""
    docs = []
    CARDS.seed_instance(seed)
    for locale in LOCALES:
        f = Faker("id_ID" if locale == "ms" else locale)
        f.seed_instance(seed)
        r = random.Random(f"{locale}/{seed}")
        docs += [document(locale, f, r) for _ in range(per_locale)]
    return docs


def sparse_set(per_locale: int = 400, seed: int = 24) -> list[Doc]:
    """Running text as most of a corpus is: Faker's paragraphs, one document in ten with the
    planted values of `document` (for speed on text that is mostly free of personal data)."""
    docs = []
    for locale in LOCALES:
        f = Faker("id_ID" if locale == "ms" else locale)
        f.seed_instance(seed + 1)
        r = random.Random(f"sparse/{locale}/{seed}")
        for n in range(per_locale):
            if n % 10 == 0:
                docs.append(document(locale, f, r))
                continue
            doc = Doc(locale)
            doc.add(f.paragraph(nb_sentences=6))
            docs.append(doc)
    return docs


# -- scoring -------------------------------------------------------------------------------


def replaced(original: str, output: str) -> list[Span]:
    """The spans of `original` that the placeholders of `output` replaced (start, end, type)."""
    parts = PLACEHOLDER.split(output)  # text, category, text, category, ..., text
    if len(parts) == 1:
        return []
    texts, categories = parts[0::2], parts[1::2]
    pattern = "(.+?)".join(regex.escape(t) for t in texts)
    m = regex.fullmatch(pattern, original, flags=regex.S)
    if m is None:  # the output changed more than placeholders: count all of it replaced
        return [(0, len(original), "?")]
    return [(m.start(i + 1), m.end(i + 1), c) for i, c in enumerate(categories)]


def out_of_scope(category: str, value: str) -> str | None:
    """Why the exchange's scan, by its own rules, does not read this written form in running
    text (`phones`, `identifiers.run_mask`), or None: these are reported apart."""
    if category == "CREDIT_CARD" and len(regex.sub(r"\D", "", value)) < 13:
        return "card of 12 digits (a run that short is too often another number)"
    if category == "PHONE_NUMBER" and regex.fullmatch(r"[1-9]\d{9}", value):
        return "phone as 10 bare digits (as often an order or account number)"
    return None


@dataclass
class Score:
    """Counts of one run: per (locale, category) planted and left; kept tokens per kind."""

    planted: Counter[tuple[str, str]] = field(default_factory=Counter)
    left: Counter[tuple[str, str]] = field(default_factory=Counter)
    typed: Counter[tuple[str, str]] = field(default_factory=Counter)  # replaced, right type
    tokens: Counter[tuple[str, str]] = field(default_factory=Counter)  # (locale, kind)
    kept: Counter[tuple[str, str]] = field(default_factory=Counter)
    outside: Counter[str] = field(default_factory=Counter)  # planted, out of scope, by reason
    outside_left: Counter[str] = field(default_factory=Counter)

    def add(self, doc: Doc, output: str, names: dict[str, str] | None = None) -> None:
        gone = replaced(doc.text, output)
        covered = bytearray(len(doc.text))
        for a, b, _ in gone:
            covered[a:b] = b"\1" * (b - a)
        for a, b, category in doc.planted:
            key = (doc.locale, category)
            self.planted[key] += 1
            chars = [i for i in range(a, b) if doc.text[i].isalnum()]
            reason = out_of_scope(category, doc.text[a:b])
            if reason:
                self.outside[reason] += 1
            if not all(covered[i] for i in chars):
                self.left[key] += 1
                if reason:
                    self.outside_left[reason] += 1
            elif any((names or {}).get(c, c) == category for x, y, c in gone if x < b and a < y):
                self.typed[key] += 1
        for a, b, kind in doc.kept:
            self.tokens[doc.locale, kind] += 1
            if not any(covered[a:b]):
                self.kept[doc.locale, kind] += 1

    def rate(self, counts: Counter[tuple[str, str]], total: Counter[tuple[str, str]],
             keep: Callable[[str, str], bool]) -> tuple[int, int]:  # fmt: skip
        n = sum(v for k, v in counts.items() if keep(*k))
        return n, sum(v for k, v in total.items() if keep(*k))

    def summary(self) -> dict[str, Any]:
        ids = self.rate(self.left, self.planted, lambda _, c: c in IDENTIFIERS)
        in_scope = (
            ids[0] - sum(self.outside_left.values()),
            ids[1] - sum(self.outside.values()),
        )
        text = self.rate(self.kept, self.tokens, lambda _, k: k == "text")
        decoys = self.rate(self.kept, self.tokens, lambda _, k: k == "decoy")
        kept = self.rate(self.kept, self.tokens, lambda _, k: True)
        return {
            "identifiers_left": _share(*ids),
            "identifiers_left_in_scope": _share(*in_scope),
            "out_of_scope": {k: [n, self.outside_left[k]] for k, n in sorted(self.outside.items())},
            "kept": _share(*kept),
            "kept_text": _share(*text),
            "kept_decoys": _share(*decoys),
            "names_recall": 1 - _share(*self.rate(self.left, self.planted, _is("PERSON_NAME"))),
            "addresses_recall": 1 - _share(*self.rate(self.left, self.planted, _is("ADDRESS"))),
        }

    def by(self, axis: int, only: frozenset[str] | None = None) -> dict[str, dict[str, int]]:
        """Planted, left and typed per category (axis 1) or locale (axis 0), of the categories
        `only` names (all by default)."""
        rows: dict[str, dict[str, int]] = {}
        for name, counts in (("planted", self.planted), ("left", self.left),
                             ("typed", self.typed)):  # fmt: skip
            for key, n in counts.items():
                if only is not None and key[1] not in only:
                    continue
                rows.setdefault(key[axis], {"planted": 0, "left": 0, "typed": 0})[name] += n
        return dict(sorted(rows.items()))


def _is(category: str) -> Callable[[str, str], bool]:
    return lambda _, c: c == category


def _share(n: int, total: int) -> float:
    return n / total if total else 0.0


# -- runs ----------------------------------------------------------------------------------

BATCH = 8192


def run_ours(
    docs: list[Doc], replace: Replace | None = None
) -> tuple[list[str], float, dict[str, int]]:
    """Outputs, seconds spent in `redact_batch` (placeholders, or what `replace` writes: keyed
    pseudonyms), and what `leftover` still finds."""
    redact_batch(pa.array([d.text for d in docs[:20]], pa.large_string()))  # lists, patterns
    outputs: list[str] = []
    seconds = 0.0
    left: Counter[str] = Counter()
    for i in range(0, len(docs), BATCH):
        texts = pa.array([d.text for d in docs[i : i + BATCH]], pa.large_string())
        start = time.perf_counter()
        out, _ = redact_batch(texts, replace)
        seconds += time.perf_counter() - start
        left.update(leftover(out))
        outputs += out.to_pylist()
    return outputs, seconds, dict(left)


PRESIDIO_SCRIPT = r"""
import json, sys, time, tempfile
import spacy
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import NlpEngineProvider
from presidio_anonymizer import AnonymizerEngine

texts = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
model = tempfile.mkdtemp() + "/blank_en"
spacy.blank("en").to_disk(model)  # no NER model: pattern recognizers only
conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
engine = NlpEngineProvider(nlp_configuration=conf).create_engine()
analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
anonymizer = AnonymizerEngine()
analyzer.analyze(text="warm up john@example.com", language="en")
start = time.perf_counter()
found = [analyzer.analyze(text=t, language="en") for t in texts]
analysed = time.perf_counter() - start
start = time.perf_counter()
full = [anonymizer.anonymize(text=t, analyzer_results=f).text for t, f in zip(texts, found)]
anonymised = time.perf_counter() - start
dated = [[x for x in f if x.entity_type != "DATE_TIME"] for f in found]
nodate = [anonymizer.anonymize(text=t, analyzer_results=f).text for t, f in zip(texts, dated)]
recognizers = sorted(r.name for r in analyzer.registry.recognizers)
with open(sys.argv[2], "w", encoding="utf-8") as out:
    json.dump({"all": full, "no_dates": nodate, "seconds": analysed + anonymised,
               "analyse_seconds": analysed, "recognizers": recognizers}, out)
"""
# Presidio's entity types named as ours, for the "typed" count.
PRESIDIO_NAMES = {"IBAN_CODE": "IBAN", "PERSON": "PERSON_NAME", "LOCATION": "ADDRESS"}


def run_presidio(python: str, docs: list[Doc]) -> dict[str, Any]:
    """Presidio's outputs (all recognizers, and without DATE_TIME) and its seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        source, result = Path(tmp, "in.jsonl"), Path(tmp, "out.json")
        source.write_text("".join(json.dumps(d.text) + "\n" for d in docs), encoding="utf-8")
        subprocess.run(
            [python, "-c", PRESIDIO_SCRIPT, str(source), str(result)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # tldextract's failed fetch of the suffix list (offline)
            timeout=3600,
        )
        found: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
        return found


def score(
    docs: Iterable[Doc], outputs: Iterable[str], names: dict[str, str] | None = None
) -> Score:
    s = Score()
    for doc, out in zip(docs, outputs, strict=True):
        s.add(doc, out, names)
    return s


def _table(title: str, rows: dict[str, dict[str, int]]) -> list[str]:
    lines = [f"{title:<16} {'planted':>8} {'left':>6} {'left %':>8} {'typed %':>8}"]
    for key, row in rows.items():
        left, typed = _share(row["left"], row["planted"]), _share(row["typed"], row["planted"])
        lines.append(f"{key:<16} {row['planted']:>8} {row['left']:>6} {left:>8.2%} {typed:>8.2%}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=400, help="documents per locale")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    docs = evaluation_set(args.docs)
    megabytes = sum(len(d.text.encode()) for d in docs) / 1e6
    outputs, seconds, left = run_ours(docs)
    ours = score(docs, outputs)
    report: dict[str, Any] = {
        "documents": len(docs),
        "megabytes": round(megabytes, 3),
        "ours": {
            **ours.summary(),
            "seconds": round(seconds, 3),
            "docs_per_s": round(len(docs) / seconds),
            "mb_per_s": round(megabytes / seconds, 3),
            "leftover_scan": left,
            "by_category": ours.by(1),
            "by_locale": ours.by(0, IDENTIFIERS),
            "names_by_locale": ours.by(0, frozenset({"PERSON_NAME"})),
            "addresses_by_locale": ours.by(0, frozenset({"ADDRESS"})),
        },
    }
    keyed = TextPseudonyms(secrets.token_bytes(32), "benchmark", "default")
    keyed_out, keyed_seconds, keyed_left = run_ours(docs, keyed)
    report["ours_pseudonyms"] = {
        **score(docs, keyed_out).summary(),
        "by_category": score(docs, keyed_out).by(1),
        "seconds": round(keyed_seconds, 3),
        "docs_per_s": round(len(docs) / keyed_seconds),
        "mb_per_s": round(megabytes / keyed_seconds, 3),
        "leftover_scan": keyed_left,
    }
    sparse = sparse_set(args.docs)
    sparse_mb = sum(len(d.text.encode()) for d in sparse) / 1e6
    sparse_out, sparse_seconds, _ = run_ours(sparse)
    report["sparse"] = {
        "documents": len(sparse),
        "megabytes": round(sparse_mb, 3),
        "ours": {**score(sparse, sparse_out).summary(), "seconds": round(sparse_seconds, 3),
                 "docs_per_s": round(len(sparse) / sparse_seconds),
                 "mb_per_s": round(sparse_mb / sparse_seconds, 3)},
    }  # fmt: skip
    python = os.environ.get("PRESIDIO_PYTHON")
    if python:
        theirs_sparse = run_presidio(python, sparse)
        report["sparse"]["presidio_docs_per_s"] = round(len(sparse) / theirs_sparse["seconds"])
        report["sparse"]["speed_ratio"] = round(theirs_sparse["seconds"] / sparse_seconds, 1)
        found = run_presidio(python, docs)
        for variant in ("all", "no_dates"):
            theirs = score(docs, found[variant], PRESIDIO_NAMES)
            report[f"presidio_{variant}"] = {**theirs.summary(), "by_category": theirs.by(1)}
        report["presidio_seconds"] = round(found["seconds"], 3)
        report["presidio_docs_per_s"] = round(len(docs) / found["seconds"])
        report["speed_ratio"] = round(found["seconds"] / seconds, 1)
        report["presidio_setup"] = "pattern recognizers, spacy.blank('en'), language='en'"
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    _print(report)


def _print(report: dict[str, Any]) -> None:
    ours = report["ours"]
    print(f"{report['documents']} documents, {report['megabytes']} MB")
    runs = [("ours", ours)] + [
        (k, report[k])
        for k in ("ours_pseudonyms", "presidio_all", "presidio_no_dates")
        if k in report
    ]
    keys = ("identifiers_left", "identifiers_left_in_scope", "kept", "kept_text", "kept_decoys",
            "names_recall", "addresses_recall")  # fmt: skip
    print(f"{'':<18}" + "".join(f"{k:>18}" for k in keys))
    for name, run in runs:
        print(f"{name:<18}" + "".join(f"{run[k]:>18.2%}" for k in keys))
    for name, run in runs:
        print("\n".join(["", f"[{name}]", *_table("category", run["by_category"])]))
    for key, title in (("by_locale", "identifiers"), ("names_by_locale", "names"),
                       ("addresses_by_locale", "addresses")):  # fmt: skip
        print("\n".join(["", f"[ours: {title}]", *_table("locale", ours[key])]))
    for reason, (n, left) in ours["out_of_scope"].items():
        print(f"out of scope, planted {n}, left {left}: {reason}")
    print(f"\nours: {ours['docs_per_s']} docs/s, {ours['mb_per_s']} MB/s ({ours['seconds']} s)")
    print(f"leftover scan of our output: {ours['leftover_scan']}")
    keyed = report["ours_pseudonyms"]
    print(
        f"ours with keyed pseudonyms: {keyed['docs_per_s']} docs/s, {keyed['mb_per_s']} MB/s"
        f" ({keyed['seconds']} s); leftover scan: {keyed['leftover_scan']}"
    )
    sparse = report["sparse"]
    print(
        f"sparse text ({sparse['documents']} documents, {sparse['megabytes']} MB, one in ten with"
        f" personal data): ours {sparse['ours']['docs_per_s']} docs/s,"
        f" {sparse['ours']['mb_per_s']} MB/s, kept {sparse['ours']['kept']:.2%}"
    )
    if "presidio_docs_per_s" in sparse:
        print(
            f"  presidio {sparse['presidio_docs_per_s']} docs/s; ours is"
            f" {sparse['speed_ratio']}x faster"
        )
    if "presidio_seconds" in report:
        print(
            f"presidio ({report['presidio_setup']}): {report['presidio_docs_per_s']} docs/s,"
            f" {report['presidio_seconds']} s; ours is {report['speed_ratio']}x faster"
        )


if __name__ == "__main__":
    main()
