"""A validation's report: GX results reduced to counts and safe observations, never a cell value.

Reports carry expectation names, column names, counts and type names only, never a cell value:
GX results are reduced to counts, and an observed value is kept only where the expectation is
known to observe a count, a proportion, a type name or the table's column names.
"""

from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass
from typing import Any

from databourse.quality.expectations import ExpectationResult, ExpectationSpec, spec_column
from databourse.quality.score import dimension_of

logger = logging.getLogger(__name__)

# The only expectations whose observed_value is kept, and what it must look like.
_OBSERVED_COUNT = frozenset(
    {
        "ExpectTableRowCountToBeBetween",
        "ExpectTableRowCountToEqual",
        "ExpectTableColumnCountToBeBetween",
        "ExpectTableColumnCountToEqual",
        "ExpectColumnUniqueValueCountToBeBetween",
        "ExpectColumnProportionOfUniqueValuesToBeBetween",
        "ExpectColumnProportionOfNonNullValuesToBeBetween",
    }
)
_OBSERVED_TYPE = frozenset(
    {"ExpectColumnTypeToBe", "ExpectColumnValuesToBeOfType", "ExpectColumnValuesToBeInTypeList"}
)
_OBSERVED_COLUMNS = frozenset(
    {"ExpectTableColumnsToMatchSet", "ExpectTableColumnsToMatchOrderedList"}
)


@dataclass(frozen=True)
class QualityReport:
    """All results of one dataset's validation; success means no error-severity failure."""

    dataset: str
    rows: int
    success: bool
    results: list[ExpectationResult]

    @property
    def failed_errors(self) -> list[ExpectationResult]:
        """Failed expectations of severity error."""
        return [r for r in self.results if not r.success and r.severity == "error"]

    @property
    def failed_warnings(self) -> list[ExpectationResult]:
        """Failed expectations of severity warning."""
        return [r for r in self.results if not r.success and r.severity == "warning"]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, safe to publish: no cell value anywhere."""
        return {
            "dataset": self.dataset,
            "rows": self.rows,
            "success": self.success,
            "summary": self.summary(),
            "results": [r.to_json() for r in self.results],
        }

    def summary(self) -> str:
        """One line, e.g. `12/13 expectations passed; failed (error): Name(column)`."""
        passed = sum(r.success for r in self.results)
        parts = [f"{passed}/{len(self.results)} expectations passed"]
        for severity, failed in (("error", self.failed_errors), ("warning", self.failed_warnings)):
            if failed:
                parts.append(f"failed ({severity}): " + ", ".join(r.label for r in failed))
        return "; ".join(parts)


def to_result(spec: ExpectationSpec, gx_result: Any, columns: set[str]) -> ExpectationResult:
    """Keep counts and safe observations only; everything else in the GX result is dropped."""
    column = spec_column(spec)
    if gx_result is None or gx_result.exception_info.get("raised_exception"):
        # The message of a GX exception is not guaranteed free of data: log no more than this.
        logger.warning("quality: %s(%s) could not be evaluated", spec.name, column)
        raw: dict[str, Any] = {}
        success = False
    else:
        raw = dict(gx_result.result or {})
        success = bool(gx_result.success)
    return ExpectationResult(
        expectation=spec.name,
        column=None if column is None else str(column),
        severity=spec.severity,
        success=success,
        element_count=_int_or_none(raw.get("element_count")),
        unexpected_count=_int_or_none(raw.get("unexpected_count")),
        unexpected_percent=_float_or_none(raw.get("unexpected_percent")),
        observed_value=_safe_observed(spec.name, raw.get("observed_value"), columns),
        dimension=dimension_of(spec),
    )


def make_report(dataset_name: str, rows: int, results: list[ExpectationResult]) -> QualityReport:
    """The report of the results: success unless an error-severity expectation failed."""
    report = QualityReport(
        dataset=dataset_name,
        rows=rows,
        success=not any(not r.success and r.severity == "error" for r in results),
        results=results,
    )
    logger.info("quality %s: %d rows; %s", dataset_name, rows, report.summary())
    return report


def _safe_observed(name: str, value: Any, columns: set[str]) -> Any | None:
    if name in _OBSERVED_COUNT:
        return _float_or_none(value) if isinstance(value, float) else _int_or_none(value)
    if name in _OBSERVED_TYPE and isinstance(value, str):
        return value
    if (
        name in _OBSERVED_COLUMNS
        and isinstance(value, list)
        and all(isinstance(c, str) and c in columns for c in value)
    ):
        return list(value)
    return None


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy numbers are Real
        return None
    return float(value) if math.isfinite(value) else None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    number = _float_or_none(value)
    return None if number is None else int(number)
