"""Tasks: transfer decisions per market, and approvals recorded against the version's hash."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import get_run_logger, task

from databourse.errors import VersionNotFound
from databourse.package import read_manifest
from databourse.transfer import decide_all, facts_for
from tasks import reporting, resources

DECIDED = {"approved", "rejected", "expired"}


@task(name="decide-transfers", task_run_name="transfer decisions {product_id}@{version}")
def decide_transfers(product_id: str, version: str) -> list[dict[str, Any]]:
    """Decide every market from measured facts; publish the version where no approval is needed."""
    logger = get_run_logger()
    cfg = resources.config()
    catalog = resources.catalog()
    product = cfg.product(product_id)
    manifest = read_manifest(resources.store(), product_id, version)
    if manifest is None:
        raise VersionNotFound(
            f"{product_id}@{version} has no manifest: it was never packaged",
            product=product_id,
            version=version,
        )
    src = product.source
    personal = manifest["personal_data"]
    facts = facts_for(
        cfg.providers[src.provider].jurisdiction,
        personal["remaining"],
        personal["individuals"],
        cfg.dataset(src.provider, src.dataset).important_data,
    )
    decisions = decide_all(cfg.policy, facts, list(product.markets))
    shown = catalog.show(product_id, version)
    answered = {
        a["market"]
        for a in _version(shown, version).get("approvals", [])
        if a["decision"] in DECIDED
    }
    catalog.publish_version(product_id, version)
    out = []
    for d in decisions:
        if d.decision == "approval_required" and d.market in answered:
            pass  # already answered for this content; never re-open it
        else:
            status = {
                "allowed": "available",
                "denied": "denied",
                "approval_required": "pending_approval",
            }[d.decision]
            catalog.set_availability(
                product_id, version, d.market, status, d.rule_id, route=d.route, detail=d.to_json()
            )
        logger.info(
            "%s@%s -> %s: %s (rule %s)", product_id, version, d.market, d.decision, d.rule_id
        )
        out.append({**d.to_json(), "facts": facts.to_json(), "answered": d.market in answered})
    reporting.table(
        f"transfer-{product_id}",
        [
            {
                "market": d.market,
                "decision": d.decision,
                "rule": d.rule_id,
                "route": d.route or d.exemption or d.reason,
            }
            for d in decisions
        ],
        f"Cross-border decisions for {product_id}@{version}",
    )
    return out


@task(name="record-approval", task_run_name="record {decision} {product_id}@{version} {market}")
def record_approval(
    product_id: str,
    version: str,
    market: str,
    decision: str,
    answer: dict[str, Any],
    flow_run_id: str | None,
) -> dict[str, Any]:
    """Store the approver's answer bound to the version's content hash and the market."""
    valid_until = answer.get("valid_until")
    rec = resources.catalog().record_approval(
        product_id,
        version,
        market,
        decision,
        approver=answer["approver"],
        route=answer.get("route") or "",
        reference=answer.get("reference") or "",
        conditions=answer.get("conditions") or None,
        evidence_url=answer.get("evidence_url") or None,
        valid_until=dt.date.fromisoformat(valid_until) if valid_until else None,
        flow_run_id=flow_run_id,
    )
    get_run_logger().info(
        "%s@%s -> %s: %s by %s", product_id, version, market, decision, answer["approver"]
    )
    return rec.to_json()


def _version(shown: dict[str, Any], version: str) -> dict[str, Any]:
    for v in shown.get("versions", []):
        if v.get("version") == version:
            return dict(v)
    return {}


@task(name="export-catalog")
def export_catalog() -> dict[str, str]:
    """Refresh the DCAT-AP export and the HTML catalog page after a publication."""
    from databourse.exports import export_catalog as export

    uris = export(resources.catalog(), resources.store())
    reporting.link("catalog-page", uris["page"], "The catalog page (HTML)")
    return uris
