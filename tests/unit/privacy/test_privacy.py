"""Tests of databourse.privacy.k_anonymity: equivalence classes, the check and enforcement."""

from __future__ import annotations

import json
import math
import pickle
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pycanon import anonymity

from databourse.config import PrivacyModel
from databourse.errors import PrivacyModelFailed
from databourse.grouping import WEIGHT, ClassIndex, group_counts, merge_groups
from databourse.privacy.k_anonymity import (
    check_groups,
    check_k_anonymity,
    enforce_groups,
    enforce_k_anonymity,
    enforce_model,
    equivalence_classes,
    kept_rows,
    model_columns,
    verify,
)


def model(qis: list[str], k: int, max_suppression: float = 1.0) -> PrivacyModel:
    return PrivacyModel(quasi_identifiers=qis, k=k, max_suppression=max_suppression)


def people() -> pa.Table:
    """Ten rows; classes over (decade, district): A x4, B x3, C x2 (with a null), D x1."""
    return pa.table({
        "row": list(range(10)),
        "decade": ["1980s", "1990s", "1980s", "1980s", None, "1990s", "1980s", None, "1990s",
                   "2000s"],
        "district": ["Nanshan", "Futian", "Nanshan", "Nanshan", "Futian", "Futian", "Nanshan",
                     "Futian", "Futian", "Luohu"],
        "secret_value": [f"v{i}" for i in range(10)],
    })  # fmt: skip


def test_equivalence_classes_group_nulls() -> None:
    classes = equivalence_classes(people(), ["decade", "district"])
    assert classes.column_names == ["decade", "district", "count"]
    assert classes.to_pylist() == [
        {"decade": "1980s", "district": "Nanshan", "count": 4},
        {"decade": "1990s", "district": "Futian", "count": 3},
        {"decade": None, "district": "Futian", "count": 2},
        {"decade": "2000s", "district": "Luohu", "count": 1},
    ]


def test_enforce_removes_exactly_the_small_classes_in_order() -> None:
    out, report = enforce_k_anonymity(people(), model(["decade", "district"], k=3))
    assert out.column("row").to_pylist() == [0, 1, 2, 3, 5, 6, 8]  # rows 4, 7, 9 go
    assert out.schema == people().schema
    assert report.to_json() == {
        "k": 3, "quasi_identifiers": ["decade", "district"], "rows_in": 10, "rows_out": 7,
        "suppressed": 3, "suppression_rate": 0.3, "classes": 2, "smallest_class": 3,
        "average_class": 3.5, "max_suppression": 1.0, "satisfied": True,
        "sensitive_attributes": [], "l": None, "l_diversity": None, "lowest_l": None, "t": None,
        "highest_t": None,
    }  # fmt: skip
    json.dumps(report.to_json())


def test_null_quasi_identifiers_form_a_class_that_can_be_kept() -> None:
    out, report = enforce_k_anonymity(people(), model(["decade", "district"], k=2))
    assert out.column("row").to_pylist() == [0, 1, 2, 3, 4, 5, 6, 7, 8]  # the null class stays
    assert (report.suppressed, report.classes, report.smallest_class) == (1, 3, 2)


def test_independent_check_agrees_on_the_output() -> None:
    table = people()
    spec = model(["decade", "district"], k=3)
    before = check_k_anonymity(table, spec)
    assert not before.satisfied
    assert (before.smallest_class, before.classes, before.suppressed) == (1, 4, 0)
    out, _ = enforce_k_anonymity(table, spec)
    after = check_k_anonymity(out, spec)
    assert after.satisfied and after.smallest_class >= 3
    assert after.rows_in == after.rows_out == 7 and after.suppression_rate == 0.0


def test_already_k_anonymous_table_is_unchanged() -> None:
    table = people().slice(0, 4)  # 1980s/Nanshan x3 and one 1990s/Futian
    out, report = enforce_k_anonymity(table, model(["district"], k=2, max_suppression=0.25))
    assert out.column("row").to_pylist() == [0, 2, 3]
    assert report.satisfied and report.suppression_rate == 0.25
    same, again = enforce_k_anonymity(out, model(["district"], k=2))
    assert same.equals(out) and again.suppressed == 0


