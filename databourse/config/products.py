"""`configs/products/*.yaml`: what a product keeps of its source dataset (a rule per column),
its privacy model or aggregation, its usage terms, markets and packaging, and its fingerprint."""

# ruff: noqa: RUF012 (list and dict defaults are pydantic fields, copied per instance: ruff
# sees a model only when its BaseModel base is in the same file, and Strict is in strict.py)

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Literal

from pydantic import Field, model_validator

from databourse.config.corpus import CorpusRules
from databourse.config.strict import Identifier, Jurisdiction, Strict

_GENERALIZERS = ("band", "date", "prefix", "hierarchy", "round", "top", "bottom")


class MaskSpec(Strict):
    """Keep the last n letters/digits, replace the others by '*', keep separators."""

    keep_last: int = Field(0, ge=0)


class NoiseSpec(Strict):
    """Laplace noise of this scale (b), added to a numeric column; seeded per key and column."""

    scale: float = Field(gt=0)


class ColumnRule(Strict):
    """What happens to one source column. YAML: `keep`, `drop`, `pseudonymize`, or a mapping.

    A mapping without `action` takes it from its fields: a generalizer (band, date, prefix,
    hierarchy, round, top/bottom) means `generalize`, `mask` means `mask`, `noise` means `noise`.
    `hierarchy` names an ARX-format CSV relative to `configs/`; with `level` the column is
    generalized to that level, without it a privacy-model search picks the level (the column must
    then be a quasi-identifier). `key_version` picks one of several pseudonym keys (rotation).
    """

    action: Literal["keep", "drop", "pseudonymize", "generalize", "mask", "noise"]
    band: float | None = Field(None, gt=0)  # numeric: lower bound of a band of this width
    date: Literal["day", "month", "quarter", "year", "decade"] | None = None  # truncation
    prefix: int | None = Field(None, ge=0)  # keep the first n characters, mask the rest
    hierarchy: str | None = Field(None, min_length=1)  # ARX CSV file, relative to configs/
    level: int | None = Field(None, ge=0)  # hierarchy level to apply; None: chosen by search
    round: int | None = Field(None, ge=0, le=15)  # floats: keep this many decimals
    top: float | None = None  # top coding: values above become this bound
    bottom: float | None = None  # bottom coding: values below become this bound
    mask: MaskSpec | None = None
    noise: NoiseSpec | None = None
    key_version: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    rename: str | None = Field(None, min_length=1, max_length=128)  # output column name
    # Identifiers inside the kept text: "stop" the version (default), or "redact" each one to a
    # typed placeholder such as <CN_RESIDENT_ID> before writing (see databourse/pii/text_spans.py).
    embedded: Literal["stop", "redact"] = "stop"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"action": value}
        if isinstance(value, dict) and "action" not in value:
            if any(value.get(n) is not None for n in _GENERALIZERS):
                return {**value, "action": "generalize"}
            for action in ("mask", "noise"):
                if value.get(action) is not None:
                    return {**value, "action": action}
            if value.get("key_version") is not None:
                return {**value, "action": "pseudonymize"}
            if value.get("embedded") is not None:  # `{embedded: redact}`: kept, redacted
                return {**value, "action": "keep"}
        return value

    @model_validator(mode="after")
    def _one_method(self) -> ColumnRule:
        given = [n for n in _GENERALIZERS if getattr(self, n) is not None]
        coding = {"top", "bottom"}
        methods = [n for n in given if n not in coding] + (
            ["top/bottom"] if coding & set(given) else []
        )
        if self.action == "generalize" and len(methods) != 1:
            raise ValueError(
                "generalize needs exactly one of band, date, prefix, hierarchy, round, top/bottom"
            )
        if self.action != "generalize" and given:
            raise ValueError(f"{given} only apply to action 'generalize'")
        if self.level is not None and self.hierarchy is None:
            raise ValueError("level only applies with a hierarchy")
        if self.top is not None and self.bottom is not None and self.bottom > self.top:
            raise ValueError("bottom must not exceed top")
        for name in ("mask", "noise"):
            if (getattr(self, name) is not None) != (self.action == name):
                raise ValueError(f"action {name!r} needs its {name}: settings, and only it")
        if self.embedded == "redact" and self.action not in ("keep", "mask", "generalize"):
            raise ValueError(f"embedded: redact applies to kept text, not to {self.action}")
        if self.key_version is not None and self.action != "pseudonymize":
            raise ValueError("key_version only applies to action 'pseudonymize'")
        return self


