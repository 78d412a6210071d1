"""The approval questions the pipeline asked, as audited, against the catalog's pending rows.

When a publish run opens a question (`PendingDesk.open_pending`) it audits an `asked` event with
the row's id, run, form key, market, content hash and the sha256 of its nonce. Someone who can
write the catalog database can delete or edit the pending row (the market then looks like nobody
waits for it, and the real answer is refused as "no such form"), but cannot remove the MAC'd
event without breaking the chain: `question_problems` names every audited question whose row is
gone or differs. `bourse approvals list` prints them and `bourse verify --all` reports each as an
error. Messages name ids, runs, versions and markets only.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.orm import Session

from databourse.catalog.models import PendingApproval, Version
from databourse.catalog.trail_state import authenticated_events

__all__ = ["asked_detail", "question_problems"]

_BOUND = ("product", "version", "market", "flow_run_id", "suspend_key", "content_hash",
          "nonce_sha256", "deadline")  # fmt: skip


def asked_detail(row: PendingApproval, version: Version | None) -> dict[str, Any]:
    """What an `asked` event records of a new pending row (the nonce only as its sha256)."""
    return {
        "pending_id": row.id,
        "product": version.product_id if version else None,
        "version": version.version if version else None,
        "market": row.market,
        "flow_run_id": row.flow_run_id,
        "suspend_key": row.suspend_key,
        "content_hash": row.content_hash,
        "nonce_sha256": hashlib.sha256(row.nonce.encode()).hexdigest(),
        "deadline": (row.detail or {}).get("deadline"),
    }


def question_problems(session: Session) -> list[str]:
    """Every audited question whose pending row was deleted or rewritten (one line each)."""
    problems = []
    for event in authenticated_events(session, "asked"):
        asked = event["detail"]
        name = (
            f"the question {asked.get('pending_id')} ({asked.get('product')}@"
            f"{asked.get('version')} market {asked.get('market')}, run "
            f"{asked.get('flow_run_id')}, form {asked.get('suspend_key')})"
        )
        row = session.get(PendingApproval, int(asked.get("pending_id") or 0))
        if row is None:
            problems.append(
                f"{name} was asked (audited event {event['seq']}) but its pending row is gone "
                "from the catalog (deleted: tampering); the run still waits for it"
            )
            continue
        found = asked_detail(row, session.get(Version, row.version_id))
        differs = [k for k in _BOUND if found.get(k) != asked.get(k)]
        if differs:
            problems.append(
                f"{name}: its pending row's {', '.join(differs)} differ from the audited "
                f"question (event {event['seq']}): rewritten in the catalog (tampering)"
            )
    return problems
