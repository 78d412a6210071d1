"""Tasks: the transfer gate per market, answers read back from Prefect, the expiry sweep."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from uuid import UUID

from prefect import get_run_logger, task
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound
from prefect.input.run_input import keyset_from_base_key

from databourse.catalog import Catalog
from databourse.errors import CatalogError, TransferNotApproved, VersionNotFound
from databourse.package import read_manifest
from databourse.transfer import TransferFacts, answer_basis, approval_problems, facts_for
from tasks import reporting, resources
from tasks.retrying import LIGHT_SECONDS, RETRY_TRANSIENT

PUBLISH_FLOW = "publish-product"
KEY_PREFIX = "approval-"
# Prefect 3.8.8 fails a suspended run whose timeout passed with "The flow was paused and never
# resumed." (its pause-expirations service) or "... suspended and never resumed." (a late resume).
EXPIRED_MARK = "never resumed"
NO_IDENTITY = (
    "the Prefect API reported no identity for this answer (open-source server without "
    "authentication): approvers are whoever can reach the Prefect UI or API; the approver is "
    "the name typed on the form"
)
log = logging.getLogger(__name__)


def approval_key(market: str, attempt: int = 1) -> str:
    """The suspend key of a market's approval form (a refused answer asks again, new key)."""
    return f"{KEY_PREFIX}{market.lower()}" + (f"-{attempt}" if attempt > 1 else "")


def market_of(key: str | None) -> str | None:
    """The market an approval key is for (None for other pauses)."""
    if not key or not key.startswith(KEY_PREFIX):
        return None
    return key.removeprefix(KEY_PREFIX).split("-")[0].upper()


def version_facts(product_id: str, version: str) -> tuple[TransferFacts, str]:
    """What the version's manifest says the rules need, and its exporter (the provider)."""
    cfg = resources.config()
    product = cfg.product(product_id)
    manifest = read_manifest(resources.store(), product_id, version)
    if manifest is None:
        raise VersionNotFound(
            f"{product_id}@{version} has no manifest: it was never packaged",
            product=product_id,
            version=version,
        )
    src, personal = product.source, manifest["personal_data"]
    facts = facts_for(
        cfg.providers[src.provider].jurisdiction,
        personal["remaining"],
        personal["individuals"],
        cfg.dataset(src.provider, src.dataset).important_data,
    )
    return facts, src.provider


@task(
    name="decide-transfers",
    task_run_name="transfer decisions {product_id}@{version}",
    timeout_seconds=LIGHT_SECONDS,
    **RETRY_TRANSIENT,
)
def decide_transfers(product_id: str, version: str) -> list[dict[str, Any]]:
    """Publish the version and run the transfer gate on every market of the product."""
    logger = get_run_logger()
    cfg = resources.config()
    catalog = resources.catalog()
    facts, exporter = version_facts(product_id, version)
    catalog.publish_version(product_id, version)
    markets = list(cfg.product(product_id).markets)
    decisions = catalog.apply_transfer_policy(
        product_id, version, cfg.policy, facts, markets, exporter
    )
    for d in decisions:
        logger.info(
            "%s@%s -> %s: %s, %s (rule %s)",
            product_id, version, d["market"], d["decision"], d["status"], d["rule_id"],
        )  # fmt: skip
    reporting.table(
        f"transfer-{product_id}",
        [
            {
                "market": d["market"],
                "decision": d["decision"],
                "status": d["status"],
                "rule": d["rule_id"],
                "route": d["route"] or d["exemption"] or d["reason"],
                "carried over from": (d["carried_over_from"] or {}).get("version", ""),
            }
            for d in decisions
        ],
        f"Cross-border decisions for {product_id}@{version}",
    )
    return decisions


@task(
    name="record-approval",
    task_run_name="record answer {product_id}@{version} {market}",
    timeout_seconds=LIGHT_SECONDS,
)
def record_approval(
    product_id: str, version: str, market: str, route: str, key: str, flow_run_id: str
) -> dict[str, Any]:
    """Record the answer Prefect stored for this run's form, if the policy still lets it stand.

    The answer is read from the Prefect API, never taken from the caller. It is not recorded
    (`recorded` false, with `problems`) when the decision changed while the form waited (the
    exporter's count crossed a threshold) or when the answer misses what the route requires.
    """
    answer, sender = read_answer(product_id, version, key, flow_run_id)
    cfg = resources.config()
    catalog = resources.catalog()
    facts, exporter = version_facts(product_id, version)
    [now] = catalog.apply_transfer_policy(
        product_id, version, cfg.policy, facts, [market], exporter, carry_over=False
    )
    approve = answer.get("decision") == "approve"
    problems = approval_problems(cfg.policy, route, answer, dt.date.today())
    if now["status"] != "pending_approval":
        problems = [f"{market} is {now['status']} now: there is nothing to answer"]
    elif approve and now["route"] != route:  # a refusal stands whatever the route
        problems = [
            f"the decision changed while the form waited: rule {now['rule_id']} now requires "
            f"the route {now['route']} (the form was for {route})"
        ]
    if problems:
        where = f"{product_id}@{version} -> {market}"
        get_run_logger().warning("%s: answer not recorded: %s", where, "; ".join(problems))
        return {"recorded": False, "status": now["status"], "problems": problems, "decision": now}
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
        prefect_identity=sender,
        basis=answer_basis(cfg.policy, route, answer) if approve else None,
        carry_over=bool(answer.get("carry_over")) and approve,
        identity_note=None if sender else NO_IDENTITY,
    )
    get_run_logger().info(
        "%s@%s -> %s: %s by %s", product_id, version, market, rec.decision, rec.approver
    )
    return {"recorded": True, "status": _STATUS[rec.decision], "problems": [], "decision": now}


