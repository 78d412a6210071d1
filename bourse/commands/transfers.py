"""`bourse transfer explain`: a version's cross-border transfer decision and the rules behind it."""

from __future__ import annotations

from typing import Annotated

import typer

from bourse.commands.shared import JsonOpt, fail, out, print_json
from bourse.display import assemble, safe
from databourse.errors import DataBourseError

transfer_app = typer.Typer(help="Cross-border transfer decisions.", no_args_is_help=True)


@transfer_app.command("explain")
def transfer_explain(
    ref: Annotated[str, typer.Argument(help="PRODUCT@VERSION")],
    market: Annotated[str, typer.Option(help="Destination jurisdiction (2 letters).")],
    as_json: JsonOpt = False,
) -> None:
    """The transfer decision for one market (with the exporter's count this year) and its rules."""
    import datetime as dt

    from databourse.transfer import (
        calendar_year,
        decide,
        explain,
        policy_fingerprint,
        with_running_count,
    )
    from tasks import resources
    from tasks.publishing import version_facts

    product, _, version = ref.partition("@")
    cfg = resources.config()
    try:  # the facts only through the content hash: an edited manifest is refused here too
        facts, exporter = version_facts(product, version)
        [shown] = resources.catalog().show(product, version)["versions"]
    except DataBourseError as exc:
        fail(f"{ref}: {exc}")
        return
    policy = policy_fingerprint(cfg.policy)
    stored = next((a for a in shown["availability"] if a["market"] == market.upper()), None)
    under = ((stored or {}).get("detail") or {}).get("policy_sha256")
    year = calendar_year(cfg.policy.origin(facts.origin).timezone, dt.datetime.now(dt.UTC))
    others = [
        v
        for v in resources.catalog().running_count(exporter, year)["versions"]
        if (v["product"], v["version"]) != (product, version)
    ]
    facts = with_running_count(
        facts,
        year,
        sum(v["individuals"] for v in others),
        sum(v["individuals"] for v in others if v["sensitive"]),
    )
    decision = decide(cfg.policy, facts, market.upper())
    chain = explain(cfg.policy, facts, market.upper())
    if as_json:
        print_json(
            {
                "decision": decision.to_json(),
                "facts": facts.to_json(),
                "chain": chain,
                "policy_sha256": policy,
                "stored": stored,
            }
        )
        return
    out.print(
        assemble(
            f"{ref} -> {market.upper()}: ",
            (decision.decision, "bold"),
            f" by rule {decision.rule_id} ({decision.citation})",
        )
    )
    out.print(safe(f"facts: {facts.to_json()}"))
    out.print(safe(f"policy sha256 {policy} (configs/policies/cross_border.yaml as loaded)"))
    if stored is not None:
        same = "the same policy" if under == policy else f"policy {under or 'unrecorded'}"
        out.print(
            safe(f"stored: {stored['status']} by rule {stored['rule_id']}, decided under {same}")
        )
    for step in chain:
        verdict = "decides" if step["decided"] else "skipped: " + "; ".join(step["failed"])
        out.print(safe(f"  {step['rule']}: {verdict}"))
