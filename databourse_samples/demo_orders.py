"""Shenzhen retail: rows of the sz-retail/customer_orders sample drop."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter

from databourse_samples.demo_draws import K, Person, pool, random_date, unique, valid_phone


def _hanzi(text: str) -> tuple[tuple[str, str], ...]:
    """("王", "wang") pairs from "王wang 李li ...": one character, then its pinyin."""
    return tuple((word[0], word[1:]) for word in text.split())


ORDER_COLUMNS = pool(
    "order_id, customer_id_number, customer_name, mobile, email, birth_date, district, "
    "order_date, category, amount_cny"
)

# Birth-registration area codes: Shenzhen districts (most), elsewhere in Guangdong, a few cities.
CN_AREA_CODES = pool(
    "440301, 440303, 440304, 440305, 440306, 440307, 440308, 440309, 440310, 440311, 440104, "
    "440106, 441302, 445102, 440513, 430102, 420106, 110105, 310104, 510107"
)
CN_AREA_WEIGHTS = (2, 6, 7, 8, 8, 8, 2, 5, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1)
CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CN_MOBILE_PREFIXES = pool(
    "130, 133, 135, 136, 137, 138, 139, 150, 151, 152, 158, 159, 166, 177, 180, 186, 187, 188, "
    "189, 199"
)
DISTRICTS = pool("南山区, 福田区, 罗湖区, 宝安区, 龙岗区, 龙华区")
DISTRICT_WEIGHTS = (22, 20, 12, 20, 16, 10)
DECADES = (1950, 1960, 1970, 1980, 1990, 2000)  # births 1955-2005, clustered 1965-2004
DECADE_WEIGHTS = (2, 8, 17, 30, 30, 13)
CATEGORIES = pool("生鲜, 日用品, 食品饮料, 电子产品, 服装鞋帽, 母婴用品, 美妆个护, 家居家装")
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


def _customer(rng: random.Random, decade: int, used: set[str]) -> Person:
    male = rng.random() < 0.5
    birth = random_date(rng, max(decade, 1955), min(decade + 9, 2005))
    id_number = unique(used, lambda: _cn_resident_id(rng, birth, male))
    surname, surname_py = rng.choice(CN_SURNAMES)
    given = rng.sample(CN_GIVEN[male], 2 if rng.random() < 0.7 else 1)
    name = surname + "".join(c for c, _ in given)
    phone = unique(used, lambda: _cn_mobile(rng))
    given_py = "".join(p for _, p in given)
    email = (
        unique(used, lambda: _email(rng, surname_py, given_py, birth)) if rng.random() < 0.8 else ""
    )
    return Person(name, male, birth, id_number, phone, email)


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
    return text if valid_phone(text, "CN") else ""


def _email(rng: random.Random, surname: str, given: str, birth: dt.date) -> str:
    domain = rng.choices(("qq.com", "163.com", "example.cn"), weights=(40, 35, 25))[0]
    if domain == "qq.com":
        return f"{rng.randint(10_000, 3_999_999_999)}@qq.com"
    if domain == "163.com":
        suffix = rng.choice(("", f"{birth:%Y}", f"{birth:%y}", str(rng.randint(1, 999))))
        return f"{surname}{given}{suffix}@163.com"
    return f"{given}.{surname}{rng.choice(('', str(rng.randint(1, 99))))}@example.cn"
