"""Config models (settings, providers, products, cross-border policy) and their loader.

Configs are data: YAML under `configs/`, loaded into strict pydantic models. `load_config` reads
every file, checks the references between them, and raises one `ConfigError` listing every problem
as `file: key.path: message`. Secrets are never in configs: settings only name where a secret is.
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from databourse.errors import ConfigError

Category = Literal[
    "CN_RESIDENT_ID",
    "CN_USCC",
    "MY_NRIC",
    "SG_NRIC_FIN",
    "HK_ID",
    "PASSPORT",
    "PHONE_NUMBER",
    "EMAIL_ADDRESS",
    "CREDIT_CARD",
    "IBAN",
    "BANK_ACCOUNT",
    "IP_ADDRESS",
    "PERSON_NAME",
    "ADDRESS",
    "DATE_OF_BIRTH",
    "GEO_COORDINATES",
    "LICENSE_PLATE",
    "ID_NIK",
    "TH_ID",
    "VN_CCCD",
    "PH_ID",
    "TW_ID",
    "KR_RRN",
    "JP_MY_NUMBER",
    "IN_AADHAAR",
    "IN_PAN",
    "US_SSN",
    "UK_NINO",
    "MAC_ADDRESS",
    "IMEI",
    "PERSONAL_URL",
]
# National ids of the exchange's next markets (databourse.identifiers_intl).
NATIONAL_IDS_INTL: frozenset[str] = frozenset(
    {"ID_NIK", "TH_ID", "VN_CCCD", "PH_ID", "TW_ID", "KR_RRN", "JP_MY_NUMBER", "IN_AADHAAR"}
    | {"IN_PAN", "US_SSN", "UK_NINO"}
)
# Identify a person on their own: never allowed in a product unless pseudonymized.
DIRECT_IDENTIFIERS: frozenset[str] = frozenset(
    {
        "CN_RESIDENT_ID",
        "MY_NRIC",
        "SG_NRIC_FIN",
        "HK_ID",
        "PASSPORT",
        "PHONE_NUMBER",
        "EMAIL_ADDRESS",
        "CREDIT_CARD",
        "IBAN",
        "BANK_ACCOUNT",
        "IP_ADDRESS",
        "PERSON_NAME",
        "LICENSE_PLATE",
        "MAC_ADDRESS",  # one device, as an IP address
        "IMEI",
        "PERSONAL_URL",
    }
    | NATIONAL_IDS_INTL
)
# Sensitive personal information (PIPL art. 28): identity, financial accounts, location.
SENSITIVE_CATEGORIES: frozenset[str] = frozenset(
    {
        "CN_RESIDENT_ID",
        "MY_NRIC",
        "SG_NRIC_FIN",
        "HK_ID",
        "PASSPORT",
        "CREDIT_CARD",
        "IBAN",
        "BANK_ACCOUNT",
        "GEO_COORDINATES",
    }
    | NATIONAL_IDS_INTL
)
Jurisdiction = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
ColumnType = Literal["string", "int64", "float64", "bool", "date", "timestamp"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- settings
class SecretRef(Strict):
    """Where a secret lives: an environment variable first, then a Prefect Secret block."""

    env: str
    block: str | None = None


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


class IngestLimits(Strict):
    """Caps on one drop: size as dropped, size unpacked, and the compression ratio (zip bombs)."""

    max_file_bytes: int = Field(50 << 30, ge=1)
    max_uncompressed_bytes: int = Field(200 << 30, ge=1)
    max_compression_ratio: float = Field(200.0, gt=1)
    # The longest CSV row or JSON line; also Arrow's read block, so memory is about 100x this.
    max_row_bytes: int = Field(2 << 20, ge=1 << 16, le=256 << 20)
    # Entries of one zip (each is parsed and planned); xlsx packages count too.
    max_archive_members: int = Field(1000, ge=1, le=100_000)
    # The header line of a CSV, checked from the first MiB before anything parses it.
    max_header_bytes: int = Field(256 << 10, ge=1 << 10, le=1 << 20)


class StorageSettings(Strict):
    root: str = "state/store"  # a local folder (relative to the project) or s3://bucket/prefix
    endpoint_url: str | None = None  # any S3-compatible server
    region: str = "us-east-1"


class RunSettings(Strict):
    """How much runs at once, and on what."""

    provider_concurrency: int = Field(2, ge=1)  # drops of one provider processed at once
    nightly_parallel: int = Field(4, ge=1)  # drops a nightly run dispatches at once
    # A provider slot's lease: a holder that dies frees its slot this long after its last renewal.
    slot_lease_seconds: int = Field(120, ge=60, le=86400)
    slot_notice_seconds: float = Field(60, gt=0)  # waiting longer for a slot logs who holds them
    slot_wait_seconds: float = Field(4 * 3600, gt=0)  # then the drop gives up with an error
    # Task runner for partitioned steps: "threads" (default) or "dask" (a local cluster, or the
    # scheduler at dask_address, e.g. tcp://10.0.0.5:8786).
    task_runner: Literal["threads", "dask"] = "threads"
    dask_address: str | None = None
    dask_workers: int = Field(2, ge=1)  # local cluster size when no address is given
    partition_rows: int = Field(1_000_000, ge=1000)  # rows per partition of a product build
    # Partitions processed at once by the "threads" runner; null = one per CPU. Each holds about
    # one partition in memory, so this bounds a build's memory whatever the dataset's size.
    partition_threads: int | None = Field(None, ge=1)

    def threads(self) -> int:
        """Partitions the "threads" runner processes at once."""
        return self.partition_threads or os.cpu_count() or 1


class Settings(Strict):
    state_dir: str = "state"
    storage: StorageSettings = StorageSettings()
    catalog_url: str = "sqlite:///state/catalog.db"
    pseudonym_key: SecretRef = SecretRef(
        env="DATABOURSE_PSEUDONYM_KEY", block="databourse-pseudonym-key"
    )
    audit_key: SecretRef = SecretRef(env="DATABOURSE_AUDIT_KEY", block="databourse-audit-key")
    # Key files (mode 0600), outside state_dir and the store; $DATABOURSE_KEY_DIR overrides.
    # null = $XDG_CONFIG_HOME/databourse/keys/<store id> (see databourse/keys.py).
    key_dir: str | None = None
    # Secret blocks are read only when the Prefect API requires authentication (an open API
    # returns block values to anyone); PREFECT_API_AUTH_STRING or PREFECT_API_KEY also says so.
    prefect_api_authenticated: bool = False
    pii_threshold: float = Field(0.8, gt=0, le=1)  # share of values that must match to classify
    pii_sample_rows: int = Field(2000, ge=10)
    # A messy column (typos, placeholders such as N/A or 000, numbers of another country) is
    # classified when this share of its non-empty values are of one category, in the sample and
    # overall, and they are no chance matches (random codes that pass a check digit or a phone
    # plan are discounted: databourse/dirty_columns.py); a column of random codes passes any
    # other category's checks at 0.1 of its values at most (a card's Luhn check).
    pii_dirty_threshold: float = Field(0.5, gt=0, le=1)
    # A column where this share of the checked values are whole identifiers of a category holds
    # that category, classified or not (a messy column of 70% phone numbers is not clean): an
    # undeclared one stops the product (screening.check_declarations). Random digit codes pass
    # a card's IIN and Luhn check up to about 3% of the time: keep it above that.
    pii_undeclared_min_share: float = Field(0.05, gt=0, le=1)
    # Identifiers inside a product's text: one of a checksum category (resident ids, NRIC, HK id,
    # cards, IBAN) stops the version; of a weaker one (phone, email, IP, name, plate) a column may
    # hold at most this share of its values before it stops (detector noise, never a real leak).
    pii_embedded_max_share: float = Field(0.001, ge=0, le=1)
    approval_timeout_seconds: int = Field(7 * 24 * 3600, ge=1)
    # The longest access a grant may give (it also ends with the approval it rests on).
    grant_max_days: int = Field(365, ge=1, le=3650)
    # An approval given "for later versions" carries over only while its audited answer is at
    # most this old; after that the next version is asked again (transfer gate, trail_state).
    carry_over_max_age_days: int = Field(365, ge=1, le=3650)
    ingest: IngestLimits = IngestLimits()  # default caps on a drop (a dataset may set its own)
    # Folders (or s3:// prefixes) a run's `source` may name besides its own landing folder: a
    # list for every provider, or a mapping of provider id to its own list (tenants apart). The
    # key folder, state folder and the store's other zones are refused whatever this lists.
    source_roots: list[str] | dict[str, list[str]] = []
    runs: RunSettings = RunSettings()

    def roots_of(self, provider: str) -> list[str]:
        """The source_roots a run of `provider` may read."""
        if isinstance(self.source_roots, dict):
            return list(self.source_roots.get(provider, []))
        return list(self.source_roots)


# ---------------------------------------------------------------- providers
class ColumnSpec(Strict):
    name: str = Field(min_length=1, max_length=128)
    type: ColumnType = "string"
    nullable: bool = True
    unique: bool = False
    personal_data: Category | None = None  # declared category of personal data held here
    # Contract checks that become expectations (see databourse/quality.py):
    allowed_values: list[str | int | float | bool] | None = None
    min_value: float | None = None
    max_value: float | None = None
    pattern: str | None = None  # a regular expression every non-null value must match
    # How text in a drop becomes this type (see databourse/contract.py):
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
    datasets: dict[Identifier, DatasetSpec] = Field(min_length=1)


# ---------------------------------------------------------------- products
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
    # typed placeholder such as <CN_RESIDENT_ID> before writing (see databourse/redaction.py).
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
    # means, min/max and percentiles stay exact (see databourse.aggregate)
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
    type: Literal["records", "aggregate"] = "records"
    source: SourceRef
    columns: dict[str, ColumnRule] = Field(min_length=1)  # unlisted source columns are dropped
    privacy: PrivacyModel | None = None
    aggregate: AggregateSpec | None = None
    terms: UsageTerms
    markets: list[Jurisdiction] = Field(min_length=1)
    packaging: PackagingSpec = PackagingSpec()

    @model_validator(mode="after")
    def _type_matches(self) -> ProductSpec:
        if (self.type == "aggregate") != (self.aggregate is not None):
            raise ValueError("type 'aggregate' needs an aggregate: section, and only it has one")
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
}


def _strip(data: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in defaults or v != defaults[k]}


def _without_new_defaults(dump: dict[str, Any]) -> dict[str, Any]:
    out = _strip(dump, _NEW_PRODUCT_DEFAULTS)
    out["columns"] = {n: _strip(r, _NEW_RULE_DEFAULTS) for n, r in dump["columns"].items()}
    if dump.get("privacy") is not None:
        out["privacy"] = _strip(dump["privacy"], _NEW_PRIVACY_DEFAULTS)
    return out


# ---------------------------------------------------------------- cross-border policy
class Condition(Strict):
    """Facts a rule needs; every given field must hold. Empty means always."""

    personal_data: bool | None = None  # personal data remains in the product
    sensitive: bool | None = None  # a sensitive category remains
    important_data: bool | None = None
    individuals_gte: int | None = Field(None, ge=0)
    individuals_lt: int | None = Field(None, ge=0)
    sensitive_individuals_gte: int | None = Field(None, ge=0)
    sensitive_individuals_lt: int | None = Field(None, ge=0)
    destinations: list[Jurisdiction] | None = None
    foreign_authority_request: bool | None = None

    def is_empty(self) -> bool:
        return all(v is None for v in self.model_dump().values())


class Rule(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    when: Condition = Condition()
    decision: Literal["allowed", "approval_required", "denied"]
    exemption: str | None = None  # for allowed
    route: str | None = None  # for approval_required: the legal route
    evidence: list[str] = []  # what an approver must supply
    obligations: list[str] = []
    reason: str | None = None  # for denied
    citation: str = Field(min_length=3)

    @model_validator(mode="after")
    def _complete(self) -> Rule:
        if self.decision == "allowed" and not self.exemption:
            raise ValueError("an 'allowed' rule must name its exemption")
        if self.decision == "approval_required" and not (self.route and self.evidence):
            raise ValueError("an 'approval_required' rule needs a route and its evidence")
        if self.decision == "denied" and not self.reason:
            raise ValueError("a 'denied' rule needs a reason")
        return self


class OriginPolicy(Strict):
    rules: list[Rule] = Field(min_length=1)
    # The exporter's calendar year (running counts of individuals sent abroad) is this zone's.
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown time zone {value!r} (an IANA name, e.g. Asia/Shanghai)"
            raise ValueError(msg) from None
        return value

    @field_validator("rules")
    @classmethod
    def _decides_everything(cls, rules: list[Rule]) -> list[Rule]:
        if not rules[-1].when.is_empty():
            raise ValueError("the last rule must have no conditions, or some cases stay undecided")
        ids = [r.id for r in rules]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate rule ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        return rules


ApprovalField = Literal["reference", "valid_until", "evidence_url"]


class RouteBasis(Strict):
    """One legal basis an approver may rely on within a route, and what an approval on it needs."""

    label: str = Field(min_length=3)
    reference: str = Field(min_length=3)  # what the reference number is, shown on the form
    requires: list[ApprovalField] = []  # fields an approval on this basis must fill
    citation: str = Field(min_length=3)


class RouteSpec(Strict):
    """A legal route that approval_required rules name: the bases an approver chooses from."""

    title: str = Field(min_length=3)
    bases: dict[Identifier, RouteBasis] = Field(min_length=1)  # the first is the form's default


class CrossBorderPolicy(Strict):
    origins: dict[Jurisdiction, OriginPolicy]
    default: OriginPolicy  # for origins not listed
    routes: dict[Identifier, RouteSpec] = {}

    @model_validator(mode="after")
    def _routes_defined(self) -> CrossBorderPolicy:
        named = {
            (where, r.route)
            for where, origin in [*self.origins.items(), ("default", self.default)]
            for r in origin.rules
            if r.route is not None
        }
        missing = sorted(f"{where}: {route}" for where, route in named if route not in self.routes)
        if missing:
            raise ValueError(f"rules name routes that `routes` does not define: {missing}")
        return self

    def origin(self, jurisdiction: str) -> OriginPolicy:
        """The rules of an origin, or the default ones."""
        return self.origins.get(jurisdiction, self.default)


# ---------------------------------------------------------------- loading
@dataclass(frozen=True)
class Config:
    """Everything under one `configs/` folder, checked together."""

    root: Path  # the project folder that relative paths in settings resolve against
    settings: Settings
    providers: dict[str, ProviderSpec]
    products: dict[str, ProductSpec]
    policy: CrossBorderPolicy
    files: dict[str, str] = field(default_factory=dict)  # kind/id -> file, for messages

    def dataset(self, provider: str, dataset: str) -> DatasetSpec:
        try:
            return self.providers[provider].datasets[dataset]
        except KeyError:
            raise ConfigError([f"unknown provider/dataset {provider}/{dataset}"]) from None

    def product(self, product_id: str) -> ProductSpec:
        if product_id not in self.products:
            raise ConfigError([f"unknown product {product_id!r}; known: {sorted(self.products)}"])
        return self.products[product_id]

    def products_of(self, provider: str, dataset: str) -> list[ProductSpec]:
        return [
            p
            for p in self.products.values()
            if (p.source.provider, p.source.dataset) == (provider, dataset)
        ]

    def resolve(self, path: str) -> Path:
        """A settings path made absolute against the project folder."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    @property
    def store_root(self) -> str:
        root = os.environ.get("DATABOURSE_STORE_ROOT") or self.settings.storage.root
        return root if root.startswith("s3://") else str(self.resolve(root))

    @property
    def s3_endpoint_url(self) -> str | None:
        return os.environ.get("DATABOURSE_S3_ENDPOINT_URL") or self.settings.storage.endpoint_url

    @property
    def catalog_url(self) -> str:
        url = os.environ.get("DATABOURSE_CATALOG_URL") or self.settings.catalog_url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            url = "sqlite:///" + str(self.resolve(url.removeprefix("sqlite:///")))
        return url

    @property
    def state_dir(self) -> Path:
        return self.resolve(os.environ.get("DATABOURSE_STATE_DIR") or self.settings.state_dir)


