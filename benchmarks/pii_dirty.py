"""Column precision and recall per category on clean and dirty Faker tables (issue 16, part 3).

    python benchmarks/pii_dirty.py                 # 4 seeds of 500 rows, about a minute
    python benchmarks/pii_dirty.py --seeds 2 --rows 300

One table per (locale, seed); locales zh_CN, zh_TW, ms_MY, en_US, en_IN, id_ID, th_TH, vi_VN,
ko_KR, ja_JP, en_PH (Faker has no ms_MY: its en_MS addresses are Malaysian; MyKads, Malaysian
phones and Malay names are made here from Faker's dates and id_ID first names). Per locale:
- clean columns: names, addresses, phones, emails, cards and the locale's national ids;
- dirty columns: the same with 10-30% of the values corrupted (a typo: a character dropped,
  replaced or two swapped; a placeholder; a value of another country; a truncation);
- numbers typed as numbers: ids and national phone numbers as int64 (a leading 0 lost);
- decoys: CN-mobile-like codes (random, a counter, and named as order numbers), SKUs, business
  registration numbers of the markets, random digit strings, timestamps, some with placeholders
  too; only `order_no*` columns are named as what they are.
A value is personal data when its oracle says so (phonenumbers in the locale's region,
python-stdnum, email-validator); names and addresses by construction (a typo keeps them a
person's). Every positive column, clean or dirty, is labelled with its category.
"""

from __future__ import annotations

import argparse
import itertools
import random
import string
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import phonenumbers
import pyarrow as pa
from faker import Faker
from stdnum import luhn as std_luhn
from stdnum.cn import ric as std_cn_ric
from stdnum.jp import cn as std_jp_cn
from stdnum.my import nric as std_my_nric
from stdnum.th import moa as std_th_moa
from stdnum.vn import mst as std_vn_mst

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pii_markets import MARKET_IDS
from pii_names_addresses import email_ok

Oracle = Callable[[str], bool] | None
Maker = Callable[[random.Random, Faker], str]
REGIONS = {  # locale -> phone region
    "zh_CN": "CN", "zh_TW": "TW", "ms_MY": "MY", "en_US": "US", "en_IN": "IN", "id_ID": "ID",
    "th_TH": "TH", "vi_VN": "VN", "ko_KR": "KR", "ja_JP": "JP", "en_PH": "PH",
}  # fmt: skip
FAKER_LOCALE = {"ms_MY": "en_MS"}  # Faker 40 has no ms_MY; en_MS's addresses are Malaysian
PLACEHOLDERS: tuple[str, ...] = ("N/A", "000", "-", "", "unknown", "none", "0", "TBC", "null")
PLACEHOLDERS += ("未提供", "tiada", "0000000000", "?", "n/a", "NIL")
DIRTY_SHARES = (0.10, 0.30)
CORRUPTIONS = ("drop", "replace", "swap", "placeholder", "foreign", "truncate")
MY_STATES = [f"{n:02d}" for n in range(1, 17)]
FIXED_ZERO_IDS = {"KR_RRN", "JP_MY_NUMBER", "VN_CCCD", "TH_ID", "ID_NIK"}  # also as int64


@dataclass
class Table:
    """One labelled table: columns, each column's label and kind, and the truth of each value."""

    cols: dict[str, pa.Array]
    labels: dict[str, str | None]
    kinds: dict[str, str]  # clean, dirty, int64, decoy, dirty decoy
    truth: dict[str, list[bool]]

    def add(self, name: str, label: str | None, kind: str, values: list[Any], flags: list[bool],
            typ: pa.DataType = pa.string()) -> None:  # fmt: skip
        self.cols[name], self.labels[name], self.kinds[name] = pa.array(values, typ), label, kind
        self.truth[name] = flags

    def table(self) -> pa.Table:
        return pa.table(self.cols)


def phone_ok(region: str) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            return phonenumbers.is_valid_number(phonenumbers.parse(value, region))
        except phonenumbers.NumberParseException:
            return False

    return check


def _digits(r: random.Random, n: int) -> str:
    return "".join(r.choice(string.digits) for _ in range(n))


def _my_phone(r: random.Random, fake: Faker) -> str:
    number = f"01{r.choice('0123456789')}{_digits(r, r.choice([7, 8]))}"
    return r.choice([f"{number[:3]}-{number[3:]}", f"+60 {number[1:3]}-{number[3:6]} {number[6:]}",
                     number, f"03-{_digits(r, 4)} {_digits(r, 4)}"])  # fmt: skip


