"""Cross-border transfer policy: a pure function from measured facts to a decision per market.

The rules are data (`configs/policies/cross_border.yaml`, model `config.CrossBorderPolicy`); the
first rule of the origin whose conditions all hold decides. A market in the origin's own
jurisdiction is not a cross-border transfer.

Thresholds compare the exporter's calendar-year total: individuals already sent abroad this year
by other versions (the catalog's running count) plus this version's. Versions are summed, so one
person in two versions counts twice: an upper bound, which can only pick the stricter route.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from databourse.config import SENSITIVE_CATEGORIES, Condition, CrossBorderPolicy, ProductSpec, Rule
from databourse.transfer.answers import answer_problems
from databourse.transfer.rules import Binding

Decision = Literal["allowed", "approval_required", "denied"]


@dataclass(frozen=True)
class TransferFacts:
    """What the pipeline measured about a product version, as the rules need it."""

    origin: str
    personal_data: bool  # personal data remains after anonymization
    sensitive_categories: tuple[str, ...] = ()  # sensitive categories that remain
    individuals: int = 0  # distinct individuals in this version
    important_data: bool = False
    foreign_authority_request: bool = False
    categories: tuple[str, ...] = ()  # every personal-data category that remains
    year: int | None = None  # the exporter's calendar year of the counts below
    sent_this_year: int = 0  # individuals the exporter already sent abroad this year (others)
    sensitive_sent_this_year: int = 0  # of those, in versions with a sensitive category

    @property
    def sensitive(self) -> bool:
        return bool(self.sensitive_categories)

    @property
    def year_individuals(self) -> int:
        """The exporter's individuals this year if this version leaves too."""
        return self.sent_this_year + self.individuals

    @property
    def year_sensitive_individuals(self) -> int:
        """The same for sensitive personal information (0 when this version has none)."""
        return (self.sensitive_sent_this_year + self.individuals) if self.sensitive else 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TransferFacts:
        """Facts back from `to_json` (derived totals and unknown keys are ignored)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for name in ("sensitive_categories", "categories"):
            known[name] = tuple(known.get(name) or ())
        return cls(**known)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["sensitive_categories"] = list(self.sensitive_categories)
        data["categories"] = list(self.categories)
        data["year_individuals"] = self.year_individuals
        data["year_sensitive_individuals"] = self.year_sensitive_individuals
        return data


@dataclass(frozen=True)
class TransferDecision:
    """The decision for one destination market, with the rule that made it."""

    market: str
    decision: Decision
    rule_id: str
    citation: str
    exemption: str | None = None
    route: str | None = None
    evidence: list[str] = field(default_factory=list)
    obligations: list[str] = field(default_factory=list)
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def policy_fingerprint(policy: CrossBorderPolicy) -> str:
    """sha256 of the policy as loaded (canonical JSON): which rules a decision was made under."""
    canonical = json.dumps(policy.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def decide(policy: CrossBorderPolicy, facts: TransferFacts, market: str) -> TransferDecision:
    """The decision for one destination market."""
    if market == facts.origin:
        return TransferDecision(
            market=market,
            decision="allowed",
            rule_id="domestic",
            citation="not a cross-border transfer",
            exemption="same jurisdiction as the provider",
        )
    rules = policy.origin(facts.origin).rules
    rule = next(r for r in rules if matches(r.when, facts, market))  # last rule always matches
    return _from_rule(rule, market)


def decide_all(
    policy: CrossBorderPolicy, facts: TransferFacts, markets: list[str]
) -> list[TransferDecision]:
    """Decisions for every market of a product, in the product's order."""
    return [decide(policy, facts, m) for m in markets]


def matches(cond: Condition, facts: TransferFacts, market: str) -> bool:
    """True when every condition the rule sets holds for these facts."""
    total, sensitive_count = facts.year_individuals, facts.year_sensitive_individuals
    checks = [
        cond.personal_data is None or cond.personal_data == facts.personal_data,
        cond.sensitive is None or cond.sensitive == facts.sensitive,
        cond.important_data is None or cond.important_data == facts.important_data,
        cond.foreign_authority_request is None
        or cond.foreign_authority_request == facts.foreign_authority_request,
        cond.individuals_gte is None or total >= cond.individuals_gte,
        cond.individuals_lt is None or total < cond.individuals_lt,
        cond.sensitive_individuals_gte is None or sensitive_count >= cond.sensitive_individuals_gte,
        cond.sensitive_individuals_lt is None or sensitive_count < cond.sensitive_individuals_lt,
        cond.destinations is None or market in cond.destinations,
    ]
    return all(checks)


def _from_rule(rule: Rule, market: str) -> TransferDecision:
    return TransferDecision(
        market=market,
        decision=rule.decision,
        rule_id=rule.id,
        citation=rule.citation,
        exemption=rule.exemption,
        route=rule.route,
        evidence=list(rule.evidence),
        obligations=list(rule.obligations),
        reason=rule.reason,
    )


def remaining_personal_data(product: ProductSpec, declared: dict[str, str]) -> dict[str, str]:
    """Output columns that still hold personal data, with their source category.

    A pseudonym is still personal data (PIPL art. 73: de-identified, not anonymized). A kept
    column with a declared category is too. A generalized one is protected by the privacy model
    when the product has one; without a model it counts as remaining.
    """
    remaining: dict[str, str] = {}
    for name, rule in product.columns.items():
        category = declared.get(name)
        if category is None or rule.action == "drop":
            continue
        if rule.action == "generalize" and product.privacy is not None:
            continue
        remaining[rule.rename or name] = category
    return remaining


