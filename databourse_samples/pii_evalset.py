"""A seeded, labelled evaluation table for PII detection: positives, decoys and free text.

Values come from `pii_values`, built from the published rules (check digits, formats),
independently of the detectors. Positive columns carry realistic noise (placeholders such as
"N/A" and blanks); the generator records which rows are true positives so that value-level recall
can be measured.
"""

from __future__ import annotations

import datetime as dt
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from databourse_samples.pii_values import (
    address,
    bank_account,
    card,
    cn_id,
    digits,
    dob,
    email,
    geo,
    hk_id,
    iban,
    ip,
    my_nric,
    passport,
    person,
    phone,
    plate,
    sg_nric,
    sg_plate,
    uscc,
)

Gen = Callable[[random.Random], str]
NOISE = ("N/A", "-", "", "unknown", "未提供", "tiada")


POSITIVES: dict[str, tuple[str, Gen]] = {  # column -> (category, generator)
    "cn_id": ("CN_RESIDENT_ID", cn_id),
    "org_code": ("CN_USCC", uscc),
    "sg_identity": ("SG_NRIC_FIN", sg_nric),
    "mykad": ("MY_NRIC", my_nric),
    "contact": ("PHONE_NUMBER", phone),
    "mail": ("EMAIL_ADDRESS", email),
    "client_ip": ("IP_ADDRESS", ip),
    "hk_identity": ("HK_ID", hk_id),
    "iban_col": ("IBAN", iban),
    "card_col": ("CREDIT_CARD", card),
    "ppt": ("PASSPORT", passport),
    "vehicle": ("LICENSE_PLATE", plate),
    "holder": ("PERSON_NAME", person),
    "mailing": ("ADDRESS", address),
    "location": ("GEO_COORDINATES", geo),
    "date_of_birth": ("DATE_OF_BIRTH", dob),
    "bank_account_no": ("BANK_ACCOUNT", bank_account),
}
DECOYS: dict[str, Gen] = {
    "order_no": lambda r: f"2025{r.randint(1, 12):02d}{r.randint(1, 28):02d}{digits(r, 10)}",
    "event_ms": lambda r: str(r.randint(1_600_000_000_000, 1_800_000_000_000)),
    "event_s": lambda r: str(r.randint(1_600_000_000, 1_800_000_000)),
    "amount": lambda r: f"{r.uniform(1, 99999):.2f}",
    "card_typo": lambda r: card(r, valid=False),
    "cn_id_typo": lambda r: cn_id(r, wrong=True),
    "uscc_typo": lambda r: uscc(r, wrong=True),
    "hk_typo": lambda r: hk_id(r, wrong=True),
    "iban_typo": lambda r: iban(r, wrong=True),
    "sg_plate_typo": lambda r: sg_plate(r, wrong=True),
    "sku": lambda r: "".join(r.choice(string.ascii_uppercase + string.digits) for _ in range(8)),
    "batch_code": lambda r: (
        "".join(r.choice(string.ascii_uppercase) for _ in range(3)) + "-" + digits(r, 5)
    ),
    "order_date": lambda r: (
        f"{dt.date(2020, 1, 1) + dt.timedelta(days=r.randrange(2000)):%Y-%m-%d}"
    ),
    "tracking": lambda r: digits(r, 16),
    "uuid": lambda r: str(uuid.UUID(int=r.getrandbits(128))),
    "product": lambda r: r.choice(
        ["生鲜", "日用品", "电子产品", "Kopi O", "Nasi Lemak", "iPhone 15"]
    ),
    "district": lambda r: r.choice(["南山区", "罗湖区", "龙华区", "宝安区", "Petaling Jaya"]),
    "city": lambda r: r.choice(["Kuala Lumpur", "Shah Alam", "Shenzhen", "Johor Bahru"]),
    "ratio_pair": lambda r: f"{r.uniform(0, 9):.2f},{r.uniform(0, 9):.2f}",
}
TEXT_IDS: dict[str, Gen] = {  # embedded in free text, glued to Chinese or in English
    "CN_RESIDENT_ID": cn_id,
    "CN_USCC": uscc,
    "HK_ID": hk_id,  # in text, only the bracketed written form (see _text)
    "IBAN": lambda r: iban(r).replace(" ", ""),
    "EMAIL_ADDRESS": lambda r: (
        f"{r.choice(['li.wei', 'ahmad', 'tan88'])}{r.randrange(99)}@mail.com"
    ),
}
_CN_FILLER = ("已核实", "请处理", "客户要求退款", "备注", "发票抬头")
_EN_FILLER = ("pls follow up", "sudah dibayar", "refund requested", "checked")


