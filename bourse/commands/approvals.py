"""Approvals: the transfers waiting for an operator, their answers (approve, reject), retries of
failed publish runs and the sweep of expired or abandoned questions."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from bourse.commands.shared import JsonOpt, err, fail, out, print_json, rt
from bourse.display import assemble, cells, fold_all_but_the_run, minute, safe
from databourse.errors import DataBourseError

approvals_app = typer.Typer(
    help="Transfers waiting for an operator's approval.", no_args_is_help=True
)


StuckAfterOpt = Annotated[
    float,
    typer.Option(help="Report a publish run answered but silent this many seconds as stuck."),
]


@approvals_app.command("list")
def approvals_list(
    as_json: JsonOpt = False,
    stuck_after: StuckAfterOpt = 600,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also every decision: approved, rejected, expired.")
    ] = False,
) -> None:
    """Publish runs suspended on an approval form, those that failed while a market waits, and
    every market pending approval that no live run asks for (with the command to ask again).

    Read-only: a question past its deadline is shown as expired, and recorded so only by
    `approvals sweep` (or the next publish run); a failed run is restarted by `approvals retry`.
    """
    from bourse.approvals import stopped, waiting
    from bourse.stuck import describe
    from bourse.stuck import find as find_stuck
    from bourse.unasked import describe as describe_unasked
    from bourse.unasked import unasked
    from bourse.unrecorded import unrecorded
    from tasks import resources

    items = waiting()
    overdue = _overdue(resources.catalog())
    failed = stopped(resources.catalog())
    timed_out = {(o["product"], o["version"], o["market"]) for o in overdue}
    lost = [u for u in unasked(resources.catalog())
            if (u.product, u.version, u.market) not in timed_out]  # fmt: skip
    tampered = unrecorded(resources.catalog())
    decided = resources.catalog().transfer_decisions() if show_all else []
    stuck_runs = [s for s in find_stuck(resources.catalog().transfer_decisions(), stuck_after)
                  if s.run_id not in {f.run_id for f in failed}]  # fmt: skip
    if as_json:
        pending = [{**w.to_json(), "url": rt().run_url(w.run_id)} for w in items]
        stuck = [{**f.to_json(), "url": rt().run_url(f.run_id)} for f in failed]
        listing: dict[str, Any] = {"waiting": pending, "failed": stuck, "decided": decided}
        listing["stuck"] = [s.to_json() for s in stuck_runs]
        listing["unasked"] = [u.to_json() for u in lost]
        listing["expired"] = overdue
        listing["unrecorded"] = tampered
        print_json(listing if show_all else pending)
        for line in tampered:
            err.print(assemble(("error:", "bold red"), " ", safe(line)))
        return
    _print_stopped(failed)
    for s in stuck_runs:
        out.print(safe(describe(s)))
    for u in lost:
        out.print(safe(describe_unasked(u)))
    for o in overdue:
        where = f"{o['product']}@{o['version']} -> {o['market']}"
        out.print(safe(
            f"expired: {where} (run {o['run_id']}, asked {minute(o['asked'])}, deadline "
            f"{minute(o['expired_at'])} UTC): not recorded yet, `bourse approvals sweep` records it"
        ))  # fmt: skip
    for line in tampered:
        err.print(assemble(("error:", "bold red"), " ", safe(line)))
    if not items:
        out.print("no transfer is waiting for approval")
    else:
        table = Table("run", "version", "market", "asked (UTC)", "expires (UTC)")
        fold_all_but_the_run(table)
        for w in items:
            asked, until = minute(w.since), minute(w.timeout_at or "")
            table.add_row(*cells(w.run_id, f"{w.product}@{w.version}", w.market, asked, until))
        out.print(table)
        for w in items:
            for warning in w.warnings:
                out.print(safe(f"warning: run {w.run_id} ({w.market}): {warning}"))
    if show_all:
        _print_decisions(decided)


def _overdue(catalog: Any) -> list[dict[str, Any]]:
    """Questions still marked waiting whose deadline passed: expired, computed, not written."""
    from tasks.publishing import overdue_pending, pending_deadline

    return [
        {
            "product": p["product"],
            "version": p["version"],
            "market": p["market"],
            "run_id": p["flow_run_id"],
            "form": p["suspend_key"],
            "asked": p["created_at"],
            "expired_at": pending_deadline(p).isoformat(),
            "status": "expired",
            "recorded": False,
        }
        for p in overdue_pending(catalog)
    ]


def _print_stopped(failed: list[Any]) -> None:
    if not failed:
        return
    table = Table("failed run", "product", "version", "state", "since", "why")
    fold_all_but_the_run(table)
    for f in failed:
        table.add_row(*cells(f.run_id, f.product, f.version, f.state, f.since[:19], f.why))
    out.print(table)
    out.print("a market still waits: start a new publish run with `bourse approvals retry RUN`")


@approvals_app.command("retry")
def approvals_retry(
    run_id: Annotated[str, typer.Argument(help="A failed publish run (bourse approvals list).")],
) -> None:
    """Start a fresh publish run for the version of a failed (or cancelled) one."""
    from bourse.approvals import ApprovalError, retry
    from tasks import resources

    try:
        new = retry(resources.catalog(), run_id)
    except (ApprovalError, DataBourseError) as exc:
        fail(str(exc))
    out.print(safe(f"new publish run {new.name} ({new.id}): {rt().run_url(str(new.id))}"))


def _print_decisions(decided: list[dict[str, Any]]) -> None:
    table = Table("decided", "product", "version", "market", "decision", "by", "reference", "note")
    for column in table.columns:
        column.overflow = "fold"
    for d in decided:
        carried = d.get("carried_over_from")
        note = f"carried over from {carried['version']}" if carried else (d.get("conditions") or "")
        table.add_row(*cells(
            (d["decided_at"] or "")[:19], d["product_id"], d["version"], d["market"],
            d["decision"], d["approver"], d.get("reference") or "", note,
        ))  # fmt: skip
    out.print(table)


@approvals_app.command("sweep")
def approvals_sweep(as_json: JsonOpt = False, stuck_after: StuckAfterOpt = 600) -> None:
    """Record expired approvals (idempotent); close the questions of runs cancelled or deleted
    in Prefect (audited); report publish runs stopped after an answer and every market pending
    approval that no live run asks for."""
    from bourse.stuck import describe, find
    from bourse.unasked import close_abandoned, unasked
    from bourse.unasked import describe as describe_unasked
    from tasks import resources
    from tasks.publishing import sweep_expired

    expired = sweep_expired(resources.catalog())
    closed = close_abandoned(resources.catalog())
    stuck = find(resources.catalog().transfer_decisions(), stuck_after, crash=True)
    lost = unasked(resources.catalog())
    if as_json:
        print_json({
            "expired": expired, "stuck": [s.to_json() for s in stuck], "closed": closed,
            "unasked": [u.to_json() for u in lost],
        })  # fmt: skip
        return
    for s in stuck:
        out.print(safe(describe(s)))
    for c in closed:
        why = c["detail"].get("cancelled", "")
        where = f"{c['product']}@{c['version']} -> {c['market']}, form {c['suspend_key']}"
        out.print(safe(f"closed: {where} of run {c['flow_run_id']}: {why}"))
    for u in lost:
        out.print(safe(describe_unasked(u)))
    for e in expired:
        where = f"{e['product_id']}@{e['version']} -> {e['market']}"
        out.print(safe(f"expired: {where} ({e['conditions']})"))
    out.print(f"{len(expired)} approval(s) recorded as expired")


def approve(
    run_id: Annotated[
        str, typer.Argument(help="The suspended publish run (bourse approvals list).")
    ],
    approver: Annotated[str, typer.Option(help="Who approves (name or staff id).")],
    reference: Annotated[str, typer.Option(help="Filing, certificate or assessment number.")],
    route: Annotated[str | None, typer.Option(help="Legal route; defaults to the rule's.")] = None,
    valid_until: Annotated[
        str | None, typer.Option(help="Expiry of the filing, YYYY-MM-DD.")
    ] = None,
    conditions: Annotated[str, typer.Option(help="Conditions attached.")] = "",
    evidence_url: Annotated[str, typer.Option(help="Where the evidence is kept.")] = "",
    basis: Annotated[
        str | None, typer.Option(help="Basis within the route; defaults to the route's first.")
    ] = None,
    carry_over: Annotated[
        bool,
        typer.Option(help="The reference also covers later versions (same schema, categories)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Approve a gated transfer (the same answer as the form in the Prefect UI)."""
    _answer(
        run_id,
        {
            "approver": approver,
            "decision": "approve",
            "reference": reference,
            "route": route,
            "basis": basis,
            "valid_until": valid_until,
            "conditions": conditions,
            "evidence_url": evidence_url,
            "carry_over": carry_over,
        },
        as_json,
    )


