"""Re-identification risk of a released table under the prosecutor model.

An attacker who knows a person is in the table and knows their quasi-identifiers picks one record
of that person's class at random: the chance of a right match is 1 / class size. The report gives
the highest and average such risk over records, how many records are above a threshold (default
0.2, a class smaller than 5), and the smallest class. Figures only, never values.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from databourse.privacy.k_anonymity import equivalence_classes

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.2


@dataclass(frozen=True)
class RiskReport:
    """Prosecutor risk figures of one table (or product version)."""

    quasi_identifiers: list[str]
    records: int
    classes: int
    smallest_class: int  # 0 for an empty table
    highest_risk: float  # 1 / smallest class
    average_risk: float  # mean over records of 1 / their class size = classes / records
    threshold: float
    records_at_risk: int  # records whose risk exceeds the threshold
    share_at_risk: float

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return dataclasses.asdict(self)


def prosecutor_risk(
    table: pa.Table | str | Path,
    quasi_identifiers: list[str],
    threshold: float = DEFAULT_THRESHOLD,
) -> RiskReport:
    """Prosecutor risk of a table (or a Parquet file) over its quasi-identifiers."""
    if not isinstance(table, pa.Table):
        table = pq.read_table(table, columns=quasi_identifiers)
    sizes = np.asarray(equivalence_classes(table, quasi_identifiers).column("count"), np.int64)
    return risk_of_classes(sizes, quasi_identifiers, threshold)


def risk_of_classes(
    sizes: np.ndarray, quasi_identifiers: list[str], threshold: float = DEFAULT_THRESHOLD
) -> RiskReport:
    """Prosecutor risk of a released table whose equivalence classes have these sizes."""
    sizes = np.asarray(sizes, dtype=np.int64)
    n = int(sizes.sum())
    at_risk = int(sizes[1.0 / np.maximum(sizes, 1) > threshold].sum()) if n else 0
    report = RiskReport(
        quasi_identifiers=list(quasi_identifiers),
        records=n,
        classes=len(sizes),
        smallest_class=int(sizes.min()) if n else 0,
        highest_risk=float(1.0 / sizes.min()) if n else 0.0,
        average_risk=len(sizes) / n if n else 0.0,
        threshold=threshold,
        records_at_risk=at_risk,
        share_at_risk=at_risk / n if n else 0.0,
    )
    log.info(
        "prosecutor risk over %d quasi-identifier(s): highest %.3f, average %.4f, %d records "
        "above %.2f",
        len(quasi_identifiers), report.highest_risk, report.average_risk, at_risk, threshold,
    )  # fmt: skip
    return report
