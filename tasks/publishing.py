"""Tasks: the transfer gate per market, the expiry sweep (answers: `tasks/approving.py`)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from uuid import UUID

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound

from databourse.catalog.database import Catalog
from databourse.errors import CatalogError, VersionNotFound
from databourse.steps import publishing
from tasks import reporting, resources
from tasks.dispatching import start_keyed
from tasks.retrying import RETRY_TRANSIENT

PUBLISH_FLOW = "publish-product"
KEY_PREFIX = "approval-"
# Prefect 3.8.8 fails a suspended run whose timeout passed with "The flow was paused and never
# resumed." (its pause-expirations service) or "... suspended and never resumed." (a late resume).
EXPIRED_MARK = "never resumed"
log = logging.getLogger(__name__)


def approval_key(market: str, attempt: int = 1) -> str:
    """The suspend key of a market's approval form (a refused answer asks again, new key)."""
    return f"{KEY_PREFIX}{market.lower()}" + (f"-{attempt}" if attempt > 1 else "")


def market_of(key: str | None) -> str | None:
    """The market an approval key is for (None for other pauses)."""
    if not key or not key.startswith(KEY_PREFIX):
        return None
    return key.removeprefix(KEY_PREFIX).split("-")[0].upper()


@task(
    name="decide-transfers",
    task_run_name="transfer decisions {product_id}@{version}",
    **RETRY_TRANSIENT,
)
def decide_transfers(product_id: str, version: str) -> list[dict[str, Any]]:
    """Publish the version and run the transfer gate on every market of the product."""
    logger = get_run_logger()
    decisions = publishing.decide_transfers(resources.bundle(), product_id, version)
    for d in decisions:
        logger.info(
            "%s@%s -> %s: %s, %s (rule %s)",
            product_id, version, d["market"], d["decision"], d["status"], d["rule_id"],
        )  # fmt: skip
    report_decisions(product_id, version, decisions)
    return decisions


def report_decisions(product_id: str, version: str, decisions: list[dict[str, Any]]) -> None:
    """The table artifact of a version's transfer decisions, one row per market."""
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


@task(
    name="decide-market",
    task_run_name="decide {product_id}@{version} -> {market}",
)
def decide_market(product_id: str, version: str, market: str) -> dict[str, Any] | None:
    """Decide one market of a published version again, as `decide_transfers` decides each
    (None: not a market of the product, or the version is not published)."""
    out = publishing.decide_market(resources.bundle(), product_id, version, market)
    if out.skipped:
        get_run_logger().warning("%s", out.skipped)
    return out.decision


# --- expiry -----------------------------------------------------------------------------------


def sweep_expired(catalog: Catalog, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Record as expired every question whose own deadline passed unanswered (idempotent).

    The deadline, version and market come from the catalog's pending row (asked time plus the
    configured timeout), never from the run's state or parameters in the Prefect API, which
    anyone who can write that API sets; a run that is running again (an answer being recorded)
    is left for the next sweep. A market answered meanwhile by another run is left alone.
    """
    out: list[dict[str, Any]] = []
    due = overdue_pending(catalog, now)
    if not due:
        return out
    with get_client(sync_client=True) as client:
        for pending in due:
            run_id = pending["flow_run_id"]
            if _run_active(client, run_id):
                continue
            product, version, market = pending["product"], pending["version"], pending["market"]
            waited = (
                f"asked {pending['created_at']} on form {pending['suspend_key']}, "
                f"timed out {pending_deadline(pending).isoformat()}"
            )
            try:
                rec = catalog.record_expiry(product, version, market, run_id, waited)
            except CatalogError as exc:
                log.info("sweep: run %s not recorded: %s", run_id, exc)
                continue
            catalog.close_pending(run_id, "expired", waited)
            if rec is not None:
                log.info("%s@%s -> %s: approval expired (run %s)", product, version, market, run_id)
                out.append(rec.to_json())
    return out


def overdue_pending(catalog: Catalog, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The questions still marked waiting whose deadline (`pending_deadline`) has passed."""
    now = now or dt.datetime.now(dt.UTC)
    return [p for p in catalog.waiting_pending() if pending_deadline(p) < now]