def facts_for(
    origin: str, remaining: dict[str, str], individuals: int, important_data: bool
) -> TransferFacts:
    """Facts for the rules from what remains in the product."""
    sensitive = tuple(sorted({c for c in remaining.values() if c in SENSITIVE_CATEGORIES}))
    return TransferFacts(
        origin=origin,
        personal_data=bool(remaining),
        sensitive_categories=sensitive,
        individuals=individuals if remaining else 0,
        important_data=important_data,
        categories=tuple(sorted(set(remaining.values()))),
    )


def with_running_count(
    facts: TransferFacts, year: int, sent: int, sensitive_sent: int
) -> TransferFacts:
    """The facts with the exporter's running count for `year` (other versions only)."""
    return replace(facts, year=year, sent_this_year=sent, sensitive_sent_this_year=sensitive_sent)


def calendar_year(timezone: str, at: datetime) -> int:
    """The calendar year of an aware moment in the exporter's time zone."""
    return at.astimezone(ZoneInfo(timezone)).year


def explain(policy: CrossBorderPolicy, facts: TransferFacts, market: str) -> list[dict[str, Any]]:
    """The rule chain for one market: each rule tried, which conditions failed, which decided."""
    if market == facts.origin:
        return [
            {
                "rule": "domestic",
                "decided": True,
                "failed": [],
                "decision": "allowed",
                "citation": "not a cross-border transfer",
            }
        ]
    chain = []
    for rule in policy.origin(facts.origin).rules:
        failed = _failed_conditions(rule.when, facts, market)
        chain.append(
            {
                "rule": rule.id,
                "decided": not failed,
                "failed": failed,
                "decision": rule.decision,
                "citation": rule.citation,
            }
        )
        if not failed:
            break
    return chain


def _failed_conditions(cond: Condition, facts: TransferFacts, market: str) -> list[str]:
    """Each condition of a rule that does not hold, as 'name wants X, fact is Y'."""
    failed = []
    for name, wanted in cond.model_dump(exclude_none=True).items():
        single = Condition.model_validate({name: wanted})
        if not matches(single, facts, market):
            failed.append(f"{name} wants {wanted}, fact is {_fact(name, facts, market)}")
    return failed


def _fact(name: str, facts: TransferFacts, market: str) -> Any:
    if name == "destinations":
        return market
    if name.startswith("sensitive_individuals"):
        return facts.year_sensitive_individuals
    if name.startswith("individuals"):
        return facts.year_individuals
    return getattr(facts, name)


# --- approvals ------------------------------------------------------------------------------


def approval_problems(
    policy: CrossBorderPolicy,
    route: str,
    answer: Mapping[str, Any],
    today: date,
    binding: Binding | None = None,
) -> list[str]:
    """Why an approver's answer cannot be recorded on this route (empty when it can).

    The rules are `approval_rules`' (the same that make the form's schema): a rejection needs
    the approver's name; an approval a basis of the route and every field that basis requires,
    a reference that says something, a real expiry not passed. With a `binding`, the answer
    must carry that suspension's product, version, content hash, market and nonce.
    """
    return answer_problems(route, policy.routes.get(route), answer, today, binding)


def answer_basis(policy: CrossBorderPolicy, route: str, answer: Mapping[str, Any]) -> str | None:
    """The basis an answer relies on: the one it names, else the route's first (the default)."""
    spec = policy.routes.get(route)
    return answer.get("basis") or (next(iter(spec.bases)) if spec is not None else None)


@dataclass(frozen=True)
class PriorApproval:
    """The latest human decision for a market on an earlier version, and what it was given for."""

    approval_id: int
    version: str
    content_hash: str
    decision: str
    carry_over: bool  # the approver let it cover later versions
    rule_id: str | None  # the rule that required it
    route: str | None
    valid_until: date | None
    schema: list[dict[str, str]]
    categories: tuple[str, ...] | None  # None: the version's facts were never recorded


def carry_over_problems(
    prior: PriorApproval,
    schema: list[dict[str, str]],
    facts: TransferFacts,
    decision: TransferDecision,
    today: date,
) -> list[str]:
    """Why an earlier version's approval cannot cover this version (empty when it can)."""
    was = f"the approval of {prior.version}"
    problems = []
    if prior.decision != "approved":
        problems.append(f"the latest decision for {prior.version} is {prior.decision}")
    if not prior.carry_over:
        problems.append(f"{was} was not given for later versions (carry_over not set)")
    if prior.schema != schema:
        problems.append(f"the schema changed since {prior.version}")
    if prior.categories is None or tuple(sorted(prior.categories)) != facts.categories:
        problems.append(
            f"the personal-data categories changed since {prior.version}: "
            f"{list(prior.categories or [])} -> {list(facts.categories)}"
        )
    if (prior.rule_id, prior.route) != (decision.rule_id, decision.route):
        problems.append(
            f"with {facts.year_individuals} individuals this year the rule is {decision.rule_id} "
            f"(route {decision.route}); {was} covered {prior.rule_id} (route {prior.route})"
        )
    if prior.valid_until is not None and prior.valid_until < today:
        problems.append(f"{was} expired on {prior.valid_until.isoformat()}")
    return problems
