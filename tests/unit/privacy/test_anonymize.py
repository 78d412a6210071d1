"""Tests of databourse.privacy.anonymize: keyed pseudonyms, generalization, per-product rules."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from databourse.config import ColumnRule, ProductSpec
from databourse.errors import ConfigError, IngestRejected
from databourse.privacy.anonymize import apply_rules, source_columns
from databourse.privacy.generalization import generalize, mask
from databourse.privacy.hierarchy import Hierarchy
from databourse.privacy.pseudonyms import (
    MIN_KEY_BYTES,
    add_noise,
    key_fingerprint,
    key_fingerprints,
    pseudonymize,
)

KEY = b"k" * MIN_KEY_BYTES
OTHER_KEY = b"o" * MIN_KEY_BYTES
PRODUCTS = Path(__file__).resolve().parents[3] / "configs" / "products"


def rule(**kwargs: Any) -> ColumnRule:
    return ColumnRule(action="generalize", **kwargs)


def expected_digest(text: str, key: bytes = KEY) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- pseudonymize
def test_pseudonym_is_the_keyed_hmac_of_the_normalized_text() -> None:
    out = pseudonymize(pa.array(["S1234567D"]), KEY)
    assert out.to_pylist() == [expected_digest("S1234567D")]
    assert out.to_pylist()[0] != hashlib.sha256(b"S1234567D").hexdigest()  # never a plain hash


def test_pseudonym_is_deterministic_per_key_and_differs_between_keys() -> None:
    values = pa.array(["a1", "b2", "a1", "c3"])
    first, again = pseudonymize(values, KEY), pseudonymize(values, KEY)
    other = pseudonymize(values, OTHER_KEY)
    assert first.equals(again)
    assert first[0] == first[2] and first[0] != first[1]
    assert len(set(first.to_pylist())) == 3
    assert set(first.to_pylist()).isdisjoint(other.to_pylist())


def test_pseudonym_keeps_nulls_and_accepts_chunked_arrays() -> None:
    chunked = pa.chunked_array([["x", None], [None, "x"]])
    out = pseudonymize(chunked, KEY)
    assert isinstance(out, pa.Array)
    assert out.to_pylist() == [expected_digest("X"), None, None, expected_digest("X")]


def test_pseudonym_normalizes_whitespace_and_ascii_case() -> None:
    out = pseudonymize(pa.array(["g1234567x", "G1234567X ", "\tG1234567x\n", "G1234567Y"]), KEY)
    assert out[0] == out[1] == out[2]
    assert out[0] != out[3]
    # non-ASCII letters are not case-folded
    cased = pseudonymize(pa.array(["é", "É"]), KEY)
    assert cased[0] != cased[1]


def test_pseudonym_of_integers_hashes_their_text() -> None:
    out = pseudonymize(pa.array([42, None, 42], pa.int64()), KEY)
    assert out.to_pylist() == [expected_digest("42"), None, expected_digest("42")]
    assert out.equals(pseudonymize(pa.array(["42", None, " 42"]), KEY))


@pytest.mark.parametrize("key", [b"", b"short", b"x" * (MIN_KEY_BYTES - 1)])
def test_short_key_is_refused(key: bytes) -> None:
    with pytest.raises(ValueError, match="too short"):
        pseudonymize(pa.array(["a"]), key)
    with pytest.raises(ValueError, match="too short"):
        key_fingerprint(key)


def test_key_fingerprint_is_stable_short_and_reveals_no_key() -> None:
    fp = key_fingerprint(KEY)
    assert fp == key_fingerprint(KEY)
    assert fp != key_fingerprint(OTHER_KEY)
    assert len(fp) == 16 and all(c in "0123456789abcdef" for c in fp)
    assert fp not in hashlib.sha256(KEY).hexdigest()  # not a plain hash of the key


# ---------------------------------------------------------------- generalize: bands
def test_integer_band_with_negatives_and_nulls() -> None:
    values = pa.array([25, 20, 29, 30, 0, -1, -10, -11, None], pa.int64())
    out = generalize(values, rule(band=10))
    assert out.to_pylist() == [
        "[20,30)", "[20,30)", "[20,30)", "[30,40)", "[0,10)",
        "[-10,0)", "[-10,0)", "[-20,-10)", None,
    ]  # fmt: skip


def test_integer_band_is_exact_for_large_values() -> None:
    out = generalize(pa.array([9_007_199_254_740_993]), rule(band=10))
    assert out.to_pylist() == ["[9007199254740990,9007199254741000)"]


def test_float_band_prints_integral_bounds_without_decimal_point() -> None:
    out = generalize(pa.array([25.5, -0.5, 20.0, None]), rule(band=10))
    assert out.to_pylist() == ["[20,30)", "[-10,0)", "[20,30)", None]


def test_fractional_band_on_floats_and_ints() -> None:
    assert generalize(pa.array([0.3, 0.35, -0.05]), rule(band=0.1)).to_pylist() == [
        "[0.3,0.4)", "[0.3,0.4)", "[-0.1,0)",
    ]  # fmt: skip
    assert generalize(pa.array([7, -1, 5]), rule(band=2.5)).to_pylist() == [
        "[5,7.5)", "[-2.5,0)", "[5,7.5)",
    ]  # fmt: skip


def test_nan_and_infinity_have_no_band() -> None:
    values = pa.array([float("nan"), float("inf"), float("-inf"), 1.0])
    assert generalize(values, rule(band=5)).to_pylist() == [None, None, None, "[0,5)"]


def test_float_band_holds_its_value_seeded() -> None:
    rnd = random.Random(7)
    for width in (0.1, 0.25, 1.5, 3, 7.3, 1000):
        values = [rnd.uniform(-1e4, 1e4) for _ in range(300)]
        labels = generalize(pa.array(values), rule(band=width)).to_pylist()
        for value, label in zip(values, labels, strict=True):
            lower, upper = (float(x) for x in label[1:-1].split(","))
            assert lower <= value < upper
            assert upper - lower == pytest.approx(width)


def test_band_refuses_strings() -> None:
    with pytest.raises(TypeError):
        generalize(pa.array(["1"]), rule(band=10))


# ---------------------------------------------------------------- generalize: dates
DATES = pa.array([dt.date(2026, 3, 14), dt.date(2024, 2, 29), dt.date(1989, 12, 31), None])


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("day", [dt.date(2026, 3, 14), dt.date(2024, 2, 29), dt.date(1989, 12, 31), None]),
        ("month", ["2026-03", "2024-02", "1989-12", None]),
        ("quarter", ["2026-Q1", "2024-Q1", "1989-Q4", None]),
        ("year", ["2026", "2024", "1989", None]),
        ("decade", ["2020s", "2020s", "1980s", None]),
    ],
)
def test_date_truncation(unit: str, expected: list[Any]) -> None:
    out = generalize(DATES, rule(date=unit))
    assert out.to_pylist() == expected
    assert out.type == (pa.date32() if unit == "day" else pa.string())


def test_decade_boundaries_and_quarters() -> None:
    values = pa.array([dt.date(1990, 1, 1), dt.date(1999, 12, 31), dt.date(2000, 1, 1)])
    assert generalize(values, rule(date="decade")).to_pylist() == ["1990s", "1990s", "2000s"]
    months = pa.array([dt.date(2025, m, 1) for m in (1, 3, 4, 6, 7, 9, 10, 12)])
    assert generalize(months, rule(date="quarter")).to_pylist() == [
        f"2025-Q{q}" for q in (1, 1, 2, 2, 3, 3, 4, 4)
    ]


def test_leap_day_timestamps() -> None:
    values = pa.array([dt.datetime(2024, 2, 29, 23, 59, 59), dt.datetime(2000, 2, 29, 0, 0)])
    assert generalize(values, rule(date="day")).to_pylist() == [
        dt.date(2024, 2, 29), dt.date(2000, 2, 29),
    ]  # fmt: skip
    assert generalize(values, rule(date="month")).to_pylist() == ["2024-02", "2000-02"]


def test_zoned_timestamps_truncate_in_their_own_zone() -> None:
    utc = dt.UTC
    instants = [
        dt.datetime(2026, 3, 31, 20, 0, tzinfo=utc),
        dt.datetime(2025, 12, 31, 16, 30, tzinfo=utc),
    ]
    values = pa.array([*instants, None], pa.timestamp("us", tz="Asia/Shanghai"))
    # 20:00 UTC on 31 March is 04:00 on 1 April in Shanghai; 16:30 UTC on 31 Dec is 2026 there.
    assert generalize(values, rule(date="day")).to_pylist() == [
        dt.date(2026, 4, 1), dt.date(2026, 1, 1), None,
    ]  # fmt: skip
    assert generalize(values, rule(date="month")).to_pylist() == ["2026-04", "2026-01", None]
    assert generalize(values, rule(date="quarter")).to_pylist() == ["2026-Q2", "2026-Q1", None]
    assert generalize(values, rule(date="year")).to_pylist() == ["2026", "2026", None]
    naive_utc = pa.array(instants, pa.timestamp("ms"))
    assert generalize(naive_utc, rule(date="year")).to_pylist() == ["2026", "2025"]


def test_date_truncation_refuses_strings() -> None:
    with pytest.raises(TypeError):
        generalize(pa.array(["2026-03-01"]), rule(date="month"))


# ---------------------------------------------------------------- generalize: prefix
def test_prefix_masks_each_remaining_character() -> None:
    values = pa.array(["518057", "深圳市南山区", "ab", "", None, "518"])
    assert generalize(values, rule(prefix=3)).to_pylist() == [
        "518***", "深圳市***", "ab", "", None, "518",
    ]  # fmt: skip
    assert generalize(pa.array(["abc"]), rule(prefix=0)).to_pylist() == ["***"]
    large = pa.array(["518057"], pa.large_string())
    assert generalize(large, rule(prefix=2)).to_pylist() == ["51****"]


# ---------------------------------------------------------------- apply_rules
def product(columns: dict[str, Any], **extra: Any) -> ProductSpec:
    return ProductSpec.model_validate({
        "id": "test-product", "name": "Test", "source": {"provider": "p", "dataset": "d"},
        "columns": columns, "terms": {"purposes": ["research"]}, "markets": ["SG"], **extra,
    })  # fmt: skip


def orders() -> pa.Table:
    return pa.table({
        "unlisted": ["u1", "u2"],
        "order_id": ["o1", "o2"],
        "customer_id_number": ["44030519900101001x", "440305199001010020"],
        "customer_name": ["n1", "n2"],
        "birth_date": pa.array([dt.date(1990, 1, 1), dt.date(1985, 6, 30)]),
        "district": ["Nanshan", "Futian"],
        "amount_cny": [12.5, 99.0],
        "postcode": ["518057", "518000"],
    })  # fmt: skip


def test_apply_rules_order_rename_drop_and_unlisted() -> None:
    spec = product({
        "district": "keep",
        "customer_id_number": {"action": "pseudonymize", "rename": "customer_ref"},
        "customer_name": "drop",
        "birth_date": {"action": "generalize", "date": "decade", "rename": "birth_decade"},
        "postcode": {"action": "generalize", "prefix": 3},
        "order_id": "keep",
    })  # fmt: skip
    out = apply_rules(orders(), spec, KEY)
    assert out.column_names == ["district", "customer_ref", "birth_decade", "postcode", "order_id"]
    assert out.column("district").to_pylist() == ["Nanshan", "Futian"]
    assert out.column("customer_ref").to_pylist() == [
        expected_digest("44030519900101001X"), expected_digest("440305199001010020"),
    ]  # fmt: skip
    assert out.column("birth_decade").to_pylist() == ["1990s", "1980s"]
    assert out.column("postcode").to_pylist() == ["518***", "518***"]
    assert out.column("order_id").to_pylist() == ["o1", "o2"]


def test_apply_rules_accepts_a_record_batch() -> None:
    batch = orders().to_batches()[0]
    out = apply_rules(batch, product({"amount_cny": "keep"}), None)
    assert isinstance(out, pa.Table)
    assert out.to_pydict() == {"amount_cny": [12.5, 99.0]}


def test_pseudonymize_without_key_is_refused() -> None:
    with pytest.raises(ValueError, match="no key"):
        apply_rules(orders(), product({"customer_id_number": "pseudonymize"}), None)


def test_missing_column_is_rejected_by_name() -> None:
    spec = product({"order_id": "keep", "mobile": "drop", "email": "keep"})
    with pytest.raises(IngestRejected) as info:
        apply_rules(orders(), spec, KEY)
    assert info.value.column == "mobile"
    assert info.value.columns == ["mobile", "email"]
    assert "mobile" in str(info.value)


def test_wrongly_typed_column_is_rejected_by_name() -> None:
    spec = product({"district": {"action": "generalize", "band": 10}})
    with pytest.raises(IngestRejected) as info:
        apply_rules(orders(), spec, KEY)
    assert info.value.column == "district"
    assert "Nanshan" not in str(info.value)


def test_duplicate_output_names_are_refused() -> None:
    spec = product({"order_id": "keep", "district": {"action": "keep", "rename": "order_id"}})
    with pytest.raises(ConfigError, match="duplicate"):
        apply_rules(orders(), spec, KEY)


def test_real_product_config_applies() -> None:
    spec = ProductSpec.model_validate(
        yaml.safe_load((PRODUCTS / "sz-retail-baskets.yaml").read_text(encoding="utf-8"))
    )
    table = pa.table({
        "order_id": ["o1"], "customer_id_number": ["44030519900101001X"], "customer_name": ["n"],
        "mobile": [None], "email": pa.array([None], pa.string()),
        "birth_date": pa.array([dt.date(1991, 5, 2)]), "district": ["Nanshan"],
        "order_date": pa.array([dt.date(2026, 2, 28)]), "category": ["tea"], "amount_cny": [3.5],
    })  # fmt: skip
    out = apply_rules(table, spec, KEY)
    assert out.column_names == spec.output_columns
    assert out.to_pylist()[0] == {
        "order_id": "o1", "customer_ref": expected_digest("44030519900101001X"),
        "birth_decade": "1990s", "district": "Nanshan", "order_month": "2026-02",
        "category": "tea", "amount_cny": 3.5,
    }  # fmt: skip


# ---------------------------------------------------------------- newer rules
def test_mask_keeps_separators_and_the_last_characters() -> None:
    values = pa.array(["+60 12-345 6789", "6222 0202 0000 1234", None, "ab", ""])
    assert mask(values, 4).to_pylist() == [
        "+** **-*** 6789", "**** **** **** 1234", None, "ab", "",
    ]  # fmt: skip
    assert mask(pa.array(["S1234567D"]), 0).to_pylist() == ["*********"]


def test_round_and_top_bottom_coding_with_labels(tmp_path: Path) -> None:
    assert generalize(pa.array([1.23456, None]), rule(round=2)).to_pylist() == [1.23, None]
    coded = generalize(pa.array([15, 40, 95, None]), rule(top=90, bottom=18))
    assert coded.to_pylist() == [18, 40, 90, None] and coded.type == pa.int64()
    spec = product({"age": {"top": 90, "bottom": 18}, "lat": {"round": 2}})
    out = apply_rules(pa.table({"age": [15, 95], "lat": [22.54321, 1.29]}), spec, None)
    assert out.schema.field("age").metadata == {b"databourse.top": b"90.0",
                                                b"databourse.bottom": b"18.0"}  # fmt: skip
    pq.write_table(out, tmp_path / "t.parquet")
    assert pq.read_schema(tmp_path / "t.parquet").field("age").metadata is not None
    with pytest.raises(IngestRejected, match="lat"):
        apply_rules(pa.table({"age": [1], "lat": ["x"]}), spec, None)


def test_noise_is_deterministic_per_key_and_column() -> None:
    values = pa.array([10, 20, None, 40])
    one = add_noise(values, 2.0, KEY, "amount")
    assert one.equals(add_noise(values, 2.0, KEY, "amount"))
    assert not one.equals(add_noise(values, 2.0, OTHER_KEY, "amount"))
    assert not one.equals(add_noise(values, 2.0, KEY, "other"))
    assert one.type == pa.float64() and one[2].as_py() is None
    spread = add_noise(pa.array([0.0] * 20000), 2.0, KEY, "x").to_numpy()
    assert abs(spread.mean()) < 0.1 and abs(abs(spread).mean() - 2.0) < 0.1  # Laplace: E|x| = b
    spec = product({"amount_cny": {"noise": {"scale": 1.0}}})
    with pytest.raises(ValueError, match="no key"):
        apply_rules(orders(), spec, None)
    assert apply_rules(orders(), spec, KEY).column("amount_cny").type == pa.float64()


def test_noise_by_dataset_position_is_the_same_in_any_slices() -> None:
    values = pa.array([float(i % 7) if i % 11 else None for i in range(1000)])
    whole = add_noise(values, 3.0, KEY, "amount")
    for cut in ((0, 1000), (0, 1), (1, 999), (333, 334), (999, 1)):
        start, length = cut
        part = add_noise(values.slice(start, length), 3.0, KEY, "amount", offset=start)
        assert part.equals(whole.slice(start, length))
    assert not add_noise(values.slice(1), 3.0, KEY, "amount").equals(whole.slice(1))


def test_apply_rules_only_some_outputs_and_at_an_offset() -> None:
    spec = product({
        "order_id": "keep", "customer_name": "drop", "amount_cny": {"noise": {"scale": 1.0}},
        "district": {"prefix": 1, "rename": "area"},
    })  # fmt: skip
    whole = apply_rules(orders(), spec, KEY)
    only = apply_rules(orders().select(["district"]), spec, KEY, only=["area"])
    assert only.column_names == ["area"] and only.equals(whole.select(["area"]))
    second = apply_rules(orders().slice(1), spec, KEY, offset=1)
    assert second.equals(whole.slice(1))
    with pytest.raises(IngestRejected):
        apply_rules(orders().select(["order_id"]), spec, KEY, only=["area"])
    assert source_columns(spec) == ["order_id", "amount_cny", "district"]
    assert source_columns(spec, ["area"]) == ["district"]


def test_key_rotation_picks_the_named_version() -> None:
    spec = product({
        "order_id": {"key_version": "2026-07", "rename": "order_ref"},
        "customer_id_number": {"action": "pseudonymize", "rename": "customer_ref"},
    })  # fmt: skip
    assert spec.columns["order_id"].action == "pseudonymize"
    keys = {"default": KEY, "2026-07": OTHER_KEY}
    out = apply_rules(orders(), spec, keys)
    assert out.column("order_ref")[0].as_py() == expected_digest("O1", OTHER_KEY)
    assert out.column("customer_ref")[0].as_py() == expected_digest("44030519900101001X", KEY)
    assert key_fingerprints(spec, keys) == {
        "order_ref": {"key_version": "2026-07", "key_id": key_fingerprint(OTHER_KEY)},
        "customer_ref": {"key_version": "default", "key_id": key_fingerprint(KEY)},
    }
    with pytest.raises(ValueError, match="2026-07"):
        apply_rules(orders(), spec, KEY)
    with pytest.raises(ValueError, match="no key for key version"):
        apply_rules(orders(), spec, {"default": KEY})


def test_hierarchy_rule_with_level_and_without() -> None:
    h = Hierarchy((("Nanshan", "West", "*"), ("Futian", "Centre", "*")), name="district")
    fixed = product({"district": {"hierarchy": "h.csv", "level": 1}})
    out = apply_rules(orders(), fixed, None, {"district": h})
    assert out.column("district").to_pylist() == ["West", "Centre"]
    searched = product({"district": {"hierarchy": "h.csv"}})
    assert apply_rules(orders(), searched, None).column("district").to_pylist() == [
        "Nanshan", "Futian",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="no hierarchy was loaded"):
        apply_rules(orders(), fixed, None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "generalize", "band": 5, "round": 2}, "exactly one"),
        ({"action": "keep", "round": 2}, "only apply"),
        ({"band": 5, "level": 1}, "only applies with a hierarchy"),
        ({"top": 1, "bottom": 5}, "bottom must not exceed top"),
        ({"action": "mask"}, "needs its mask"),
        ({"action": "keep", "key_version": "v2"}, "key_version only"),
    ],
)
def test_invalid_rules_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ColumnRule.model_validate(data)


def test_shorthand_infers_the_action() -> None:
    assert ColumnRule.model_validate({"mask": {"keep_last": 4}}).action == "mask"
    assert ColumnRule.model_validate({"noise": {"scale": 1}}).action == "noise"
    assert ColumnRule.model_validate({"top": 90}).action == "generalize"
    assert ColumnRule.model_validate({"hierarchy": "h.csv"}).action == "generalize"


def test_products_keep_the_fingerprint_they_had_before_the_newer_fields() -> None:
    spec = product(
        {"a": "keep", "b": {"action": "generalize", "band": 10}, "c": "pseudonymize"},
        privacy={"quasi_identifiers": ["b"], "k": 5},
    )
    # computed by the config model as it was before hierarchy, mask, noise, l, t, type existed
    assert spec.fingerprint() == "5aeef6d5ff5a16bd6c748fe3920bd018506d1903265d3d37946fc93ca89ce9a2"
    with_new = product({"a": "keep", "b": {"band": 10, "rename": "bb"}}, type="records")
    assert with_new.fingerprint() != product({"a": "keep", "b": {"band": 5}}).fingerprint()