_STATUS = {"approved": "available", "rejected": "rejected"}


def read_answer(
    product_id: str, version: str, key: str, flow_run_id: str
) -> tuple[dict[str, Any], str | None]:
    """The answer stored in Prefect for a publish run's form, and its sender (an identity)."""
    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(UUID(flow_run_id))
        except (ObjectNotFound, ValueError):
            raise TransferNotApproved(
                f"no publish run {flow_run_id!r} exists", product=product_id, version=version
            ) from None
        flow = client.read_flow(run.flow_id)
        params = run.parameters
        if flow.name != PUBLISH_FLOW or (params.get("product"), params.get("version")) != (
            product_id,
            version,
        ):
            raise TransferNotApproved(
                f"run {flow_run_id} is not a publish run of {product_id}@{version}",
                product=product_id,
                version=version,
            )
        response_key = keyset_from_base_key(f"suspended-{key}")["response"]
        found = client.filter_flow_run_input(run.id, response_key, 1, set())
    if not found or found[0].key != response_key:
        raise TransferNotApproved(
            f"no answer was given on the approval form {key} of run {flow_run_id}",
            product=product_id,
            version=version,
        )
    return dict(found[0].decoded_value), found[0].sender


# --- expiry -----------------------------------------------------------------------------------


def sweep_expired(catalog: Catalog, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Record as expired every approval whose publish run timed out waiting (idempotent).

    A suspended run past its timeout, or one the Prefect server failed for it, is recorded once
    per run; a market answered meanwhile by another run is left alone, and runs of products
    this catalog does not hold are skipped.
    """
    now = now or dt.datetime.now(dt.UTC)
    done = {run for run, _ in catalog.expired_runs()}
    out = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[PUBLISH_FLOW])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.PAUSED, StateType.FAILED])
                )
            ),
        )
        for run in runs:
            wait = None if str(run.id) in done else _timed_out(client, run, now)
            if wait is None:
                continue
            market, waited = wait
            product, version = str(run.parameters["product"]), str(run.parameters["version"])
            try:
                rec = catalog.record_expiry(product, version, market, str(run.id), waited)
            except CatalogError as exc:
                log.info("sweep: run %s not recorded: %s", run.id, exc)
                continue
            if rec is not None:
                log.info("%s@%s -> %s: approval expired (run %s)", product, version, market, run.id)
                out.append(rec.to_json())
    return out


def _timed_out(client: SyncPrefectClient, run: FlowRun, now: dt.datetime) -> tuple[str, str] | None:
    """(market, what happened) when the run's approval wait timed out, else None."""
    state = run.state
    if state is None:
        return None
    if state.is_paused():
        suspended = [state]
    elif state.is_failed() and EXPIRED_MARK in (state.message or ""):
        history = sorted(client.read_flow_run_states(run.id), key=lambda s: s.timestamp)
        suspended = [s for s in history if s.is_paused()][-1:]
    else:
        return None
    for s in suspended:
        details = s.state_details
        market = market_of(details.pause_key)
        timeout = details.pause_timeout
        if market and timeout is not None and timeout < now:
            return market, f"suspended {s.timestamp.isoformat()}, timed out {timeout.isoformat()}"
    return None


@task(name="sweep-approvals", timeout_seconds=LIGHT_SECONDS)
def sweep_approvals() -> int:
    """Record expired approvals left by earlier publish runs; returns how many."""
    expired = sweep_expired(resources.catalog())
    if expired:
        get_run_logger().info("%d approval(s) recorded as expired", len(expired))
    return len(expired)


@task(name="export-catalog", timeout_seconds=LIGHT_SECONDS, **RETRY_TRANSIENT)
def export_catalog() -> dict[str, str]:
    """Refresh the DCAT-AP export and the HTML catalog page after a publication."""
    from databourse.exports import export_catalog as export

    uris = export(resources.catalog(), resources.store())
    reporting.link("catalog-page", uris["page"], "The catalog page (HTML)")
    return uris
