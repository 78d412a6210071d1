"""The cross-border policy: every rule row of the shipped config, at and around its thresholds."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from databourse.config import CrossBorderPolicy, load_config
from databourse.transfer.policy import (
    PriorApproval,
    TransferDecision,
    TransferFacts,
    decide,
    facts_for,
    remaining_personal_data,
)


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
    from databourse.transfer.policy import explain

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


# --- the exporter's running count ------------------------------------------------------------

ID = ("CN_RESIDENT_ID",)


@pytest.mark.parametrize(
    ("facts", "rule"),
    [
        (cn(individuals=1, sent_this_year=99_998), "cn-personal-under-100k"),
        (cn(individuals=1, sent_this_year=99_999), "cn-personal-100k"),
        (cn(individuals=60_000, sent_this_year=40_000), "cn-personal-100k"),
        (cn(individuals=1, sent_this_year=999_998), "cn-personal-100k"),
        (cn(individuals=1, sent_this_year=999_999), "cn-personal-1m"),
        (
            cn(sensitive_categories=ID, individuals=1, sensitive_sent_this_year=9_998),
            "cn-sensitive-under-10k",
        ),
        (
            cn(sensitive_categories=ID, individuals=1, sensitive_sent_this_year=9_999),
            "cn-sensitive-10k",
        ),
        # Sensitive versions sent earlier do not make this non-sensitive one sensitive...
        (cn(individuals=10, sent_this_year=20_000, sensitive_sent_this_year=20_000),
         "cn-personal-under-100k"),
        # ...but their individuals count towards the personal-information total.
        (cn(individuals=10, sent_this_year=99_995, sensitive_sent_this_year=50_000),
         "cn-personal-100k"),
    ],
)  # fmt: skip
def test_thresholds_compare_the_year_so_far_plus_this_version(
    policy: CrossBorderPolicy, facts: TransferFacts, rule: str
) -> None:
    assert decide(policy, facts, "SG").rule_id == rule


def test_running_count_helpers() -> None:
    from datetime import UTC, datetime

    from databourse.transfer.policy import calendar_year, with_running_count

    new_year_in_shanghai = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)
    assert calendar_year("Asia/Shanghai", new_year_in_shanghai) == 2027
    assert calendar_year("UTC", new_year_in_shanghai) == 2026
    base = facts_for("CN", {"customer_ref": "CN_RESIDENT_ID", "district": "ADDRESS"}, 400, False)
    assert base.categories == ("ADDRESS", "CN_RESIDENT_ID")
    full = with_running_count(base, 2026, 1_000, 600)
    assert (full.year_individuals, full.year_sensitive_individuals) == (1_400, 1_000)
    assert TransferFacts.from_json(full.to_json()) == full


def test_explain_names_the_yearly_total(policy: CrossBorderPolicy) -> None:
    from databourse.transfer.policy import explain

    facts = cn(
        sensitive_categories=("CN_RESIDENT_ID",), individuals=400, sensitive_sent_this_year=9_700
    )
    chain = explain(policy, facts, "MY")
    assert chain[-1]["rule"] == "cn-sensitive-10k"
    assert explain(policy, cn(individuals=5, sent_this_year=7), "MY")[-1]["decision"] == "allowed"


# --- what an approval needs, per route --------------------------------------------------------

TODAY = date(2026, 11, 20)
OK = {
    "approver": "Li Wei",
    "decision": "approve",
    "reference": "YUE-SC-2026-0042",
    "valid_until": "2029-11-20",
    "evidence_url": "https://dms.example/scc/42",
}


def answered(
    policy: CrossBorderPolicy, route: str, flat: dict[str, Any], today: date = TODAY
) -> list[str]:
    """The problems of a flat answer sent as the form sends it (`bourse approve` does this)."""
    from databourse.transfer.policy import approval_problems
    from databourse.transfer.rules import form_value

    return approval_problems(policy, route, form_value(flat, policy.routes.get(route)), today)


@pytest.mark.parametrize(
    ("route", "basis", "missing", "finding"),
    [
        ("standard_contract_or_certification", None, "reference", "provincial CAC filing number"),
        ("standard_contract_or_certification", "certification", "valid_until", "expiry"),
        ("cac_security_assessment", None, "evidence_url", "link to the evidence"),
        ("cac_security_assessment", None, "valid_until", "expiry"),
        ("section_129_basis", "transfer_impact_assessment", "reference", "impact assessment"),
        ("section_129_basis", "consent", "evidence_url", "link to the evidence"),
        ("section_129_basis", "binding_corporate_rules", "reference", "binding corporate rules"),
        ("transfer_limitation_obligation", "certification", "reference", "certificate number"),
        ("transfer_limitation_obligation", "contract", "evidence_url", "link to the evidence"),
        ("contract_or_consent", "consent", "reference", "consent records"),
    ],
)  # fmt: skip
def test_an_approval_needs_what_its_basis_requires(
    policy: CrossBorderPolicy, route: str, basis: str | None, missing: str, finding: str
) -> None:
    answer = {**OK, "basis": basis}
    assert answered(policy, route, answer) == []
    [problem] = answered(policy, route, {**answer, missing: ""})
    assert finding in problem


def test_approval_answers_refused_with_reasons(policy: CrossBorderPolicy) -> None:
    route = "standard_contract_or_certification"
    for placeholder in ("none", " N/A ", "-", "tbd"):
        assert answered(policy, route, {**OK, "reference": placeholder})
    assert (
        "expired on 2026-11-19" in answered(policy, route, {**OK, "valid_until": "2026-11-19"})[0]
    )
    assert "not one of the route's" in answered(policy, route, {**OK, "basis": "bcr"})[0]
    assert "not defined" in answered(policy, "made_up", OK)[0]
    assert answered(policy, route, {**OK, "approver": " "}) == [
        "the approver is empty: give a name or staff id"  # the one name rule (databourse.names)
    ]
    rejection = {"approver": "Tan Mei Ling", "decision": "reject", "reference": "none"}
    assert answered(policy, route, rejection) == ["rejecting needs a reason"]
    assert answered(policy, route, {**rejection, "conditions": "no contract"}) == []


def test_every_route_a_rule_names_is_defined(tmp_path: Path) -> None:
    import shutil

    from databourse.errors import ConfigError

    shutil.copytree(Path(__file__).resolve().parents[3] / "configs", tmp_path / "configs")
    pol = tmp_path / "configs" / "policies" / "cross_border.yaml"
    text = pol.read_text()
    pol.write_text(text.replace("route: contract_or_consent", "route: contract_or_prayer"))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "configs")
    assert "default: contract_or_prayer" in "\n".join(info.value.problems)
    pol.write_text(text.replace("timezone: Asia/Singapore", "timezone: Asia/Atlantis"))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "configs")
    problems = "\n".join(info.value.problems)
    assert "origins.SG.timezone" in problems and "Asia/Atlantis" in problems


# --- carrying an approval over to a later version ---------------------------------------------

SCHEMA = [{"name": "customer_ref", "type": "string"}, {"name": "amount", "type": "float64"}]


def _prior(**kw: object) -> PriorApproval:
    base: dict[str, object] = dict(
        approval_id=7,
        version="1.0.0",
        content_hash="h0",
        decision="approved",
        carry_over=True,
        rule_id="cn-sensitive-under-10k",
        route="standard_contract_or_certification",
        valid_until=date(2029, 11, 20),
        schema=SCHEMA,
        categories=("CN_RESIDENT_ID",),
    )
    base.update(kw)
    return PriorApproval(**base)  # type: ignore[arg-type]


def _now(policy: CrossBorderPolicy, **kw: object) -> tuple[TransferFacts, TransferDecision]:
    base: dict[str, object] = dict(
        sensitive_categories=("CN_RESIDENT_ID",), categories=("CN_RESIDENT_ID",), individuals=400
    )
    base.update(kw)
    facts = cn(**base)
    return facts, decide(policy, facts, "MY")


@pytest.mark.parametrize(
    ("prior", "now", "finding"),
    [
        ({"decision": "rejected"}, {}, "latest decision for 1.0.0 is rejected"),
        ({"decision": "expired"}, {}, "latest decision for 1.0.0 is expired"),
        ({"carry_over": False}, {}, "not given for later versions"),
        ({"schema": SCHEMA[:1]}, {}, "schema changed"),
        ({"categories": ("CN_RESIDENT_ID", "PHONE_NUMBER")}, {}, "categories changed"),
        ({"categories": None}, {}, "categories changed"),
        ({}, {"sensitive_sent_this_year": 9_700}, "rule is cn-sensitive-10k"),
        ({"valid_until": date(2026, 11, 19)}, {}, "expired on 2026-11-19"),
    ],
)
def test_each_condition_that_breaks_carry_over(
    policy: CrossBorderPolicy, prior: dict[str, object], now: dict[str, object], finding: str
) -> None:
    from databourse.transfer.policy import carry_over_problems

    facts, decision = _now(policy)
    assert carry_over_problems(_prior(), SCHEMA, facts, decision, TODAY) == []
    facts, decision = _now(policy, **now)
    problems = carry_over_problems(_prior(**prior), SCHEMA, facts, decision, TODAY)
    assert len(problems) == 1 and finding in problems[0], problems


def test_carry_over_without_expiry_date_is_not_expired(policy: CrossBorderPolicy) -> None:
    from databourse.transfer.policy import carry_over_problems

    facts, decision = _now(policy)
    assert carry_over_problems(_prior(valid_until=None), SCHEMA, facts, decision, TODAY) == []


def test_an_approval_keeps_the_rule_route(policy: CrossBorderPolicy) -> None:
    """The route is the policy's: the form has no route to change, and an answer that names
    one (written around the form) carries a field the form does not."""
    from databourse.transfer.policy import approval_problems
    from databourse.transfer.rules import answer_model, form_value

    route = "standard_contract_or_certification"
    spec = policy.routes[route]
    schema = answer_model(route, spec).model_json_schema()
    assert "route" not in schema["properties"]
    for choice in schema["properties"]["decision"]["anyOf"]:
        assert "route" not in choice["properties"]
    sent = {**form_value(OK, spec), "route": "cac_security_assessment"}
    [problem] = approval_problems(policy, route, sent, TODAY)
    assert problem == "the answer has a field the form does not: route"