def test_exceeding_max_suppression_raises_with_figures_only() -> None:
    spec = model(["decade", "district"], k=3, max_suppression=0.2)
    with pytest.raises(PrivacyModelFailed) as info:
        enforce_k_anonymity(people(), spec)
    err = info.value
    assert (err.k, err.suppressed, err.rows, err.classes) == (3, 3, 10, 2)
    assert err.small_classes == 2
    assert err.report["satisfied"] is False
    message = str(err)
    assert "3 of 10" in message and "k=3" in message
    for cell in ("1980s", "1990s", "2000s", "Nanshan", "Futian", "Luohu", "v0", "v9"):
        assert cell not in message
        assert cell not in json.dumps(err.report)
    copy = pickle.loads(pickle.dumps(err))
    assert isinstance(copy, PrivacyModelFailed) and copy.suppressed == 3


def test_empty_table_has_nothing_to_publish() -> None:
    with pytest.raises(PrivacyModelFailed, match="empty") as info:
        enforce_k_anonymity(people().slice(0, 0), model(["district"], k=2))
    assert (info.value.rows, info.value.suppressed) == (0, 0)
    assert not check_k_anonymity(people().slice(0, 0), model(["district"], k=2)).satisfied


def test_everything_suppressed_has_nothing_to_publish() -> None:
    with pytest.raises(PrivacyModelFailed, match="nothing to publish") as info:
        enforce_k_anonymity(people(), model(["row"], k=2, max_suppression=1.0))
    assert (info.value.rows, info.value.suppressed, info.value.classes) == (10, 10, 0)


def test_missing_quasi_identifier_is_named() -> None:
    with pytest.raises(PrivacyModelFailed) as info:
        enforce_k_anonymity(people(), model(["decade", "age_band"], k=2))
    assert info.value.columns == ["age_band"]


def test_chunked_input_and_typed_quasi_identifiers() -> None:
    table = pa.concat_tables([people().slice(0, 5), people().slice(5)])
    table = table.append_column("floor", pa.array([1, 1, 1, 1, None, 2, 1, None, 2, 3]))
    out, report = enforce_k_anonymity(table, model(["floor", "district"], k=2))
    # (1,Futian) row 1 and (3,Luohu) row 9 go; (null,Futian) rows 4 and 7 stay
    assert out.column("row").to_pylist() == [0, 2, 3, 4, 5, 6, 7, 8]
    assert (report.classes, report.smallest_class, report.suppressed) == (3, 2, 2)


def random_table(rnd: random.Random) -> pa.Table:
    rows = rnd.randint(1, 120)

    def column(kind: str) -> pa.Array:
        nulls = rnd.random() * 0.3
        if kind == "int":
            values: list[Any] = [rnd.randint(-2, 3) for _ in range(rows)]
        else:
            values = [rnd.choice("abcde") for _ in range(rows)]
        return pa.array([None if rnd.random() < nulls else v for v in values])

    return pa.table({
        "id": list(range(rows)),
        "q1": column("int"), "q2": column("str"), "q3": column(rnd.choice(["int", "str"])),
    })  # fmt: skip


def test_random_tables_are_k_anonymous_after_enforce() -> None:
    rnd = random.Random(20260314)
    enforced = failed = 0
    for _ in range(60):
        table = random_table(rnd)
        qis = rnd.sample(["q1", "q2", "q3"], rnd.randint(1, 3))
        spec = model(qis, k=rnd.randint(2, 6), max_suppression=rnd.choice([0.0, 0.1, 0.5, 1.0]))
        sizes = Counter(tuple(row[q] for q in qis) for row in table.to_pylist())
        expected_ids = [
            row["id"] for row in table.to_pylist() if sizes[tuple(row[q] for q in qis)] >= spec.k
        ]
        rate = 1 - len(expected_ids) / table.num_rows
        try:
            out, report = enforce_k_anonymity(table, spec)
        except PrivacyModelFailed as err:
            failed += 1
            assert rate > spec.max_suppression or not expected_ids
            assert err.rows == table.num_rows
            assert err.suppressed == table.num_rows - len(expected_ids)
            continue
        enforced += 1
        assert out.column("id").to_pylist() == expected_ids  # the oracle, row order kept
        assert report.rows_out + report.suppressed == report.rows_in == table.num_rows
        assert report.suppression_rate <= spec.max_suppression
        check = check_k_anonymity(out, spec)
        assert check.satisfied and check.smallest_class >= spec.k
        assert check.classes == report.classes and check.rows_in == report.rows_out
    assert enforced >= 10 and failed >= 5  # both branches exercised