def _mykad(r: random.Random, fake: Faker) -> str:
    born = fake.date_of_birth(minimum_age=1, maximum_age=90)
    value = f"{born:%y%m%d}{r.choice(MY_STATES)}{_digits(r, 4)}"
    return f"{value[:6]}-{value[6:8]}-{value[8:]}" if r.random() < 0.7 else value


_MALAY_GIVEN = Faker("id_ID")  # Malay given names: Indonesian ones are the nearest Faker has


def _malay_name(r: random.Random, fake: Faker) -> str:
    _MALAY_GIVEN.seed_instance(r.randrange(10**9))
    sex = r.choice(["bin", "binti"])
    return f"{_MALAY_GIVEN.first_name()} {sex} {_MALAY_GIVEN.first_name()}"


def _faker(locale: str, seed: int) -> Faker:
    fake = Faker(FAKER_LOCALE.get(locale, locale))
    fake.seed_instance(seed)
    return fake


def _phone_maker(locale: str) -> Maker:
    if locale == "ms_MY":
        return _my_phone
    if locale == "en_PH":
        return lambda r, f: r.choice([f.mobile_number, f.landline_number])()
    return lambda r, f: f.phone_number()


def positives(locale: str) -> list[tuple[str, Maker, Oracle]]:
    """(category, make, oracle) of the locale's personal-data columns."""
    cols: list[tuple[str, Maker, Oracle]] = [
        ("PERSON_NAME", _malay_name if locale == "ms_MY" else (lambda r, f: f.name()), None),
        ("ADDRESS", lambda r, f: f.address().replace("\n", ", "), None),
        ("PHONE_NUMBER", _phone_maker(locale), phone_ok(REGIONS[locale])),
        ("EMAIL_ADDRESS", lambda r, f: f.email(), email_ok),
        ("CREDIT_CARD", lambda r, f: f.credit_card_number(), std_luhn.is_valid),
    ]
    if locale == "zh_CN":
        cols.append(("CN_RESIDENT_ID", lambda r, f: f.ssn(), std_cn_ric.is_valid))
    if locale == "ms_MY":
        cols.append(("MY_NRIC", _mykad, std_my_nric.is_valid))
    cols += [(label, make, oracle) for label, make, oracle in MARKET_IDS.get(locale, [])]
    return cols


def _valid(r: random.Random, fake: Faker, make: Maker, oracle: Oracle) -> str:
    """A value its oracle accepts (Faker's phones are often invalid: a clean column is clean)."""
    value = make(r, fake)
    for _ in range(30):
        if oracle is None or oracle(value):
            return value
        value = make(r, fake)
    return value


def corrupt(r: random.Random, value: str, foreign: Callable[[], str]) -> tuple[str, str]:
    """One corruption of a value: (kind, corrupted value)."""
    kind = r.choice(CORRUPTIONS)
    cut = r.randrange(len(value)) if value else 0
    if kind == "drop":
        return kind, value[:cut] + value[cut + 1 :]
    if kind == "replace":
        pool = string.digits if value[cut : cut + 1].isdigit() else string.ascii_letters
        return kind, value[:cut] + r.choice(pool) + value[cut + 1 :]
    if kind == "swap" and len(value) > 1:
        cut = min(cut, len(value) - 2)
        return kind, value[:cut] + value[cut + 1] + value[cut] + value[cut + 2 :]
    if kind == "foreign":
        return kind, foreign()
    if kind == "truncate":
        return kind, value[: max(1, int(len(value) * r.uniform(0.4, 0.8)))]
    return "placeholder", r.choice(PLACEHOLDERS)


def _truth(category: str, oracle: Oracle, kind: str, value: str) -> bool:
    if oracle is not None:
        return oracle(value)
    if category in ("PERSON_NAME", "ADDRESS"):  # still a person's (a typo) or another's
        return kind in ("clean", "drop", "replace", "swap", "foreign") and len(value) > 3
    return kind == "clean"  # ids labelled by construction: any change breaks them


def locale_table(locale: str, rows: int, seed: int) -> Table:
    """The labelled table of one locale (deterministic for a seed and a Faker version)."""
    fake, r = _faker(locale, seed), random.Random(f"dirty/{locale}/{seed}")
    table = Table({}, {}, {}, {})
    foreign = {loc: _faker(loc, seed + 7) for loc in REGIONS if loc != locale}
    for category, make, oracle in positives(locale):
        clean = [_valid(r, fake, make, oracle) for _ in range(rows)]
        name = f"{locale}_{category.lower()}"
        table.add(name, category, "clean", clean, [_truth(category, oracle, "clean", v)
                                                   for v in clean])  # fmt: skip
        dirty, flags = _dirtied(r, clean, category, oracle, foreign)
        table.add(f"{name}_dirty", category, "dirty", dirty, flags)
        if category in FIXED_ZERO_IDS:
            numbers = [int("".join(c for c in v if c.isdigit())) for v in clean]
            table.add(f"{name}_int64", category, "int64", numbers, table.truth[name], pa.int64())
    _national_phones(table, locale, r, fake, rows)
    decoys(table, locale, r, fake, rows)
    return table


