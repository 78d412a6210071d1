"""Tests of databourse.privacy.hierarchy: ARX CSV hierarchies, levels, roll-up maps and checks."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from databourse.errors import PrivacyModelFailed
from databourse.privacy.hierarchy import Hierarchy

ADULT = Path("/work/shared/benchmarks/adult")


def ages() -> Hierarchy:
    rows = [("21", "20-24", "20-29", "*"), ("23", "20-24", "20-29", "*"),
            ("27", "25-29", "20-29", "*"), ("34", "30-34", "30-39", "*")]  # fmt: skip
    return Hierarchy(tuple(rows), name="age")


def test_levels_sizes_leaves_and_roll_up() -> None:
    h = ages()
    assert h.height == 4
    assert [h.size(lv) for lv in range(4)] == [4, 3, 2, 1]
    assert h.labels(1) == ["20-24", "25-29", "30-34"]
    assert h.leaves(1).tolist() == [2, 1, 1]
    assert h.leaves(2).tolist() == [3, 1]
    assert h.up(1).tolist() == [0, 0, 1]  # 20-24, 25-29 -> 20-29; 30-34 -> 30-39


def test_generalize_matches_integers_as_text_and_keeps_nulls() -> None:
    out = ages().generalize(pa.chunked_array([[21, None, 34]]), 2)
    assert out.to_pylist() == ["20-29", None, "30-39"]
    assert ages().generalize(pa.array(["27"]), 0).to_pylist() == ["27"]


def test_unknown_values_are_counted_never_shown() -> None:
    with pytest.raises(PrivacyModelFailed) as err:
        ages().encode(pa.array(["21", "99", "98"]))
    assert err.value.unknown == 2 and err.value.column == "age"
    assert "99" not in str(err.value) and "98" not in str(err.value)


def test_a_label_with_two_parents_is_refused() -> None:
    with pytest.raises(ValueError, match="two parents"):
        Hierarchy((("a", "x", "*"), ("b", "x", "*"), ("c", "x", "other")), name="bad")
    with pytest.raises(ValueError, match="listed twice"):
        Hierarchy((("a", "*"), ("a", "*")))
    with pytest.raises(ValueError, match="equally long"):
        Hierarchy((("a", "*"), ("b",)))


def test_arx_files_load() -> None:
    h = Hierarchy.from_csv(ADULT / "adult_hierarchy_age.csv")
    assert h.name == "adult_hierarchy_age" and h.height == 5
    assert h.labels(4) == ["*"]
    edu = Hierarchy.from_csv(ADULT / "adult_hierarchy_education.csv", name="education")
    assert edu.generalize(pa.array(["Bachelors", "11th"]), 2).to_pylist() == [
        "Higher education",
        "Secondary education",
    ]
