"""Full-domain generalization search: the lattice node with least information loss meeting a model.

A node is one hierarchy level per quasi-identifier. A node meets the model when suppressing the
records of its classes that break the model (`criteria.release`: class smaller than k, fewer than
l distinct values or too little entropy, farther than t from the released records) removes at
most `max_suppression` of them.

Information loss is one of ARX's metrics (`databourse.privacy.loss_metrics`; default non-monotonic
non-uniform entropy, ARX's pricing of suppressed records). Each has a lower bound that needs no
grouping and grows with generalization, so a node (and every generalization of it) whose bound
is no better than the best node found is never priced. Meeting k and l is monotonic: a node
above a node that meets them meets them as well (it is "tagged"; only its loss is computed).
t-closeness against the released records is not monotonic once records are suppressed (the
released distribution moves with what is suppressed), so with t and a suppression limit the
tags only say where k and l hold, and every candidate is checked against the whole model, in
order of its bound, until the bound exceeds the best node found.

The table is integer-encoded once (level-0 codes, distinct combinations and their counts by a
pyarrow group_by). Each node's classes are grouped on one packed int64 key with numpy (measured
2x faster than a pyarrow group_by of the same key) over the distinct combinations, so the work
per node grows with the number of distinct combinations instead of the number of records.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from databourse.config import PrivacyModel
from databourse.privacy.criteria import release
from databourse.privacy.hierarchy import Hierarchy
from databourse.privacy.k_anonymity import KAnonymityReport, enforce_model, sensitive_codes
from databourse.privacy.loss_metrics import DEFAULT_METRIC, MONOTONIC, Metric, Pricing

log = logging.getLogger(__name__)

Node = tuple[int, ...]


@dataclass(frozen=True)
class NodeResult:
    """One evaluated transformation: does it meet the model, and what it costs."""

    levels: list[int]
    satisfied: bool
    loss: float  # the metric's value
    classes: int  # classes kept (not suppressed)
    smallest_class: int
    suppressed: int


@dataclass(frozen=True)
class SearchResult:
    """The optimal transformation and how the search got there."""

    quasi_identifiers: list[str]
    levels: list[int]  # one level per quasi-identifier, in model order
    satisfied: bool  # False: no node meets the model (levels are then the top)
    metric: str  # one of loss_metrics.METRICS
    loss: float  # the metric's value: lower is better
    classes: int
    smallest_class: int
    suppressed: int
    rows: int
    nodes_total: int
    nodes_checked: int  # grouped and checked against the model (or k and l, see search)
    nodes_tagged: int  # never grouped: feasibility known by monotonicity
    nodes_costed: int  # grouped after tagging: to price them, or to check t
    seconds: float

    @property
    def transformation(self) -> dict[str, int]:
        """The chosen level by quasi-identifier."""
        return dict(zip(self.quasi_identifiers, self.levels, strict=True))

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (figures and column names only)."""
        return {**dataclasses.asdict(self), "transformation": self.transformation}


