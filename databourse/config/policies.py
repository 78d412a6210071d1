"""`configs/policies/cross_border.yaml`: the cross-border transfer rules of each origin, and the
legal routes (with their bases) that an approval relies on."""

# ruff: noqa: RUF012 (list and dict defaults are pydantic fields, copied per instance: ruff
# sees a model only when its BaseModel base is in the same file, and Strict is in strict.py)

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from databourse.config.strict import Identifier, Jurisdiction, Strict


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
