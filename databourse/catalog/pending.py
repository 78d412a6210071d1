"""The catalog's open questions: one row per suspension that waits for a person's answer.

A publish run records a pending approval (version content hash, market, route, rule and a
random nonce) before it suspends on a form; the same run and suspend key find the same row
after the resume, so the form and the nonce are the same. An answer is recorded only on its
row (`ApprovalDesk.record_approval(pending_id=...)`); a refused one marks the row `refused` and
is audited; a withdrawn version's rows are `cancelled`, and so are (audited) the rows of a run
cancelled or deleted in Prefect (`close_abandoned`).
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from databourse.catalog import trail as audit
from databourse.catalog.asked_questions import asked_detail, question_problems
from databourse.catalog.engine import CatalogEngine, check_market
from databourse.catalog.models import PendingApproval, Version, iso
from databourse.errors import CatalogError, TransferNotApproved

__all__ = ["PendingDesk", "pending_json"]

log = logging.getLogger("databourse.catalog")
FINAL = ("recorded", "refused", "cancelled", "expired", "failed")


def pending_json(row: PendingApproval, version: Version) -> dict[str, Any]:
    """JSON-ready dict of a pending approval, with its version's names and current state."""
    return {
        "id": row.id,
        "product": version.product_id,
        "version": version.version,
        "version_status": version.status,
        "version_content_hash": version.content_hash,
        "content_hash": row.content_hash,
        "market": row.market,
        "flow_run_id": row.flow_run_id,
        "suspend_key": row.suspend_key,
        "nonce": row.nonce,
        "route": row.route,
        "rule_id": row.rule_id,
        "status": row.status,
        "detail": dict(row.detail or {}),
        "created_at": iso(row.created_at),
        "answered_at": iso(row.answered_at),
    }