def pending_deadline(pending: dict[str, Any]) -> dt.datetime:
    """When a question expires: its recorded deadline, else asked time plus the timeout now."""
    recorded = (pending.get("detail") or {}).get("deadline")
    if recorded:
        return dt.datetime.fromisoformat(str(recorded))
    timeout = resources.config().settings.approval_timeout_seconds
    return dt.datetime.fromisoformat(str(pending["created_at"])) + dt.timedelta(seconds=timeout)


def _run_active(client: SyncPrefectClient, run_id: str) -> bool:
    """True while the run is running again (resumed): its answer is being recorded."""
    try:
        run = client.read_flow_run(UUID(run_id))
    except (ObjectNotFound, ValueError):
        return False
    state = run.state
    return state is not None and state.type in (StateType.RUNNING, StateType.PENDING)


# Never cached either: a run resumed days later sweeps what expired meanwhile.
@task(name="sweep-approvals", cache_policy=NO_CACHE)
def sweep_approvals() -> int:
    """Record expired approvals left by earlier publish runs; returns how many."""
    expired = sweep_expired(resources.catalog())
    if expired:
        get_run_logger().info("%d approval(s) recorded as expired", len(expired))
    return len(expired)


# Never cached: the publish flow exports before it asks and again after the answers; a resumed
# run runs again from the top, and a cached second call kept the export from before the answers.
@task(name="export-catalog", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def export_catalog() -> dict[str, str]:
    """Refresh the DCAT-AP export and the HTML catalog page after a publication."""
    from databourse.standards.exports import export_catalog as export

    uris = export(resources.catalog(), resources.store())
    reporting.link("catalog-page", uris["page"], "The catalog page (HTML)")
    return uris


# --- starting publish runs --------------------------------------------------------------------

PUBLISH_DEPLOYMENT = "publish-product/gated"


CATALOG_TAG = "catalog:"


def catalog_tag(catalog: Catalog) -> str:
    """The tag every publish run of `catalog` carries (see `catalog_engine.catalog_identity`)."""
    return CATALOG_TAG + catalog.identity


def of_another_catalog(run: FlowRun, catalog: Catalog) -> bool:
    """The run names another catalog in its tags (a run with none is taken as this one's)."""
    named = {t for t in run.tags or [] if t.startswith(CATALOG_TAG)}
    return bool(named) and catalog_tag(catalog) not in named


def publish_key(
    catalog: Catalog, product: str, version: str, content_hash: str, after: str | None = None
) -> str:
    """The idempotency key of a version's publish run (`after`: the failed run it replaces).

    It names the catalog: two catalogs on one Prefect server holding the same content under the
    same version number each get their own run, never the other's.
    """
    key = f"{catalog.identity}/{product}@{version}#{content_hash[:16]}"
    return f"{key}#after-{after}" if after else key


def start_publication(
    product: str,
    version: str,
    content_hash: str,
    tags: list[str] | None = None,
    deployment: str = PUBLISH_DEPLOYMENT,
    after: str | None = None,
) -> FlowRun:
    """The version's current publish run: started once per content hash, anew after a failure.

    A failed, crashed or cancelled run is followed by the run keyed after it, so a re-run drop
    and `bourse approvals retry` both reach the same fresh run, never the failed one again
    (`after`: start the chain after that run, for a run started without a key).
    """
    catalog = resources.catalog()
    return start_keyed(
        deployment,
        {"product": product, "version": version},
        publish_key(catalog, product, version, content_hash, after),
        [*(tags or [f"product:{product}"]), catalog_tag(catalog)],
        as_subflow=False,  # a subflow cannot suspend; this run outlives its caller
        what=f"{product}@{version}: publication",
        done=lambda: _past_staging(catalog, product, version),
    )


def _past_staging(catalog: Catalog, product: str, version: str) -> bool:
    """The catalog shows the version's publication run done (no longer staged)."""
    try:
        return catalog.get_version(product, version).status != "staged"
    except VersionNotFound:
        return False
