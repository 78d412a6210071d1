"""Record an approver's answer on the form that asked for it, or refuse it (audited).

The answer counts only on the suspension that asked for it: the run's current parameters still
name the version the form was opened for, the answer carries that form's product, version,
content hash, market and nonce, and it meets the form's own schema (`databourse.transfer.rules`)
checked here again, since an input can be written into the Prefect API without the server's
check. Every refusal marks the suspension refused, is audited, and leaves the market pending.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from databourse.catalog.records import ApprovalRecord
from databourse.errors import TransferNotApproved
from databourse.steps.publishing import version_facts
from databourse.steps.resources import Resources
from databourse.transfer.form_binding import form_problems
from databourse.transfer.policy import answer_basis, approval_problems
from databourse.transfer.rules import Binding, flat_answer

NO_IDENTITY = (
    "the Prefect API gives no identity for this answer (the open-source server has no users): "
    "approvers are whoever holds the API's auth string, or reaches an API without one; the "
    "approver is the name typed on the form"
)
STATUS = {"approved": "available", "rejected": "rejected"}  # a market's status after a decision


@dataclass(frozen=True)
class Question:
    """The form a publish run suspended on: the version and market asked, the route, the
    form's suspend key and the run."""

    product: str
    version: str
    market: str
    route: str
    key: str
    run_id: str


@dataclass(frozen=True)
class StoredAnswer:
    """What the orchestrator holds for a form: the answer, its sender (a mere claim), the run's
    parameters now, and what the form shows now (its `description` and `schema`)."""

    answer: dict[str, Any]
    sender: str | None
    params: dict[str, Any]
    shown: dict[str, object]


@dataclass(frozen=True)
class AnswerOutcome:
    """An answer recorded or refused: the market's `status`, the `problems` of a refused answer,
    the current `decision`, and `final` when the run must stop."""

    recorded: bool
    status: str
    problems: list[str]
    decision: dict[str, Any] | None
    final: bool
    approval: ApprovalRecord | None = None  # the record written by this answer
    earlier: bool = False  # recorded before (the run runs again from the top after a resume)
    where: str = ""  # the form's product@version -> market

    def to_json(self) -> dict[str, Any]:
        """What the record-approval task returns (no `decision` for an answer recorded before)."""
        if self.earlier:
            return {"recorded": True, "status": self.status, "problems": [], "final": True}
        return {
            "recorded": self.recorded,
            "status": self.status,
            "problems": list(self.problems),
            "decision": self.decision,
            "final": self.final,
        }


@dataclass(frozen=True)
class MovedRun:
    """A run whose parameters changed after it asked for approval: it must stop."""

    problem: str
    product: str  # the version its form was opened for
    version: str
    run_id: str

    def error(self) -> TransferNotApproved:
        """The refusal that stops the run."""
        return TransferNotApproved(
            self.problem + f"; start a new publish run (bourse approvals retry {self.run_id})",
            product=self.product,
            version=self.version,
        )


def check_run_binding(
    res: Resources, product_id: str, version: str, flow_run_id: str, market: str | None = None
) -> MovedRun | None:
    """Refuse each waiting form of a run whose parameters changed after it asked for approval
    (None: they did not); `market`: a run that asks that market alone asked no other."""
    moved = [
        p
        for p in res.catalog.pending_of_run(flow_run_id)
        if (p["product"], p["version"]) != (product_id, version)
        or market not in (None, p["market"])
    ]
    if not moved:
        return None
    problems = [moved_problem(flow_run_id, product_id, version, moved[0])]
    for pending in moved:
        if pending["status"] == "waiting":
            res.catalog.refuse_pending(pending["id"], problems, None)
    return MovedRun(problems[0], moved[0]["product"], moved[0]["version"], flow_run_id)


def moved_problem(run_id: str, product_id: str, version: str, pending: dict[str, Any]) -> str:
    """Why a run whose parameters name another version than its form's is refused."""
    return (
        f"run {run_id}'s parameters name {product_id}@{version}, but its approval form "
        f"{pending['suspend_key']} was opened for {pending['product']}@{pending['version']} "
        f"-> {pending['market']} "
        f"(content {pending['content_hash'][:16]}): the parameters were changed while it waited"
    )


def opened_question(res: Resources, question: Question) -> dict[str, Any]:
    """The pending approval the pipeline opened for this form (TransferNotApproved: none)."""
    pending = res.catalog.pending_for(question.run_id, question.key)
    if pending is None:
        raise TransferNotApproved(
            f"no approval form {question.key} was opened in run {question.run_id}: there is "
            "nothing to answer",
            product=question.product,
            version=question.version,
        )
    return pending