class PendingDesk(CatalogEngine):
    """Catalog methods for the suspensions waiting on an answer (mixed into Catalog)."""

    def open_pending(
        self,
        product_id: str,
        version: str,
        market: str,
        route: str | None,
        rule_id: str | None,
        flow_run_id: str,
        suspend_key: str,
        timeout_seconds: int | None = None,
    ) -> dict[str, Any]:
        """The pending approval of one suspension: made on the first call, found on the next.

        Found by (flow run, suspend key) whatever the version asked now: the caller compares.
        A withdrawn version gets no new question (TransferNotApproved). `timeout_seconds` sets
        its deadline (`detail.deadline`), the one the expiry sweep goes by.
        """
        check_market(market)

        def work(session: Session) -> dict[str, Any]:
            found = self._pending_row(session, flow_run_id, suspend_key)
            if found is not None:
                return pending_json(found, session.get_one(Version, found.version_id))
            row = self._version_row(session, product_id, version)
            if row.status == "withdrawn":
                raise TransferNotApproved(
                    f"{product_id}@{version} was withdrawn: no approval is asked for it",
                    product=product_id,
                    version=version,
                    market=market,
                )
            pending = PendingApproval(
                version_id=row.id,
                market=market,
                content_hash=row.content_hash,
                flow_run_id=flow_run_id,
                suspend_key=suspend_key,
                nonce=secrets.token_hex(16),
                route=route,
                rule_id=rule_id,
                status="waiting",
                detail={},
                created_at=self._now(),
            )
            if timeout_seconds is not None:
                deadline = pending.created_at + timedelta(seconds=timeout_seconds)
                pending.detail = {"deadline": iso(deadline)}
            session.add(pending)
            session.flush()
            audit.append(
                session, "asked", product=product_id, version=version, market=market,
                detail=asked_detail(pending, row),
            )  # fmt: skip
            return pending_json(pending, row)

        return self._write("open_pending", work)

    def question_problems(self) -> list[str]:
        """Audited questions whose pending row was deleted or rewritten (asked_questions)."""
        return self._read(question_problems)

    def note_form(self, pending_id: int, sha256s: dict[str, str]) -> dict[str, str]:
        """Keep the sha256 of each part its form shows (`description_sha256`,
        `schema_sha256`); the first one kept of each stays. Returns the hashes kept."""

        def work(session: Session) -> dict[str, str]:
            row = session.get(PendingApproval, pending_id)
            if row is None:
                raise CatalogError(f"no pending approval {pending_id}", pending_id=pending_id)
            detail = dict(row.detail or {})
            kept = {k: str(detail.get(k) or v) for k, v in sha256s.items()}
            row.detail = {**detail, **kept}
            return kept

        return self._write("note_form", work)

    def pending_for(self, flow_run_id: str, suspend_key: str) -> dict[str, Any] | None:
        """The pending approval of one suspension, if the pipeline opened one."""

        def work(session: Session) -> dict[str, Any] | None:
            row = self._pending_row(session, flow_run_id, suspend_key)
            return pending_json(row, session.get_one(Version, row.version_id)) if row else None

        return self._read(work)

    def waiting_pending(self) -> list[dict[str, Any]]:
        """Every question still waiting for an answer, oldest first."""

        def work(session: Session) -> list[dict[str, Any]]:
            rows = session.execute(
                select(PendingApproval, Version)
                .join(Version, PendingApproval.version_id == Version.id)
                .where(PendingApproval.status == "waiting")
                .order_by(PendingApproval.id)
            ).all()
            return [pending_json(p, v) for p, v in rows]

        return self._read(work)

    def pending_of_run(self, flow_run_id: str) -> list[dict[str, Any]]:
        """Every pending approval a run opened, oldest first."""

        def work(session: Session) -> list[dict[str, Any]]:
            rows = session.execute(
                select(PendingApproval, Version)
                .join(Version, PendingApproval.version_id == Version.id)
                .where(PendingApproval.flow_run_id == flow_run_id)
                .order_by(PendingApproval.id)
            ).all()
            return [pending_json(p, v) for p, v in rows]

        return self._read(work)

    def pending_of_version(self, product_id: str, version: str) -> list[dict[str, Any]]:
        """Every pending approval opened for a version, oldest first."""

        def work(session: Session) -> list[dict[str, Any]]:
            row = self._version_row(session, product_id, version)
            rows = session.scalars(
                select(PendingApproval)
                .where(PendingApproval.version_id == row.id)
                .order_by(PendingApproval.id)
            )
            return [pending_json(p, row) for p in rows]

        return self._read(work)

    def refuse_pending(
        self, pending_id: int, problems: list[str], actor: str | None, keep_status: bool = False
    ) -> bool:
        """Refuse an answer given on a pending approval: mark it, audit it (once per row).

        Returns False when this refusal was already recorded. `keep_status` leaves a final row
        (cancelled, recorded) as it is while auditing the attempt.
        """

        def work(session: Session) -> bool:
            row = session.get(PendingApproval, pending_id)
            if row is None:
                raise CatalogError(f"no pending approval {pending_id}", pending_id=pending_id)
            detail = dict(row.detail or {})
            if detail.get("refused") == problems:
                return False
            version = session.get_one(Version, row.version_id)
            if not (keep_status and row.status in FINAL):
                row.status = "refused"
                row.answered_at = self._now()
            row.detail = {**detail, "refused": problems}
            log.warning(
                "%s %s market %s: answer refused on form %s of run %s: %s",
                version.product_id, version.version, row.market, row.suspend_key,
                row.flow_run_id, "; ".join(problems),
            )  # fmt: skip
            audit.append(
                session,
                "refusal",
                product=version.product_id,
                version=version.version,
                market=row.market,
                actor=(actor or "")[:200] or None,
                detail={
                    "pending_id": row.id,
                    "flow_run_id": row.flow_run_id,
                    "suspend_key": row.suspend_key,
                    "content_hash": row.content_hash,
                    "status": row.status,
                    "problems": problems,
                },
            )
            return True

        return self._write("refuse_pending", work)

    def cancel_pending(self, product_id: str, version: str, reason: str) -> list[dict[str, Any]]:
        """Cancel the version's waiting questions (it was withdrawn); returns the rows cancelled."""

        def work(session: Session) -> list[dict[str, Any]]:
            row = self._version_row(session, product_id, version)
            waiting = session.scalars(
                select(PendingApproval).where(
                    PendingApproval.version_id == row.id, PendingApproval.status == "waiting"
                )
            ).all()
            for pending in waiting:
                pending.status = "cancelled"
                pending.answered_at = self._now()
                pending.detail = {**(pending.detail or {}), "cancelled": reason[:500]}
            return [pending_json(p, row) for p in waiting]

        return self._write("cancel_pending", work)

    def close_pending(self, flow_run_id: str, status: str, note: str) -> int:
        """Close a run's waiting questions as `expired` or `failed`; returns how many."""
        if status not in ("expired", "failed"):
            raise CatalogError(f"a pending approval is not closed as {status!r}", status=status)

        def work(session: Session) -> int:
            rows = session.scalars(
                select(PendingApproval).where(
                    PendingApproval.flow_run_id == flow_run_id,
                    PendingApproval.status == "waiting",
                )
            ).all()
            for row in rows:
                row.status, row.answered_at = status, self._now()
                row.detail = {**(row.detail or {}), status: note[:300]}
            return len(rows)

        return self._write("close_pending", work)

    def close_abandoned(self, flow_run_id: str, reason: str) -> list[dict[str, Any]]:
        """Close a run's waiting questions as `cancelled` (its run was cancelled or deleted in
        Prefect, so nobody can answer them), each audited `question_closed`; returns them.

        An answer forced onto that run later is refused: its question is no longer waiting.
        """

        def work(session: Session) -> list[dict[str, Any]]:
            rows = session.scalars(
                select(PendingApproval).where(
                    PendingApproval.flow_run_id == flow_run_id,
                    PendingApproval.status == "waiting",
                )
            ).all()
            out = []
            for row in rows:
                version = session.get_one(Version, row.version_id)
                row.status, row.answered_at = "cancelled", self._now()
                row.detail = {**(row.detail or {}), "cancelled": reason[:300]}
                audit.append(
                    session,
                    "question_closed",
                    product=version.product_id,
                    version=version.version,
                    market=row.market,
                    detail={
                        "pending_id": row.id,
                        "flow_run_id": row.flow_run_id,
                        "suspend_key": row.suspend_key,
                        "content_hash": row.content_hash,
                        "reason": reason[:300],
                    },
                )
                out.append(pending_json(row, version))
            return out

        return self._write("close_abandoned", work)

    @staticmethod
    def _pending_row(
        session: Session, flow_run_id: str, suspend_key: str
    ) -> PendingApproval | None:
        return session.scalars(
            select(PendingApproval).where(
                PendingApproval.flow_run_id == flow_run_id,
                PendingApproval.suspend_key == suspend_key,
            )
        ).first()