@dataclass(frozen=True)
class EvalSet:
    """The table, each column's true category (None for decoys and text), truth per value."""

    table: pa.Table
    labels: dict[str, str | None]
    positives: dict[str, list[bool]]  # column -> which rows are true positives
    embedded: dict[str, dict[str, int]]  # text column -> category -> rows holding one


def _text(r: random.Random, rows: int) -> tuple[list[str | None], dict[str, int]]:
    values: list[str | None] = []
    counts = dict.fromkeys(TEXT_IDS, 0)
    for _ in range(rows):
        if r.random() < 0.3:
            category = r.choice(sorted(TEXT_IDS))
            if category == "HK_ID":
                value = hk_id(r)
                while "(" not in value:
                    value = hk_id(r)
            else:
                value = TEXT_IDS[category](r)
            counts[category] += 1
            template = r.choice(["{c}，证件{v}{c}", "{e} ref {v}. {e}", "{c}:{v}"])
            values.append(template.format(c=r.choice(_CN_FILLER), e=r.choice(_EN_FILLER), v=value))
        else:
            values.append(f"{r.choice(_CN_FILLER)} {r.choice(_EN_FILLER)} {r.randint(1, 999)}")
    return values, {c: n for c, n in counts.items() if n}


def make_evalset(rows: int = 1000, seed: int = 0, noise: float = 0.04) -> EvalSet:
    """A labelled table of `rows` rows (deterministic for a seed)."""
    r = random.Random(seed)
    columns: dict[str, list[str | None]] = {}
    labels: dict[str, str | None] = {}
    positives: dict[str, list[bool]] = {}
    for name, (category, gen) in POSITIVES.items():
        flags = [r.random() >= noise for _ in range(rows)]
        columns[name] = [gen(r) if ok else r.choice([*NOISE, None]) for ok in flags]
        labels[name], positives[name] = category, flags
    for name, gen in DECOYS.items():
        columns[name] = [gen(r) for _ in range(rows)]
        labels[name], positives[name] = None, [False] * rows
    text, embedded = _text(r, rows)
    columns["remarks"], labels["remarks"], positives["remarks"] = text, None, [False] * rows
    return EvalSet(pa.table(columns), labels, positives, {"remarks": embedded})


@dataclass
class Score:
    """True positives, false positives and false negatives of one category."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def column_scores(
    labels: dict[str, str | None], predicted: dict[str, str | None]
) -> dict[str, Score]:
    """Per category: was each column classified as its label (decoys: as nothing)."""
    scores: dict[str, Score] = {}
    for column, label in labels.items():
        guess = predicted.get(column)
        if label is not None:
            scores.setdefault(label, Score())
            if guess == label:
                scores[label].tp += 1
            else:
                scores[label].fn += 1
        if guess is not None and guess != label:
            scores.setdefault(guess, Score()).fp += 1
    return scores


def value_scores(ev: EvalSet, predicted: dict[str, list[str | None]]) -> dict[str, Score]:
    """Per category: each true positive value found, each other value flagged as it."""
    scores: dict[str, Score] = {}
    for column, guesses in predicted.items():
        label = ev.labels[column]
        for truth, guess in zip(ev.positives[column], guesses, strict=True):
            if truth and label is not None:
                score = scores.setdefault(label, Score())
                if guess == label:
                    score.tp += 1
                else:
                    score.fn += 1
            if guess is not None and not (truth and guess == label):
                scores.setdefault(guess, Score()).fp += 1
    return scores
