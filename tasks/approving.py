"""Tasks: open the question a publish run suspends on, and record (or refuse) its answer.

The answer is read from the Prefect API, never taken from the caller, and is recorded only on
the suspension that asked for it (the checks: `databourse.steps.approving`): the run's current
parameters still name the version the form was opened for, the answer carries that form's
product, version, content hash, market and nonce, and it meets the form's own schema
(`databourse.transfer.rules`) checked again, since an input can be written into the Prefect API
without the server's check. Every refusal marks the suspension refused, is audited and logged
(names and hashes only), and leaves the market pending.
"""

from __future__ import annotations

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
from databourse.steps import approving
from databourse.steps.approving import AnswerOutcome, Question, StoredAnswer
from databourse.transfer.form_binding import description_sha256, schema_sha256
from tasks import resources
from tasks.publishing import PUBLISH_FLOW

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
    moved = approving.check_run_binding(
        resources.bundle(), product_id, version, flow_run_id, market
    )
    if moved is None:
        return
    get_run_logger().warning("run %s refused: %s", flow_run_id, moved.problem)
    raise moved.error()


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
    res = resources.bundle()
    question = Question(product_id, version, market, route, key, flow_run_id)
    pending = approving.opened_question(res, question)
    stored = read_answer(product_id, version, key, flow_run_id)
    outcome = approving.record_answer(res, question, pending, stored)
    log_outcome(question, outcome)
    return outcome.to_json()


def log_outcome(question: Question, outcome: AnswerOutcome) -> None:
    """The run's log line of an answer recorded or refused (names only, never values)."""
    if outcome.approval is not None:
        rec = outcome.approval
        get_run_logger().info(
            "%s@%s -> %s: %s by %s",
            question.product, question.version, question.market, rec.decision, rec.approver,
        )  # fmt: skip
    elif not outcome.recorded:
        get_run_logger().warning(
            "%s: answer refused: %s", outcome.where, "; ".join(outcome.problems)
        )


def read_answer(product_id: str, version: str, key: str, flow_run_id: str) -> StoredAnswer:
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
    return StoredAnswer(answer, found[0].sender, dict(run.parameters), shown)


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
