"""The quality suite in partitions (issue 23): each partition's tally (counts, extremes, key
hashes) written to files and read back, merged in row order and finished on the whole file,
gives exactly the report one pass over the whole file gives, wherever the cuts fall: ten rows
per part (inside row groups), a duplicate key whose two rows lie in different parts, the newest
timestamp in the last part, a part with only nulls in a column.

The table comes from Faker (zh_CN, en_US, id_ID), an independent generator."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from faker import Faker

from databourse.product.partitions import plan_partitions
from databourse.quality.batches import partition_source, routes_of, validate_parquet
from databourse.quality.expectations import ExpectationSpec
from databourse.quality.gx_inputs import build_expectations
from databourse.quality.tally import TALLIED, Tally, extreme_types, tally

ROWS = 300
NOW = dt.datetime(2026, 12, 1)


def faker_table(rows: int = ROWS) -> pa.Table:
    """A customer table with what a suite checks: keys (one repeated far apart), nulls, a
    dictionary column, zoned timestamps, NaN, bounded numbers and patterns."""
    cn, us, my = Faker("zh_CN"), Faker("en_US"), Faker("id_ID")
    for fake in (cn, us, my):
        fake.seed_instance(23)
    ids = [f"C{i:06d}" for i in range(rows)]
    ids[rows - 3] = ids[4]  # the same key in the first and in the last part
    start = dt.datetime(2026, 11, 30, tzinfo=dt.UTC) - dt.timedelta(hours=7 * (rows - 1))
    return pa.table(
        {
            "customer_id": ids,
            "mobile": [cn.phone_number() if i % 7 else None for i in range(rows)],
            "email": [us.email() for _ in range(rows)],
            "city": pa.array([my.city() for _ in range(rows)]).dictionary_encode(),
            "segment": [["retail", "sme", "corporate", "vip"][i % 4] for i in range(rows)],
            "region": [["north", "south"][i % 2] for i in range(rows)],
            "branch": [i % 37 for i in range(rows)],
            "balance": [
                float("nan") if i % 50 == 0 else round(us.pyfloat(min_value=-50, max_value=9e3), 2)
                for i in range(rows)
            ],
            "visits": [None if 100 <= i < 140 else us.random_int(0, 120) for i in range(rows)],
            "opened": [start + dt.timedelta(hours=7 * i) for i in range(rows)],
            "birthday": [us.date_of_birth(minimum_age=18, maximum_age=90) for _ in range(rows)],
        }
    )


SPECS = [
    ExpectationSpec("ExpectTableRowCountToBeBetween", {"min_value": 10}),
    ExpectationSpec("ExpectColumnToExist", {"column": "email"}),
    ExpectationSpec("ExpectColumnValuesToBeUnique", {"column": "customer_id"}),
    ExpectationSpec("ExpectCompoundColumnsToBeUnique", {"column_list": ["region", "branch"]}),
    ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": "mobile", "mostly": 0.8}),
    ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": "balance"}),
    ExpectationSpec("ExpectColumnValuesToBeNull", {"column": "visits", "mostly": 0.1}),
    ExpectationSpec("ExpectColumnValuesToBeBetween", {"column": "visits", "max_value": 100}),
    ExpectationSpec("ExpectColumnValuesToBeBetween", {"column": "balance", "min_value": 0}),
    ExpectationSpec(
        "ExpectColumnValuesToBeInSet",
        {"column": "segment", "value_set": ["retail", "sme", "corporate"]},
    ),
    ExpectationSpec(
        "ExpectColumnValuesToMatchRegex",
        {"column": "email", "regex": r"^[^@]+@[^@]+\.(com|net|org)$"},
    ),
    ExpectationSpec("ExpectColumnValueLengthsToBeBetween", {"column": "city", "min_value": 4}),
    ExpectationSpec(
        "ExpectColumnMaxToBeBetween", {"column": "opened", "min_value": NOW - dt.timedelta(days=40)}
    ),
    ExpectationSpec(
        "ExpectColumnMinToBeBetween", {"column": "birthday", "min_value": dt.date(1940, 1, 1)}
    ),
    ExpectationSpec("ExpectColumnMaxToBeBetween", {"column": "visits", "max_value": 119}),
    ExpectationSpec(
        "ExpectColumnMeanToBeBetween", {"column": "branch", "min_value": 17, "max_value": 19}
    ),
    ExpectationSpec("ExpectColumnValuesToBeIncreasing", {"column": "opened"}),
    ExpectationSpec("ExpectColumnMaxToBeBetween", {"column": "not_there", "max_value": 1}),
]


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("staged") / "customers.parquet"
    pq.write_table(faker_table(), path, row_group_size=23)
    return path


def tallied_in_parts(path: Path, rows: int, folder: Path) -> list[Tally]:
    """Each partition of about `rows` rows tallied on its own (small batches), written to files
    as a partition task writes them, and read back."""
    built = build_expectations(SPECS)
    loaded = []
    for part in plan_partitions(path, rows):
        source = partition_source(path, part.offset, part.rows, batch_rows=40)
        routes = routes_of(source.schema, SPECS, built)
        kept = {r: indices for r, indices in routes.items() if r in TALLIED}
        stem = f"part-{part.index:05d}"
        found = tally(source, part.offset, SPECS, built, kept, folder, stem)
        found.save(folder, stem, extreme_types(source, SPECS, found))
        loaded.append(Tally.load(folder, stem))
    return loaded


def results(path: Path, tallies: list[Tally] | None) -> list[dict[str, Any]]:
    report = validate_parquet(path, "customers", SPECS, tallies=tallies)
    return [r.to_json() for r in report.results]


@pytest.mark.parametrize("rows", [10, 50, 299])
def test_partitions_give_the_report_of_one_pass(staged: Path, tmp_path: Path, rows: int) -> None:
    whole = results(staged, None)
    assert results(staged, tallied_in_parts(staged, rows, tmp_path)) == whole


def test_the_reference_report_sees_what_each_route_must_see(staged: Path) -> None:
    """The one-pass report the partitions are held to: failures found across the cuts."""
    by = {r["expectation"] + str(r["column"]): r for r in results(staged, None)}
    unique = by["ExpectColumnValuesToBeUniquecustomer_id"]
    assert (unique["success"], unique["unexpected_count"]) == (False, 2)  # rows 4 and 297
    assert (
        by["ExpectCompoundColumnsToBeUniqueregion,branch"]["unexpected_count"] == ROWS
    )  # 74 pairs
    assert by["ExpectColumnValuesToNotBeNullbalance"]["unexpected_count"] == 6  # NaN
    assert by["ExpectColumnValuesToBeNullvisits"]["unexpected_count"] == ROWS - 40
    assert by["ExpectColumnValuesToBeInSetsegment"]["unexpected_count"] == ROWS // 4
    assert by["ExpectColumnMaxToBeBetweenopened"]["success"]  # the newest row is the last
    newest_visits = max(v for v in faker_table()["visits"].to_pylist() if v is not None)
    assert by["ExpectColumnMaxToBeBetweenvisits"]["success"] == (newest_visits <= 119)
    assert by["ExpectColumnValuesToBeIncreasingopened"]["success"]
    assert not by["ExpectColumnMaxToBeBetweennot_there"]["success"]


def test_random_cuts_and_a_retried_partition(staged: Path, tmp_path: Path) -> None:
    """Random partition sizes; every tally written twice (a retried task) changes nothing."""
    whole = results(staged, None)
    rng = random.Random(23)
    for attempt in range(2):
        folder = tmp_path / str(attempt)
        folder.mkdir()
        rows = rng.randint(10, 120)
        if attempt == 0:
            tallied_in_parts(staged, rows, folder)  # a first attempt's files, overwritten
        assert results(staged, tallied_in_parts(staged, rows, folder)) == whole, rows


def test_tallies_of_another_suite_are_refused(staged: Path, tmp_path: Path) -> None:
    """The contract edited while a validation runs: partitions tallied with the old suite are
    not merged into the new one's report (indices and parameters would no longer match)."""
    from databourse.errors import ConfigError

    tallies = tallied_in_parts(staged, 100, tmp_path)
    edited = [*SPECS[:-1], ExpectationSpec(SPECS[-1].name, {**SPECS[-1].kwargs, "max_value": 2})]
    with pytest.raises(ConfigError, match=r"3 of 3 partition\(s\) were checked with another"):
        validate_parquet(staged, "customers", edited, tallies=tallies)