class _Encoded:
    """A table encoded once: level codes of its distinct rows, their counts, metric terms."""

    def __init__(
        self,
        table: pa.Table,
        hierarchies: dict[str, Hierarchy],
        model: PrivacyModel,
        metric: Metric,
        weights: str | None = None,
    ) -> None:
        self.model = model
        self.hier = [hierarchies[q] for q in model.quasi_identifiers]
        counted = table.column(weights) if weights else None
        self.n = int(pc.sum(counted).as_py() or 0) if counted is not None else table.num_rows
        cols = [
            h.encode(table.column(q))
            for h, q in zip(self.hier, model.quasi_identifiers, strict=True)
        ]
        self.ordered: list[bool] = []
        self.sa_sizes: list[int] = []
        for s in model.sensitive_attributes:
            codes, size, ordered = sensitive_codes(table.column(s))
            cols.append(codes)
            self.sa_sizes.append(size)
            self.ordered.append(ordered)
        names = [f"c{i}" for i in range(len(cols))]
        coded = pa.table(
            [*cols, *([counted] if counted is not None else [])],
            names=[*names, *(["w"] if counted is not None else [])],
        )
        grouped = coded.group_by(names, use_threads=False).aggregate(
            [("w", "sum") if counted is not None else ([], "count_all")]
        )
        total = "w_sum" if counted is not None else "count_all"
        self.weights = np.asarray(grouped.column(total), dtype=np.int64)
        level0 = [np.asarray(grouped.column(c), dtype=np.int64) for c in names]
        self.sensitive = level0[len(self.hier) :]
        # Per quasi-identifier and level: the code of each distinct row (a null keeps the extra
        # last code at every level).
        self.mapped = [
            [np.append(h.codes(lv), h.size(lv))[col] for lv in range(h.height)]
            for h, col in zip(self.hier, level0[: len(self.hier)], strict=True)
        ]
        self.pricing = Pricing(metric, self.hier, level0[: len(self.hier)], self.weights, self.n)
        # k and l alone tag the lattice: k and distinct l are monotonic with suppression (a
        # merged class holding a kept one is kept); entropy l is taken as such, as before.
        self.monotone_model = model.model_copy(update={"t": None})

    def bound(self, node: Node) -> float:
        """A lower bound of the node's metric, monotonic in generalization."""
        return self.pricing.bound(node)


def _evaluate(
    enc: _Encoded, node: Node, max_suppression: float, whole: bool = True, price: bool = False
) -> NodeResult:
    """Classes of a node, the ones the model suppresses, and the metric when it is met or
    `price` is set (`whole`=False: k and l only, for tagging)."""
    model, w = (enc.model if whole else enc.monotone_model), enc.weights
    cols = [enc.mapped[q][lv] for q, lv in enumerate(node)]
    radices = [h.size(lv) + 1 for h, lv in zip(enc.hier, node, strict=True)]
    space = math.prod(radices)
    key = cols[0].astype(np.int64)  # a copy, then in place
    for col, radix in zip(cols[1:], radices[1:], strict=True):
        np.multiply(key, radix, out=key)
        np.add(key, col, out=key)
    if not model.sensitive_attributes and space <= 8 * len(w):  # else sorting is cheaper
        dense = np.bincount(key, w, space)
        bad_row = dense[key] < model.k
        sizes = dense[dense > 0]
        kept = sizes[sizes >= model.k]
    else:
        cls = pd.factorize(key)[0]  # hashed, where np.unique sorts: classes by first row
        sizes = np.bincount(cls, w)
        sensitive = [_sensitive_counts(enc, i, cls, len(sizes)) for i in range(len(enc.sa_sizes))]
        keep = release(sizes, sensitive, model).keep
        bad_row = ~keep[cls]
        kept = sizes[keep]
    suppressed = int(w[bad_row].sum())
    satisfied = len(kept) > 0 and suppressed <= math.floor(max_suppression * enc.n + 1e-9)
    cost = math.inf  # the search never uses the cost of a failing node
    if satisfied or price:
        cost = enc.pricing.cost(node, cols, w, np.flatnonzero(bad_row), sizes)
    return NodeResult(
        levels=list(node),
        satisfied=satisfied,
        loss=cost,
        classes=len(kept),
        smallest_class=int(kept.min()) if len(kept) else 0,
        suppressed=suppressed,
    )


