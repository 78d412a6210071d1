"""The personal-data scan in partitions (issue 23): counts of consecutive parts, written as JSON
and merged in row order, decide exactly what one scan of the whole table decides, wherever the
cuts fall (inside the sample, between two numbers of a serial column, one row per part).

The table comes from Faker (zh_CN, en_US, id_ID), an independent generator."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pytest
from faker import Faker

import databourse.pii.detect as detect
from databourse.pii.counts import ColumnState
from databourse.pii.detect import count_columns, decide_columns, merge_columns, scan_table
from databourse.pii.findings import ColumnFinding

ROWS = 600
SAMPLE = 100


def faker_table(rows: int = ROWS) -> pa.Table:
    """Identifiers, phones, emails in text, a rising order number that looks like CN mobiles,
    identifiers after 90 rows of junk, and a measure."""
    cn, us, my = Faker("zh_CN"), Faker("en_US"), Faker("id_ID")
    for fake in (cn, us, my):
        fake.seed_instance(23)
    return pa.table(
        {
            "resident_id": [cn.ssn() if i % 10 else None for i in range(rows)],
            "mobile": [cn.phone_number() for _ in range(rows)],
            "order_no": order_numbers(rows),
            "late_id": [f"x{i}" for i in range(90)] + [cn.ssn() for _ in range(rows - 90)],
            "note": [
                f"please reply to {us.email()}" if i % 4 == 0 else my.sentence()
                for i in range(rows)
            ],
            "name": [us.name() for _ in range(rows)],
            "amount": [round(us.pyfloat(min_value=0, max_value=999), 2) for _ in range(rows)],
        }
    )


def order_numbers(rows: int) -> list[int]:
    """Valid CN mobile numbers that are a counter: +40 a step, but every 25th step falls by 10,
    so 96% of the steps rise: just above serials.RISING_SHARE (95%), where every step between
    two partitions counts."""
    numbers, at = [], 13800000000
    for i in range(rows):
        numbers.append(at)
        at += -10 if i % 25 == 24 else 40
    return numbers


def cut(rows: int, sizes: list[int]) -> list[tuple[int, int]]:
    """Consecutive (offset, rows) parts of the given sizes, the last one taking the rest."""
    parts, at = [], 0
    for size in sizes:
        if at >= rows:
            break
        parts.append((at, min(size, rows - at)))
        at += size
    if at < rows:
        parts.append((at, rows - at))
    return parts


def scanned_in_parts(table: pa.Table, parts: list[tuple[int, int]]) -> list[ColumnState]:
    """Each part counted on its own, through the JSON a partition's work file holds, merged."""
    counted = []
    for offset, rows in parts:
        states = count_columns(
            table.slice(offset, rows).to_batches(max_chunksize=53),
            table.schema,
            sample_rows=SAMPLE,
            offset=offset,
        )
        counted.append([ColumnState.from_json(s) for s in json.loads(json.dumps(
            [s.to_json() for s in states]
        ))])  # fmt: skip
    return merge_columns(counted)


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return faker_table()


@pytest.fixture(scope="module")
def whole(table: pa.Table) -> list[ColumnFinding]:
    return scan_table(table, sample_rows=SAMPLE)


RANDOM_CUTS = [random.Random(seed).sample(range(1, 140), 8) for seed in range(3)]


@pytest.mark.parametrize(
    "sizes",
    [[ROWS], [1] * 12, [99, 2, 1], [100], [101, 7, 7, 7], [17] * 12, *RANDOM_CUTS],
)
def test_any_cut_into_partitions_finds_what_one_scan_finds(
    table: pa.Table, whole: list[ColumnFinding], sizes: list[int]
) -> None:
    merged = decide_columns(scanned_in_parts(table, cut(ROWS, sizes)))
    assert merged == whole
    found = {f.column: f for f in whole}
    assert found["resident_id"].category == "CN_RESIDENT_ID"
    assert found["mobile"].category == "PHONE_NUMBER"
    assert found["order_no"].category is None  # a counter, though its numbers are valid mobiles
    assert found["note"].embedded.get("EMAIL_ADDRESS") == ROWS // 4
    assert found["amount"].category is None
    # 85% valid overall, but the sample (the dataset's first 100 rows) is 10% valid
    assert found["late_id"].category is None and found["late_id"].whole["CN_RESIDENT_ID"] > 500


def test_parts_counted_ahead_in_small_chunks_merge_the_same(
    table: pa.Table, whole: list[ColumnFinding], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks joined to SCAN_BATCH_ROWS inside a part: cuts and chunks may both fall anywhere."""
    monkeypatch.setattr(detect, "SCAN_BATCH_ROWS", 40)
    assert decide_columns(scanned_in_parts(table, cut(ROWS, [130, 130, 130]))) == whole


def test_an_empty_part_changes_nothing_and_no_part_is_an_error(
    table: pa.Table, whole: list[ColumnFinding]
) -> None:
    empty = count_columns([], table.schema, sample_rows=SAMPLE, offset=ROWS)
    parts = [count_columns(table.to_batches(), table.schema, sample_rows=SAMPLE), empty]
    assert decide_columns(merge_columns(parts)) == whole
    with pytest.raises(ValueError, match="no part"):
        merge_columns([])