# ---------------------------------------------------------------- l-diversity and t-closeness
def patients(n: int = 400, seed: int = 3) -> pa.Table:
    """Mostly mixed classes; zip 521** is skewed (hiv, high income) and 599** has one value."""
    rnd = random.Random(seed)
    zips = [rnd.choice(["518**", "519**", "520**", "521**"]) for _ in range(n)] + ["599**"] * 3
    skewed = [z == "521**" for z in zips]
    return pa.table({
        "zip": zips,
        "decade": [rnd.choice(["1970s", "1980s", "1990s"]) for _ in zips],
        "disease": [rnd.choice(["hiv", "hiv", "cold"] if s else ["flu", "flu", "flu", "cold",
                                                                   "hiv"]) for s in skewed[:n]]
        + ["flu"] * 3,
        "income": [rnd.choice([80, 80, 40] if s else [10, 20, 30, 40, 80]) for s in skewed[:n]]
        + [10] * 3,
    })  # fmt: skip


def sensitive_model(**kwargs: Any) -> PrivacyModel:
    return PrivacyModel(quasi_identifiers=["zip", "decade"], k=2, max_suppression=0.5, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "measure"),
    [
        ({"l": 3, "sensitive_attributes": ["disease"]}, "distinct"),
        ({"l": 2, "l_diversity": "entropy", "sensitive_attributes": ["disease"]}, "entropy"),
        ({"t": 0.3, "sensitive_attributes": ["disease"]}, "t"),
        ({"t": 0.2, "sensitive_attributes": ["income"]}, "t"),
    ],
)
def test_sensitive_models_agree_with_pycanon(
    kwargs: dict[str, Any], measure: str, tmp_path: Path
) -> None:
    model = sensitive_model(**kwargs)
    table = patients()
    before = check_k_anonymity(table, model)
    sa = model.sensitive_attributes
    df = table.to_pandas()
    if measure == "distinct":
        assert before.lowest_l == anonymity.l_diversity(df, ["zip", "decade"], sa)
    elif measure == "entropy":
        assert math.floor(before.lowest_l or 0) == anonymity.entropy_l_diversity(
            df, ["zip", "decade"], sa
        )
    else:
        assert before.highest_t == pytest.approx(anonymity.t_closeness(df, ["zip", "decade"], sa))
    out, report = enforce_model(table, model)
    assert report.satisfied and report.suppressed > 0
    pq.write_table(out, tmp_path / "out.parquet")
    check = verify(tmp_path / "out.parquet", model)
    released = pq.read_table(tmp_path / "out.parquet").to_pandas()
    assert anonymity.k_anonymity(released, ["zip", "decade"]) >= 2
    if measure == "distinct":
        assert anonymity.l_diversity(released, ["zip", "decade"], sa) >= 3 == model.l
        assert check.lowest_l == anonymity.l_diversity(released, ["zip", "decade"], sa)
    elif measure == "entropy":
        assert anonymity.entropy_l_diversity(released, ["zip", "decade"], sa) >= 2
    else:
        t = anonymity.t_closeness(released, ["zip", "decade"], sa)
        assert check.highest_t == pytest.approx(t)
    assert check.satisfied == (measure != "t" or (check.highest_t or 1) <= (model.t or 0))


def test_model_validation() -> None:
    with pytest.raises(ValueError, match="need sensitive_attributes"):
        PrivacyModel(quasi_identifiers=["a"], k=2, l=2)
    with pytest.raises(ValueError, match="both quasi-identifier and sensitive"):
        PrivacyModel(quasi_identifiers=["a"], k=2, sensitive_attributes=["a"], t=0.2)
    with pytest.raises(ValueError, match="distinct"):
        PrivacyModel(quasi_identifiers=["a", "a"], k=2)


def test_verify_reports_without_suppressing() -> None:
    model = sensitive_model(l=2, sensitive_attributes=["disease"])
    table = pa.table({"zip": ["a"] * 3 + ["b"] * 3, "decade": ["x"] * 6,
                      "disease": ["flu", "flu", "hiv", "flu", "flu", "flu"]})  # fmt: skip
    report = verify(table, model)
    assert not report.satisfied and report.lowest_l == 1 and report.suppressed == 0
    assert "flu" not in json.dumps(report.to_json())
    with pytest.raises(PrivacyModelFailed):
        enforce_model(table, model.model_copy(update={"max_suppression": 0.2}))


