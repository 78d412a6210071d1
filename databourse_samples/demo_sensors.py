"""Kuala Lumpur building operations: rows of the my-buildops/sensor_readings sample drop."""

from __future__ import annotations

import datetime as dt
import random

from databourse_samples.demo_draws import K, Person, pool, random_date, unique, valid_phone

SENSOR_COLUMNS = pool(
    "reading_id, site_id, floor, reading_time, temperature_c, humidity_pct, co2_ppm, "
    "occupant_name, occupant_mykad, occupant_phone"
)

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
    True: pool(
        "Ahmad, Muhammad Hafiz, Mohd Faizal, Azlan, Amirul, Syafiq, Zulkifli, Farid, Hakim, "
        "Iskandar, Khairul Anuar, Nazri, Rizal, Ikhwan, Haziq"
    ),
    False: pool(
        "Nur Aisyah, Siti Nurhaliza, Nurul Huda, Farah, Aminah, Zarina, Noraini, Fatimah, "
        "Liyana, Syazwani, Hidayah, Salmah, Nur Izzati, Amira"
    ),
}
MALAY_FATHERS = pool(
    "Abdullah, Ismail, Ibrahim, Hassan, Othman, Yusof, Abdul Rahman, Hamzah, Ahmad, Mahmud, "
    "Kamarudin, Sulaiman, Abdul Aziz, Razali"
)
CHINESE_MY_SURNAMES = pool(
    "Tan, Lim, Lee, Ng, Wong, Chan, Ong, Teh, Goh, Chong, Yap, Loh, Koh, Cheah, Low, Foo, Liew"
)
CHINESE_MY_GIVEN = {  # first and second syllables
    True: (
        pool("Wei, Chee, Kah, Jun, Boon, Kok, Yong, Zhi, Soon, Kian"),
        pool("Ming, Keong, Seng, Hao, Huat, Leong, Sheng, Wai, Keat, Hong"),
    ),
    False: (
        pool("Mei, Siew, Hui, Pei, Li, Xin, Wai, Shu, Ai, Yee"),
        pool("Ling, Lan, Min, Shan, Ying, Yi, Yee, Fen, Wen, Qi"),
    ),
}
INDIAN_GIVEN = {
    True: pool(
        "Suresh, Ramesh, Ganesh, Rajesh, Arun, Vijay, Prakash, Saravanan, Muthu, Kannan, "
        "Darshan, Vinod"
    ),
    False: pool(
        "Kavitha, Priya, Lakshmi, Devi, Shanti, Anitha, Malathi, Revathi, Thilagavathy, "
        "Sangeetha, Kalaivani, Deepa"
    ),
}
INDIAN_FATHERS = pool(
    "Subramaniam, Rajendran, Muniandy, Krishnan, Arumugam, Govindasamy, Ramasamy, Selvaraju, "
    "Nadarajah, Perumal, Maniam, Kumar"
)


def sensor_rows(rng: random.Random, scale: float, n_rows: int | None = None) -> list[list[str]]:
    """Rows of my-buildops/sensor_readings, sorted by time, site and floor, numbered R000001..."""
    n = n_rows if n_rows is not None else max(len(SITES) * len(FLOORS) * K, round(2000 * scale))
    days = READING_DAYS if n >= 2 * len(SITES) * len(FLOORS) * 2 * K else READING_DAYS[-1:]
    slots = [(s, f) for s in SITES for f in FLOORS]
    classes = [(s, f, d) for (s, f) in slots for d in days]
    counts = [n // len(classes)] * len(classes)
    for i in rng.sample(range(len(classes)), n % len(classes)):
        counts[i] += 1
    people = occupants(rng, max(len(slots), round(300 * scale)))
    by_slot = {slot: people[i :: len(slots)] for i, slot in enumerate(slots)}
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
    who: Person | None,
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


def occupants(rng: random.Random, n: int) -> list[Person]:
    used: set[str] = set()
    return [_occupant(rng, used) for _ in range(n)]


def _occupant(rng: random.Random, used: set[str]) -> Person:
    male = rng.random() < 0.5
    birth = random_date(rng, 1960, 2005)
    mykad = unique(used, lambda: _mykad(rng, birth, male))
    phone = unique(used, lambda: _my_mobile(rng))
    return Person(_malaysian_name(rng, male), male, birth, mykad, phone)


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
    return text if valid_phone(text, "MY") else ""
