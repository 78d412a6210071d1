"""The cross-border policy: every rule row of the shipped config, at and around its thresholds."""

from __future__ import annotations

import pytest

from databourse.config import CrossBorderPolicy, load_config
from databourse.transfer import TransferFacts, decide, facts_for, remaining_personal_data


@pytest.fixture(scope="module")
def policy() -> CrossBorderPolicy:
    return load_config().policy


def cn(**kw: object) -> TransferFacts:
    base: dict[str, object] = {"origin": "CN", "personal_data": True}
    base.update(kw)
    return TransferFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facts", "rule", "decision"),
    [
        (cn(personal_data=False), "cn-anonymized", "allowed"),
        (cn(personal_data=False, important_data=True), "cn-important-data", "approval_required"),
        (cn(foreign_authority_request=True), "cn-foreign-authority", "denied"),
        (
            cn(sensitive_categories=("CN_RESIDENT_ID",), individuals=9_999),
            "cn-sensitive-under-10k",
            "approval_required",
        ),
        (
            cn(sensitive_categories=("CN_RESIDENT_ID",), individuals=10_000),
            "cn-sensitive-10k",
            "approval_required",
        ),
        (
            cn(sensitive_categories=("CN_RESIDENT_ID",), individuals=1),
            "cn-sensitive-under-10k",
            "approval_required",
        ),
        (cn(individuals=99_999), "cn-personal-under-100k", "allowed"),
        (cn(individuals=100_000), "cn-personal-100k", "approval_required"),
        (cn(individuals=999_999), "cn-personal-100k", "approval_required"),
        (cn(individuals=1_000_000), "cn-personal-1m", "approval_required"),
    ],
)
def test_china_rules_at_thresholds(
    policy: CrossBorderPolicy, facts: TransferFacts, rule: str, decision: str
) -> None:
    got = decide(policy, facts, "MY")
    assert (got.rule_id, got.decision) == (rule, decision)
    assert got.citation


def test_security_assessment_route_and_evidence(policy: CrossBorderPolicy) -> None:
    got = decide(policy, cn(sensitive_categories=("BANK_ACCOUNT",), individuals=10_000), "SG")
    assert got.route == "cac_security_assessment"
    assert any("approval number" in e for e in got.evidence)


def test_domestic_is_not_cross_border(policy: CrossBorderPolicy) -> None:
    got = decide(policy, cn(individuals=5_000_000), "CN")
    assert (got.decision, got.rule_id) == ("allowed", "domestic")


@pytest.mark.parametrize(
    ("origin", "personal", "rule", "decision"),
    [
        ("MY", False, "my-anonymized", "allowed"),
        ("MY", True, "my-section-129", "approval_required"),
        ("SG", False, "sg-anonymized", "allowed"),
        ("SG", True, "sg-transfer-limitation", "approval_required"),
        ("HK", True, "hk-transfer", "allowed"),
        ("TH", False, "default-anonymized", "allowed"),
        ("TH", True, "default-personal", "approval_required"),
    ],
)
def test_other_origins(
    policy: CrossBorderPolicy, origin: str, personal: bool, rule: str, decision: str
) -> None:
    got = decide(policy, TransferFacts(origin=origin, personal_data=personal, individuals=10), "CN")
    assert (got.rule_id, got.decision) == (rule, decision)


def test_sample_products_one_gated_one_not(policy: CrossBorderPolicy) -> None:
    cfg = load_config()
    decisions = {}
    for pid in ("kl-building-environment", "sz-retail-baskets"):
        product = cfg.product(pid)
        ds = cfg.dataset(product.source.provider, product.source.dataset)
        remaining = remaining_personal_data(product, ds.declared_categories)
        facts = facts_for(
            cfg.providers[product.source.provider].jurisdiction, remaining, 400, ds.important_data
        )
        decisions[pid] = {m: decide(policy, facts, m).decision for m in product.markets}
    assert decisions["kl-building-environment"] == {
        "MY": "allowed",
        "CN": "allowed",
        "SG": "allowed",
    }
    assert decisions["sz-retail-baskets"] == {
        "CN": "allowed",
        "MY": "approval_required",
        "SG": "approval_required",
    }


def test_remaining_personal_data_counts_pseudonyms_not_protected_generalizations() -> None:
    cfg = load_config()
    product = cfg.product("sz-retail-baskets")
    ds = cfg.dataset("sz-retail", "customer_orders")
    assert remaining_personal_data(product, ds.declared_categories) == {
        "customer_ref": "CN_RESIDENT_ID"
    }
    facts = facts_for("CN", {"customer_ref": "CN_RESIDENT_ID"}, 400, False)
    assert facts.sensitive and facts.individuals == 400
    assert facts_for("CN", {}, 400, False).individuals == 0


def test_explain_shows_the_rule_chain(policy: CrossBorderPolicy) -> None:
    from databourse.transfer import explain

    chain = explain(policy, cn(sensitive_categories=("CN_RESIDENT_ID",), individuals=400), "MY")
    assert [c["rule"] for c in chain] == [
        "cn-foreign-authority",
        "cn-anonymized",
        "cn-important-data",
        "cn-sensitive-10k",
        "cn-personal-1m",
        "cn-sensitive-under-10k",
    ]
    assert chain[-1]["decided"] and chain[-1]["decision"] == "approval_required"
    assert chain[3]["failed"] == ["sensitive_individuals_gte wants 10000, fact is 400"]
    assert chain[1]["failed"] == ["personal_data wants False, fact is True"]
    assert explain(policy, cn(), "CN")[0]["rule"] == "domestic"