# ---------------------------------------------------------------- grouped counts, partitions
def test_partitions_grouped_and_merged_decide_as_the_whole_table() -> None:
    rnd = random.Random(77)
    for _ in range(25):
        table = patients(rnd.randint(50, 300), seed=rnd.randint(0, 10**6))
        table = table.append_column("floor", pa.array([rnd.choice([1, 2, None]) for _ in
                                                       range(table.num_rows)]))  # fmt: skip
        spec = rnd.choice([
            sensitive_model(l=2, sensitive_attributes=["disease"]),
            sensitive_model(l=2, l_diversity="entropy", sensitive_attributes=["disease"]),
            sensitive_model(t=0.4, sensitive_attributes=["income", "disease"]),
            model(["zip", "floor"], k=3, max_suppression=0.6),
        ])  # fmt: skip
        columns = model_columns(spec)
        cuts = sorted(rnd.sample(range(1, table.num_rows), 4))
        bounds = list(zip([0, *cuts], [*cuts, table.num_rows], strict=True))
        parts = [group_counts(table.slice(a, b - a), columns) for a, b in bounds]
        merged = merge_groups(parts)
        assert merged is not None and merged.equals(group_counts(table, columns))
        try:
            whole, report = enforce_model(table, spec)
        except PrivacyModelFailed as err:
            with pytest.raises(PrivacyModelFailed) as again:
                enforce_groups(merged, spec)
            assert again.value.report == err.report
            continue
        decided = enforce_groups(merged, spec)
        assert decided.report == report
        index = ClassIndex(decided.classes, list(spec.quasi_identifiers))
        pieces = [
            table.slice(a, b - a).filter(pa.array(kept_rows(table.slice(a, b - a), index,
                                                            decided.keep)))
            for a, b in bounds
        ]  # fmt: skip
        assert pa.concat_tables(pieces).equals(whole.combine_chunks())
        assert check_groups(group_counts(whole, columns), spec).satisfied


def test_class_index_finds_classes_with_nulls_and_refuses_unknown_ones() -> None:
    classes = pa.table({"a": ["x", None, "x", "y"], "b": [1, 1, None, 2]})
    index = ClassIndex(classes, ["a", "b"])
    rows = pa.table({"a": [None, "y", "x", "x", "y", "z"], "b": [1, 2, None, 1, 1, 1]})
    assert index.lookup(rows).tolist() == [1, 3, 2, 0, -1, -1]
    with pytest.raises(PrivacyModelFailed, match="no class"):
        kept_rows(rows, index, np.ones(4, dtype=bool))


def test_grouped_counts_are_sorted_whatever_the_batches() -> None:
    table = patients(200)
    columns = ["zip", "disease"]
    grouped = group_counts(table, columns)
    assert (
        grouped.column_names == [*columns, WEIGHT]
        and sum(grouped[WEIGHT].to_pylist()) == table.num_rows
    )
    keys = list(zip(*(grouped[c].to_pylist() for c in columns), strict=True))
    assert keys == sorted(keys)
    batched = merge_groups(group_counts(pa.Table.from_batches([b]), columns)
                           for b in table.to_batches(max_chunksize=7))  # fmt: skip
    assert batched is not None and batched.equals(grouped)


def test_verify_streams_a_parquet_file(tmp_path: Path) -> None:
    table = patients()
    spec = sensitive_model(t=0.3, sensitive_attributes=["disease"])
    out, _ = enforce_model(table, spec)
    pq.write_table(out, tmp_path / "out.parquet", row_group_size=50)
    assert verify(tmp_path / "out.parquet", spec) == check_k_anonymity(out, spec)
    pq.write_table(out.slice(0, 0), tmp_path / "empty.parquet")
    assert not verify(tmp_path / "empty.parquet", spec).satisfied


@pytest.mark.parametrize(
    ("kwargs", "criterion", "words"),
    [
        ({"k": 40}, "k", "in classes smaller than k=40"),
        ({"l": 3, "sensitive_attributes": ["disease"]}, "l", "in classes below distinct l=3"),
        ({"t": 0.15, "sensitive_attributes": ["disease"]}, "t",
         "in classes farther than t=0.15 from the released records"),
    ],
)  # fmt: skip
def test_failure_names_the_criterion_that_cannot_be_met(
    kwargs: dict[str, Any], criterion: str, words: str
) -> None:
    """Issue 22: a t failure was reported as "exceeds the limit", naming no criterion."""
    spec = PrivacyModel(quasi_identifiers=["zip", "decade"], max_suppression=0.0,
                        **{"k": 2, **kwargs})  # fmt: skip
    with pytest.raises(PrivacyModelFailed) as info:
        enforce_model(patients(), spec)
    err = info.value
    assert err.criterion == criterion
    by = {"k": err.suppressed_by_k, "l": err.suppressed_by_l, "t": err.suppressed_by_t}
    assert by[criterion] == max(by.values()) > 0 and sum(by.values()) == err.suppressed
    assert f"({criterion})" in str(err) and words in str(err)
    assert "within the suppression limit of 0.0%" in str(err)