def default_config_dir() -> Path:
    """`$DATABOURSE_CONFIG_DIR`, else `configs/` in the current folder or above it."""
    if env := os.environ.get("DATABOURSE_CONFIG_DIR"):
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "configs" / "settings.yaml").is_file():
            return folder / "configs"
    return here / "configs"


def load_config(config_dir: Path | None = None) -> Config:
    """Load and cross-check every config file; raise one ConfigError listing all problems."""
    config_dir = (config_dir or default_config_dir()).resolve()
    problems: list[str] = []
    if not config_dir.is_dir():
        raise ConfigError([f"{config_dir}: config folder not found"])
    settings = _load(config_dir / "settings.yaml", Settings, problems, optional=True) or Settings()
    policy = _load(config_dir / "policies" / "cross_border.yaml", CrossBorderPolicy, problems)
    providers = _load_folder(config_dir / "providers", ProviderSpec, problems)
    products = _load_folder(config_dir / "products", ProductSpec, problems)
    for file, product in products.values():
        problems += _check_product(file, product, {pid: p for pid, (_, p) in providers.items()})
    if problems or policy is None:
        raise ConfigError(problems)
    return Config(
        root=config_dir.parent,
        settings=settings,
        policy=policy,
        providers={k: p for k, (_, p) in providers.items()},
        products={k: p for k, (_, p) in products.items()},
        files={
            **{f"provider/{k}": f for k, (f, _) in providers.items()},
            **{f"product/{k}": f for k, (f, _) in products.items()},
        },
    )


