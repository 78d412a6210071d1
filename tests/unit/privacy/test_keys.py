"""Pseudonymization keys: versions for rotation, read from the environment, recorded by id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from databourse.config import ProductSpec
from databourse.privacy.anonymize import apply_rules
from databourse.privacy.pseudonyms import key_fingerprints
from tasks import resources

# Random-looking: a key of one repeated letter is refused (tests/attacks/test_key_attacks.py).
OLD = "Xk3vQ9pLm2Rt7wZa8YcN4bHs6JdF1gEu"
NEW = "pW8nT2xK5qRz9LmV3cYh7BsJ4dGf6aUe"


@pytest.fixture(autouse=True)
def own_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A store and key folder of this test's own: key ids are bound per store and version."""
    monkeypatch.setenv("DATABOURSE_STORE_ROOT", str(tmp_path / "store"))
    monkeypatch.setenv("DATABOURSE_KEY_DIR", str(tmp_path / "keys"))
    resources.store.cache_clear()
    resources._BOUND.clear()
    yield
    resources.store.cache_clear()
    resources._BOUND.clear()


def product(key_version: str | None) -> ProductSpec:
    rule = {"action": "pseudonymize", "rename": "ref"}
    if key_version:
        rule["key_version"] = key_version
    return ProductSpec.model_validate(
        {
            "id": "p",
            "name": "P",
            "source": {"provider": "sz-retail", "dataset": "customer_orders"},
            "columns": {"customer_id_number": rule, "district": "keep"},
            "terms": {"purposes": ["research"]},
            "markets": ["CN"],
        }
    )


def test_rotation_by_key_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABOURSE_PSEUDONYM_KEY", OLD)
    monkeypatch.setenv("DATABOURSE_PSEUDONYM_KEY__V2", NEW)
    before, after = product(None), product("v2")
    assert resources.pseudonym_keys(before) == OLD.encode()
    assert resources.pseudonym_keys(after) == {"v2": NEW.encode()}
    table = pa.table({"customer_id_number": ["11010519491231002X"], "district": ["南山区"]})
    old_ref = apply_rules(table, before, resources.pseudonym_keys(before))["ref"][0].as_py()
    new_ref = apply_rules(table, after, resources.pseudonym_keys(after))["ref"][0].as_py()
    assert old_ref != new_ref and "11010519491231002X" not in (old_ref + new_ref)
    recorded = key_fingerprints(after, resources.pseudonym_keys(after))
    assert recorded["ref"]["key_version"] == "v2"
    assert NEW not in str(recorded) and OLD not in str(recorded)
