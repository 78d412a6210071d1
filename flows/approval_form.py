"""The input form an operator answers (Prefect UI or `bourse approve`) for a gated transfer.

One form class per legal route (`approval_form`): an approval must keep the rule's `route`, its
`basis` offers the route's bases from the policy, and its JSON schema says which fields an
approval on each basis must fill, so the Prefect server refuses an incomplete approval and the
run stays suspended.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, cast

from prefect.input import RunInput
from pydantic import Field

from databourse.config import RouteSpec

# A reference that names something: not empty, not "none", "n/a", "-" or "tbd".
MEANINGFUL = r"^(?!\s*(?:[Nn][Oo][Nn][Ee]|[Nn]/?[Aa]|-+|[Tt][Bb][Dd])\s*$).*[A-Za-z0-9]"
_FIELD_RULES: dict[str, dict[str, Any]] = {
    "reference": {"type": "string", "pattern": MEANINGFUL},
    "valid_until": {"type": "string", "format": "date"},
    "evidence_url": {"type": "string", "pattern": r"\S"},
}


class TransferApproval(RunInput):
    """Approve or reject one product version's transfer to one market."""

    approver: str = Field(min_length=1, description="Who decides (name or staff id)")
    decision: Literal["approve", "reject"]  # no default: the form must not pre-select an answer
    route: str = Field(description="The legal route the rule requires (set by the policy)")
    basis: str = Field("", description="The basis within the route the approval relies on")
    reference: str = Field("", description="Filing, certificate or assessment number")
    valid_until: dt.date | None = Field(None, description="Expiry of the filing or certificate")
    conditions: str = Field("", description="Conditions attached, or the reason for a rejection")
    evidence_url: str = Field("", description="Where the contract, filing or assessment is kept")
    carry_over: bool = Field(
        False,
        description=(
            "This reference also covers later versions of the product with the same schema and "
            "personal-data categories, under the same rule, until it expires"
        ),
    )


def approval_form(route: str, spec: RouteSpec, description: str) -> type[TransferApproval]:
    """The form class for one route, its description being the markdown shown above it."""
    bases = tuple(spec.bases)
    choices = "; ".join(f"`{name}`: {b.label}" for name, b in spec.bases.items())
    namespace = {
        "__module__": __name__,
        "__annotations__": {"route": str, "basis": _one_of(bases)},
        "route": Field(route, description=f"{spec.title} (an approval must keep this route)"),
        "basis": Field(bases[0], description=f"The basis the approval relies on: {choices}"),
        "model_config": {
            **TransferApproval.model_config,
            "json_schema_extra": {"allOf": _requirements(route, spec)},
        },
    }
    form = cast(type[TransferApproval], type("TransferApproval", (TransferApproval,), namespace))
    return form.with_initial_data(description=description)


def _one_of(values: tuple[str, ...]) -> Any:
    return cast(Any, Literal)[values]


def _requirements(route: str, spec: RouteSpec) -> list[dict[str, Any]]:
    """JSON-schema clauses: an approval keeps the rule's route and fills what its basis needs."""
    approving = {"properties": {"decision": {"const": "approve"}}, "required": ["decision"]}
    clauses: list[dict[str, Any]] = [
        {"if": approving, "then": {"properties": {"route": {"const": route}}}}
    ]
    for position, (name, basis) in enumerate(spec.bases.items()):
        if not basis.requires:
            continue
        # The first basis is the default: it applies when the answer leaves `basis` out.
        required = ["decision"] if position == 0 else ["decision", "basis"]
        when = {
            "properties": {"decision": {"const": "approve"}, "basis": {"const": name}},
            "required": required,
        }
        then = {
            "required": list(basis.requires),
            "properties": {f: _FIELD_RULES[f] for f in basis.requires},
        }
        clauses.append({"if": when, "then": then})
    return clauses


def approval_description(
    product: str,
    version: str,
    decision: dict[str, Any],
    spec: RouteSpec,
    timeout_seconds: int,
    refused: list[str] | None = None,
) -> str:
    """Markdown shown on the form: the facts and the rule the request rests on."""
    facts = decision["facts"]
    evidence = "\n".join(f"- {e}" for e in decision.get("evidence", []))
    obligations = "\n".join(f"- {o}" for o in decision.get("obligations", [])) or "- none listed"
    bases = "\n".join(
        f"| `{name}` | {b.label} | {b.reference} | {', '.join(b.requires) or '-'} | {b.citation} |"
        for name, b in spec.bases.items()
    )
    before = ""
    if refused:
        before = "**The previous answer was refused:**\n" + "".join(f"- {p}\n" for p in refused)
        before += "\n"
    carry = decision.get("carry_over_problems") or []
    carried = "".join(f"- {p}\n" for p in carry)
    return (
        f"## Transfer of `{product}@{version}` to **{decision['market']}**\n\n{before}"
        f"Rule `{decision['rule_id']}` ({decision['citation']}) requires approval on the route "
        f"**{spec.title}** (`{decision['route']}`).\n\n"
        f"| fact (measured by the pipeline) | value |\n|---|---|\n"
        f"| origin | {facts['origin']} |\n| personal data remains | {facts['personal_data']} |\n"
        f"| personal-data categories | {', '.join(facts['categories']) or 'none'} |\n"
        f"| sensitive categories | {', '.join(facts['sensitive_categories']) or 'none'} |\n"
        f"| distinct individuals in this version | {facts['individuals']} |\n"
        f"| already sent abroad by the exporter in {facts['year']} | {facts['sent_this_year']} "
        f"(sensitive: {facts['sensitive_sent_this_year']}) |\n"
        f"| compared with the thresholds | {facts['year_individuals']} "
        f"(sensitive: {facts['year_sensitive_individuals']}) |\n"
        f"| important data | {facts['important_data']} |\n\n"
        + (f"**No earlier approval carries over:**\n{carried}\n" if carried else "")
        + "**Bases of this route** (an approval fills the fields its basis requires):\n\n"
        "| basis | meaning | reference | requires | citation |\n|---|---|---|---|---|\n"
        f"{bases}\n\n**Evidence to supply**:\n{evidence}\n\n**Obligations**:\n{obligations}\n\n"
        "Set `decision` to `approve` or `reject`. Rejecting records the refusal; the version "
        f"stays unavailable in this market. Unanswered after {_duration(timeout_seconds)}, the "
        "transfer is recorded as expired."
    )


def _duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} day(s)"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour(s)"
    return f"{seconds} s"