M = TypeVar("M", bound=BaseModel)
S = TypeVar("S", ProviderSpec, ProductSpec)


class _NoAliasLoader(yaml.SafeLoader):
    """Safe loading (no Python tags) that also refuses anchors and aliases: configs are short,
    and an alias "bomb" small on disk expands to gigabytes once validated or serialized."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in configs", event.start_mark
            )
        return super().compose_node(parent, index)


def _load(path: Path, model: type[M], problems: list[str], optional: bool = False) -> M | None:
    if not path.is_file():
        if not optional:
            problems.append(f"{path}: file missing")
        return None
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_NoAliasLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: not valid YAML: {exc}")
        return None
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top)"
            problems.append(f"{path}: {where}: {err['msg']}")
        return None


def _load_folder(folder: Path, model: type[S], problems: list[str]) -> dict[str, tuple[str, S]]:
    found: dict[str, tuple[str, S]] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        item = _load(path, model, problems)
        if item is None:
            continue
        if item.id != path.stem:
            problems.append(f"{path}: id: {item.id!r} must match the file name {path.stem!r}")
        elif item.id in found:
            problems.append(f"{path}: id: {item.id!r} already defined in {found[item.id][0]}")
        else:
            found[item.id] = (str(path), item)
    return found


def _check_product(
    file: str, product: ProductSpec, providers: dict[str, ProviderSpec]
) -> list[str]:
    """References from a product to its source dataset and between its own keys."""
    src = product.source
    if src.provider not in providers:
        return [f"{file}: source.provider: unknown provider {src.provider!r}"]
    dataset = providers[src.provider].datasets.get(src.dataset)
    if dataset is None:
        return [f"{file}: source.dataset: {src.provider!r} has no dataset {src.dataset!r}"]
    problems: list[str] = []
    outputs = product.output_columns
    partition = product.packaging.partition_by
    if partition is not None and partition not in outputs:
        problems.append(f"{file}: packaging.partition_by: {partition!r} is not an output column")
    for dup in sorted({o for o in outputs if outputs.count(o) > 1}):
        problems.append(f"{file}: columns: output column {dup!r} produced twice (check rename)")
    known = {c.name for c in dataset.columns}
    for name, rule in product.columns.items():
        if name not in known:
            problems.append(f"{file}: columns.{name}: not a column of {src.provider}/{src.dataset}")
            continue
        col = dataset.column(name)
        if rule.action == "keep" and col.personal_data in DIRECT_IDENTIFIERS:
            problems.append(
                f"{file}: columns.{name}: keeps a direct identifier "
                f"({col.personal_data}); drop or pseudonymize it"
            )
        if rule.band is not None and col.type not in ("int64", "float64"):
            problems.append(f"{file}: columns.{name}.band: needs a numeric column, not {col.type}")
        if rule.date is not None and col.type not in ("date", "timestamp"):
            problems.append(f"{file}: columns.{name}.date: needs a date column, not {col.type}")
        if rule.prefix is not None and col.type != "string":
            problems.append(f"{file}: columns.{name}.prefix: needs a string column, not {col.type}")
        problems += _check_rule(file, name, rule, col.type)
    problems += _check_models(file, product)
    return problems


_NUMERIC = ("int64", "float64")


def _check_rule(file: str, name: str, rule: ColumnRule, col_type: str) -> list[str]:
    """Column types and files the newer rules need (hierarchy file, numeric for round/noise)."""
    where = f"{file}: columns.{name}"
    problems: list[str] = []
    if rule.hierarchy is not None:
        configs = Path(file).resolve().parent.parent
        path = (configs / rule.hierarchy).resolve()  # relative to configs/, and inside it
        if not path.is_relative_to(configs):
            problems.append(f"{where}.hierarchy: {rule.hierarchy!r} is outside configs/")
        elif not path.is_file():
            problems.append(f"{where}.hierarchy: file {rule.hierarchy!r} not found under configs/")
    if rule.round is not None and col_type != "float64":
        problems.append(f"{where}.round: needs a float64 column, not {col_type}")
    for field_name in ("top", "bottom", "noise"):
        if getattr(rule, field_name) is not None and col_type not in _NUMERIC:
            problems.append(f"{where}.{field_name}: needs a numeric column, not {col_type}")
    if rule.mask is not None and col_type != "string":
        problems.append(f"{where}.mask: needs a string column, not {col_type}")
    if rule.embedded == "redact" and col_type != "string":
        problems.append(f"{where}.embedded: redact needs a string column, not {col_type}")
    return problems


def _check_models(file: str, product: ProductSpec) -> list[str]:
    """Privacy model and aggregate section name output columns; searched hierarchies are QIs."""
    problems: list[str] = []
    outputs = product.output_columns
    if product.privacy:
        for key in ("quasi_identifiers", "sensitive_attributes"):
            for col in getattr(product.privacy, key):
                if col not in outputs:
                    problems.append(f"{file}: privacy.{key}: {col!r} is not an output column")
    qis = set(product.privacy.quasi_identifiers) if product.privacy else set()
    for name, rule in product.columns.items():
        if rule.hierarchy is not None and rule.level is None and (rule.rename or name) not in qis:
            problems.append(
                f"{file}: columns.{name}.level: a hierarchy without level is searched, so the "
                "column must be a privacy.quasi_identifiers entry"
            )
    if product.aggregate:
        used = [*product.aggregate.dimensions, *(m.column for m in product.aggregate.measures)]
        for col in used:
            if col not in outputs:
                problems.append(f"{file}: aggregate: {col!r} is not an output column")
    return problems
