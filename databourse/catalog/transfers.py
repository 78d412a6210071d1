"""The transfer gate's catalog queries: an exporter's yearly count, an earlier decision."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from databourse.catalog.models import Approval, ExporterTransfer, Version
from databourse.transfer.policy import PriorApproval


def sent_this_year(
    session: Session, exporter: str, year: int, exclude_version_id: int | None = None
) -> tuple[int, int]:
    """Individuals the exporter sent abroad in `year`, and those in sensitive versions."""
    query = select(ExporterTransfer.individuals, ExporterTransfer.sensitive).where(
        ExporterTransfer.exporter == exporter, ExporterTransfer.year == year
    )
    if exclude_version_id is not None:
        query = query.where(ExporterTransfer.version_id != exclude_version_id)
    rows = session.execute(query).all()
    return sum(n for n, _ in rows), sum(n for n, sensitive in rows if sensitive)


def prior_approval(session: Session, approval_id: int) -> PriorApproval | None:
    """An earlier version's decision as the catalog's rows hold it (None: a row is gone).

    Which decision is the prior one is the audited trail's to say (`TrailState.prior_answer`);
    the gate then compares these rows with that decision's audit event.
    """
    approval = session.get(Approval, approval_id)
    earlier = session.get(Version, approval.version_id) if approval is not None else None
    if approval is None or earlier is None:
        return None
    facts = earlier.transfer_facts
    return PriorApproval(
        approval_id=approval.id,
        version=earlier.version,
        content_hash=earlier.content_hash,
        decision=approval.decision,
        carry_over=bool(approval.carry_over),
        rule_id=approval.rule_id,
        route=approval.route,
        valid_until=approval.valid_until,
        schema=[dict(column) for column in earlier.schema],
        categories=tuple(facts["categories"]) if facts and "categories" in facts else None,
    )


def counted(session: Session, exporter: str, year: int, version_id: int) -> bool:
    """Whether the version is already in the exporter's count for that year."""
    query = select(ExporterTransfer.id).where(
        ExporterTransfer.exporter == exporter,
        ExporterTransfer.year == year,
        ExporterTransfer.version_id == version_id,
    )
    return session.scalars(query.limit(1)).first() is not None
