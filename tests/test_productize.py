"""The last checks before a version exists run on the written files alone."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from databourse.config import ProductSpec
from databourse.errors import PersonalDataFound, PrivacyModelFailed
from databourse.package import write_parquet
from databourse.productize import verify_written

PRODUCT = ProductSpec.model_validate(
    {
        "id": "p",
        "name": "P",
        "source": {"provider": "sz-retail", "dataset": "customer_orders"},
        "columns": {"district": "keep", "category": "keep"},
        "privacy": {"quasi_identifiers": ["district"], "k": 2, "max_suppression": 0.0},
        "terms": {"purposes": ["research"]},
        "markets": ["CN"],
    }
)


def test_clean_files_pass_and_report_the_model(tmp_path: Path) -> None:
    write_parquet(pa.table({"district": ["a", "a", "b", "b"], "category": list("wxyz")}), tmp_path)
    assert verify_written(tmp_path, PRODUCT)["satisfied"] is True  # type: ignore[index]


def test_identifier_in_the_written_files_refuses_the_version(tmp_path: Path) -> None:
    emails = [f"user{i}@example.com" for i in range(4)]  # slipped through as a 'category'
    write_parquet(pa.table({"district": ["a", "a", "b", "b"], "category": emails}), tmp_path)
    with pytest.raises(PersonalDataFound) as info:
        verify_written(tmp_path, PRODUCT)
    assert "category" in str(info.value) and "example.com" not in str(info.value)


def test_model_broken_in_the_written_files_refuses_the_version(tmp_path: Path) -> None:
    write_parquet(pa.table({"district": ["a", "a", "b"], "category": list("xyz")}), tmp_path)
    with pytest.raises(PrivacyModelFailed):
        verify_written(tmp_path, PRODUCT)
