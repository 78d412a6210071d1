"""The personal-data gates over findings: undeclared categories, identifiers left in a product."""

from __future__ import annotations

import pyarrow as pa

from databourse.pii.detect import scan_table
from databourse.pii.screening import check_declarations, direct_identifiers

# Valid SG NRICs (check letters computed by hand from the published weights) and decoys.
NRICS = ["S1234567D", "S7654321F", "T0123456G"]


def nric_column(valid_share: float, rows: int = 200) -> pa.Table:
    n_valid = int(rows * valid_share)
    values = [NRICS[i % 3] for i in range(n_valid)] + [f"note {i}" for i in range(rows - n_valid)]
    return pa.table({"ref": values, "amount": [float(i) for i in range(rows)]})


def test_declared_column_passes_and_missing_declaration_warns() -> None:
    findings = scan_table(nric_column(1.0))
    check = check_declarations(findings, {"ref": "SG_NRIC_FIN", "amount": "BANK_ACCOUNT"})
    assert check.ok
    assert check.not_found == [{"column": "amount", "declared": "BANK_ACCOUNT"}]


def test_undeclared_column_stops() -> None:
    check = check_declarations(scan_table(nric_column(1.0)), {})
    assert not check.ok
    assert [(u["column"], u["found"]) for u in check.undeclared] == [("ref", "SG_NRIC_FIN")]


def test_partly_identifiers_below_threshold_still_stops() -> None:
    findings = scan_table(nric_column(0.3))
    assert findings[0].category is None  # below the classification threshold
    check = check_declarations(findings, {})
    assert [(u["column"], u["found"]) for u in check.undeclared] == [("ref", "SG_NRIC_FIN")]


def test_wrong_category_declared_stops() -> None:
    check = check_declarations(scan_table(nric_column(1.0)), {"ref": "MY_NRIC"})
    assert (
        check.undeclared[0]["declared"] == "MY_NRIC"
        and check.undeclared[0]["found"] == "SG_NRIC_FIN"
    )


def test_direct_identifiers_in_a_product() -> None:
    assert direct_identifiers(scan_table(nric_column(1.0))) == [
        {"column": "ref", "category": "SG_NRIC_FIN", "share": 1.0}
    ]
    assert direct_identifiers(scan_table(pa.table({"x": ["a", "b"]}))) == []
