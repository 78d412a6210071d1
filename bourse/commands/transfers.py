"""`bourse transfer explain`: a version's cross-border transfer decision and the rules behind it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from bourse.commands.shared import JsonOpt, fail, out, print_json
from bourse.display import assemble, safe
from databourse.errors import DataBourseError

if TYPE_CHECKING:
    from databourse.config import Config

transfer_app = typer.Typer(help="Cross-border transfer decisions.", no_args_is_help=True)


@transfer_app.command("explain")
def transfer_explain(
    ref: Annotated[str, typer.Argument(help="PRODUCT@VERSION")],
    market: Annotated[str, typer.Option(help="Destination jurisdiction (2 letters).")],
    as_json: JsonOpt = False,
) -> None:
    """The transfer decision for one market (with the exporter's count this year) and its rules."""
    import datetime as dt

    from databourse.steps.publishing import version_facts
    from databourse.transfer.policy import (
        calendar_year,
        decide,
        explain,
        policy_fingerprint,
        with_running_count,
    )
    from tasks import resources

    product, _, version = ref.partition("@")
    cfg = resources.config()
    market = market.upper()
    if market not in (known := _known_markets(cfg, product)):
        fail(
            f"--market {market}: no such market; the policy and the product know "
            + ", ".join(known),
            2,
        )
    try:  # the facts only through the content hash: an edited manifest is refused here too
        facts, exporter = version_facts(resources.bundle(), product, version)
        [shown] = resources.catalog().show(product, version)["versions"]
    except DataBourseError as exc:
        fail(f"{ref}: {exc}")
        return
    policy = policy_fingerprint(cfg.policy)
    stored = next((a for a in shown["availability"] if a["market"] == market), None)
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
    decision = decide(cfg.policy, facts, market)
    chain = explain(cfg.policy, facts, market)
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
            f"{ref} -> {market}: ",
            (decision.decision, "bold"),
            f" by rule {decision.rule_id} ({decision.citation})",
        )
    )
    out.print("facts:")
    for line in _fact_lines(facts.to_json()):
        out.print(safe(f"  {line}"))
    out.print(safe(f"policy sha256 {policy} (configs/policies/cross_border.yaml as loaded)"))
    if stored is not None:
        same = "the same policy" if under == policy else f"policy {under or 'unrecorded'}"
        out.print(
            safe(f"stored: {stored['status']} by rule {stored['rule_id']}, decided under {same}")
        )
    for step in chain:
        verdict = "decides" if step["decided"] else "skipped: " + "; ".join(step["failed"])
        out.print(safe(f"  {step['rule']}: {verdict}"))


def _known_markets(cfg: Config, product: str) -> list[str]:
    """The markets a decision can be asked for: the policy's origins and the destinations its
    rules name, and the product's configured markets (an unknown product adds none)."""
    policy = cfg.policy
    origins = [*policy.origins.values(), policy.default]
    named = {d for o in origins for r in o.rules for d in (r.when.destinations or [])}
    offered = cfg.products[product].markets if product in cfg.products else []
    return sorted({*policy.origins, *named, *offered})


def _fact_lines(facts: dict[str, Any]) -> list[str]:
    """One `name: value` line per fact, named as the rule chain names them; lists joined."""
    lines = []
    for name, value in facts.items():
        if isinstance(value, list | tuple):
            shown = ", ".join(str(v) for v in value) or "none"
        else:
            shown = "none" if value is None else str(value)
        lines.append(f"{name}: {shown}")
    return lines
