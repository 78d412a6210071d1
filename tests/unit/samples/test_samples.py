"""Seeded sample drops: determinism, schema contracts, valid identifiers, k-anonymity."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import random
import re
from collections import defaultdict
from pathlib import Path

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
import yaml

from databourse.config import DatasetSpec, ProviderSpec
from databourse_samples.demo import SampleDrop, generate_drops, write_bad_drop

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
ARROW = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("s"),
}
# MyKad place-of-birth codes that were never assigned (everything else 00-99 is).
UNASSIGNED_PB = {0, 17, 18, 19, 20, 69, 70, 73, 80, 81, 94, 95, 96, 97}
SHENZHEN_DISTRICTS = {"南山区", "福田区", "罗湖区", "宝安区", "龙岗区", "龙华区"}


def contract(provider: str, dataset: str) -> DatasetSpec:
    data = yaml.safe_load((CONFIGS / "providers" / f"{provider}.yaml").read_text("utf-8"))
    return ProviderSpec.model_validate(data).datasets[dataset]


def read(drop: SampleDrop) -> pa.Table:
    """Parse a drop the way a strict ingest would: contract types, blanks as nulls."""
    spec = contract(drop.provider, drop.dataset)
    return pacsv.read_csv(
        drop.path,
        convert_options=pacsv.ConvertOptions(
            column_types={c.name: ARROW[c.type] for c in spec.columns},
            strings_can_be_null=True,
        ),
    )


def by_dataset(drops: list[SampleDrop]) -> dict[str, SampleDrop]:
    return {d.dataset: d for d in drops}


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SampleDrop]:
    return by_dataset(generate_drops(tmp_path_factory.mktemp("full")))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SampleDrop]:
    return by_dataset(generate_drops(tmp_path_factory.mktemp("small"), scale=0.1))


def digests(drops: list[SampleDrop]) -> list[str]:
    return [hashlib.sha256(d.path.read_bytes()).hexdigest() for d in drops]


# ---------------------------------------------------------------- determinism and layout
def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    first = generate_drops(tmp_path / "a", seed=7, scale=0.1)
    second = generate_drops(tmp_path / "b", seed=7, scale=0.1)
    assert digests(first) == digests(second)
    again = generate_drops(tmp_path / "a", seed=7, scale=0.1)  # rewrite in place
    assert digests(again) == digests(first)
    leftovers = [p.name for p in (tmp_path / "a").rglob("*") if p.is_file()]
    assert sorted(leftovers) == ["orders-2026-11-20.csv", "readings-2026-11-20.csv"]


def test_different_seed_gives_different_bytes(tmp_path: Path) -> None:
    one = digests(generate_drops(tmp_path / "a", seed=1, scale=0.1))
    two = digests(generate_drops(tmp_path / "b", seed=2, scale=0.1))
    assert one[0] != two[0] and one[1] != two[1]


def test_global_random_state_untouched(tmp_path: Path) -> None:
    random.seed(123)
    state = random.getstate()
    generate_drops(tmp_path, scale=0.1)
    assert random.getstate() == state


def test_layout_and_encoding(small: dict[str, SampleDrop], tmp_path: Path) -> None:
    sensors, orders = small["sensor_readings"], small["customer_orders"]
    assert sensors.provider == "my-buildops" and orders.provider == "sz-retail"
    assert sensors.path.parts[-3:] == ("my-buildops", "sensor_readings", "readings-2026-11-20.csv")
    assert orders.path.parts[-3:] == ("sz-retail", "customer_orders", "orders-2026-11-20.csv")
    for drop in (sensors, orders):
        raw = drop.path.read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")
        text = raw.decode("utf-8")
        names = [c.name for c in contract(drop.provider, drop.dataset).columns]
        assert text.split("\r\n", 1)[0] == ",".join(names)
        assert text.endswith("\r\n") and text.count("\r\n") == drop.rows + 1
    assert "南山区" in orders.path.read_text("utf-8") or "福田区" in orders.path.read_text("utf-8")


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_scale_is_refused(tmp_path: Path, scale: float) -> None:
    with pytest.raises(ValueError):
        generate_drops(tmp_path, scale=scale)
    assert not any(tmp_path.iterdir())


def test_logs_carry_no_cell_values(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="databourse_samples"):
        drops = by_dataset(generate_drops(tmp_path, scale=0.1))
    assert "sha256" in caplog.text
    ids = read(drops["customer_orders"]).column("customer_id_number").to_pylist()
    mykads = read(drops["sensor_readings"]).column("occupant_mykad").drop_null().to_pylist()
    assert not any(value in caplog.text for value in [*ids, *mykads])


# ---------------------------------------------------------------- schema contracts
@pytest.mark.parametrize("which", ["small", "full"])
def test_files_match_their_contracts(which: str, request: pytest.FixtureRequest) -> None:
    drops: dict[str, SampleDrop] = request.getfixturevalue(which)
    expected_rows = {"sensor_readings": 2000, "customer_orders": 3000}
    factor = 0.1 if which == "small" else 1.0
    for name, drop in drops.items():
        spec = contract(drop.provider, drop.dataset)
        table = read(drop)
        assert table.column_names == [c.name for c in spec.columns]
        assert table.num_rows == drop.rows == round(expected_rows[name] * factor)
        for col in spec.columns:
            values = table.column(col.name)
            assert values.type == ARROW[col.type]
            if not col.nullable:
                assert values.null_count == 0, col.name
            if col.unique:
                assert pc.count_distinct(values).as_py() == table.num_rows, col.name
        key = [table.column(k).to_pylist() for k in spec.primary_key]
        assert len(set(zip(*key, strict=True))) == table.num_rows


def test_typed_columns_are_inferred_without_hints(full: dict[str, SampleDrop]) -> None:
    # A reader with no contract at hand must still see timestamps, dates and numbers.
    for drop in full.values():
        inferred = pacsv.read_csv(drop.path).schema
        for col in contract(drop.provider, drop.dataset).columns:
            if col.type in ("int64", "float64", "date", "timestamp"):
                assert inferred.field(col.name).type == ARROW[col.type], col.name


# ---------------------------------------------------------------- Kuala Lumpur sensor readings
MYKAD = re.compile(r"^(\d{2})(\d{2})(\d{2})-(\d{2})-(\d{4})$")
MY_PHONE = re.compile(r"^(\+60 1\d|01\d)-\d{3,4} \d{4}$")


def mykad_is_valid(value: str) -> bool:
    """Independent MyKad check: shape, a real birth date in 1960-2005, an assigned PB code."""
    match = MYKAD.match(value)
    if not match:
        return False
    yy, mm, dd, pb, _ = match.groups()
    year = (1900 if int(yy) >= 60 else 2000) + int(yy)
    try:
        born = dt.date(year, int(mm), int(dd))
    except ValueError:
        return False
    return dt.date(1960, 1, 1) <= born <= dt.date(2005, 12, 31) and int(pb) not in UNASSIGNED_PB


def test_mykad_checker_rejects_bad_numbers() -> None:
    assert mykad_is_valid("850312-14-5673")
    for bad in ("850230-14-5673", "850312-17-5673", "850312-00-5673", "8503121456733", ""):
        assert not mykad_is_valid(bad)
    assert not mykad_is_valid("551231-14-5673")  # 2055: no such birth year


def test_sensor_values(full: dict[str, SampleDrop]) -> None:
    drop = full["sensor_readings"]
    table = read(drop)
    assert all(re.fullmatch(r"R\d{6}", v) for v in table.column("reading_id").to_pylist())
    sites = set(table.column("site_id").to_pylist())
    assert len(sites) == 3 and all(s.startswith("KUL-") for s in sites)
    assert set(table.column("floor").to_pylist()) == set(range(1, 7))
    times = table.column("reading_time").to_pylist()
    assert all(t.minute == 0 and t.second == 0 for t in times)
    assert 1 <= len({t.date() for t in times}) <= 2
    assert pc.min(table.column("temperature_c")).as_py() >= 20.0
    assert pc.max(table.column("temperature_c")).as_py() <= 30.0
    assert pc.min(table.column("co2_ppm")).as_py() >= 400
    assert pc.max(table.column("co2_ppm")).as_py() <= 1500
    with drop.path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            assert re.fullmatch(r"\d{2}\.\d", row["temperature_c"])
            assert re.fullmatch(r"\d{2}\.\d", row["humidity_pct"])


def test_occupants_valid_and_consistent(full: dict[str, SampleDrop]) -> None:
    rows = read(full["sensor_readings"]).select(
        ["occupant_name", "occupant_mykad", "occupant_phone"]
    )
    people: dict[str, set[tuple[str, str]]] = defaultdict(set)
    empty = 0
    for name, mykad, phone in zip(*(c.to_pylist() for c in rows.columns), strict=True):
        if mykad is None:
            assert name is None and phone is None
            empty += 1
            continue
        assert mykad_is_valid(mykad), "invalid MyKad"
        assert MY_PHONE.match(phone), "phone format"
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone, "MY"))
        male = " bin " in name or " a/l " in name
        female = " binti " in name or " a/p " in name
        if male or female:  # Malay and Indian names say the sex; MyKad's last digit agrees
            assert int(mykad[-1]) % 2 == (1 if male else 0)
        people[mykad].add((name, phone))
    assert 0 < empty < 0.3 * rows.num_rows
    assert 200 <= len(people) <= 300
    assert all(len(v) == 1 for v in people.values()), "an occupant changed name or phone"
    phones = [next(iter(v))[1] for v in people.values()]
    assert len(set(phones)) == len(phones)
    names = " ".join(next(iter(v))[0] for v in people.values())
    for marker in (" bin ", " binti ", " a/l ", " a/p "):
        assert marker in names


# ---------------------------------------------------------------- Shenzhen customer orders
CN_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
# Province-level prefixes of mainland resident IDs (GB/T 2260).
CN_PROVINCES = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
CN_PROVINCES |= {50, 51, 52, 53, 54, 61, 62, 63, 64, 65}


def cn_id_is_valid(value: str) -> bool:
    """Independent GB 11643 check: shape, real birth date 1955-2005, MOD 11-2 check character."""
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return False
    try:
        born = dt.datetime.strptime(value[6:14], "%Y%m%d").date()
    except ValueError:
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], CN_WEIGHTS, strict=True))
    return 1955 <= born.year <= 2005 and "10X98765432"[total % 11] == value[17]


def with_check(body: str) -> str:
    total = sum(int(d) * w for d, w in zip(body, CN_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def test_cn_id_checker_rejects_bad_numbers() -> None:
    assert with_check("11010519491231002") == "11010519491231002X"  # the GB 11643 example
    good = with_check("44030519800101123")
    assert cn_id_is_valid(good)
    assert not cn_id_is_valid(good[:17] + ("0" if good[17] != "0" else "1"))
    assert not cn_id_is_valid(with_check("44030519800230123"))  # 30 February
    assert not cn_id_is_valid(with_check("11010519491231002"))  # born before 1955
    assert not cn_id_is_valid(good.lower()[:17] + "x")


def test_customers_valid_and_consistent(full: dict[str, SampleDrop]) -> None:
    table = read(full["customer_orders"])
    columns = ["customer_name", "mobile", "email", "birth_date", "district"]
    seen: dict[str, set[tuple[object, ...]]] = defaultdict(set)
    rows = zip(
        table.column("customer_id_number").to_pylist(),
        *(table.column(c).to_pylist() for c in columns),
        strict=True,
    )
    for id_number, name, mobile, email, birth, district in rows:
        assert cn_id_is_valid(id_number), "invalid resident ID"
        assert int(id_number[:2]) in CN_PROVINCES
        assert id_number[6:14] == birth.strftime("%Y%m%d")
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,3}", name)
        assert re.fullmatch(r"1[3-9]\d{9}", mobile)
        assert phonenumbers.is_valid_number(phonenumbers.parse(mobile, "CN"))
        if email is not None:
            assert re.fullmatch(r"[a-z0-9.]+@(qq\.com|163\.com|example\.cn)", email)
        assert district in SHENZHEN_DISTRICTS
        seen[id_number].add((name, mobile, email, birth, district))
    assert 300 <= len(seen) <= 400
    assert sum(i.startswith("4403") for i in seen) > len(seen) / 2, "mostly born in Shenzhen"
    assert all(len(v) == 1 for v in seen.values()), "a customer changed attributes"
    mobiles = [next(iter(v))[1] for v in seen.values()]
    assert len(set(mobiles)) == len(mobiles), "two customers share a mobile"
    emails = [next(iter(v))[2] for v in seen.values()]
    assert 0 < emails.count(None) < len(emails) / 2
    assert len({e for e in emails if e}) == len([e for e in emails if e])


def test_orders_values(full: dict[str, SampleDrop]) -> None:
    drop = full["customer_orders"]
    table = read(drop)
    for order_id, day in zip(
        table.column("order_id").to_pylist(), table.column("order_date").to_pylist(), strict=True
    ):
        assert re.fullmatch(r"SZ\d{12}", order_id) and order_id[2:10] == day.strftime("%Y%m%d")
        assert dt.date(2026, 9, 1) <= day <= dt.date(2026, 11, 30)
    assert 6 <= pc.count_distinct(table.column("category")).as_py() <= 8
    assert {"生鲜", "日用品", "电子产品"} <= set(table.column("category").to_pylist())
    assert set(table.column("district").to_pylist()) == SHENZHEN_DISTRICTS
    assert pc.min(table.column("amount_cny")).as_py() >= 2.0
    with drop.path.open(encoding="utf-8", newline="") as handle:
        assert all(re.fullmatch(r"\d+\.\d{2}", r["amount_cny"]) for r in csv.DictReader(handle))


# ---------------------------------------------------------------- k-anonymity precondition
def suppressed_share(table: pa.Table, keys: list[str], k: int = 5) -> float:
    """Share of records in equivalence classes smaller than k (what suppression would remove)."""
    sizes = table.group_by(keys).aggregate([([], "count_all")]).column("count_all")
    small = pc.sum(pc.filter(sizes, pc.less(sizes, k))).as_py() or 0
    return float(small) / table.num_rows


def sensor_share(drop: SampleDrop) -> float:
    table = read(drop)
    day = pc.cast(table.column("reading_time"), pa.date32())
    return suppressed_share(table.append_column("day", day), ["site_id", "floor", "day"])


def orders_share(drop: SampleDrop) -> float:
    table = read(drop)
    decade = pc.multiply(pc.divide(pc.year(table.column("birth_date")), 10), 10)
    return suppressed_share(table.append_column("decade", decade), ["decade", "district"])


def test_suppression_helper_counts_small_classes() -> None:
    table = pa.table({"q": ["a"] * 5 + ["b"] * 2 + ["c"] * 3})
    assert suppressed_share(table, ["q"]) == pytest.approx(0.5)


@pytest.mark.parametrize("which", ["small", "full"])
def test_k_anonymity_precondition(which: str, request: pytest.FixtureRequest) -> None:
    drops: dict[str, SampleDrop] = request.getfixturevalue(which)
    assert sensor_share(drops["sensor_readings"]) <= 0.05
    assert orders_share(drops["customer_orders"]) <= 0.05


def test_k_anonymity_precondition_over_seeds_and_scales(tmp_path: Path) -> None:
    rng = random.Random(99)
    for i in range(6):
        seed, scale = rng.randrange(1, 10**9), rng.choice([0.01, 0.03, 0.1, 0.25])
        drops = by_dataset(generate_drops(tmp_path / str(i), seed=seed, scale=scale))
        assert sensor_share(drops["sensor_readings"]) <= 0.05, (seed, scale)
        assert orders_share(drops["customer_orders"]) <= 0.05, (seed, scale)
        decades = pc.divide(pc.year(read(drops["customer_orders"]).column("birth_date")), 10)
        assert pc.count_distinct(decades).as_py() >= 1


def test_birth_years_cluster(full: dict[str, SampleDrop]) -> None:
    years = pc.year(read(full["customer_orders"]).column("birth_date")).to_pylist()
    assert min(years) >= 1955 and max(years) <= 2005
    assert sum(1965 <= y <= 2004 for y in years) / len(years) >= 0.85


# ---------------------------------------------------------------- bad drops
def test_bad_drop_ragged(tmp_path: Path) -> None:
    path = write_bad_drop(tmp_path / "x" / "ragged.csv", "ragged")
    rows = list(csv.reader(io.StringIO(path.read_text("utf-8"), newline="")))
    assert len(rows[0]) == 10 and len(rows) > 3
    assert {len(r) for r in rows} != {10}
    with pytest.raises(pa.ArrowInvalid):
        pacsv.read_csv(path)


def test_bad_drop_binary(tmp_path: Path) -> None:
    path = write_bad_drop(tmp_path / "binary.csv", "binary")
    data = path.read_bytes()
    assert data
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")


def test_bad_drop_empty(tmp_path: Path) -> None:
    path = write_bad_drop(tmp_path / "empty.csv", "empty")
    assert path.exists() and path.stat().st_size == 0


def test_bad_drop_missing_column(tmp_path: Path) -> None:
    path = write_bad_drop(tmp_path / "missing.csv", "missing_column")
    table = pacsv.read_csv(path)  # well-formed otherwise
    expected = [c.name for c in contract("my-buildops", "sensor_readings").columns]
    missing = set(expected) - set(table.column_names)
    assert missing and not set(table.column_names) - set(expected)
    assert table.num_rows > 0


def test_bad_drop_is_deterministic_and_checked(tmp_path: Path) -> None:
    one = write_bad_drop(tmp_path / "a.csv", "ragged").read_bytes()
    two = write_bad_drop(tmp_path / "b.csv", "ragged").read_bytes()
    assert one == two
    with pytest.raises(ValueError):
        write_bad_drop(tmp_path / "c.csv", "sideways")  # type: ignore[arg-type]