def reject(
    run_id: Annotated[
        str, typer.Argument(help="The suspended publish run (bourse approvals list).")
    ],
    approver: Annotated[str, typer.Option(help="Who rejects (name or staff id).")],
    reason: Annotated[str, typer.Option(help="Why the transfer is refused.")],
    reference: Annotated[str, typer.Option(help="A reference, if any.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Reject a gated transfer; the version stays unavailable in that market."""
    _answer(
        run_id,
        {"approver": approver, "decision": "reject", "reference": reference, "conditions": reason},
        as_json,
    )


def _answer(run_id: str, form: dict[str, Any], as_json: bool = False) -> None:
    import datetime as dt

    from bourse.approvals import ApprovalError, answer, asked
    from databourse.names import name_problems
    from databourse.transfer.policy import approval_problems
    from databourse.transfer.rules import Binding, form_value
    from tasks import resources

    if problems := name_problems(form["approver"], "approver"):
        fail("--approver: answer not sent: " + "; ".join(problems))
    catalog = resources.catalog()
    try:  # the question the pipeline recorded for the run's form, checked against the run
        pending = asked(catalog, run_id)
    except ApprovalError as exc:
        fail(f"answer not sent: {exc}")
    binding = Binding.of(pending)
    route = pending["route"]
    if form.pop("route", None) not in (None, route):
        fail(f"--route: answer not sent: the rule requires the route {route}")
    policy = resources.config().policy
    decision = form["decision"]
    sent = form_value({**form, **binding.to_json()}, policy.routes.get(route))
    # The form's rules and the flow's, done first: a bad answer is never sent.
    if problems := approval_problems(policy, route, sent, dt.date.today(), binding):
        fail("answer not sent, the run keeps waiting: " + "; ".join(problems))
    try:
        state = answer(run_id, sent)
    except ApprovalError as exc:
        fail(str(exc))
    url = rt().run_url(run_id)
    what = f"{binding.product}@{binding.version} -> {binding.market}"
    after = catalog.pending_for(run_id, pending["suspend_key"]) or pending
    if after["status"] == "refused":
        refused = "; ".join(after["detail"].get("refused", []))
        fail(f"{decision} for {what} refused by the pipeline: {refused} ({state}: {url})")
    if as_json:
        print_json({
            "run_id": run_id, "product": binding.product, "version": binding.version,
            "market": binding.market, "content_hash": binding.content_hash,
            "decision": decision, "state": state, "url": url,
        })  # fmt: skip
        return
    out.print(safe(f"answered for {what} (content {binding.content_hash[:16]})"))
    out.print(safe(f"{decision} recorded; publish run is now {state}: {url}"))
