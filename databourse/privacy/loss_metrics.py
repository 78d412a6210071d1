"""ARX's information-loss metrics for the lattice search, each with a lower bound for pruning.

A metric prices one full-domain transformation (a node: one level per quasi-identifier) of a
table whose records may be partly suppressed. The five are ARX 3.9's own definitions (read from
its source, commit aacd487); the search picks ARX's published node with ARX's figure for each of
the first four on Adult and FARS, precision has no published figure and is checked against a
plain recomputation (tests/unit/privacy/test_arx_metrics.py):

- `entropy`: non-uniform entropy, monotonic (ARX `createPrecomputedEntropyMetric(t, true)`): the
  sum over quasi-identifiers and records of -log2 P(value | its label), over the whole input;
  suppressed records are priced at their label as if kept ("suppression not counted").
- `entropy_nm`: non-monotonic non-uniform entropy (ARX `createPrecomputedEntropyMetric(t,
  false)`): `entropy` plus, per quasi-identifier, the entropy of the suppressed records' labels
  within the suppressed set, sum of c*log2(S/c) over labels held by c of the S suppressed records.
- `discernibility`: ARX's monotonic discernibility, DM* (`createDiscernabilityMetric(true)`):
  the sum of squared class sizes, suppressed classes included.
- `loss`: ARX's "Loss" (`createLossMetric()`, Iyengar's loss metric): per quasi-identifier the
  mean over records of (c-1)/(d-1) for a label covering c of d hierarchy values, 1 for a
  suppressed record; aggregated by ARX's geometric mean, prod(1 + v)^(1/m) - 1.
- `precision`: ARX's non-monotonic precision (`createPrecisionMetric()`): per quasi-identifier
  the mean over records of level/height, 1 for a suppressed record; arithmetic mean.

Each lower bound needs no grouping, never exceeds the metric and grows with generalization,
so a node whose bound is no better than the best found is never priced.
"""

from __future__ import annotations

import math
from typing import get_args

import numpy as np

from databourse.config import LossMetric
from databourse.privacy.hierarchy import Hierarchy

Metric = LossMetric  # the product config's list (config.products), written once
METRICS: tuple[Metric, ...] = get_args(LossMetric)
DEFAULT_METRIC: Metric = "entropy_nm"
# Metrics that grow with generalization whatever is suppressed: a node above a node that meets
# the model never costs less, so only the lowest nodes meeting it need pricing.
MONOTONIC: frozenset[str] = frozenset({"entropy", "discernibility"})