def _dirtied(
    r: random.Random, clean: list[str], category: str, oracle: Oracle, foreign: dict[str, Faker]
) -> tuple[list[str], list[bool]]:
    """10-30% of the values corrupted; each value's truth by its oracle after that."""
    share = r.uniform(*DIRTY_SHARES)
    values, flags = [], []
    for value in clean:
        kind = "clean"
        if r.random() < share:
            loc = r.choice(sorted(foreign))
            twin = {c: m for c, m, _ in positives(loc)}.get(category)
            other = foreign[loc]
            kind, value = corrupt(r, value, lambda: twin(r, other) if twin else "N/A")  # noqa: B023
        values.append(value)
        flags.append(_truth(category, oracle, kind, value))
    return values, flags


def _national_phones(table: Table, locale: str, r: random.Random, fake: Faker, rows: int) -> None:
    """Phones in their national form (a trunk 0) typed as int64: the 0 is lost."""
    region = REGIONS[locale]
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.national_prefix != "0":
        return
    ok = phone_ok(region)
    values = []
    for _ in range(rows):
        number = phonenumbers.parse(_valid(r, fake, _phone_maker(locale), ok), region)
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        values.append("".join(c for c in national if c.isdigit()))
    flags = [ok(v) for v in values]
    table.add(f"{locale}_phone_national_int64", "PHONE_NUMBER", "int64",
              [int(v) for v in values], flags, pa.int64())  # fmt: skip


