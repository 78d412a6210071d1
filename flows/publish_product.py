"""Flow: the transfer gate and publication of one product version.

Runs from a deployment (`publish-product/gated`) because an approval suspends it: the run waits
on an input form for days without holding a worker, and runs again from the top once answered.
Every step before the gate is idempotent and cached, so the re-run only records the answer.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.flow_runs import suspend_flow_run
from prefect.runtime import flow_run

from flows.approval_form import TransferApproval, approval_description
from tasks import reporting, resources
from tasks.publishing import decide_transfers, export_catalog, record_approval

DEPLOYMENT = "publish-product/gated"


@flow(name="publish-product", flow_run_name="publish/{product}/{version}", persist_result=True)
def publish_product(product: str, version: str) -> dict[str, Any]:
    """Decide each market; suspend on a form for each that needs approval; record the answers."""
    logger = get_run_logger()
    timeout = resources.config().settings.approval_timeout_seconds
    for decision in decide_transfers(product, version):
        if decision["decision"] != "approval_required" or decision["answered"]:
            continue
        market = decision["market"]
        logger.info(
            "%s@%s -> %s waits for approval (route %s)", product, version, market, decision["route"]
        )
        form = TransferApproval.with_initial_data(
            description=approval_description(product, version, decision), route=decision["route"]
        )
        answer = suspend_flow_run(
            wait_for_input=form, key=f"approval-{market.lower()}", timeout=timeout
        )
        verdict = "approved" if answer.decision == "approve" else "rejected"
        record_approval(
            product,
            version,
            market,
            verdict,
            answer.model_dump(mode="json"),
            str(flow_run.id) if flow_run.id else None,
        )
    export_catalog()
    shown = resources.catalog().show(product, version)
    reporting.markdown(
        f"publish-{product}",
        _summary(product, version, shown),
        f"Availability of {product}@{version}",
    )
    return shown


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
