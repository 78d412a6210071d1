"""Tests of databourse.privacy.aggregate: cells, primary and complementary suppression, noise."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from databourse.config import AggregateSpec, ProductSpec, ProviderSpec
from databourse.config.loading import check_product
from databourse.privacy.aggregate import aggregate

KEY = b"k" * 32


def sales() -> pa.Table:
    # cells (d, e): a/x 10, a/y 10, b/x 2, b/y 1, c/x 8, c/y 7
    rows = [("a", "x")] * 10 + [("a", "y")] * 10 + [("b", "x")] * 2 + [("b", "y")]
    rows += [("c", "x")] * 8 + [("c", "y")] * 7
    return pa.table({"d": [r[0] for r in rows], "e": [r[1] for r in rows],
                     "v": [float(i) for i in range(len(rows))]})  # fmt: skip


def spec(**extra: object) -> AggregateSpec:
    return AggregateSpec.model_validate(
        {"dimensions": ["d", "e"], "min_cell": 5,
         "measures": [{"column": "v", "stats": ["count", "sum", "mean", "p50"]}], **extra}
    )  # fmt: skip


def test_cells_and_statistics() -> None:
    cells, report = aggregate(sales(), spec(min_cell=1))
    first = cells.to_pylist()[0]
    assert (first["d"], first["e"], first["count"], first["v_sum"]) == ("a", "x", 10, 45.0)
    assert first["v_mean"] == 4.5 and first["v_p50"] == pytest.approx(4.5, abs=0.51)
    assert report.cells == 6 and report.primary_suppressed == 0


def test_complementary_suppression_protects_every_margin() -> None:
    cells, report = aggregate(sales(), spec())
    hidden = {(r["d"], r["e"]) for r in cells.to_pylist() if r["suppressed"]}
    # b/x and b/y are small; each column margin (e=x, e=y) then has one hidden cell, so the
    # smallest open cell of each is hidden too: c/x (8) and c/y (7), not a/x or a/y (10).
    assert hidden == {("b", "x"), ("b", "y"), ("c", "x"), ("c", "y")}
    assert (report.primary_suppressed, report.secondary_suppressed) == (2, 2)
    for r in cells.to_pylist():
        if r["suppressed"]:
            assert r["count"] is None and r["v_sum"] is None
    for along in ("d", "e"):  # no margin has exactly one hidden cell
        margins: dict[str, int] = {}
        for r in cells.to_pylist():
            other = r["e"] if along == "d" else r["d"]
            margins[other] = margins.get(other, 0) + r["suppressed"]
        assert 1 not in margins.values()


def test_one_dimension_hides_a_second_cell() -> None:
    table = pa.table({"d": ["a"] * 9 + ["b"] * 2 + ["c"] * 6})
    cells, _ = aggregate(table, AggregateSpec(dimensions=["d"], min_cell=5))
    assert cells.column("suppressed").to_pylist() == [False, True, True]


def test_noise_is_seeded_by_the_key_and_needs_it() -> None:
    one, report = aggregate(sales(), spec(min_cell=1, epsilon=0.5), KEY)
    two, _ = aggregate(sales(), spec(min_cell=1, epsilon=0.5), KEY)
    other, _ = aggregate(sales(), spec(min_cell=1, epsilon=0.5), b"o" * 32)
    assert one.equals(two) and report.epsilon == 0.5
    assert one.column("count") != other.column("count")
    assert one.column("count").to_pylist() != [10, 10, 2, 1, 8, 7]
    with pytest.raises(ValueError, match="needs the key"):
        aggregate(sales(), spec(epsilon=0.5))


def test_product_type_and_checks_against_the_source(tmp_path: Path) -> None:
    base = {"id": "agg", "name": "A", "source": {"provider": "p", "dataset": "d"},
            "columns": {"d": "keep", "v": "keep", "code": {"mask": {"keep_last": 2}},
                        "h": {"hierarchy": "hierarchies/missing.csv"}},
            "terms": {"purposes": ["research"]}, "markets": ["SG"]}  # fmt: skip
    with pytest.raises(ValueError, match="needs an aggregate"):
        ProductSpec.model_validate({**base, "type": "aggregate"})
    with pytest.raises(ValueError, match="only it has one"):
        ProductSpec.model_validate({**base, "aggregate": {"dimensions": ["d"]}})
    spec = ProductSpec.model_validate({
        **base, "type": "aggregate",
        "aggregate": {"dimensions": ["d", "nope"], "measures": [{"column": "v"}]},
        "privacy": {"quasi_identifiers": ["d"], "k": 2, "sensitive_attributes": ["gone"], "l": 2},
    })  # fmt: skip
    provider = ProviderSpec.model_validate({
        "id": "p", "name": "P", "jurisdiction": "SG",
        "datasets": {"d": {"columns": [{"name": "d"}, {"name": "v", "type": "int64"},
                                       {"name": "code", "type": "int64"}, {"name": "h"}]}},
    })  # fmt: skip
    problems = check_product(str(tmp_path / "products" / "agg.yaml"), spec, {"p": provider})
    assert any("h.hierarchy: file 'hierarchies/missing.csv' not found" in p for p in problems)
    assert any("columns.h.level: a hierarchy without level is searched" in p for p in problems)
    assert any("code.mask: needs a string column, not int64" in p for p in problems)
    assert any("privacy.sensitive_attributes: 'gone'" in p for p in problems)
    assert any("aggregate: 'nope' is not an output column" in p for p in problems)
