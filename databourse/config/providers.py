"""`configs/providers/*.yaml`: each provider's datasets, their columns (types, declared
personal data, contract checks, how text becomes each type) and how a drop is read."""

# ruff: noqa: RUF012 (list and dict defaults are pydantic fields, copied per instance: ruff
# sees a model only when its BaseModel base is in the same file, and Strict is in strict.py)

from __future__ import annotations

import codecs
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from databourse.config.categories import Category
from databourse.config.settings import IngestLimits
from databourse.config.strict import Identifier, Jurisdiction, Strict

ColumnType = Literal["string", "int64", "float64", "bool", "date", "timestamp"]
_LAYOUT_DIRECTIVES = {"%Y", "%m", "%d", "%H", "%M", "%S", "%%"}


def layout_problem(layout: str, column_type: str) -> str | None:
    """Why a date/timestamp layout cannot be used, or None (only unambiguous directives)."""
    directives = re.findall(r"%.", layout)
    unknown = sorted(set(directives) - _LAYOUT_DIRECTIVES)
    if unknown:
        return f"unsupported directive(s) {unknown}; use {sorted(_LAYOUT_DIRECTIVES)}"
    missing = [d for d in ("%Y", "%m", "%d") if d not in directives]
    if missing:
        return f"needs {missing}"
    if column_type == "date" and {"%H", "%M", "%S"} & set(directives):
        return "a date layout has no time of day"
    if len(directives) != len(set(directives)):
        return "a directive appears twice"
    return None


class ReadSpec(Strict):
    """How to read a drop when detection should not guess (all optional)."""

    encoding: str | None = None  # e.g. gb18030, big5, utf-16; None = detect
    delimiter: str | None = Field(None, min_length=1, max_length=1)  # None = detect
    header: Literal["auto", "present", "absent"] = "auto"
    sheet: str | None = None  # .xlsx sheet; None = the first
    # A hidden or very hidden .xlsx sheet is refused unless this is true (people do not see it).
    allow_hidden_sheets: bool = False

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(f"unknown encoding {value!r}") from None
        return value


class ColumnSpec(Strict):
    name: str = Field(min_length=1, max_length=128)
    type: ColumnType = "string"
    nullable: bool = True
    unique: bool = False
    personal_data: Category | None = None  # declared category of personal data held here
    # Contract checks that become expectations (see databourse/quality/suite.py):
    allowed_values: list[str | int | float | bool] | None = None
    min_value: float | None = None
    max_value: float | None = None
    pattern: str | None = None  # a regular expression every non-null value must match
    # How text in a drop becomes this type (see databourse/ingest/contract.py):
    formats: list[str] = []  # date/timestamp layouts tried in order, e.g. "%d/%m/%Y"; [] = ISO 8601
    true_values: list[str] = []  # bool: texts meaning true (case-insensitive); [] = true/1/yes
    false_values: list[str] = []  # bool: texts meaning false; [] = false/0/no

    @model_validator(mode="after")
    def _coercion_fits_type(self) -> ColumnSpec:
        if self.formats and self.type not in ("date", "timestamp"):
            raise ValueError(f"formats apply to date/timestamp columns, not {self.type}")
        for layout in self.formats:
            if problem := layout_problem(layout, self.type):
                raise ValueError(f"format {layout!r}: {problem}")
        if (self.true_values or self.false_values) and self.type != "bool":
            raise ValueError("true_values/false_values apply to bool columns")
        if set(map(str.casefold, self.true_values)) & set(map(str.casefold, self.false_values)):
            raise ValueError("a text cannot be both a true and a false value")
        return self


class ExpectationConfig(Strict):
    """Any Great Expectations 1.x expectation by class name, with its arguments and a severity."""

    expectation: str = Field(pattern=r"^Expect[A-Za-z]+$")
    kwargs: dict[str, Any] = {}
    severity: Literal["error", "warning"] = "error"


class FreshnessSpec(Strict):
    """The newest value of a timestamp/date column must be at most this old when validated."""

    column: str
    max_age_hours: float = Field(gt=0)
    severity: Literal["error", "warning"] = "warning"


class DatasetSpec(Strict):
    description: str = ""
    columns: list[ColumnSpec] = Field(min_length=1)
    primary_key: list[str] = []
    important_data: bool = False  # "important data" in the sense of China's Data Security Law
    min_rows: int = Field(1, ge=0)
    max_rows: int | None = Field(None, ge=1)
    freshness: FreshnessSpec | None = None
    expectations: list[ExpectationConfig] = []  # beyond those generated from the contract
    # What a drop may differ in: reject it, accept new columns, or accept new and missing ones.
    schema_drift: Literal["reject", "additive", "all"] = "reject"
    null_values: list[str] = []  # texts meaning "no value" besides the empty field, e.g. "NA"
    read: ReadSpec = ReadSpec()
    limits: IngestLimits | None = None  # this dataset's caps; default: settings.ingest

    @model_validator(mode="after")
    def _keys_exist(self) -> DatasetSpec:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate column names: {dupes}")
        missing = [k for k in self.primary_key if k not in names]
        if missing:
            raise ValueError(f"primary_key names unknown columns: {missing}")
        if self.freshness and self.freshness.column not in names:
            raise ValueError(f"freshness.column {self.freshness.column!r} is not a column")
        return self

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)

    @property
    def declared_categories(self) -> dict[str, str]:
        return {c.name: c.personal_data for c in self.columns if c.personal_data}


class ProviderSpec(Strict):
    id: Identifier
    name: str
    jurisdiction: Jurisdiction
    # What kind of organisation it is, as the catalog's DCAT export says (dct:type of its
    # foaf:Agent): an ADMS publisher type IRI, e.g. http://purl.org/adms/publishertype/Company
    type: str | None = Field(None, pattern=r"^https?://[^\s]+$")
    datasets: dict[Identifier, DatasetSpec] = Field(min_length=1)
