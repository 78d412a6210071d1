"""The catalog's human decisions on transfers: approvals, rejections, expiries, and their reads."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from databourse.catalog import trail as audit
from databourse.catalog.engine import check_market
from databourse.catalog.markets import availability_row, count_abroad
from databourse.catalog.models import (
    APPROVAL_DECISIONS,
    Approval,
    Availability,
    PendingApproval,
    Version,
    iso,
)
from databourse.catalog.pending import PendingDesk
from databourse.catalog.records import ApprovalRecord, approval_refusal, availability_json
from databourse.catalog.trail_state import carry_over_terms
from databourse.errors import CatalogError, TransferNotApproved
from databourse.names import check_name
from databourse.transfer.grant_conditions import conditions_sha256

__all__ = ["ApprovalDesk"]

log = logging.getLogger("databourse.catalog")

_DECISION_STATUS = {"approved": "available", "rejected": "rejected", "expired": "expired"}


class ApprovalDesk(PendingDesk):
    """Catalog methods that record and list what a person decided (mixed into Catalog)."""

    def record_approval(
        self,
        product_id: str,
        version: str,
        market: str,
        decision: str,
        approver: str,
        route: str | None,
        reference: str | None,
        conditions: str | None = None,
        evidence_url: str | None = None,
        valid_until: date | None = None,
        flow_run_id: str | None = None,
        prefect_identity: str | None = None,
        content_hash: str | None = None,
        basis: str | None = None,
        carry_over: bool = False,
        identity_note: str | None = None,
        pending_id: int | None = None,
        nonce: str | None = None,
    ) -> ApprovalRecord:
        """Store a person's transfer decision bound to the version's content hash and the market.

        Only a market awaiting a decision (pending_approval) can be approved or rejected; an
        expiry applies to a pending or approved one. Idempotent per (version, market,
        flow_run_id). `content_hash`, when given, is the hash the approver reviewed: a different
        one than the version's is refused (TransferNotApproved), and so is an approval of a
        withdrawn version. With `pending_id` the answer is recorded only on that waiting
        suspension of this run, version content and market, carrying its `nonce`; the row is
        then `recorded`. An approval counts the version in its exporter's year.
        """
        check_market(market)
        check_name(approver, "approver")  # InvalidName: empty, overlong, control characters
        if decision not in APPROVAL_DECISIONS:
            raise CatalogError(f"unknown approval decision {decision!r}", decision=decision)

        def work(session: Session) -> ApprovalRecord:
            row = self._version_row(session, product_id, version)
            existing = self._decision_of_run(session, row, market, flow_run_id)
            if existing is not None:
                return ApprovalRecord.of(existing, row, new=False)
            current = availability_row(session, row.id, market)
            refusal = approval_refusal(row, current, decision, content_hash, valid_until)
            if refusal is None and decision == "approved" and row.status == "withdrawn":
                refusal = "the version was withdrawn: it is offered nowhere"
            pending = session.get(PendingApproval, pending_id) if pending_id is not None else None
            if refusal is None and pending_id is not None:
                refusal = _pending_refusal(pending, row, market, flow_run_id, nonce)
            if refusal is not None:
                raise TransferNotApproved(
                    f"{product_id} {version} market {market}: {refusal}",
                    product=product_id,
                    version=version,
                    market=market,
                )
            approval = Approval(
                version_id=row.id,
                market=market,
                content_hash=row.content_hash,
                decision=decision,
                approver=approver,
                route=route,
                reference=reference,
                conditions=conditions,
                evidence_url=evidence_url,
                valid_until=valid_until,
                flow_run_id=flow_run_id,
                prefect_identity=prefect_identity,
                basis=basis,
                rule_id=current.rule_id if current is not None else None,
                carry_over=carry_over and decision == "approved",
                identity_note=identity_note,
                pending_id=pending_id,
            )
            self._apply_answer(session, row, current, approval)
            if pending is not None:
                pending.status, pending.answered_at = "recorded", self._now()
                pending.detail = {**(pending.detail or {}), "approval_id": approval.id}
            return ApprovalRecord.of(approval, row, new=True)

        return self._write("record_approval", work)

    def record_expiry(
        self, product_id: str, version: str, market: str, flow_run_id: str, waited: str
    ) -> ApprovalRecord | None:
        """Record that nobody answered a run's approval form in time (None: nothing to expire).

        Idempotent per run; a market answered meanwhile (by another run) is left as it is.
        """
        check_market(market)

        def work(session: Session) -> ApprovalRecord | None:
            row = self._version_row(session, product_id, version)
            current = availability_row(session, row.id, market)
            done = self._decision_of_run(session, row, market, flow_run_id)
            if done is not None or current is None or current.status != "pending_approval":
                return None
            approval = Approval(
                version_id=row.id,
                market=market,
                content_hash=row.content_hash,
                decision="expired",
                approver="(nobody: approval timeout)",
                route=current.route,
                reference=None,
                conditions=f"no answer on the approval form: {waited}",
                flow_run_id=flow_run_id,
                rule_id=current.rule_id,
                identity_note="recorded by the approval sweep; no person answered",
            )
            self._apply_answer(session, row, current, approval)
            return ApprovalRecord.of(approval, row, new=True)

        return self._write("record_expiry", work)

    @staticmethod
    def _decision_of_run(
        session: Session, row: Version, market: str, flow_run_id: str | None
    ) -> Approval | None:
        if flow_run_id is None:
            return None
        return session.scalars(
            select(Approval).where(
                Approval.version_id == row.id,
                Approval.market == market,
                Approval.flow_run_id == flow_run_id,
            )
        ).first()

    def _apply_answer(
        self, session: Session, row: Version, current: Availability | None, approval: Approval
    ) -> None:
        """Store a decision, set the market's status from it, audit it, count an approval."""
        session.add(approval)
        session.flush()
        if current is None:
            current = Availability(version_id=row.id, market=approval.market, rule_id=None)
            session.add(current)
        current.status = _DECISION_STATUS[approval.decision]
        current.route = approval.route or current.route
        current.detail = {**(current.detail or {}), "approval_id": approval.id}
        current.updated_at = self._now()
        what = f"{approval.market}: {approval.decision}"
        log.info("%s %s market %s by approval", row.product_id, row.version, what)
        audit.append(
            session,
            {"approved": "approval", "rejected": "rejection", "expired": "expiry"}[
                approval.decision
            ],
            product=row.product_id,
            version=row.version,
            market=approval.market,
            actor=approval.approver,
            detail={
                "approval_id": approval.id,
                "route": approval.route,
                "basis": approval.basis,
                "reference": approval.reference,
                "valid_until": iso(approval.valid_until),
                "conditions_sha256": conditions_sha256(approval.conditions),
                "carry_over": approval.carry_over,
                "content_hash": row.content_hash,
                **carry_over_terms(
                    row.schema,
                    row.transfer_facts,
                    approval.rule_id,
                    approval.route,
                    approval.basis,
                ),
                "flow_run_id": approval.flow_run_id,
                "prefect_identity": approval.prefect_identity,
                "identity_note": approval.identity_note,
                "pending_id": approval.pending_id,
            },
        )
        if approval.decision == "approved":
            count_abroad(session, row, approval.market, self._now())

    def pending_approvals(self) -> list[dict[str, Any]]:
        """Markets awaiting a human decision, oldest first."""

        def work(session: Session) -> list[dict[str, Any]]:
            rows = session.execute(
                select(Availability, Version)
                .join(Version, Availability.version_id == Version.id)
                .where(Availability.status == "pending_approval")
                .order_by(Availability.updated_at, Availability.id)
            ).all()
            return [
                {
                    "product_id": version.product_id,
                    "version": version.version,
                    "content_hash": version.content_hash,
                    "version_status": version.status,
                    **availability_json(availability),
                }
                for availability, version in rows
            ]

        return self._read(work)

    def transfer_decisions(self, product_id: str | None = None) -> list[dict[str, Any]]:
        """Every recorded decision (approved, rejected, expired, carried over), newest first."""

        def work(session: Session) -> list[dict[str, Any]]:
            query = select(Approval, Version).join(Version, Approval.version_id == Version.id)
            if product_id is not None:
                query = query.where(Version.product_id == product_id)
            rows = session.execute(query.order_by(Approval.decided_at.desc(), Approval.id.desc()))
            return [ApprovalRecord.of(a, v).to_json() for a, v in rows]

        return self._read(work)

    def expired_runs(self) -> set[tuple[str, str]]:
        """(flow run id, market) of every expiry already recorded, for the sweep to skip."""

        def work(session: Session) -> set[tuple[str, str]]:
            rows = session.execute(
                select(Approval.flow_run_id, Approval.market).where(
                    Approval.decision == "expired", Approval.flow_run_id.is_not(None)
                )
            )
            return {(str(run), market) for run, market in rows}

        return self._read(work)


def _pending_refusal(
    pending: PendingApproval | None,
    row: Version,
    market: str,
    flow_run_id: str | None,
    nonce: str | None,
) -> str | None:
    """Why an answer cannot be recorded on this suspension, or None."""
    if pending is None:
        return "no approval form was opened for this answer"
    if pending.status != "waiting":
        return f"the approval form {pending.suspend_key} is {pending.status}, not waiting"
    if (pending.version_id, pending.content_hash) != (row.id, row.content_hash):
        return (
            f"the approval form was opened for content {pending.content_hash[:16]}, "
            f"not this version's {row.content_hash[:16]}"
        )
    if (pending.market, pending.flow_run_id) != (market, flow_run_id):
        return f"the approval form was opened for {pending.market} in run {pending.flow_run_id}"
    if nonce != pending.nonce:
        return "the answer carries another form's nonce"
    return None