# The information loss a privacy-model search minimizes: one of ARX's metrics (loss_metrics says
# how each is computed and which ARX metric it is).
LossMetric = Literal["entropy", "entropy_nm", "discernibility", "loss", "precision"]


class PrivacyModel(Strict):
    """k-anonymity over the quasi-identifiers, optionally l-diversity and t-closeness of each
    sensitive attribute; classes that break the model are suppressed within max_suppression.

    l-diversity is `distinct` (at least l different values per class) or `entropy` (the entropy
    of the values in each class is at least log(l)). t-closeness uses the earth mover's distance
    to the distribution of the whole table: equal distance for string attributes, ordered
    distance (over the sorted distinct values) for numeric ones.
    """

    quasi_identifiers: list[str] = Field(min_length=1)
    k: int = Field(ge=2)
    max_suppression: float = Field(0.05, ge=0, le=1)  # share of records that may be suppressed
    sensitive_attributes: list[str] = []
    l: int | None = Field(None, ge=2)  # noqa: E741 (the model's name in the literature)
    l_diversity: Literal["distinct", "entropy"] = "distinct"
    t: float | None = Field(None, gt=0, le=1)
    # `entropy_nm` (default): ARX's non-monotonic non-uniform entropy, suppressed records priced
    # within the suppressed set; `entropy` (monotonic: suppression not counted), `discernibility`
    # (DM*), `loss` (ARX's Loss), `precision`.
    metric: LossMetric = "entropy_nm"

    @model_validator(mode="after")
    def _sensitive(self) -> PrivacyModel:
        if (self.l is not None or self.t is not None) and not self.sensitive_attributes:
            raise ValueError("l and t need sensitive_attributes")
        both = sorted(set(self.sensitive_attributes) & set(self.quasi_identifiers))
        if both:
            raise ValueError(f"{both} cannot be both quasi-identifier and sensitive attribute")
        if len(set(self.quasi_identifiers)) != len(self.quasi_identifiers):
            raise ValueError("quasi_identifiers must be distinct")
        return self


class UsageTerms(Strict):
    purposes: list[str] = Field(min_length=1)
    reidentification_prohibited: bool = True
    onward_transfer_allowed: bool = False
    expires: dt.date | None = None


class CatalogEntry(Strict):
    """How the DCAT-AP export describes a product (not in its fingerprint: not its data)."""

    keywords: list[str] = []
    themes: list[str] = []  # IRIs of EU data themes (publications.europa.eu/.../data-theme/)
    license: str | None = None  # IRI of the licence document of its distributions
    contact: str | None = None  # e-mail of the product's contact point


class SourceRef(Strict):
    provider: Identifier
    dataset: Identifier


Statistic = Literal["count", "sum", "mean", "min", "max", "p25", "p50", "p75", "p90", "p99"]


class MeasureSpec(Strict):
    """One aggregated column: its statistics over each cell."""

    column: str = Field(min_length=1)
    stats: list[Statistic] = Field(["sum", "mean"], min_length=1)


