"""The last checks before a version exists run on the written files alone, streaming."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databourse.config import PrivacyModel, ProductSpec
from databourse.errors import PersonalDataFound, PrivacyModelFailed
from databourse.privacy.k_anonymity import check_k_anonymity
from databourse.product.package import write_parquet
from databourse.product.productize import apply_decision, privacy_decision, verify_written

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


def test_hive_folders_are_verified_as_read_table_reads_them(tmp_path: Path) -> None:
    model = PrivacyModel(
        quasi_identifiers=["district"], k=2, l=2, sensitive_attributes=["category"]
    )
    spec = PRODUCT.model_copy(update={"privacy": model})
    table = pa.table({"district": ["a", "a", "b", "b", None, None] * 300,
                      "category": list("xyzwxy") * 300})  # fmt: skip
    write_parquet(table, tmp_path, partition_by="district", row_group_rows=1000)
    figures = verify_written(tmp_path, spec)
    read = pq.read_table(tmp_path)  # the folder column comes back dictionary-encoded
    at = read.schema.get_field_index("district")
    plain = read.set_column(at, "district", read["district"].cast(pa.string()))
    assert figures == check_k_anonymity(plain, model).to_json()
    assert figures is not None and figures["classes"] == 3 and figures["rows_in"] == 1800


def test_decision_without_a_model_changes_nothing() -> None:
    bare = PRODUCT.model_copy(update={"privacy": None})
    decision = privacy_decision(None, bare, {})
    assert decision.privacy == {"model": None} and not decision.suppresses
    table = pa.table({"district": ["a"], "category": ["x"]})
    assert apply_decision(table, decision, {}).equals(table)