class Pricing:
    """A metric's per-column, per-level terms, computed once from level-0 counts."""

    def __init__(
        self,
        metric: Metric,
        hierarchies: list[Hierarchy],
        level0: list[np.ndarray],
        weights: np.ndarray,
        n: int,
    ) -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {list(METRICS)}")
        self.metric, self.n, self.hier = metric, n, hierarchies
        self.distinct = len(weights)
        # base[q][lv]: the column's term if nothing were suppressed; extra[q][lv][code]: what a
        # suppressed record with that label adds (loss: 1 - its share; precision: 1 - lv/h).
        self.base: list[list[float]] = []
        self.extra: list[list[np.ndarray]] = []
        for h, col in zip(hierarchies, level0, strict=True):
            freq0 = np.bincount(col, weights, h.size(0) + 1)
            base, extra = [], []
            for lv in range(h.height):
                to_level = np.append(h.codes(lv), h.size(lv))  # a null keeps its own code
                term, add = self._terms(h, lv, freq0, to_level)
                base.append(term)
                extra.append(add)
            self.base.append(base)
            self.extra.append(extra)

    def _terms(
        self, h: Hierarchy, lv: int, freq0: np.ndarray, to_level: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """(The column's unsuppressed term at this level, extra cost per suppressed record)."""
        n = max(self.n, 1)
        labels = h.size(lv) + 1
        if self.metric in ("entropy", "entropy_nm"):
            freq = np.bincount(to_level, freq0, labels)
            present = freq0 > 0
            ratio = freq[to_level][present] / freq0[present]
            return float(freq0[present] @ np.log2(ratio)), np.zeros(labels)
        if self.metric == "loss":
            domain = h.size(0)
            share = (h.leaves(lv) - 1) / (domain - 1) if domain > 1 else np.zeros(h.size(lv))
            share = np.append(share, 0.0)  # a null loses nothing
            return float(freq0 @ share[to_level]) / n, (1.0 - share) / n
        if self.metric == "precision":
            value = lv / (h.height - 1) if h.height > 1 else 0.0
            return value * float(freq0.sum()) / n, np.full(labels, (1.0 - value) / n)
        return 0.0, np.zeros(labels)  # discernibility: priced on the classes

    def bounds(self) -> np.ndarray:
        """`bound` of every node at once, shaped like the lattice (one axis per column, its
        levels along it); the same sums and products in the same order, so the same floats."""
        if self.metric == "discernibility":
            space = np.ones((), dtype=np.float64)  # exact below 2**53, and then above `distinct`
            for h in self.hier:
                sizes = np.array([h.size(lv) + 1 for lv in range(h.height)], dtype=np.float64)
                space = space[..., None] * sizes
            return float(self.n) ** 2 / np.maximum(np.minimum(space, self.distinct), 1)
        total = np.ones(()) if self.metric == "loss" else np.zeros(())
        for base in self.base:
            terms = np.asarray(base, dtype=np.float64)
            total = (
                total[..., None] * (1.0 + terms)
                if self.metric == "loss"
                else (total[..., None] + terms)
            )
        if self.metric == "loss":  # Python's pow, as `bound` (NumPy's may differ by an ulp)
            power = 1.0 / max(len(self.base), 1)
            roots = [x**power - 1.0 for x in np.ravel(total).tolist()]
            return np.array(roots, dtype=np.float64).reshape(np.shape(total))
        if self.metric == "precision":
            return np.asarray(total / max(len(self.base), 1))
        return np.asarray(total)

    def bound(self, node: tuple[int, ...]) -> float:
        """A lower bound of the node's metric, monotonic in generalization."""
        terms = [b[lv] for b, lv in zip(self.base, node, strict=True)]
        if self.metric == "discernibility":  # sum of squares >= n^2 / number of classes
            space = math.prod(h.size(lv) + 1 for h, lv in zip(self.hier, node, strict=True))
            return float(self.n) ** 2 / max(min(space, self.distinct), 1)
        return self._aggregate(terms)

    def _aggregate(self, terms: list[float]) -> float:
        if self.metric == "loss":  # ARX's geometric mean, shifted by one to allow zeros
            return math.prod(1.0 + t for t in terms) ** (1.0 / max(len(terms), 1)) - 1.0
        if self.metric == "precision":
            return sum(terms) / max(len(terms), 1)
        return sum(terms)

    def cost(
        self,
        node: tuple[int, ...],
        cols: list[np.ndarray],
        weights: np.ndarray,
        suppressed_rows: np.ndarray,
        class_sizes: np.ndarray,
    ) -> float:
        """The node's metric: `cols` are the distinct rows' labels at the node, `weights` their
        counts, `suppressed_rows` the distinct rows suppressed, `class_sizes` all classes'."""
        if self.metric == "discernibility":
            return float(class_sizes.astype(np.float64) @ class_sizes)
        terms = [b[lv] for b, lv in zip(self.base, node, strict=True)]
        if not len(suppressed_rows) or self.metric == "entropy":
            return self._aggregate(terms)
        w = weights[suppressed_rows]
        for q, lv in enumerate(node):
            labels = cols[q][suppressed_rows]
            if self.metric == "entropy_nm":
                counts = np.bincount(labels, w)
                counts = counts[counts > 0]
                terms[q] += float(counts @ np.log2(w.sum() / counts))
            else:
                terms[q] += float(w @ self.extra[q][lv][labels])
        return self._aggregate(terms)
