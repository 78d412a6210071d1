"""Tests of databourse.privacy.lattice: the search finds the optimum an exhaustive check finds."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pyarrow as pa
import pytest

from databourse.config import PrivacyModel
from databourse.errors import PrivacyModelFailed
from databourse.privacy.hierarchy import Hierarchy
from databourse.privacy.k_anonymity import enforce_model, verify
from databourse.privacy.lattice import anonymize, apply_levels, evaluate, search

AGE = Hierarchy(tuple((str(a), f"{a // 5 * 5}-{a // 5 * 5 + 4}", f"{a // 10 * 10}s", "*")
                      for a in range(20, 40)), name="age")  # fmt: skip
ZIPS = ("51800", "51801", "51810", "51811", "52800", "52810")
ZIP = Hierarchy(tuple((z, z[:3] + "**", z[:1] + "****", "*") for z in ZIPS), name="zip")
SEX = Hierarchy((("F", "*"), ("M", "*")), name="sex")
HIER = {"age": AGE, "zip": ZIP, "sex": SEX}
QIS = ["age", "zip", "sex"]


def people(n: int = 300, seed: int = 7) -> pa.Table:
    rnd = random.Random(seed)
    return pa.table({
        "row": list(range(n)),
        "age": [rnd.randint(20, 39) for _ in range(n)],
        "zip": [rnd.choice(ZIP.labels(0)) for _ in range(n)],
        "sex": [rnd.choice("FM") for _ in range(n)],
        "disease": [rnd.choice(["flu", "flu", "flu", "cold", "hiv", "ulcer"]) for _ in range(n)],
        "income": [rnd.choice([10, 20, 30, 40, 50, 60]) for _ in range(n)],
    })  # fmt: skip


def entropy_cost(table: pa.Table, kept: set[int], levels: list[int]) -> float:
    """ARX's non-monotonic non-uniform entropy, written out plainly: every record at its label
    over the whole table, plus the entropy of the suppressed records' labels among themselves."""
    total = 0.0
    suppressed = [row for row in range(table.num_rows) if row not in kept]
    for q, lv in zip(QIS, levels, strict=True):
        values = [str(v) for v in table.column(q).to_pylist()]
        labels = HIER[q].generalize(table.column(q), lv).to_pylist()
        f0, fl = Counter(values), Counter(labels)
        total += sum(math.log2(fl[g] / f0[v]) for v, g in zip(values, labels, strict=True))
        among = Counter(labels[row] for row in suppressed)
        total += sum(c * math.log2(len(suppressed) / c) for c in among.values())
    return total


def brute_force(table: pa.Table, model: PrivacyModel) -> tuple[float, list[list[int]]]:
    """Best cost and the nodes reaching it, each node judged by privacy.enforce_model."""
    best, nodes = math.inf, []
    for node in itertools.product(*(range(HIER[q].height) for q in QIS)):
        generalized = apply_levels(table, HIER, dict(zip(QIS, node, strict=True)))
        try:
            out, _ = enforce_model(generalized, model)
        except PrivacyModelFailed:
            continue
        cost = entropy_cost(table, set(out.column("row").to_pylist()), list(node))
        if cost < best - 1e-6:
            best, nodes = cost, [list(node)]
        elif abs(cost - best) <= 1e-6:
            nodes.append(list(node))
    return best, nodes


MODELS = {
    "k5": {"k": 5, "max_suppression": 0.0},
    "k4-supp": {"k": 4, "max_suppression": 0.1},
    "distinct-l3": {"k": 2, "max_suppression": 0.05, "sensitive_attributes": ["disease"], "l": 3},
    "entropy-l2": {"k": 2, "max_suppression": 0.05, "sensitive_attributes": ["disease"], "l": 2,
                   "l_diversity": "entropy"},
    "t-categorical": {"k": 3, "max_suppression": 0.05, "sensitive_attributes": ["disease"],
                      "t": 0.3},
    "t-ordered": {"k": 3, "max_suppression": 0.05, "sensitive_attributes": ["income"], "t": 0.2},
}  # fmt: skip


@pytest.mark.parametrize("name", MODELS)
def test_search_finds_the_exhaustive_optimum(name: str) -> None:
    table = people()
    model = PrivacyModel(quasi_identifiers=QIS, **MODELS[name])  # type: ignore[arg-type]
    result = search(table, HIER, model)
    best, nodes = brute_force(table, model)
    assert result.satisfied
    assert result.levels in nodes
    assert result.loss == pytest.approx(best)
    assert result.nodes_total == 4 * 4 * 2
    assert result.nodes_checked + result.nodes_tagged == result.nodes_total
    one = evaluate(table, HIER, model, result.levels)
    assert (one.loss, one.classes, one.suppressed) == (
        result.loss,
        result.classes,
        result.suppressed,
    )


def test_anonymize_output_verifies_on_its_own() -> None:
    model = PrivacyModel(quasi_identifiers=QIS, k=4, max_suppression=0.1,
                         sensitive_attributes=["disease"], l=2)  # fmt: skip
    out, result, report = anonymize(people(), HIER, model)
    assert report.satisfied and report.classes == result.classes
    assert report.suppressed == result.suppressed
    check = verify(out, model)
    assert check.satisfied and check.smallest_class >= 4 and (check.lowest_l or 0) >= 2


def test_unreachable_model_reports_the_top() -> None:
    model = PrivacyModel(quasi_identifiers=QIS, k=400, max_suppression=0.0)
    result = search(people(), HIER, model)
    assert not result.satisfied and result.levels == [3, 3, 1]


def test_metric_loss_is_a_share() -> None:
    model = PrivacyModel(quasi_identifiers=QIS, k=5, max_suppression=0.0)
    result = search(people(), HIER, model, metric="loss")
    assert result.metric == "loss" and 0 < result.loss < 1
    assert result.to_json()["transformation"] == dict(zip(QIS, result.levels, strict=True))


def test_quasi_identifier_without_hierarchy_is_kept_as_is() -> None:
    model = PrivacyModel(quasi_identifiers=["age", "sex"], k=3, max_suppression=0.0)
    result = search(people(), {"age": AGE}, model)
    assert result.satisfied and result.levels[1] == 0
