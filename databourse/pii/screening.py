"""Gates over PII findings: undeclared personal data in a dataset, identifiers left in a product."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from databourse.config import DIRECT_IDENTIFIERS
from databourse.pii.findings import ColumnFinding


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


# settings.pii_undeclared_min_share: a column where this share of values are whole identifiers of
# a category holds that category, even below the classification threshold (a messy column of 70%
# phone numbers is not clean).
UNDECLARED_MIN_SHARE = 0.05


def check_declarations(
    findings: list[ColumnFinding],
    declared: dict[str, str],
    min_share: float = UNDECLARED_MIN_SHARE,
) -> DeclarationCheck:
    """Undeclared (or differently declared) categories stop the product; missing ones warn.

    A category counts in a column when the column is classified as it, or when at least
    `min_share` of the column's checked values are whole values of it (dirty columns)."""
    undeclared = []
    for f in findings:
        shares = dict.fromkeys([f.category] if f.category else [], f.share)
        for category, share in f.shares.items():
            if share >= min_share:
                shares.setdefault(category, share)
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


# One of these inside a product's text is a person's identity document or account (a checksum or
# a birth date backs the match): never detector noise, so a single one stops the version.
STRICT_EMBEDDED = frozenset(
    {"CN_RESIDENT_ID", "SG_NRIC_FIN", "HK_ID", "MY_NRIC", "CREDIT_CARD", "IBAN"}
    | {"TW_ID", "KR_RRN", "TH_ID"}  # in text only as written: letter + 9, 6-7, 1-4-5-2-1
)
EMBEDDED_MAX_SHARE = 0.001  # settings.pii_embedded_max_share: weaker categories (phones, emails)


@dataclass(frozen=True)
class EmbeddedCheck:
    """Identifiers found inside a product's columns: what stops it, and what it may keep."""

    refused: list[dict[str, Any]] = field(default_factory=list)  # column, category, counts
    left: dict[str, dict[str, int]] = field(default_factory=dict)  # tolerated: column -> counts

    @property
    def ok(self) -> bool:
        return not self.refused

    def reason(self) -> str:
        """One line per refused (column, category): counts and the limit, never a value."""
        return "; ".join(
            f"column {r['column']!r} holds {r['category']} in {r['values']} of {r['checked']} "
            f"values ({r['rule']})"
            for r in self.refused
        )


def check_embedded(
    findings: list[ColumnFinding],
    redacted: Collection[str] = (),
    max_share: float = EMBEDDED_MAX_SHARE,
) -> EmbeddedCheck:
    """Direct identifiers in a product's values, inside text or whole but under the threshold.

    A column in `redacted` (rule `embedded: redact`) must hold none at all. Elsewhere any value of
    a STRICT_EMBEDDED category stops, and a weaker category stops above `max_share` of the
    column's values (below it, the counts are returned in `left` for the manifest).
    """
    refused: list[dict[str, Any]] = []
    left: dict[str, dict[str, int]] = {}
    for f in findings:
        counts = {
            c: f.embedded.get(c, 0) + f.whole.get(c, 0)
            for c in sorted(DIRECT_IDENTIFIERS)
            if f.embedded.get(c, 0) + f.whole.get(c, 0)
        }
        for category, values in counts.items():
            rule = _embedded_rule(f.column in redacted, category, values, f.checked, max_share)
            if rule is None:
                left.setdefault(f.column, {})[category] = values
                continue
            refused.append(
                {
                    "column": f.column,
                    "category": category,
                    "values": values,
                    "checked": f.checked,
                    "rule": rule,
                }
            )
    return EmbeddedCheck(refused=refused, left=left)


def _embedded_rule(
    redacted: bool, category: str, values: int, checked: int, max_share: float
) -> str | None:
    """The rule `values` identifiers of `category` break, or None when the column may keep them."""
    if redacted:
        return "left after redaction: must be 0"
    if category in STRICT_EMBEDDED:
        return "checksum category: must be 0"
    if values > max_share * checked:
        return f"more than the allowed share {max_share:g}"
    return None
