"""What a consistency walk reports: its findings, each with a severity, kind and place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One disagreement (or, as info, one leftover worth knowing about)."""

    severity: str
    kind: str
    message: str
    key: str | None = None
    product: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class ConsistencyReport:
    """Every finding of one walk, and how many things were checked."""

    findings: tuple[Finding, ...]
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no finding is an error."""
        return not any(f.severity == "error" for f in self.findings)

    def of(self, severity: str) -> list[Finding]:
        """The findings of one severity."""
        return [f for f in self.findings if f.severity == severity]

    def kinds(self, severity: str | None = None) -> set[str]:
        """The kinds found (of one severity, or all)."""
        return {f.kind for f in self.findings if severity in (None, f.severity)}

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: ok, counts per severity, what was checked, every finding."""
        return {
            "ok": self.ok,
            "counts": {s: len(self.of(s)) for s in SEVERITIES},
            "checked": dict(self.checked),
            "findings": [asdict(f) for f in self.findings],
        }
