"""Quality scores per dimension (completeness, validity, uniqueness, timeliness, consistency).

Every expectation measures one dimension: its spec's `dimension` when set (the contract's
freshness check sets `timeliness`), else `DIMENSIONS` by class name, else `validity`.

Formula. Each result scores `1 - unexpected_percent / 100` when GX counted unexpected values
(a null share, an out-of-set share, a duplicate share), else 1 when it passed and 0 when it failed
or could not be evaluated (a row count, a column set, a freshness check). A dimension's score is
the mean of its results' scores, in 0..1, or None when no expectation measures it. `overall` is
the mean of the dimensions that have a score (each dimension weighs the same, whatever the number
of expectations in it), or None when the report has no result. A page or summary names the
dimensions left out of `overall` (`not_measured`) instead of showing a score for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from databourse.quality.expectations import ExpectationSpec
    from databourse.quality.report import QualityReport

DIMENSION_NAMES = ("completeness", "validity", "uniqueness", "timeliness", "consistency")
DIMENSIONS: dict[str, str] = {
    # completeness: values and rows that should be there are there
    "ExpectColumnValuesToNotBeNull": "completeness",
    "ExpectColumnProportionOfNonNullValuesToBeBetween": "completeness",
    "ExpectTableRowCountToBeBetween": "completeness",
    "ExpectTableRowCountToEqual": "completeness",
    # uniqueness: no duplicated keys or records
    "ExpectColumnValuesToBeUnique": "uniqueness",
    "ExpectCompoundColumnsToBeUnique": "uniqueness",
    "ExpectSelectColumnValuesToBeUniqueWithinRecord": "uniqueness",
    "ExpectColumnProportionOfUniqueValuesToBeBetween": "uniqueness",
    "ExpectColumnUniqueValueCountToBeBetween": "uniqueness",
    # consistency: the structure matches the contract, related values agree
    "ExpectTableColumnsToMatchSet": "consistency",
    "ExpectTableColumnsToMatchOrderedList": "consistency",
    "ExpectTableColumnCountToEqual": "consistency",
    "ExpectTableColumnCountToBeBetween": "consistency",
    "ExpectColumnToExist": "consistency",
    "ExpectColumnTypeToBe": "consistency",
    "ExpectColumnPairValuesToBeEqual": "consistency",
    "ExpectColumnPairValuesAToBeGreaterThanB": "consistency",
    "ExpectColumnPairValuesToBeInSet": "consistency",
    "ExpectMulticolumnSumToEqual": "consistency",
    "ExpectTableRowCountToEqualOtherTable": "consistency",
    # everything else (sets, ranges, patterns, lengths, types of values, statistics): validity
}


def dimension_of(spec: ExpectationSpec) -> str:
    """The dimension an expectation measures."""
    return spec.dimension or DIMENSIONS.get(spec.name, "validity")


def scores(report: QualityReport) -> dict[str, float | None]:
    """Score per dimension in 0..1 (None when unmeasured) and `overall`; see the module doc."""
    per: dict[str, list[float]] = {name: [] for name in DIMENSION_NAMES}
    for r in report.results:
        dimension = r.dimension or DIMENSIONS.get(r.expectation, "validity")
        if r.unexpected_percent is not None and r.unexpected_count is not None:
            value = 1.0 - min(max(r.unexpected_percent, 0.0), 100.0) / 100.0
        else:
            value = 1.0 if r.success else 0.0
        per.setdefault(dimension, []).append(value)
    out: dict[str, float | None] = {
        name: (round(sum(v) / len(v), 6) if v else None) for name, v in per.items()
    }
    measured = [v for v in out.values() if v is not None]
    out["overall"] = round(sum(measured) / len(measured), 6) if measured else None
    return out


def not_measured(scored: dict[str, float | None]) -> list[str]:
    """The dimensions of a `scores` dict that no expectation measured (left out of overall)."""
    return [name for name in DIMENSION_NAMES if scored.get(name) is None]
