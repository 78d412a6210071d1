"""Seeded, deterministic sample drops (KL sensor readings, Shenzhen orders) for demo and tests."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import math
import os
import random
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import phonenumbers

from databourse.errors import DataBourseError

logger = logging.getLogger(__name__)


def _pool(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


def _hanzi(text: str) -> tuple[tuple[str, str], ...]:
    """("王", "wang") pairs from "王wang 李li ...": one character, then its pinyin."""
    return tuple((word[0], word[1:]) for word in text.split())


DROP_DATE = "2026-11-20"
SENSOR_COLUMNS = _pool(
    "reading_id, site_id, floor, reading_time, temperature_c, humidity_pct, co2_ppm, "
    "occupant_name, occupant_mykad, occupant_phone"
)
ORDER_COLUMNS = _pool(
    "order_id, customer_id_number, customer_name, mobile, email, birth_date, district, "
    "order_date, category, amount_cny"
)
K = 5  # both products ask for k=5; the generators keep every class at least this large
BadKind = Literal["ragged", "binary", "empty", "missing_column"]


# ---- Kuala Lumpur building operations
SITES = ("KUL-MENARA-1", "KUL-MENARA-2", "KUL-BANGSAR-3")
FLOORS = tuple(range(1, 7))
READING_DAYS = (dt.date(2026, 11, 18), dt.date(2026, 11, 19))
OFFICE_HOURS = range(8, 19)  # occupants badge in between 08:00 and 18:59
HOURS = tuple(range(7, 22))
# Assigned MyKad place-of-birth codes (states 01-16, alternative state codes, foreign births).
MY_PB_CODES = tuple(
    f"{c:02d}"
    for c in (*range(1, 17), *range(21, 69), 71, 72, *range(74, 80), *range(82, 94), 98, 99)
)
# Weighted toward Klang Valley births: Selangor (10) and Kuala Lumpur (14).
MY_PB_WEIGHTS = tuple(12 if c in ("10", "14") else 3 if int(c) <= 16 else 1 for c in MY_PB_CODES)
MY_MOBILE_PREFIXES = ("10", "11", "12", "13", "14", "16", "17", "18", "19")
MALAY_GIVEN = {
    True: _pool(
        "Ahmad, Muhammad Hafiz, Mohd Faizal, Azlan, Amirul, Syafiq, Zulkifli, Farid, Hakim, "
        "Iskandar, Khairul Anuar, Nazri, Rizal, Ikhwan, Haziq"
    ),
    False: _pool(
        "Nur Aisyah, Siti Nurhaliza, Nurul Huda, Farah, Aminah, Zarina, Noraini, Fatimah, "
        "Liyana, Syazwani, Hidayah, Salmah, Nur Izzati, Amira"
    ),
}
MALAY_FATHERS = _pool(
    "Abdullah, Ismail, Ibrahim, Hassan, Othman, Yusof, Abdul Rahman, Hamzah, Ahmad, Mahmud, "
    "Kamarudin, Sulaiman, Abdul Aziz, Razali"
)
CHINESE_MY_SURNAMES = _pool(
    "Tan, Lim, Lee, Ng, Wong, Chan, Ong, Teh, Goh, Chong, Yap, Loh, Koh, Cheah, Low, Foo, Liew"
)
CHINESE_MY_GIVEN = {  # first and second syllables
    True: (
        _pool("Wei, Chee, Kah, Jun, Boon, Kok, Yong, Zhi, Soon, Kian"),
        _pool("Ming, Keong, Seng, Hao, Huat, Leong, Sheng, Wai, Keat, Hong"),
    ),
    False: (
        _pool("Mei, Siew, Hui, Pei, Li, Xin, Wai, Shu, Ai, Yee"),
        _pool("Ling, Lan, Min, Shan, Ying, Yi, Yee, Fen, Wen, Qi"),
    ),
}
INDIAN_GIVEN = {
    True: _pool(
        "Suresh, Ramesh, Ganesh, Rajesh, Arun, Vijay, Prakash, Saravanan, Muthu, Kannan, "
        "Darshan, Vinod"
    ),
    False: _pool(
        "Kavitha, Priya, Lakshmi, Devi, Shanti, Anitha, Malathi, Revathi, Thilagavathy, "
        "Sangeetha, Kalaivani, Deepa"
    ),
}
INDIAN_FATHERS = _pool(
    "Subramaniam, Rajendran, Muniandy, Krishnan, Arumugam, Govindasamy, Ramasamy, Selvaraju, "
    "Nadarajah, Perumal, Maniam, Kumar"
)

# ---- Shenzhen retail
# Birth-registration area codes: Shenzhen districts (most), elsewhere in Guangdong, a few cities.
CN_AREA_CODES = _pool(
    "440301, 440303, 440304, 440305, 440306, 440307, 440308, 440309, 440310, 440311, 440104, "
    "440106, 441302, 445102, 440513, 430102, 420106, 110105, 310104, 510107"
)
CN_AREA_WEIGHTS = (2, 6, 7, 8, 8, 8, 2, 5, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1)
CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CN_MOBILE_PREFIXES = _pool(
    "130, 133, 135, 136, 137, 138, 139, 150, 151, 152, 158, 159, 166, 177, 180, 186, 187, 188, "
    "189, 199"
)
DISTRICTS = _pool("南山区, 福田区, 罗湖区, 宝安区, 龙岗区, 龙华区")
DISTRICT_WEIGHTS = (22, 20, 12, 20, 16, 10)
DECADES = (1950, 1960, 1970, 1980, 1990, 2000)  # births 1955-2005, clustered 1965-2004
DECADE_WEIGHTS = (2, 8, 17, 30, 30, 13)
CATEGORIES = _pool("生鲜, 日用品, 食品饮料, 电子产品, 服装鞋帽, 母婴用品, 美妆个护, 家居家装")
CATEGORY_WEIGHTS = (22, 18, 18, 8, 10, 8, 9, 7)
CATEGORY_MEDIAN_CNY = (85.0, 60.0, 70.0, 1200.0, 260.0, 180.0, 220.0, 350.0)
CN_SURNAMES = _hanzi(
    "王wang 李li 张zhang 刘liu 陈chen 杨yang 黄huang 赵zhao 吴wu 周zhou 徐xu 孙sun 马ma 朱zhu 胡hu "
    "郭guo 何he 林lin 罗luo 梁liang 郑zheng 谢xie 邓deng 曾zeng 蔡cai"
)
CN_GIVEN = {
    True: _hanzi(
        "伟wei 强qiang 磊lei 军jun 勇yong 杰jie 涛tao 明ming 超chao 华hua 建jian 国guo 辉hui "
        "鹏peng 浩hao 宇yu 俊jun 峰feng 斌bin 志zhi"
    ),
    False: _hanzi(
        "芳fang 娜na 敏min 静jing 丽li 艳yan 娟juan 霞xia 秀xiu 玲ling 婷ting 雪xue 琳lin 颖ying "
        "慧hui 洁jie 倩qian 欣xin 怡yi 佳jia"
    ),
}
ORDER_FIRST_DAY = dt.date(2026, 9, 1)
ORDER_DAYS = 80  # 2026-09-01 .. 2026-11-19, the day before the drop


@dataclass(frozen=True)
class SampleDrop:
    """One generated landing file."""

    provider: str
    dataset: str
    path: Path
    rows: int


def generate_drops(
    landing_dir: Path, *, seed: int = 20261120, scale: float = 1.0
) -> list[SampleDrop]:
    """Write both sample drops under `landing_dir`; same seed and scale give the same bytes."""
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError("scale must be a positive finite number")
    # One Random per dataset, so a change to one generator leaves the other file's bytes alone.
    sensors = sensor_rows(random.Random(_sub_seed(seed, "my-buildops/sensor_readings")), scale)
    orders = order_rows(random.Random(_sub_seed(seed, "sz-retail/customer_orders")), scale)
    outputs = (
        ("my-buildops", "sensor_readings", f"readings-{DROP_DATE}.csv", SENSOR_COLUMNS, sensors),
        ("sz-retail", "customer_orders", f"orders-{DROP_DATE}.csv", ORDER_COLUMNS, orders),
    )
    drops = []
    for provider, dataset, name, header, rows in outputs:
        drop = SampleDrop(provider, dataset, landing_dir / provider / dataset / name, len(rows))
        data = _csv_bytes(header, rows)
        _atomic_write(drop.path, data)
        digest = hashlib.sha256(data).hexdigest()
        logger.info(
            "wrote sample drop %s/%s: %d rows, sha256 %s", provider, dataset, len(rows), digest
        )
        drops.append(drop)
    return drops


def write_bad_drop(path: Path, kind: BadKind) -> Path:
    """Write a small broken file (for the sensor_readings contract) that ingest must quarantine."""
    rows = sensor_rows(random.Random(_sub_seed(0, f"bad/{kind}")), 0.0, n_rows=8)
    if kind == "empty":
        data = b""
    elif kind == "binary":
        # What a mis-sent spreadsheet looks like: a zip header and bytes that are not UTF-8.
        data = b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(0x80, 0x100)) + b"\xff\xfe\x00\xc3("
    elif kind == "ragged":
        rows[3] = rows[3][:-2]  # a row that lost its last two cells
        rows[5] = [*rows[5], "EXTRA"]
        data = _csv_bytes(SENSOR_COLUMNS, rows)
    elif kind == "missing_column":
        drop = SENSOR_COLUMNS.index("co2_ppm")
        header = tuple(c for i, c in enumerate(SENSOR_COLUMNS) if i != drop)
        data = _csv_bytes(header, [[v for i, v in enumerate(r) if i != drop] for r in rows])
    else:
        raise ValueError(f"unknown bad drop kind {kind!r}")
    _atomic_write(path, data)
    logger.info("wrote bad sample drop (%s): %d bytes", kind, len(data))
    return path


# ---------------------------------------------------------------- sensor readings
@dataclass(frozen=True)
class _Person:
    name: str
    male: bool
    birth: dt.date
    id_number: str
    phone: str
    email: str = ""  # CN customers only


def sensor_rows(rng: random.Random, scale: float, n_rows: int | None = None) -> list[list[str]]:
    """Rows of my-buildops/sensor_readings, sorted by time, site and floor, numbered R000001..."""
    n = n_rows if n_rows is not None else max(len(SITES) * len(FLOORS) * K, round(2000 * scale))
    days = READING_DAYS if n >= 2 * len(SITES) * len(FLOORS) * 2 * K else READING_DAYS[-1:]
    slots = [(s, f) for s in SITES for f in FLOORS]
    classes = [(s, f, d) for (s, f) in slots for d in days]
    counts = [n // len(classes)] * len(classes)
    for i in rng.sample(range(len(classes)), n % len(classes)):
        counts[i] += 1
    occupants = _occupants(rng, max(len(slots), round(300 * scale)))
    by_slot = {slot: occupants[i :: len(slots)] for i, slot in enumerate(slots)}
    base_temp = {slot: rng.uniform(22.5, 25.0) for slot in slots}
    rows: list[list[str]] = []
    for (site, floor, day), count in zip(classes, counts, strict=True):
        for _ in range(count):
            hour = rng.choices(HOURS, weights=[3 if h in OFFICE_HOURS else 1 for h in HOURS])[0]
            present = hour in OFFICE_HOURS and rng.random() > 0.06
            who = rng.choice(by_slot[(site, floor)]) if present and by_slot[(site, floor)] else None
            rows.append(_reading(rng, site, floor, day, hour, who, base_temp[(site, floor)]))
    rows.sort(key=lambda r: (r[2], r[0], int(r[1])))
    return [[f"R{i:06d}", *r] for i, r in enumerate(rows, start=1)]


def _reading(
    rng: random.Random,
    site: str,
    floor: int,
    day: dt.date,
    hour: int,
    who: _Person | None,
    base: float,
) -> list[str]:
    office = hour in OFFICE_HOURS
    temp = base + (1.2 if office else -0.8) + (0.8 if who else 0.0) + rng.gauss(0, 0.7)
    humidity = 58.0 + rng.gauss(0, 6.0) - (4.0 if office else 0.0)
    co2 = 450 + (rng.randint(150, 650) if who else 0) + (rng.randint(0, 200) if office else 0)
    co2 += round(rng.gauss(0, 25))
    when = dt.datetime.combine(day, dt.time(hour)).isoformat()
    temp_c = f"{min(max(temp, 20.0), 30.0):.1f}"
    humidity_pct = f"{min(max(humidity, 35.0), 85.0):.1f}"
    person = [who.name, who.id_number, who.phone] if who else ["", "", ""]
    return [site, str(floor), when, temp_c, humidity_pct, str(min(max(co2, 400), 1500)), *person]


def _occupants(rng: random.Random, n: int) -> list[_Person]:
    used: set[str] = set()
    return [_occupant(rng, used) for _ in range(n)]


def _occupant(rng: random.Random, used: set[str]) -> _Person:
    male = rng.random() < 0.5
    birth = _random_date(rng, 1960, 2005)
    mykad = _unique(used, lambda: _mykad(rng, birth, male))
    phone = _unique(used, lambda: _my_mobile(rng))
    return _Person(_malaysian_name(rng, male), male, birth, mykad, phone)


def _malaysian_name(rng: random.Random, male: bool) -> str:
    group = rng.choices(("malay", "chinese", "indian"), weights=(50, 38, 12))[0]
    if group == "malay":
        return (
            f"{rng.choice(MALAY_GIVEN[male])} {'bin' if male else 'binti'} "
            f"{rng.choice(MALAY_FATHERS)}"
        )
    if group == "indian":
        return (
            f"{rng.choice(INDIAN_GIVEN[male])} {'a/l' if male else 'a/p'} "
            f"{rng.choice(INDIAN_FATHERS)}"
        )
    first, second = CHINESE_MY_GIVEN[male]
    return f"{rng.choice(CHINESE_MY_SURNAMES)} {rng.choice(first)} {rng.choice(second)}"


def _mykad(rng: random.Random, birth: dt.date, male: bool) -> str:
    pb = rng.choices(MY_PB_CODES, weights=MY_PB_WEIGHTS)[0]
    serial = rng.randrange(0, 500) * 2 + (1 if male else 0)  # last digit odd for men
    return f"{birth:%y%m%d}-{pb}-{serial:04d}"


def _my_mobile(rng: random.Random) -> str:
    prefix = rng.choices(MY_MOBILE_PREFIXES, weights=(1, 3, 4, 3, 1, 3, 3, 1, 3))[0]
    head = str(rng.randint(2, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(2))
    tail = "".join(str(rng.randint(0, 9)) for _ in range(4))
    if prefix == "11":  # 011 numbers carry one more digit
        head += str(rng.randint(0, 9))
    text = f"+60 {prefix}-{head} {tail}" if rng.random() < 0.3 else f"0{prefix}-{head} {tail}"
    return text if _valid_phone(text, "MY") else ""


# ---------------------------------------------------------------- customer orders
def order_rows(rng: random.Random, scale: float) -> list[list[str]]:
    """Rows of sz-retail/customer_orders, sorted by order_id ("SZ" + date + daily sequence)."""
    n_orders = max(10 * K, round(3000 * scale))
    n_customers = min(n_orders, max(2 * K, round(400 * scale)))
    activity = [rng.paretovariate(1.6) for _ in range(n_customers)]
    per_customer = Counter(
        rng.choices(range(n_customers), weights=activity, k=n_orders - n_customers)
    )
    counts = [1 + per_customer[i] for i in range(n_customers)]
    classes = _balanced_classes(rng, counts, budget=n_orders // 50)
    used: set[str] = set()
    drafts: list[tuple[str, list[str]]] = []
    for (decade, district), count in zip(classes, counts, strict=True):
        who = _customer(rng, decade, used)
        person = [who.id_number, who.name, who.phone, who.email, who.birth.isoformat(), district]
        for _ in range(count):
            day = ORDER_FIRST_DAY + dt.timedelta(days=rng.randrange(ORDER_DAYS))
            cat = rng.choices(range(len(CATEGORIES)), weights=CATEGORY_WEIGHTS)[0]
            amount = max(2.0, CATEGORY_MEDIAN_CNY[cat] * math.exp(rng.gauss(0, 0.6)))
            cells = [*person, day.isoformat(), CATEGORIES[cat], f"{amount:.2f}"]
            drafts.append((f"{day:%Y%m%d}", cells))
    drafts.sort(key=lambda d: d[0])
    sequence: Counter[str] = Counter()
    rows = []
    for day_key, cells in drafts:
        sequence[day_key] += 1
        rows.append([f"SZ{day_key}{sequence[day_key]:04d}", *cells])
    return rows


def _balanced_classes(rng: random.Random, counts: list[int], budget: int) -> list[tuple[int, str]]:
    """(birth decade, district) per customer, merged until small classes fit the budget."""
    classes = [
        (rng.choices(DECADES, DECADE_WEIGHTS)[0], rng.choices(DISTRICTS, DISTRICT_WEIGHTS)[0])
        for _ in counts
    ]
    while True:
        rows: Counter[tuple[int, str]] = Counter()
        for cls, count in zip(classes, counts, strict=True):
            rows[cls] += count
        small = sorted((n, cls) for cls, n in rows.items() if n < K)
        if sum(n for n, _ in small) <= budget:
            return classes
        # Merge the smallest class into the biggest one of its decade, else the biggest overall.
        victim = small[0][1]
        same_decade = [(n, c) for c, n in rows.items() if c[0] == victim[0] and n >= K]
        target = max(same_decade or [(n, c) for c, n in rows.items() if c != victim])[1]
        classes = [target if c == victim else c for c in classes]


def _customer(rng: random.Random, decade: int, used: set[str]) -> _Person:
    male = rng.random() < 0.5
    birth = _random_date(rng, max(decade, 1955), min(decade + 9, 2005))
    id_number = _unique(used, lambda: _cn_resident_id(rng, birth, male))
    surname, surname_py = rng.choice(CN_SURNAMES)
    given = rng.sample(CN_GIVEN[male], 2 if rng.random() < 0.7 else 1)
    name = surname + "".join(c for c, _ in given)
    phone = _unique(used, lambda: _cn_mobile(rng))
    given_py = "".join(p for _, p in given)
    email = (
        _unique(used, lambda: _email(rng, surname_py, given_py, birth))
        if rng.random() < 0.8
        else ""
    )
    return _Person(name, male, birth, id_number, phone, email)


def cn_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of a CN resident ID's first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, CN_ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def _cn_resident_id(rng: random.Random, birth: dt.date, male: bool) -> str:
    area = rng.choices(CN_AREA_CODES, CN_AREA_WEIGHTS)[0]
    sequence = rng.randrange(0, 500) * 2 + (1 if male else 0)  # odd for men
    body = f"{area}{birth:%Y%m%d}{sequence:03d}"
    return body + cn_check_char(body)


def _cn_mobile(rng: random.Random) -> str:
    text = rng.choice(CN_MOBILE_PREFIXES) + "".join(str(rng.randint(0, 9)) for _ in range(8))
    return text if _valid_phone(text, "CN") else ""


def _email(rng: random.Random, surname: str, given: str, birth: dt.date) -> str:
    domain = rng.choices(("qq.com", "163.com", "example.cn"), weights=(40, 35, 25))[0]
    if domain == "qq.com":
        return f"{rng.randint(10_000, 3_999_999_999)}@qq.com"
    if domain == "163.com":
        suffix = rng.choice(("", f"{birth:%Y}", f"{birth:%y}", str(rng.randint(1, 999))))
        return f"{surname}{given}{suffix}@163.com"
    return f"{given}.{surname}{rng.choice(('', str(rng.randint(1, 99))))}@example.cn"


# ---------------------------------------------------------------- helpers
def _sub_seed(seed: int, name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "big")


def _random_date(rng: random.Random, first_year: int, last_year: int) -> dt.date:
    start = dt.date(first_year, 1, 1)
    return start + dt.timedelta(days=rng.randrange((dt.date(last_year, 12, 31) - start).days + 1))


def _unique(used: set[str], draw: Callable[[], str], attempts: int = 1000) -> str:
    """Draw until a value is non-empty and new (draw returns "" for a rejected candidate)."""
    for _ in range(attempts):
        value = draw()
        if value and value not in used:
            used.add(value)
            return value
    raise DataBourseError("could not draw a unique sample value", attempts=attempts)


def _valid_phone(text: str, region: str) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(text, region)))
    except phonenumbers.NumberParseException:
        return False


def _csv_bytes(header: tuple[str, ...], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180: CRLF, minimal quoting
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