class AggregateSpec(Strict):
    """An aggregated product: one row per cell of the dimensions, small cells suppressed."""

    dimensions: list[str] = Field(min_length=1)
    measures: list[MeasureSpec] = []
    min_cell: int = Field(10, ge=1)  # cells with fewer records are suppressed
    # Laplace noise on the counts (record count, measures' `count`), fresh per release; sums,
    # means, min/max and percentiles stay exact (see databourse.privacy.aggregate)
    epsilon: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _distinct(self) -> AggregateSpec:
        used = [*self.dimensions, *(m.column for m in self.measures)]
        if len(set(used)) != len(used):
            raise ValueError("a column is used twice among dimensions and measures")
        return self


class PackagingSpec(Strict):
    """How a version's Parquet is laid out for readers."""

    partition_by: str | None = None  # an output column: hive-style folders column=value/
    max_rows_per_file: int = Field(1_000_000, ge=1000)  # files stay under a size readers like
    row_group_rows: int = Field(128_000, ge=1000)


class ProductSpec(Strict):
    id: Identifier
    name: str
    description: str = ""
    type: Literal["records", "aggregate", "corpus"] = "records"
    source: SourceRef
    columns: dict[str, ColumnRule] = {}  # unlisted source columns are dropped
    privacy: PrivacyModel | None = None
    aggregate: AggregateSpec | None = None
    # A corpus: documents (the source's `text` and metadata columns) through its rules into
    # Parquet shards (databourse.corpus.build); it has no column rules, model or aggregation.
    corpus: CorpusRules | None = None
    terms: UsageTerms
    markets: list[Jurisdiction] = Field(min_length=1)
    packaging: PackagingSpec = PackagingSpec()
    catalog: CatalogEntry = CatalogEntry()

    @model_validator(mode="after")
    def _type_matches(self) -> ProductSpec:
        if (self.type == "aggregate") != (self.aggregate is not None):
            raise ValueError("type 'aggregate' needs an aggregate: section, and only it has one")
        if (self.type == "corpus") != (self.corpus is not None):
            raise ValueError("type 'corpus' needs a corpus: section, and only it has one")
        if self.type == "corpus" and (self.columns or self.privacy is not None):
            raise ValueError(
                "a corpus has no columns: or privacy: (its documents go through its corpus: rules)"
            )
        if self.type != "corpus" and not self.columns:
            raise ValueError("columns: needs at least one column rule")
        return self

    @property
    def output_columns(self) -> list[str]:
        return [rule.rename or name for name, rule in self.columns.items() if rule.action != "drop"]

    def fingerprint(self) -> str:
        """sha256 of the product config, part of every version's identity."""
        canonical = json.dumps(_without_new_defaults(self.model_dump(mode="json")), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


# Fields added after products were first published: left out of the fingerprint while they hold
# their default, so that existing products keep their content hash (and a rebuild stays a no-op).
_NEW_PRODUCT_DEFAULTS: dict[str, Any] = {
    "type": "records",
    "aggregate": None,
    "corpus": None,
    "packaging": PackagingSpec().model_dump(mode="json"),
}
_NEW_RULE_DEFAULTS: dict[str, Any] = {
    n: None
    for n in ("hierarchy", "level", "round", "top", "bottom", "mask", "noise", "key_version")
} | {"embedded": "stop"}
_NEW_PRIVACY_DEFAULTS: dict[str, Any] = {
    "sensitive_attributes": [],
    "l": None,
    "l_diversity": "distinct",
    "t": None,
    "metric": "entropy_nm",
}


def _strip(data: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in defaults or v != defaults[k]}


def _without_new_defaults(dump: dict[str, Any]) -> dict[str, Any]:
    out = _strip(dump, _NEW_PRODUCT_DEFAULTS)
    out.pop("catalog", None)  # how the catalog describes a product is not its data
    out["columns"] = {n: _strip(r, _NEW_RULE_DEFAULTS) for n, r in dump["columns"].items()}
    if dump.get("privacy") is not None:
        out["privacy"] = _strip(dump["privacy"], _NEW_PRIVACY_DEFAULTS)
    if dump.get("corpus") is not None:
        out["corpus"] = CorpusRules.model_validate(dump["corpus"]).as_json()
    return out
