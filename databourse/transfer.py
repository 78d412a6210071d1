"""Cross-border transfer policy: a pure function from measured facts to a decision per market.

The rules are data (`configs/policies/cross_border.yaml`, model `config.CrossBorderPolicy`); the
first rule of the origin whose conditions all hold decides. A market in the origin's own
jurisdiction is not a cross-border transfer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from databourse.config import SENSITIVE_CATEGORIES, Condition, CrossBorderPolicy, ProductSpec, Rule

Decision = Literal["allowed", "approval_required", "denied"]


@dataclass(frozen=True)
class TransferFacts:
    """What the pipeline measured about a product version, as the rules need it."""

    origin: str
    personal_data: bool  # personal data remains after anonymization
    sensitive_categories: tuple[str, ...] = ()  # sensitive categories that remain
    individuals: int = 0  # distinct individuals in this version (plus the exporter's year so far)
    important_data: bool = False
    foreign_authority_request: bool = False

    @property
    def sensitive(self) -> bool:
        return bool(self.sensitive_categories)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["sensitive_categories"] = list(self.sensitive_categories)
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
    rules = policy.origins.get(facts.origin, policy.default).rules
    rule = next(r for r in rules if matches(r.when, facts, market))  # last rule always matches
    return _from_rule(rule, market)


def decide_all(
    policy: CrossBorderPolicy, facts: TransferFacts, markets: list[str]
) -> list[TransferDecision]:
    """Decisions for every market of a product, in the product's order."""
    return [decide(policy, facts, m) for m in markets]


def matches(cond: Condition, facts: TransferFacts, market: str) -> bool:
    """True when every condition the rule sets holds for these facts."""
    sensitive_count = facts.individuals if facts.sensitive else 0
    checks = [
        cond.personal_data is None or cond.personal_data == facts.personal_data,
        cond.sensitive is None or cond.sensitive == facts.sensitive,
        cond.important_data is None or cond.important_data == facts.important_data,
        cond.foreign_authority_request is None
        or cond.foreign_authority_request == facts.foreign_authority_request,
        cond.individuals_gte is None or facts.individuals >= cond.individuals_gte,
        cond.individuals_lt is None or facts.individuals < cond.individuals_lt,
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
    )


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
    for rule in policy.origins.get(facts.origin, policy.default).rules:
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
        return facts.individuals if facts.sensitive else 0
    if name.startswith("individuals"):
        return facts.individuals
    return getattr(facts, name)