def _sensitive_counts(
    enc: _Encoded, i: int, cls: np.ndarray, classes: int
) -> tuple[np.ndarray, bool]:
    """Records by class and value of sensitive attribute i, and whether it is ordered."""
    size = enc.sa_sizes[i]
    inverse, pairs = pd.factorize(cls * size + enc.sensitive[i])
    counts = np.zeros((classes, size))
    counts[pairs // size, pairs % size] = np.bincount(inverse, enc.weights, len(pairs))
    return counts, enc.ordered[i]


class _Lattice:
    """Every node's bound and status (1 meets the model, -1 not, 0 unknown), as arrays shaped
    like the lattice so that "all nodes above" is a slice."""

    def __init__(self, enc: _Encoded) -> None:
        self.heights = tuple(h.height for h in enc.hier)
        # every node, in itertools.product's (C) order, as rows and as tuples
        self.nodes = np.indices(self.heights).reshape(len(self.heights), -1).T.astype(np.int64)
        self.tuples = [tuple(n) for n in self.nodes.tolist()]
        self.status = np.zeros(self.heights, dtype=np.int8)
        self.bounds = enc.pricing.bounds().reshape(self.heights)

    def tag(self, node: Node, satisfied: bool) -> None:
        """Monotonicity: above a satisfying node all satisfy; below a failing one all fail."""
        if satisfied:
            region = self.status[tuple(slice(lv, None) for lv in node)]
        else:
            region = self.status[tuple(slice(0, lv + 1) for lv in node)]
        region[region == 0] = 1 if satisfied else -1

    def path(self, node: Node) -> list[Node]:
        """A chain from the node to the top, each step raising the column of least bound."""
        out = [node]
        while True:
            ups = [_step(node, c, 1) for c, lv in enumerate(node) if lv < self.heights[c] - 1]
            if not ups:
                return out
            node = min(ups, key=lambda u: float(self.bounds[u]))
            out.append(node)


def _step(node: Node, column: int, by: int) -> Node:
    """The node with one column's level moved by `by`."""
    return tuple(lv + by if i == column else lv for i, lv in enumerate(node))


def _classify(
    enc: _Encoded, lattice: _Lattice, limit: float, whole: bool
) -> dict[Node, NodeResult]:
    """Know every node's feasibility (under the whole model, or k and l alone when `whole` is
    False), checking few: binary search on chains, then tagging."""
    checked: dict[Node, NodeResult] = {}

    def check(node: Node) -> bool:
        status = lattice.status[node]
        if status:
            return bool(status > 0)
        checked[node] = result = _evaluate(enc, node, limit, whole)
        lattice.tag(node, result.satisfied)
        return result.satisfied

    flat_bounds = lattice.bounds.ravel()
    for i in np.lexsort((flat_bounds, lattice.nodes.sum(axis=1))):
        node = lattice.tuples[i]
        if lattice.status[node]:
            continue
        chain = lattice.path(node)
        lo, hi = 0, len(chain) - 1  # find the lowest satisfying node of the chain
        if not check(chain[hi]):
            continue
        while lo < hi:
            mid = (lo + hi) // 2
            if check(chain[mid]):
                hi = mid
            else:
                lo = mid + 1
    return checked


def search(
    table: pa.Table,
    hierarchies: dict[str, Hierarchy],
    model: PrivacyModel,
    max_suppression: float | None = None,
    metric: Metric = DEFAULT_METRIC,
    weights: str | None = None,
) -> SearchResult:
    """The node of least metric meeting the model (k, l, t) within max_suppression suppressed.

    `metric` is one of ARX's (`loss_metrics.METRICS`). `weights` names a column of record counts
    when the table holds grouped counts (see `privacy.group_counts`): each row then stands for
    that many records."""
    started = time.perf_counter()
    limit = model.max_suppression if max_suppression is None else max_suppression
    hierarchies = _complete(table, hierarchies, model)
    enc = _Encoded(table, hierarchies, model, metric, weights)
    lattice = _Lattice(enc)
    # With t and suppression the tags say only where k and l hold (see the module docstring).
    monotone = model.t is None or limit <= 0
    checked = _classify(enc, lattice, limit, whole=monotone)
    best: NodeResult | None = None
    costed = 0
    rechecked: set[Node] = set()  # checked against the whole model after k and l tagging
    feasible = np.flatnonzero(lattice.status.ravel() > 0)
    bounds = lattice.bounds.ravel()
    for i in feasible[np.argsort(bounds[feasible], kind="stable")]:
        if best is not None and bounds[i] >= best.loss:
            break  # every later node costs at least its bound
        node = lattice.tuples[i]
        if monotone and metric in MONOTONIC and _above_feasible(lattice, node):
            continue  # a node below it meets the model and costs no more
        result = checked.get(node) if monotone else None
        if result is None:
            result = _evaluate(enc, node, limit)
            costed += 1
            if not monotone:
                rechecked.add(node)
        if result.satisfied and (best is None or result.loss < best.loss):
            best = result
    top = tuple(h - 1 for h in lattice.heights)
    chosen = best or _evaluate(enc, top, limit, price=True)  # a finite figure for the report
    out = SearchResult(
        quasi_identifiers=list(model.quasi_identifiers),
        levels=list(chosen.levels),
        satisfied=best is not None,
        metric=metric,
        loss=chosen.loss,
        classes=chosen.classes,
        smallest_class=chosen.smallest_class,
        suppressed=chosen.suppressed,
        rows=enc.n,
        nodes_total=len(lattice.nodes),
        nodes_checked=len(checked.keys() | rechecked),
        nodes_tagged=len(lattice.nodes) - len(checked.keys() | rechecked),
        nodes_costed=costed,
        seconds=time.perf_counter() - started,
    )
    log.info(
        "lattice search over %d quasi-identifier(s): %d nodes, %d checked, %d costed, "
        "levels %s, %s %.4f, %d classes, %d suppressed, %.2fs",
        len(enc.hier), out.nodes_total, out.nodes_checked, costed, out.levels, metric,
        out.loss, out.classes, out.suppressed, out.seconds,
    )  # fmt: skip
    return out


def _above_feasible(lattice: _Lattice, node: Node) -> bool:
    """Whether a direct predecessor of the node meets the model."""
    return any(lattice.status[_step(node, c, -1)] > 0 for c, lv in enumerate(node) if lv > 0)


def _complete(
    table: pa.Table, hierarchies: dict[str, Hierarchy], model: PrivacyModel
) -> dict[str, Hierarchy]:
    """Hierarchies for every quasi-identifier: one without is kept as it is (a single level)."""
    out = dict(hierarchies)
    for q in model.quasi_identifiers:
        if q not in out:
            values = pc.unique(pc.cast(table.column(q), pa.string())).drop_null().to_pylist()
            out[q] = Hierarchy(tuple((v,) for v in values) or (("",),), name=q)
    return out


def evaluate(
    table: pa.Table,
    hierarchies: dict[str, Hierarchy],
    model: PrivacyModel,
    levels: list[int],
    max_suppression: float | None = None,
    metric: Metric = DEFAULT_METRIC,
) -> NodeResult:
    """Evaluate one given transformation (e.g. a published optimum) as the search would, priced
    even when it does not meet the model."""
    enc = _Encoded(table, _complete(table, hierarchies, model), model, metric)
    limit = model.max_suppression if max_suppression is None else max_suppression
    return _evaluate(enc, tuple(levels), limit, price=True)


def apply_levels(
    table: pa.Table, hierarchies: dict[str, Hierarchy], levels: dict[str, int]
) -> pa.Table:
    """The table with each named column replaced by its labels at the given level."""
    out = table
    for name, level in levels.items():
        i = out.schema.get_field_index(name)
        out = out.set_column(i, name, hierarchies[name].generalize(out.column(name), level))
    return out


def anonymize(
    table: pa.Table,
    hierarchies: dict[str, Hierarchy],
    model: PrivacyModel,
) -> tuple[pa.Table, SearchResult, KAnonymityReport]:
    """Search, generalize to the optimum, then suppress the classes breaking the model."""
    result = search(table, hierarchies, model, metric=model.metric)
    searched = {q: lv for q, lv in result.transformation.items() if q in hierarchies}
    out, report = enforce_model(apply_levels(table, hierarchies, searched), model)
    return out, result, report
