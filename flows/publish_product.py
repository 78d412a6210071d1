"""Flow: the transfer gate and publication of one product version.

Runs from a deployment (`publish-product/gated`) because an approval suspends it: the run waits
on an input form for days without holding a worker, and runs again from the top once answered.
Every step before the gate is idempotent and cached, so the re-run only records the answer. The
flow has no parameter or setting that skips the gate: a market that needs approval is opened
only by an answer recorded from the form (or an earlier approval the rules let carry over).
Each suspension first records its question in the catalog (content hash, market, nonce); the
form carries those as constants and an answer counts only on that question. A run whose
parameters changed after it asked stops at once; a refused answer is audited and asked again,
and so is one given while the form's description or schema differs from what the run wrote.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.runtime import deployment, flow_run
from pydantic import ValidationError

from databourse.errors import TransferNotApproved
from databourse.transfer.rules import Binding
from flows.approval_form import approval_description, approval_form, stored_schema
from flows.run_names import publication
from flows.suspending import suspend
from tasks import reporting, resources
from tasks.anchoring import anchor_audit
from tasks.approving import (
    bind_form,
    check_run_binding,
    close_questions,
    open_approval,
    record_approval,
)
from tasks.asking import ask_beside
from tasks.lineage import published, tracked
from tasks.publishing import (
    PUBLISH_DEPLOYMENT,
    approval_key,
    decide_market,
    decide_transfers,
    export_catalog,
    sweep_approvals,
)
from tasks.retrying import PUBLISH_RUN_SECONDS

DEPLOYMENT = PUBLISH_DEPLOYMENT
MAX_ANSWERS = 5  # refused answers (incomplete, stale) before the run gives up; a new run asks


@flow(
    name="publish-product",
    flow_run_name=publication,
    persist_result=True,
    on_failure=[close_questions],
    timeout_seconds=PUBLISH_RUN_SECONDS,  # from each (re)start; a suspended run holds no process
)
def publish_product(product: str, version: str, market: str | None = None) -> dict[str, Any]:
    """Decide each market; every market that awaits a person is asked at once, each on its own
    form: the first in this run, the others in runs of their own (`market`: such a run, which
    decides and asks that market alone). Record the answers."""
    with tracked(published(product, version)):
        if flow_run.id is not None:
            check_run_binding(product, version, str(flow_run.id), market)
        sweep_approvals()
        if market is not None:
            decision = decide_market(product, version, market)
            if decision is not None and decision["status"] == "pending_approval":
                _ask(product, version, decision)
        else:
            decisions = decide_transfers(product, version)
            _tag_markets(decisions)
            # Listed at once in the markets open without an approval (issue 19: the export was
            # written only after every question was answered, days later), then after the answers.
            export_catalog()
            waiting = [d for d in decisions if d["status"] == "pending_approval"]
            if len(waiting) > 1 and deployment.id is not None:
                ask_beside(product, version, [d["market"] for d in waiting[1:]])
            if waiting:
                _ask(product, version, waiting[0])
        export_catalog()
        anchor_audit()
        shown = resources.catalog().show(product, version)
        reporting.markdown(
            f"publish-{product}",
            _summary(product, version, shown),
            f"Availability of {product}@{version}",
        )
    return shown


def _tag_markets(decisions: list[dict[str, Any]]) -> None:
    """Tag this run `market:XX` for each market decided, and `awaiting-approval` if one waits."""
    if flow_run.id is None:
        return
    wanted = {f"market:{d['market']}" for d in decisions}
    if any(d["status"] == "pending_approval" for d in decisions):
        wanted.add("awaiting-approval")
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run.id)
        client.update_flow_run(flow_run.id, tags=sorted(set(run.tags) | wanted))


def _untag_waiting() -> None:
    """The run waits for no one now: drop the `awaiting-approval` tag operators filter on."""
    if flow_run.id is None:
        return
    with get_client(sync_client=True) as client:
        tags = set(client.read_flow_run(flow_run.id).tags)
        if "awaiting-approval" in tags:
            client.update_flow_run(flow_run.id, tags=sorted(tags - {"awaiting-approval"}))


def _ask(product: str, version: str, decision: dict[str, Any]) -> None:
    """Suspend on the market's form until an answer is recorded; a refused one asks again."""
    market = decision["market"]
    if deployment.id is None:
        raise TransferNotApproved(
            f"{product}@{version} -> {market} needs an approval: run publish-product from its "
            f"deployment ({DEPLOYMENT}) so that the run can wait for the answer",
            product=product,
            version=version,
            market=market,
        )
    refused: list[str] = []
    for attempt in range(1, MAX_ANSWERS + 1):
        outcome = _ask_once(product, version, decision, attempt, refused)
        if outcome["final"] and not outcome["recorded"]:
            raise TransferNotApproved(
                f"{product}@{version} -> {market}: answer refused: "
                + "; ".join(outcome["problems"]),
                product=product,
                version=version,
                market=market,
            )
        if outcome["recorded"] or outcome["status"] != "pending_approval":
            _untag_waiting()
            return
        refused, decision = outcome["problems"], outcome["decision"]
    raise TransferNotApproved(
        f"{product}@{version} -> {market}: {MAX_ANSWERS} answers refused; start a new publish run",
        product=product,
        version=version,
        market=market,
    )


def _ask_once(
    product: str, version: str, decision: dict[str, Any], attempt: int, refused: list[str]
) -> dict[str, Any]:
    """Open this suspension's question, suspend on its form, then record or refuse the answer."""
    cfg = resources.config()
    market, route = decision["market"], decision["route"]
    key, spec, run_id = approval_key(market, attempt), cfg.policy.routes[route], str(flow_run.id)
    pending = open_approval(product, version, decision, key, run_id)
    binding = Binding.of(pending)
    timeout = cfg.settings.approval_timeout_seconds
    description = approval_description(product, version, decision, spec, timeout, binding, refused)
    form = approval_form(route, spec, description, binding)
    bind_form(pending["id"], description, stored_schema(form))  # replaced later: refused
    get_run_logger().info(
        "%s@%s -> %s waits for approval (route %s)", product, version, market, route
    )
    try:
        suspend(form, key, timeout)  # heartbeats stopped first: never taken for dead
    except ValidationError:
        pass  # an answer stored around the form: record_approval refuses it, audited
    return record_approval(product, version, market, route, key, run_id)


def _summary(product: str, version: str, shown: dict[str, Any]) -> str:
    rows = []
    for v in shown.get("versions", []):
        if v.get("version") != version:
            continue
        for a in v.get("availability", []):
            rows.append(f"| {a['market']} | {a['status']} | {a.get('rule_id') or ''} |")
    return (
        f"### {product}@{version}\n\n| market | status | rule |\n|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