def _registration(locale: str, r: random.Random) -> str:
    """A business registration number of the locale (check digits where stdnum has them)."""
    if locale == "ja_JP":
        body = _digits(r, 12)
        return std_jp_cn.calc_check_digit(body) + body
    if locale == "th_TH":
        body = "0" + r.choice("13579") + _digits(r, 10)
        return body + std_th_moa.calc_check_digit(body)
    if locale == "vi_VN":
        body = _digits(r, 9)
        return body + std_vn_mst.calc_check_digit(body)
    if locale == "ko_KR":  # with the National Tax Service's check digit
        body = f"{r.randint(101, 999)}{r.randint(1, 99):02d}{r.randint(1, 9999):04d}"
        total = sum(int(d) * w for d, w in zip(body, (1, 3, 7, 1, 3, 7, 1, 3, 5), strict=True))
        check = (10 - (total + int(body[8]) * 5 // 10) % 10) % 10
        return f"{body[:3]}-{body[3:5]}-{body[5:]}{check}"
    if locale == "ms_MY":
        return f"{r.randint(2019, 2025)}0{r.randint(1, 6)}{_digits(r, 6)}"
    if locale == "id_ID":
        head = f"0{r.randint(1, 9)}.{_digits(r, 3)}.{_digits(r, 3)}"
        return f"{head}.{_digits(r, 1)}-{_digits(r, 3)}.000"
    if locale == "en_US":
        return f"{r.randint(10, 99)}-{_digits(r, 7)}"
    return f"{r.randint(10, 99)}{_digits(r, 8)}"


def decoys(table: Table, locale: str, r: random.Random, fake: Faker, rows: int) -> None:
    """Columns of no one's data, shaped like some that do."""
    start = int("1" + r.choice("3456789") + _digits(r, 9))
    serials = list(itertools.accumulate(r.randint(1, 3) for _ in range(rows)))  # a counter
    gen: dict[str, tuple[Callable[[int], Any], pa.DataType]] = {
        "code_13x_19x": (lambda i: "1" + r.choice("3456789") + _digits(r, 9), pa.string()),
        "counter_mobile_like": (lambda i: str(start + serials[i]), pa.string()),
        "order_no": (lambda i: "1" + r.choice("3456789") + _digits(r, 9), pa.string()),
        "order_no_int64": (lambda i: int("1" + r.choice("3456789") + _digits(r, 9)), pa.int64()),
        "sku_ean13": (lambda i: fake.ean13(), pa.string()),
        "sku_code": (lambda i: fake.bothify("??-####-??").upper(), pa.string()),
        "registration_no": (lambda i: _registration(locale, r), pa.string()),
        "digits_random": (lambda i: _digits(r, r.randint(9, 18)), pa.string()),
        "digits_int64": (lambda i: r.randint(10**8, 10**12), pa.int64()),
        "epoch_seconds": (lambda i: str(r.randint(1_400_000_000, 1_800_000_000)), pa.string()),
        "epoch_ms": (lambda i: r.randint(1_400_000_000_000, 1_800_000_000_000), pa.int64()),
        "timestamp": (lambda i: fake.date_time_this_decade().isoformat(" "), pa.string()),
        "timestamp_compact": (
            lambda i: f"{fake.date_time_this_decade():%Y%m%d%H%M%S}",
            pa.string(),
        ),
    }
    none = [False] * rows
    for name, (make, typ) in gen.items():
        values = [make(i) for i in range(rows)]
        table.add(f"{locale}_decoy_{name}", None, "decoy", values, none, typ)
        if typ == pa.string() and name in ("code_13x_19x", "registration_no", "sku_ean13"):
            dirty = [r.choice(PLACEHOLDERS) if r.random() < 0.2 else v for v in values]
            table.add(f"{locale}_decoy_{name}_dirty", None, "dirty decoy", dirty, none)


def dirty_tables(rows: int = 500, seeds: int = 1) -> list[Table]:
    """One labelled table per (locale, seed)."""
    return [locale_table(loc, rows, seed) for seed in range(seeds) for loc in REGIONS]


# ---- scoring --------------------------------------------------------------------------------


def score(tables: list[Table], threshold: float = 0.8) -> dict[str, Any]:
    """Column P/R per category for each kind of column; decoys flagged; what the gate stops."""
    from databourse.pii.detect import scan_table
    from databourse.pii.screening import check_declarations
    from databourse_samples.pii_evalset import column_scores

    views: dict[str, tuple[dict[str, str | None], dict[str, str | None]]] = {}
    flagged: list[str] = []
    stopped = {"dirty": [0, 0], "decoy": [0, 0]}
    for i, t in enumerate(tables):
        for f in scan_table(t.table(), threshold=threshold):
            kind, label = t.kinds[f.column], t.labels[f.column]
            views_of = ["all", "clean" if "dirty" not in kind else "dirty"]
            if kind == "int64":
                views_of = ["all", "int64"]
            for view in views_of if "decoy" not in kind else ["all", "clean", "dirty", "int64"]:
                labels, predicted = views.setdefault(view, ({}, {}))
                labels[f"{i}/{f.column}"], predicted[f"{i}/{f.column}"] = label, f.category
            if "decoy" in kind and f.category:
                flagged.append(f"{f.column}={f.category}")
            gate = {u["found"] for u in check_declarations([f], {}).undeclared}
            if kind == "dirty":
                stopped["dirty"][0] += label in gate
                stopped["dirty"][1] += 1
            elif "decoy" in kind:
                stopped["decoy"][0] += bool(gate)
                stopped["decoy"][1] += 1
    return {
        "views": {v: column_scores(*pair) for v, pair in views.items()},
        "flagged": flagged,
        "stopped": stopped,
        "misses": _misses(views.get("all", ({}, {}))),
    }


def _misses(pair: tuple[dict[str, str | None], dict[str, str | None]]) -> list[str]:
    labels, predicted = pair
    return sorted(k for k, v in labels.items() if v is not None and predicted.get(k) != v)


def _cell(s: Any) -> str:
    if s is None:
        return "    -     -"
    precision = f"{s.precision:5.3f}" if s.tp + s.fp else "    -"
    return f"{precision} {s.recall:5.3f}"


def report(result: dict[str, Any]) -> None:
    views = result["views"]
    order = [v for v in ("clean", "dirty", "int64", "all") if v in views]
    cats = sorted({c for v in views.values() for c in v})
    print(f"{'category':16} " + " ".join(f"{v + ' P   R':>13}" for v in order))
    for cat in cats:
        print(f"{cat:16} " + " ".join(f"{_cell(views[v].get(cat)):>13}" for v in order))
    print(f"decoy columns flagged: {len(result['flagged'])} {sorted(set(result['flagged']))}")
    d, s = result["stopped"]["dirty"], result["stopped"]["decoy"]
    print(f"gate (nothing declared) stops: dirty columns {d[0]}/{d[1]}, decoys {s[0]}/{s[1]}")
    print(f"missed columns: {len(result['misses'])} {result['misses'][:40]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    report(score(dirty_tables(args.rows, args.seeds)))


if __name__ == "__main__":
    main()
