"""Tests of databourse.privacy.risk: prosecutor risk figures."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databourse.privacy.risk import prosecutor_risk


def test_prosecutor_figures(tmp_path: Path) -> None:
    # classes: a x5, b x3, c x1, (null) x1 -> sizes 5, 3, 1, 1
    table = pa.table({"q": ["a"] * 5 + ["b"] * 3 + ["c", None], "secret": list(range(10))})
    report = prosecutor_risk(table, ["q"])
    assert report.records == 10 and report.classes == 4 and report.smallest_class == 1
    assert report.highest_risk == 1.0
    assert report.average_risk == pytest.approx(0.4)  # (5/5 + 3/3 + 1 + 1) / 10
    assert report.records_at_risk == 5  # b (1/3), c and null (1) exceed 0.2; a (0.2) does not
    assert report.share_at_risk == 0.5
    pq.write_table(table, tmp_path / "t.parquet")
    again = prosecutor_risk(tmp_path / "t.parquet", ["q"], threshold=0.5)
    assert again.records_at_risk == 2
    text = json.dumps(report.to_json())
    assert "secret" not in text and '"a"' not in text


def test_empty_table_has_no_risk() -> None:
    report = prosecutor_risk(pa.table({"q": pa.array([], pa.string())}), ["q"])
    assert (report.records, report.highest_risk, report.records_at_risk) == (0, 0.0, 0)
