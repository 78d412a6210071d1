"""Tasks: open the question a publish run suspends on, and record (or refuse) its answer.

The answer is read from the Prefect API, never taken from the caller, and is recorded only on
the suspension that asked for it: the run's current parameters still name the version the form
was opened for, the answer carries that form's product, version, content hash, market and
nonce, and it meets the form's own schema (`databourse.transfer.rules`) checked here again,
since an input can be written into the Prefect API without the server's check. Every refusal
marks the suspension refused, is audited and logged (names and hashes only), and leaves the
market pending.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any
from uuid import UUID

import httpx
from prefect import Flow, State, get_run_logger, task
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import ObjectNotFound
from prefect.input.run_input import keyset_from_base_key

from databourse.errors import TransferNotApproved
from databourse.transfer.form_binding import description_sha256, form_problems, schema_sha256
from databourse.transfer.policy import answer_basis, approval_problems
from databourse.transfer.rules import Binding, flat_answer
from tasks import resources
from tasks.publishing import NO_IDENTITY, PUBLISH_FLOW, version_facts

_STATUS = {"approved": "available", "rejected": "rejected"}
log = logging.getLogger(__name__)


@task(
    name="open-approval",
    task_run_name="open approval {product_id}@{version} {key}",
)
def open_approval(
    product_id: str, version: str, decision: dict[str, Any], key: str, flow_run_id: str
) -> dict[str, Any]:
    """The pending approval this suspension asks (the same row and nonce after a resume)."""
    return resources.catalog().open_pending(
        product_id,
        version,
        decision["market"],
        decision["route"],
        decision["rule_id"],
        flow_run_id,
        key,
        resources.config().settings.approval_timeout_seconds,
    )


@task(name="bind-form")
def bind_form(pending_id: int, description: str, schema: dict[str, Any]) -> dict[str, str]:
    """Keep the sha256 of the form's description and schema the pipeline wrote (the first
    ones stay): a form replaced later through the Prefect API is refused (form_binding)."""
    sha256s = {
        "description_sha256": description_sha256(description),
        "schema_sha256": schema_sha256(schema),
    }
    return resources.catalog().note_form(pending_id, sha256s)


@task(name="check-run-binding")
def check_run_binding(
    product_id: str, version: str, flow_run_id: str, market: str | None = None
) -> None:
    """Refuse a run whose parameters changed after it asked for approval (it stops here);
    `market`: a run that asks that market alone (tasks.asking) asked no other."""
    catalog = resources.catalog()
    moved = [
        p
        for p in catalog.pending_of_run(flow_run_id)
        if (p["product"], p["version"]) != (product_id, version)
        or market not in (None, p["market"])
    ]
    if not moved:
        return
    problems = [_moved(flow_run_id, product_id, version, moved[0])]
    for pending in moved:
        if pending["status"] == "waiting":
            catalog.refuse_pending(pending["id"], problems, None)
    get_run_logger().warning("run %s refused: %s", flow_run_id, problems[0])
    raise TransferNotApproved(
        problems[0] + f"; start a new publish run (bourse approvals retry {flow_run_id})",
        product=moved[0]["product"],
        version=moved[0]["version"],
    )


def _moved(run_id: str, product_id: str, version: str, pending: dict[str, Any]) -> str:
    return (
        f"run {run_id}'s parameters name {product_id}@{version}, but its approval form "
        f"{pending['suspend_key']} was opened for {pending['product']}@{pending['version']} "
        f"-> {pending['market']} "
        f"(content {pending['content_hash'][:16]}): the parameters were changed while it waited"
    )


@task(
    name="record-approval",
    task_run_name="record answer {product_id}@{version} {market}",
)
def record_approval(
    product_id: str, version: str, market: str, route: str, key: str, flow_run_id: str
) -> dict[str, Any]:
    """Record the answer Prefect stored for this suspension's form, or refuse it (audited).

    Returns `recorded`, the market's `status`, the `problems` of a refused answer, the current
    `decision`, and `final` when the run must stop (its parameters or the version's content
    changed, the version was withdrawn, the form cancelled or already answered).
    """
    catalog = resources.catalog()
    pending = catalog.pending_for(flow_run_id, key)
    if pending is None:
        raise TransferNotApproved(
            f"no approval form {key} was opened in run {flow_run_id}: there is nothing to answer",
            product=product_id,
            version=version,
        )
    stored, sender, params, shown = read_answer(product_id, version, key, flow_run_id)
    if pending["status"] == "recorded":  # the run runs again from the top after a resume
        return {"recorded": True, "status": _market_status(pending), "problems": [], "final": True}
    final = _final_problems(pending, params, (product_id, version, market, flow_run_id))
    if final:
        return _refuse(pending, final, stored, None, final=True)
    cfg = resources.config()
    binding = Binding.of(pending)
    problems = form_problems(pending, shown)
    problems += approval_problems(cfg.policy, route, stored, dt.date.today(), binding)
    facts, exporter = version_facts(product_id, version)
    [now] = catalog.apply_transfer_policy(
        product_id, version, cfg.policy, facts, [market], exporter, carry_over=False
    )
    answer = flat_answer(stored)  # the recorded fields: `decision` is approve or reject
    approve = answer.get("decision") == "approve"
    if now["status"] != "pending_approval":
        problems = [f"{market} is {now['status']} now: there is nothing to answer"]
    elif approve and now["route"] != route:  # a refusal stands whatever the route
        problems = [
            f"the decision changed while the form waited: rule {now['rule_id']} now requires "
            f"the route {now['route']} (the form was for {route})"
        ]
    if problems:
        return _refuse(pending, problems, answer, now, final=False)
    until = answer.get("valid_until")
    rec = catalog.record_approval(
        product_id,
        version,
        market,
        "approved" if approve else "rejected",
        approver=answer["approver"],
        route=route,
        reference=answer.get("reference") or None,
        conditions=answer.get("conditions") or None,
        evidence_url=answer.get("evidence_url") or None,
        valid_until=dt.date.fromisoformat(until) if until else None,
        flow_run_id=flow_run_id,
        prefect_identity=None,  # the open-source API takes any `sender` a writer types
        content_hash=pending["content_hash"],
        basis=answer_basis(cfg.policy, route, answer) if approve else None,
        carry_over=bool(answer.get("carry_over")) and approve,
        identity_note=identity_note(sender),
        pending_id=pending["id"],
        nonce=answer.get("nonce"),
    )
    get_run_logger().info(
        "%s@%s -> %s: %s by %s", product_id, version, market, rec.decision, rec.approver
    )
    status = _STATUS[rec.decision]
    return {"recorded": True, "status": status, "problems": [], "decision": now, "final": True}


def identity_note(sender: object) -> str:
    """The record's identity note: no verified identity; a `sender` given is a mere claim."""
    if not sender:
        return NO_IDENTITY
    claim = ascii(str(sender)[:120])  # escaped: the writer chose every character
    return (
        f"{NO_IDENTITY}. The stored answer claims the sender {claim}: unverified, since "
        "anyone who can write the Prefect API sets that field"
    )


