"""Tests of databourse.privacy: equivalence classes, k-anonymity check and enforcement."""

from __future__ import annotations

import json
import pickle
import random
from collections import Counter
from typing import Any

import pyarrow as pa
import pytest

from databourse.config import PrivacyModel
from databourse.errors import PrivacyModelFailed
from databourse.privacy import (
    check_k_anonymity,
    enforce_k_anonymity,
    equivalence_classes,
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
