"""ARX's benchmark: UCI Adult with ARX's hierarchies, all nine columns quasi-identifiers.

The search must find ARX's published optimum for k=5 (and k=100) without suppression, with the
same non-uniform entropy ARX reports, and its output must be k-anonymous when read back from
Parquet, by our own verifier and by pycanon's.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from pycanon import anonymity

from databourse.config import PrivacyModel
from databourse.hierarchy import Hierarchy
from databourse.lattice import anonymize, search
from databourse.privacy import verify
from databourse.risk import prosecutor_risk

# ../shared beside the checkout (as CI lays it out), or DATABOURSE_SHARED_DIR
ADULT = (
    Path(os.environ.get("DATABOURSE_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
    / "benchmarks"
    / "adult"
)
COLUMNS = ["sex", "age", "race", "marital-status", "education", "native-country", "workclass",
           "occupation", "salary-class"]  # fmt: skip


@pytest.fixture(scope="module")
def adult() -> tuple[pa.Table, dict[str, Hierarchy]]:
    table = pcsv.read_csv(
        ADULT / "adult.csv",
        parse_options=pcsv.ParseOptions(delimiter=";"),
        convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(COLUMNS, pa.string())),
    )
    hierarchies = {
        c: Hierarchy.from_csv(ADULT / f"adult_hierarchy_{c}.csv", name=c) for c in COLUMNS
    }
    return table, hierarchies


def test_k5_without_suppression_matches_arx(
    adult: tuple[pa.Table, dict[str, Hierarchy]], tmp_path: Path
) -> None:
    table, hierarchies = adult
    assert table.num_rows == 30162
    model = PrivacyModel(quasi_identifiers=COLUMNS, k=5, max_suppression=0.0)
    out, result, report = anonymize(table, hierarchies, model)
    assert result.levels == [1, 2, 1, 1, 3, 2, 2, 1, 1]  # ARX's optimum
    assert result.loss == pytest.approx(407289.53889252973, rel=1e-9)  # ARX's entropy figure
    assert result.classes >= 48 and result.smallest_class >= 5 and result.suppressed == 0
    assert result.nodes_total == 12960 and result.nodes_checked < 1000
    assert report.satisfied and report.rows_out == 30162
    pq.write_table(out, tmp_path / "adult-k5.parquet")
    check = verify(tmp_path / "adult-k5.parquet", model)
    assert check.satisfied and check.classes == result.classes and check.smallest_class >= 5
    released = pq.read_table(tmp_path / "adult-k5.parquet").to_pandas()
    assert anonymity.k_anonymity(released, COLUMNS) >= 5
    risk = prosecutor_risk(tmp_path / "adult-k5.parquet", COLUMNS)
    assert risk.highest_risk <= 0.2 and risk.records_at_risk == 0


def test_k100_without_suppression_matches_arx(
    adult: tuple[pa.Table, dict[str, Hierarchy]],
) -> None:
    table, hierarchies = adult
    result = search(table, hierarchies, PrivacyModel(quasi_identifiers=COLUMNS, k=100,
                                                     max_suppression=0.0))  # fmt: skip
    assert result.levels == [0, 4, 1, 1, 3, 2, 2, 1, 1]
    assert result.loss == pytest.approx(453196.8932458746, rel=1e-9)
    assert result.smallest_class >= 100
