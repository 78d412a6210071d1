"""Gates over PII findings: undeclared personal data in a dataset, identifiers left in a product."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from databourse.config import DIRECT_IDENTIFIERS
from databourse.pii import ColumnFinding


@dataclass(frozen=True)
class DeclarationCheck:
    """Findings compared with what the provider declared."""

    undeclared: list[dict[str, Any]] = field(default_factory=list)  # column, found, declared
    not_found: list[dict[str, str]] = field(default_factory=list)  # declared but not detected

    @property
    def ok(self) -> bool:
        return not self.undeclared

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "undeclared": self.undeclared, "declared_not_found": self.not_found}


# A column where this share of values are whole identifiers of a category holds that category,
# even below the classification threshold (a column of 70% ID numbers is not clean).
UNDECLARED_MIN_SHARE = 0.05


def check_declarations(findings: list[ColumnFinding], declared: dict[str, str]) -> DeclarationCheck:
    """Undeclared (or differently declared) categories stop the product; missing ones warn."""
    undeclared = []
    for f in findings:
        shares = dict.fromkeys([f.category] if f.category else [], f.share)
        for category, count in f.whole.items():
            if f.checked and count / f.checked >= UNDECLARED_MIN_SHARE:
                shares.setdefault(category, count / f.checked)
        undeclared += [
            {
                "column": f.column,
                "found": category,
                "declared": declared.get(f.column),
                "share": round(share, 4),
                "confidence": round(f.confidence, 4),
            }
            for category, share in shares.items()
            if declared.get(f.column) != category
        ]
    found = {(f.column, f.category) for f in findings}
    not_found = [
        {"column": c, "declared": cat} for c, cat in declared.items() if (c, cat) not in found
    ]
    return DeclarationCheck(undeclared=undeclared, not_found=not_found)


def direct_identifiers(findings: list[ColumnFinding]) -> list[dict[str, Any]]:
    """Columns of a product classified as a direct identifier: a product must have none."""
    return [
        {"column": f.column, "category": f.category, "share": round(f.share, 4)}
        for f in findings
        if f.category in DIRECT_IDENTIFIERS
    ]
