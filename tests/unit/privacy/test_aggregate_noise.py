"""Aggregate noise is fresh per release: differences and rescaling cancel nothing (issue 15).

Each test fails on the noise seeded by the key alone (one noise vector for every release):
there, two versions' counts differ exactly by the true change, and Laplace(2b) draws are
exactly twice Laplace(b) ones. Thresholds sit 10 or more standard deviations from both sides.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from databourse.config import AggregateSpec
from databourse.privacy.aggregate import aggregate

KEY = b"k" * 32
PER_CELL = 100  # true count of every cell: with b = 10, flooring at 0 has P about 1e-5


def grid(cells: int, extra: int | None = None, per_cell: int = PER_CELL) -> pa.Table:
    """`cells` cells of `per_cell` records each, and one more person in cell `extra`."""
    d = np.repeat(np.arange(cells, dtype=np.int64), per_cell)
    if extra is not None:
        d = np.append(d, np.int64(extra))
    return pa.table({"d": pa.array(d, pa.int64())})


def counts(table: pa.Table, epsilon: float) -> np.ndarray:
    """The published count of each cell (one dimension, nothing suppressed)."""
    cells, _ = aggregate(table, AggregateSpec(dimensions=["d"], min_cell=1, epsilon=epsilon), KEY)
    return np.asarray(cells.column("count"), dtype=np.int64)


def test_one_added_person_does_not_show_as_an_exact_difference() -> None:
    # The attack: subtract two versions; with shared noise the diff is [0, ..., 1, ..., 0].
    before = counts(grid(10_000), epsilon=0.1)
    after = counts(grid(10_000, extra=7), epsilon=0.1)
    true_diff = np.zeros(10_000, dtype=np.int64)
    true_diff[7] = 1
    exact = int(np.sum(after - before == true_diff))
    # independent rounded Laplace(10) draws are equal with P 0.025 (~250); shared: 10,000
    assert exact < 1_000, exact


def test_rescaling_under_another_epsilon_does_not_cancel_the_noise() -> None:
    # From one seed, Laplace(2b) draws are twice Laplace(b) ones: 2*x1 - x2 = true within 1.
    table = grid(2_000, per_cell=5)
    x1, x2 = counts(table, epsilon=1.0), counts(table, epsilon=0.5)
    recovered = int(np.sum(np.abs(2 * x1 - x2 - 5) <= 1))
    assert recovered < 1_000, recovered  # independent: P 0.34 (~690); shared: ~2,000


def test_same_records_same_release_one_more_person_fresh_noise() -> None:
    table = grid(200)
    shuffled = table.take(np.random.default_rng(3).permutation(table.num_rows))
    one = counts(table, epsilon=0.1)
    assert np.array_equal(one, counts(shuffled, epsilon=0.1))  # a rebuild: same content hash
    moved = counts(grid(200, extra=0), epsilon=0.1)
    same = int(np.sum(moved[1:] == one[1:]))
    assert same < 40, same  # independent: P 0.025 (~5 of 199); shared: 199


def test_noise_scale_is_laplace_b_and_independent_across_releases() -> None:
    spec = AggregateSpec(dimensions=["d"], min_cell=1, epsilon=0.1)
    b = 10.0
    first, report = aggregate(grid(10_000), spec, KEY)
    assert report.noise_scale == b and report.noised == ["count"] and report.exact == []
    noise = np.asarray(first.column("count"), dtype=np.float64) - PER_CELL
    # E|rint(L)| for Laplace(10) is b within 0.1%; the mean of 10,000 has sd 1% of b
    assert abs(np.mean(np.abs(noise)) - b) < 0.1 * b
    assert abs(np.mean(noise)) < 0.1 * b  # centred (sd of the mean 0.014 b)
    second, _ = aggregate(grid(10_000, extra=0), spec, KEY)
    other = np.asarray(second.column("count"), dtype=np.float64) - PER_CELL
    other[0] -= 1  # the added person
    # independent draws: |L1 - L2| has mean 1.5 b (sd of the mean ~0.013 b); shared: 0
    assert abs(np.mean(np.abs(noise - other)) - 1.5 * b) < 0.1 * 1.5 * b


def test_measure_counts_share_the_budget_and_exact_statistics_are_named() -> None:
    table = grid(500, per_cell=10).append_column("v", pa.array(np.ones(5_000)))
    spec = AggregateSpec.model_validate(
        {"dimensions": ["d"], "min_cell": 1, "epsilon": 0.5,
         "measures": [{"column": "v", "stats": ["count", "sum"]}]}
    )  # fmt: skip
    cells, report = aggregate(table, spec, KEY)
    # two count columns, one budget: each gets Laplace(2 / epsilon)
    assert report.noised == ["count", "v_count"] and report.noise_scale == 4.0
    assert report.exact == ["v_sum"]  # published exact: not differentially private
    v_count = np.asarray(cells.column("v_count"), dtype=np.int64)
    assert int(np.sum(v_count == 10)) < 150, v_count  # exact: 500; rounded Laplace(4): ~60
    assert not np.array_equal(v_count, np.asarray(cells.column("count"), dtype=np.int64))