def _final_problems(
    pending: dict[str, Any], params: dict[str, Any], asked: tuple[str, str, str, str]
) -> list[str]:
    """What makes any answer on this form void: the run, version or form is not as asked."""
    product_id, version, market, run_id = asked
    named = (str(params.get("product")), str(params.get("version")))
    for claimed in (named, (product_id, version)):
        if claimed != (pending["product"], pending["version"]):
            return [_moved(run_id, *claimed, pending)]
    if pending["market"] != market:
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


def _refuse(
    pending: dict[str, Any],
    problems: list[str],
    answer: dict[str, Any],
    decision: dict[str, Any] | None,
    final: bool,
) -> dict[str, Any]:
    """Mark the suspension refused, audit it, and say what the flow does next."""
    actor = str(answer.get("approver") or "")[:200] or None
    resources.catalog().refuse_pending(pending["id"], problems, actor, keep_status=True)
    where = f"{pending['product']}@{pending['version']} -> {pending['market']}"
    get_run_logger().warning("%s: answer refused: %s", where, "; ".join(problems))
    status = decision["status"] if decision else _market_status(pending)
    return {
        "recorded": False,
        "status": status,
        "problems": problems,
        "decision": decision,
        "final": final,
    }


def _market_status(pending: dict[str, Any]) -> str:
    shown = resources.catalog().show(pending["product"], pending["version"])
    for v in shown.get("versions", []):
        for a in v.get("availability", []):
            if a["market"] == pending["market"]:
                return str(a["status"])
    return "undecided"


def read_answer(
    product_id: str, version: str, key: str, flow_run_id: str
) -> tuple[dict[str, Any], str | None, dict[str, Any], dict[str, object]]:
    """The answer stored in Prefect for a publish run's form, its sender (a claim), the run's
    parameters and what the form shows now (its `description` and `schema`)."""
    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(UUID(flow_run_id))
        except (ObjectNotFound, ValueError):
            raise TransferNotApproved(
                f"no publish run {flow_run_id!r} exists", product=product_id, version=version
            ) from None
        if client.read_flow(run.flow_id).name != PUBLISH_FLOW:
            raise TransferNotApproved(
                f"run {flow_run_id} is not a publish run", product=product_id, version=version
            )
        keys = keyset_from_base_key(f"suspended-{key}")
        response_key = keys["response"]
        found = client.filter_flow_run_input(run.id, response_key, 1, set())
        shown = {p: _read_input(client, run.id, keys[p]) for p in ("description", "schema")}
    if not found or found[0].key != response_key:
        raise TransferNotApproved(
            f"no answer was given on the approval form {key} of run {flow_run_id}",
            product=product_id,
            version=version,
        )
    value = found[0].decoded_value
    answer = dict(value) if isinstance(value, dict) else {"answer": "not an object"}
    if not isinstance(shown["description"], str):
        shown["description"] = None
    return answer, found[0].sender, dict(run.parameters), shown


def _read_input(client: SyncPrefectClient, run_id: UUID, key: str) -> object:
    """The decoded value of one flow-run input, exactly that key (None when there is none)."""
    try:
        return json.loads(client.read_flow_run_input(run_id, key))
    except (ObjectNotFound, ValueError):
        return None
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 404:
            return None
        raise


def close_questions(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Flow hook: a publish run that failed leaves no question marked waiting (`failed`)."""
    why = (state.message or "the run failed").splitlines()[0]
    try:
        closed = resources.catalog().close_pending(str(flow_run.id), "failed", why)
    except Exception as exc:  # a hook must not hide the run's own failure
        log.warning("run %s: questions not closed: %s", flow_run.id, type(exc).__name__)
        return
    if closed:
        log.info("%s run %s failed: %d question(s) marked failed", flow.name, flow_run.id, closed)