def record_answer(
    res: Resources,
    question: Question,
    pending: dict[str, Any],
    stored: StoredAnswer,
    *,
    today: dt.date | None = None,
) -> AnswerOutcome:
    """Record the answer stored for this form (`pending`, `opened_question`), or refuse it:
    the run, version or form is not as asked (final), the answer breaks the form's rules or was
    given on a replaced form, or the market's decision changed while the form waited."""
    if pending["status"] == "recorded":  # the run runs again from the top after a resume
        status = market_status(res, pending)
        return AnswerOutcome(True, status, [], None, True, earlier=True)
    final = final_problems(pending, stored.params, question)
    if final:
        return refuse_answer(res, pending, final, stored.answer, None, final=True)
    policy, route, market = res.config.policy, question.route, question.market
    problems = form_problems(pending, stored.shown)
    problems += approval_problems(
        policy, route, stored.answer, today or dt.date.today(), Binding.of(pending)
    )
    facts, exporter = version_facts(res, question.product, question.version)
    [now] = res.catalog.apply_transfer_policy(
        question.product, question.version, policy, facts, [market], exporter, carry_over=False
    )
    answer = flat_answer(stored.answer)  # the recorded fields: `decision` is approve or reject
    approve = answer.get("decision") == "approve"
    if now["status"] != "pending_approval":
        problems = [f"{market} is {now['status']} now: there is nothing to answer"]
    elif approve and now["route"] != route:  # a refusal stands whatever the route
        problems = [
            f"the decision changed while the form waited: rule {now['rule_id']} now requires "
            f"the route {now['route']} (the form was for {route})"
        ]
    if problems:
        return refuse_answer(res, pending, problems, answer, now, final=False)
    rec = _write_approval(res, question, pending, answer, stored.sender)
    return AnswerOutcome(True, STATUS[rec.decision], [], now, True, approval=rec)


def _write_approval(
    res: Resources,
    question: Question,
    pending: dict[str, Any],
    answer: dict[str, Any],
    sender: str | None,
) -> ApprovalRecord:
    """The catalog's record of an answer that passed every check."""
    approve = answer.get("decision") == "approve"
    until = answer.get("valid_until")
    return res.catalog.record_approval(
        question.product,
        question.version,
        question.market,
        "approved" if approve else "rejected",
        approver=answer["approver"],
        route=question.route,
        reference=answer.get("reference") or None,
        conditions=answer.get("conditions") or None,
        evidence_url=answer.get("evidence_url") or None,
        valid_until=dt.date.fromisoformat(until) if until else None,
        flow_run_id=question.run_id,
        prefect_identity=None,  # the open-source API takes any `sender` a writer types
        content_hash=pending["content_hash"],
        basis=answer_basis(res.config.policy, question.route, answer) if approve else None,
        carry_over=bool(answer.get("carry_over")) and approve,
        identity_note=identity_note(sender),
        pending_id=pending["id"],
        nonce=answer.get("nonce"),
    )


def identity_note(sender: object) -> str:
    """The record's identity note: no verified identity; a `sender` given is a mere claim."""
    if not sender:
        return NO_IDENTITY
    claim = ascii(str(sender)[:120])  # escaped: the writer chose every character
    return (
        f"{NO_IDENTITY}. The stored answer claims the sender {claim}: unverified, since "
        "anyone who can write the Prefect API sets that field"
    )


def final_problems(
    pending: dict[str, Any], params: dict[str, Any], question: Question
) -> list[str]:
    """What makes any answer on this form void: the run, version or form is not as asked."""
    product_id, version = question.product, question.version
    named = (str(params.get("product")), str(params.get("version")))
    for claimed in (named, (product_id, version)):
        if claimed != (pending["product"], pending["version"]):
            return [moved_problem(question.run_id, *claimed, pending)]
    if pending["market"] != question.market:
        return [f"the approval form {pending['suspend_key']} was opened for {pending['market']}"]
    if pending["version_content_hash"] != pending["content_hash"]:
        return [
            f"the content of {product_id}@{version} changed since the form was opened "
            f"({pending['content_hash'][:16]} -> {pending['version_content_hash'][:16]})"
        ]
    if pending["version_status"] == "withdrawn":
        return [f"{product_id}@{version} was withdrawn: its approval form was cancelled"]
    if pending["status"] == "cancelled":
        return [
            f"the approval form {pending['suspend_key']} was closed: its run was cancelled or "
            "deleted in Prefect (start a new publish run)"
        ]
    if pending["status"] != "waiting":
        return [f"the approval form {pending['suspend_key']} was already answered"]
    return []


def refuse_answer(
    res: Resources,
    pending: dict[str, Any],
    problems: list[str],
    answer: dict[str, Any],
    decision: dict[str, Any] | None,
    final: bool,
) -> AnswerOutcome:
    """Mark the suspension refused and audit it; the outcome says what the flow does next."""
    actor = str(answer.get("approver") or "")[:200] or None
    res.catalog.refuse_pending(pending["id"], problems, actor, keep_status=True)
    where = f"{pending['product']}@{pending['version']} -> {pending['market']}"
    status = decision["status"] if decision else market_status(res, pending)
    return AnswerOutcome(False, status, problems, decision, final, where=where)


def market_status(res: Resources, pending: dict[str, Any]) -> str:
    """The status of the form's market in the catalog now ("undecided": none recorded)."""
    shown = res.catalog.show(pending["product"], pending["version"])
    for v in shown.get("versions", []):
        for a in v.get("availability", []):
            if a["market"] == pending["market"]:
                return str(a["status"])
    return "undecided"
