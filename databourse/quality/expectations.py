"""One expectation: its spec, the columns it names, and its result (counts and names only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation: a GX class name, its keyword arguments and what a failure means."""

    name: str
    kwargs: dict[str, Any]
    severity: Literal["error", "warning"] = "error"
    dimension: str | None = None  # overrides the mapping in databourse.quality.score


@dataclass(frozen=True)
class ExpectationResult:
    """The outcome of one expectation: counts and names, never cell values."""

    expectation: str
    column: str | None
    severity: str
    success: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    observed_value: Any | None
    dimension: str | None = None  # completeness, validity, uniqueness, timeliness, consistency

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @property
    def label(self) -> str:
        """`Name(column)` or `Name` for a table-level expectation."""
        return f"{self.expectation}({self.column})" if self.column else self.expectation


def referenced_columns(kwargs: dict[str, Any]) -> list[str]:
    """The column names an expectation's kwargs name (column, column_list, column_A/B)."""
    found = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    found += as_list(kwargs.get("column_list"))
    return [str(c) for c in found]


def as_list(value: Any) -> list[Any]:
    """A kwarg that may be one value or a list of them, as a list (None: empty)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def spec_column(spec: ExpectationSpec) -> str | None:
    """The column an expectation is about, `a,b` for several, None for the table."""
    referenced = referenced_columns(spec.kwargs)
    return ",".join(referenced) if referenced else None
