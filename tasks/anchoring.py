"""Task: anchor the audit trail's head in the object store, outside the catalog database."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from databourse.catalog.trail import anchor_key
from tasks import reporting, resources
from tasks.retrying import RETRY_TRANSIENT


# Never cached: a resumed run runs again from the top and must anchor the head as it is then.
@task(name="anchor-audit", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def anchor_audit() -> dict[str, Any] | None:
    """Anchor the audit chain's head (every append anchors too; this repairs a missed one)."""
    anchored = resources.catalog().audit_anchor(resources.store())
    if anchored is None:
        return None
    key = anchor_key(anchored["seq"])
    get_run_logger().info("audit trail anchored at event %d in %s", anchored["seq"], key)
    reporting.markdown(
        "audit-anchor",
        f"Audit trail head **event {anchored['seq']}** anchored in the store as `{key}`\n\n"
        f"- hash `{anchored['hash']}`\n- MAC key id `{anchored['key_id']}`\n\n"
        "`bourse audit verify` checks every anchor against the catalog's chain.",
        "Audit trail anchor",
    )
    return anchored
