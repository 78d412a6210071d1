"""The input form an operator answers (Prefect UI or `bourse approve`) for a gated transfer.

One form class per suspension (`approval_form`), made from `databourse.transfer.rules`: the
decision is a choice between an approval on each of the route's bases (each requiring the
fields its basis needs) and a rejection (requiring a reason); the route is the policy's, not
an input; the product, version, content hash, market and nonce of the suspension are
constants the answer carries back. The Prefect server refuses an incomplete approval and the
run stays suspended; the flow checks the stored answer again with the same rules (an answer
can be written around the form).
"""

from __future__ import annotations

from typing import Any, cast

from prefect.input import RunInput

from databourse.config import RouteSpec
from databourse.transfer.rules import ApprovalAnswer, Binding, answer_model


class TransferApproval(ApprovalAnswer, RunInput):
    """Approve or reject one product version's transfer to one market."""


def approval_form(
    route: str, spec: RouteSpec, description: str, binding: Binding
) -> type[TransferApproval]:
    """The form class of one suspension, its description being the markdown shown above it."""
    form = cast(type[TransferApproval], answer_model(route, spec, binding, TransferApproval))
    return form.with_initial_data(description=description)


def stored_schema(form: type[TransferApproval]) -> dict[str, Any]:
    """The JSON schema Prefect saves for the form when the run suspends (`RunInput.save`), the
    one the server checks a resume against and the UI draws: its sha256 is bound to the
    question (flows.publish_product, databourse.transfer.form_binding)."""
    from prefect._internal.pydantic.v2_schema import create_v2_schema

    return dict(create_v2_schema(form.__name__, model_base=form))


def approval_description(
    product: str,
    version: str,
    decision: dict[str, Any],
    spec: RouteSpec,
    timeout_seconds: int,
    binding: Binding,
    refused: list[str] | None = None,
) -> str:
    """Markdown shown on the form: what is asked (bound), the facts and the rule."""
    facts = decision["facts"]
    evidence = "\n".join(f"- {e}" for e in decision.get("evidence", []))
    obligations = "\n".join(f"- {o}" for o in decision.get("obligations", [])) or "- none listed"
    bases = "\n".join(
        f"- **{b.label}** (`{name}`): {b.reference}; requires "
        f"{', '.join(b.requires) or 'nothing more'}. _{b.citation}_"
        for name, b in spec.bases.items()
    )
    before = ""
    if refused:
        before = "**The previous answer was refused:**\n" + "".join(f"- {p}\n" for p in refused)
        before += "\n"
    carry = decision.get("carry_over_problems") or []
    carried = "".join(f"- {p}\n" for p in carry)
    return (
        f"## Transfer of `{product}@{version}` to **{decision['market']}**\n\n"
        f"This form is for content `{binding.content_hash}` of `{binding.product}@"
        f"{binding.version}` to {binding.market} only (form nonce `{binding.nonce}`); an answer "
        "carries these back and counts for nothing else.\n\n"
        f"{before}"
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
        + "**Bases of this route** (choose the approval on the basis relied on; it asks for "
        f"the fields that basis requires):\n\n{bases}\n\n"
        f"**Evidence to supply**:\n{evidence}\n\n**Obligations**:\n{obligations}\n\n"
        "Under **Decision**, choose an approval or **Reject**. Rejecting records the refusal "
        "with its reason; the version stays unavailable in this market. Unanswered after "
        f"{_duration(timeout_seconds)}, the transfer is recorded as expired."
    )


def _duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} day(s)"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour(s)"
    return f"{seconds} s"
