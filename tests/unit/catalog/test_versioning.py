"""Unit tests of databourse.catalog.versioning: schema diffs, bumps and version numbers."""

from __future__ import annotations

import random

import pytest

from databourse.catalog.versioning import (
    Schema,
    SchemaDiff,
    next_version,
    parse_version,
    schema_diff,
)

BASE: Schema = [
    {"name": "order_id", "type": "string"},
    {"name": "amount", "type": "double"},
    {"name": "city", "type": "string"},
]


def test_identical_schema_is_a_patch() -> None:
    diff = schema_diff(BASE, [dict(c) for c in BASE])
    assert diff == SchemaDiff(added=[], removed=[], retyped=[])
    assert diff.bump == "patch"


def test_reordered_columns_are_a_patch() -> None:
    assert schema_diff(BASE, list(reversed(BASE))).bump == "patch"


def test_added_column_is_minor() -> None:
    new = [*BASE, {"name": "channel", "type": "string"}, {"name": "age_band", "type": "string"}]
    diff = schema_diff(BASE, new)
    assert diff.added == ["channel", "age_band"]
    assert diff.removed == [] and diff.retyped == []
    assert diff.bump == "minor"


def test_removed_column_is_major() -> None:
    diff = schema_diff(BASE, BASE[:2])
    assert diff.removed == ["city"]
    assert diff.bump == "major"


def test_retyped_column_is_major() -> None:
    new = [dict(c) for c in BASE]
    new[1]["type"] = "int64"
    diff = schema_diff(BASE, new)
    assert diff.retyped == ["amount"]
    assert diff.added == [] and diff.removed == []
    assert diff.bump == "major"


def test_added_and_removed_together_is_major() -> None:
    new = [*BASE[:2], {"name": "district", "type": "string"}]
    diff = schema_diff(BASE, new)
    assert (diff.added, diff.removed) == (["district"], ["city"])
    assert diff.bump == "major"


def test_diff_to_json() -> None:
    new = [*BASE[:2], {"name": "district", "type": "string"}]
    assert schema_diff(BASE, new).to_json() == {
        "added": ["district"],
        "removed": ["city"],
        "retyped": [],
        "exposed": [],
        "bump": "major",
    }


@pytest.mark.parametrize(
    ("previous", "diff", "expected"),
    [
        (None, None, "1.0.0"),
        (None, SchemaDiff(["a"], ["b"], []), "1.0.0"),
        ("1.0.0", None, "1.0.1"),
        ("1.0.1", SchemaDiff([], [], []), "1.0.2"),
        ("1.0.2", SchemaDiff(["x"], [], []), "1.1.0"),
        ("1.1.0", SchemaDiff([], ["x"], []), "2.0.0"),
        ("2.3.9", SchemaDiff([], [], ["x"]), "3.0.0"),
        ("9.9.9", SchemaDiff([], [], []), "9.9.10"),
        ("0.9.12", SchemaDiff(["y"], [], []), "0.10.0"),
    ],
)
def test_next_version(previous: str | None, diff: SchemaDiff | None, expected: str) -> None:
    assert next_version(previous, diff) == expected


def test_parse_version() -> None:
    assert parse_version("1.2.3") == (1, 2, 3)
    assert parse_version("10.0.200") == (10, 0, 200)


@pytest.mark.parametrize(
    "bad", ["", "1", "1.2", "1.2.3.4", "v1.2.3", "1.2.x", "01.2.3", "1.-2.3", " 1.2.3", "1.2.3-rc1"]
)
def test_parse_version_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="semantic version"):
        parse_version(bad)


def test_next_version_rejects_bad_previous() -> None:
    with pytest.raises(ValueError):
        next_version("1.2", None)


@pytest.mark.parametrize(
    "schema",
    [
        [{"name": "a", "type": "string"}, {"name": "a", "type": "int64"}],
        [{"name": "a"}],
        [{"type": "string"}],
        [{"name": "", "type": "string"}],
    ],
)
def test_malformed_schema_is_refused(schema: Schema) -> None:
    with pytest.raises(ValueError):
        schema_diff([], schema)


def test_random_schema_changes_bump_as_specified() -> None:
    rng = random.Random(20240611)
    types = ["string", "int64", "double", "date"]
    for _ in range(300):
        old = [{"name": f"c{i}", "type": rng.choice(types)} for i in range(rng.randint(0, 8))]
        new = [dict(c) for c in old if rng.random() > 0.15]
        for column in new:
            if rng.random() < 0.1:
                column["type"] = rng.choice([t for t in types if t != column["type"]])
        new += [{"name": f"n{i}", "type": "string"} for i in range(rng.randint(0, 2))]
        rng.shuffle(new)
        diff = schema_diff(old, new)
        removed = {c["name"] for c in old} - {c["name"] for c in new}
        assert set(diff.removed) == removed
        assert set(diff.added) == {c["name"] for c in new if c["name"].startswith("n")}
        expected = "major" if diff.removed or diff.retyped else "minor" if diff.added else "patch"
        assert diff.bump == expected
        bumped = parse_version(next_version("2.5.7", diff))
        assert bumped == {"major": (3, 0, 0), "minor": (2, 6, 0), "patch": (2, 5, 8)}[expected]


def test_newly_exposed_personal_data_is_a_major_bump() -> None:
    old = [{"name": "ref", "type": "string"}, {"name": "amount", "type": "double"}]
    new = [
        {"name": "ref", "type": "string", "personal_data": "CN_RESIDENT_ID"},
        {"name": "amount", "type": "double"},
    ]
    diff = schema_diff(old, new)
    assert diff.exposed == ["ref:CN_RESIDENT_ID"] and diff.bump == "major"
    assert next_version("1.4.2", diff) == "2.0.0"
    assert schema_diff(new, new).bump == "patch"  # still exposed, not newly
    assert schema_diff(new, old).bump == "patch"  # no longer exposed: less, not more
    assert diff.to_json()["exposed"] == ["ref:CN_RESIDENT_ID"]
