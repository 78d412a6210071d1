"""The rows behind a market's status: availability, valid approvals and the exporter's count."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from databourse.catalog import trail as audit
from databourse.catalog.models import (
    Approval,
    Availability,
    ExporterTransfer,
    Version,
)
from databourse.catalog.transfers import counted
from databourse.transfer.policy import calendar_year

__all__ = ["GATED", "approved", "availability_row", "count_abroad", "store_availability"]

log = logging.getLogger("databourse.catalog")

GATED = ("pending_approval", "rejected", "expired", "denied")  # only a person reopens these


def availability_row(session: Session, version_id: int, market: str) -> Availability | None:
    """The version's stored status in one market, if any was decided."""
    return session.scalars(
        select(Availability).where(
            Availability.version_id == version_id, Availability.market == market
        )
    ).first()


def approved(session: Session, version: Version, market: str) -> bool:
    """Whether the latest decision for this content hash and market is a valid approval."""
    latest = session.scalars(
        select(Approval)
        .where(
            Approval.version_id == version.id,
            Approval.market == market,
            Approval.content_hash == version.content_hash,
        )
        .order_by(Approval.decided_at.desc(), Approval.id.desc())
        .limit(1)
    ).first()
    if latest is None or latest.decision != "approved":
        return False
    return latest.valid_until is None or latest.valid_until >= date.today()


def store_availability(
    session: Session,
    row: Version,
    market: str,
    status: str,
    rule_id: str | None,
    route: str | None,
    detail: dict[str, Any] | None,
    now: datetime,
) -> None:
    """Write a market's status; a change of status or rule is an audit event."""
    current = availability_row(session, row.id, market)
    policy = (detail or {}).get("policy_sha256")
    changed = current is None or (
        (current.status, current.rule_id, *_decided(current.detail))
        != (status, rule_id, *_decided(detail))
    )
    if current is None:
        current = Availability(version_id=row.id, market=market)
        session.add(current)
    current.status, current.rule_id, current.route = status, rule_id, route
    current.detail, current.updated_at = detail, now
    if changed:
        audit.append(
            session,
            "decision",
            product=row.product_id,
            version=row.version,
            market=market,
            detail={
                "status": status,
                "rule": rule_id,
                "route": route,
                "content_hash": row.content_hash,
                "policy_sha256": policy,
                "decision": (detail or {}).get("decision"),  # allowed/gated: trail_state checks
            },
        )
    log.info("%s %s market %s: %s (rule %s)", row.product_id, row.version, market, status, rule_id)


def _decided(detail: dict[str, Any] | None) -> tuple[Any, Any]:
    """The policy fingerprint and decision (allowed/gated) a market's detail records."""
    return (detail or {}).get("policy_sha256"), (detail or {}).get("decision")


def count_abroad(session: Session, row: Version, market: str, now: datetime) -> None:
    """Count the version's individuals once in its exporter's year when it first goes abroad."""
    facts = row.transfer_facts
    if not facts or not facts.get("individuals") or market == facts.get("origin"):
        return
    exporter, year = facts["exporter"], calendar_year(facts["timezone"], now)
    if counted(session, exporter, year, row.id):
        return
    entry = ExporterTransfer(
        exporter=exporter,
        year=year,
        version_id=row.id,
        content_hash=row.content_hash,
        individuals=int(facts["individuals"]),
        sensitive=bool(facts.get("sensitive_categories")),
        market=market,
    )
    session.add(entry)
    session.flush()
    audit.append(
        session,
        "count",
        product=row.product_id,
        version=row.version,
        market=market,
        detail={
            "exporter": exporter,
            "year": year,
            "individuals": entry.individuals,
            "sensitive": entry.sensitive,
            "content_hash": row.content_hash,
        },
    )
