"""The input form an operator answers (Prefect UI or `bourse approve`) for a gated transfer."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from prefect.input import RunInput


class TransferApproval(RunInput):
    """Approve or reject one product version's transfer to one market."""

    approver: str  # who decides (name or staff id)
    decision: Literal["approve", "reject"]  # no default: the form must not pre-select an answer
    route: str  # legal route relied on, e.g. standard_contract_or_certification
    reference: str  # filing, certificate or assessment number ("none" when rejecting)
    valid_until: dt.date | None = None  # expiry of the filing or certificate
    conditions: str = ""  # conditions attached to the approval, or the reason for a rejection
    evidence_url: str = ""  # where the signed contract, filing or assessment is kept


def approval_description(product: str, version: str, decision: dict[str, Any]) -> str:
    """Markdown shown on the form: the facts and the rule the request rests on."""
    facts = decision["facts"]
    evidence = "\n".join(f"- {e}" for e in decision.get("evidence", []))
    obligations = "\n".join(f"- {o}" for o in decision.get("obligations", [])) or "- none listed"
    return (
        f"## Transfer of `{product}@{version}` to **{decision['market']}**\n\n"
        f"Rule `{decision['rule_id']}` ({decision['citation']}) requires approval on the route "
        f"**{decision['route']}**.\n\n"
        f"| fact (measured by the pipeline) | value |\n|---|---|\n"
        f"| origin | {facts['origin']} |\n| personal data remains | {facts['personal_data']} |\n"
        f"| sensitive categories | {', '.join(facts['sensitive_categories']) or 'none'} |\n"
        f"| distinct individuals | {facts['individuals']} |\n"
        f"| important data | {facts['important_data']} |\n\n"
        f"**Evidence to supply** (reference number and link):\n{evidence}\n\n"
        f"**Obligations**:\n{obligations}\n\n"
        "Set `decision` to `approve` or `reject`. Rejecting records the refusal; the version "
        "stays unavailable in this market."
    )
