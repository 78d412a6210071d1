"""The catalog's cross-border gate: decide every market of a version, carry approvals over."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from databourse.catalog import trail as audit
from databourse.catalog.engine import CatalogEngine, check_market
from databourse.catalog.markets import (
    GATED,
    approved,
    availability_row,
    count_abroad,
    store_availability,
)
from databourse.catalog.models import (
    AVAILABILITY_STATUSES,
    Approval,
    ExporterTransfer,
    Version,
    iso,
)
from databourse.catalog.trail_state import TrailState, answer_age_problems, carry_over_terms
from databourse.catalog.trail_state import approval_problems as trail_approval_problems
from databourse.catalog.transfers import prior_approval, sent_this_year
from databourse.config import CrossBorderPolicy
from databourse.errors import CatalogError, TransferNotApproved
from databourse.transfer.policy import (
    TransferDecision,
    TransferFacts,
    calendar_year,
    carry_over_problems,
    decide,
    policy_fingerprint,
    with_running_count,
)

__all__ = ["TransferGate"]

log = logging.getLogger("databourse.catalog")


def _untrailed_source(session: Session, trail: TrailState, approval_id: int) -> list[str]:
    """Why the audited trail does not back carrying `approval_id` over (none: it does)."""
    source = session.get(Approval, approval_id)
    earlier = session.get(Version, source.version_id) if source is not None else None
    if source is None or earlier is None:
        return [f"approval {approval_id} is gone"]
    problems = trail.chain_problems() + trail_approval_problems(trail, source, earlier)
    if earlier.content_hash != source.content_hash:
        problems.append(f"approval {approval_id}: its version's content is not the one approved")
    proved = trail.approvals.get(approval_id) or {}
    if source.carry_over and not proved.get("carry_over"):
        problems.append(
            f"approval {approval_id}: the audited answer did not say it covers later versions"
        )
    stored = carry_over_terms(
        earlier.schema, earlier.transfer_facts, source.rule_id, source.route, source.basis
    )
    for term, value in stored.items():
        if term not in proved:
            problems.append(f"approval {approval_id}: audited without its {term}: ask again")
        elif proved[term] != value:
            problems.append(
                f"approval {approval_id}: its {term} (or its version's) is not the audited one"
            )
    return problems


# What an approval carried over to a later version keeps from the one it copies.
_CARRIED_FIELDS = (
    "approver",
    "route",
    "basis",
    "reference",
    "conditions",
    "evidence_url",
    "valid_until",
    "prefect_identity",
    "identity_note",
)


def _lock_exporter(session: Session, exporter: str) -> None:
    # One gate per exporter at a time on PostgreSQL (SQLite writers are serialized anyway), so
    # two versions decided together cannot both stay under a threshold they cross together.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(7263521, hashtext(:e))"), {"e": exporter}
        )


def _carry_over(
    session: Session,
    row: Version,
    decision: TransferDecision,
    facts: TransferFacts,
    trail: TrailState,
    max_age: tuple[int, datetime],
) -> tuple[dict[str, Any] | None, list[str]]:
    """Copy an earlier version's approval to this one when the rules and the trail allow it.

    `max_age` is (carry_over_max_age_days, now): an answer audited longer ago is asked again.
    """
    market = decision.market
    # The prior decision is the trail's last answer, never the row a rewritten decided_at
    # puts first; its rows must still say what its audit event says (_untrailed_source).
    chosen = trail.prior_answer(row.product_id, row.version, market)
    if chosen is None:
        return None, []
    prior = prior_approval(session, chosen)
    if prior is None:
        problems = [f"approval {chosen}, the audited latest decision for {market}, is gone"]
        log.info("%s %s %s: no carry-over: %s", row.product_id, row.version, market, problems[0])
        return None, problems
    problems = carry_over_problems(prior, row.schema, facts, decision, date.today())
    problems += _untrailed_source(session, trail, prior.approval_id)
    problems += answer_age_problems(trail, prior.approval_id, *max_age)
    if problems:
        why = "; ".join(problems)
        log.info("%s %s %s: no carry-over: %s", row.product_id, row.version, market, why)
        return None, problems
    source = session.get(Approval, prior.approval_id)
    assert source is not None
    origin = {
        "version": prior.version,
        "approval_id": prior.approval_id,
        "content_hash": prior.content_hash,
    }
    copy = Approval(
        version_id=row.id,
        market=decision.market,
        content_hash=row.content_hash,
        decision="approved",
        **{f: getattr(source, f) for f in _CARRIED_FIELDS},
        rule_id=decision.rule_id,
        carry_over=True,
        carried_over_from=origin,
    )
    session.add(copy)
    session.flush()
    audit.append(
        session,
        "carry_over",
        product=row.product_id,
        version=row.version,
        market=decision.market,
        actor=source.approver,
        detail={
            "carried_over_from": origin,
            "approval_id": copy.id,
            "route": copy.route,
            "reference": copy.reference,
            "content_hash": row.content_hash,
            **carry_over_terms(
                row.schema, row.transfer_facts, decision.rule_id, copy.route, copy.basis
            ),
        },
    )
    return origin, []


class TransferGate(CatalogEngine):
    """Catalog methods that decide where a version is offered (mixed into Catalog)."""

    def set_availability(
        self,
        product_id: str,
        version: str,
        market: str,
        status: str,
        rule_id: str | None,
        route: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> str:
        """Record a market's status by hand; returns the status stored.

        "available" needs a valid approval bound to this content hash, except for the version's
        own jurisdiction (rule "domestic", which is not a transfer). Allowed cross-border markets
        are opened only by `apply_transfer_policy`. "pending_approval" for content already
        approved stays "available", so a re-run does not ask the approver twice.
        """
        check_market(market)
        if status not in AVAILABILITY_STATUSES:
            raise CatalogError(f"unknown availability status {status!r}", status=status)

        def work(session: Session) -> str:
            row = self._version_row(session, product_id, version)
            if row.status == "withdrawn" and status == "available":
                raise CatalogError(
                    f"{product_id} {version} was withdrawn: it is offered nowhere",
                    product=product_id,
                    version=version,
                    market=market,
                )
            current = availability_row(session, row.id, market)
            is_approved = approved(session, row, market)
            stored = status
            if status == "available" and not is_approved:
                origin = (row.transfer_facts or {}).get("origin", market)
                gated = current is not None and current.status in GATED
                if rule_id != "domestic" or origin != market or gated:
                    raise TransferNotApproved(
                        f"{product_id} {version} cannot be made available in {market} without "
                        f"an approval bound to its content {row.content_hash[:16]} (market "
                        f"{current.status if current else 'undecided'}); only the transfer gate "
                        "opens a market its policy allows",
                        product=product_id,
                        version=version,
                        market=market,
                    )
                if row.transfer_facts is None:
                    # A version the gate has not seen: this claim fixes its home market, so no
                    # other market can be called domestic, and the gate re-decides it later.
                    row.transfer_facts = {"origin": market, "claimed_domestic": True}
            elif status == "pending_approval" and is_approved:
                stored = "available"
            store_availability(session, row, market, stored, rule_id, route, detail, self._now())
            return stored

        return self._write("set_availability", work)

    def apply_transfer_policy(
        self,
        product_id: str,
        version: str,
        policy: CrossBorderPolicy,
        facts: TransferFacts,
        markets: list[str],
        exporter: str,
        carry_over: bool = True,
        carry_over_max_age_days: int = 365,
    ) -> list[dict[str, Any]]:
        """The transfer gate: decide every market and store the outcome, in one transaction.

        The rules see `facts` plus the exporter's running count for the current calendar year
        (in the origin's time zone; other versions only). Per market the status becomes
        "available" (allowed, approved for this content, or an earlier version's approval carried
        over when `carry_over_problems` finds nothing), "pending_approval", "rejected" (final for
        this content) or "denied". A market once gated stays so until a person decides. Every
        market that becomes available abroad counts the version once in the exporter's year.
        An approval carries over only if its audited answer is at most `carry_over_max_age_days`
        old (settings).
        """
        for market in markets:
            check_market(market)
        timezone = policy.origin(facts.origin).timezone
        fingerprint = policy_fingerprint(policy)

        def work(session: Session) -> list[dict[str, Any]]:
            row = self._version_row(session, product_id, version)
            _lock_exporter(session, exporter)
            year = calendar_year(timezone, self._now())
            trail = TrailState.of(session)
            stored = sent_this_year(session, exporter, year)
            if refused := trail.chain_problems() + trail.count_problems(exporter, year, stored):
                raise TransferNotApproved(
                    f"{product_id} {version}: no market decided: {refused[0]}; run "
                    "`bourse audit verify` and `bourse verify --all`",
                    product=product_id,
                    version=version,
                )
            full = with_running_count(facts, year, *sent_this_year(session, exporter, year, row.id))
            row.transfer_facts = {
                **full.to_json(),
                "exporter": exporter,
                "timezone": timezone,
                "policy_sha256": fingerprint,
            }
            out = []
            for market in markets:
                decision = decide(policy, full, market)
                carry = (carry_over_max_age_days, self._now()) if carry_over else None
                status, carried, problems = self._gate_market(
                    session, row, decision, full, carry, fingerprint, trail
                )
                out.append(
                    {
                        **decision.to_json(),
                        "facts": full.to_json(),
                        "status": status,
                        "carried_over_from": carried,
                        "carry_over_problems": problems,
                        "policy_sha256": fingerprint,
                    }
                )
            return out

        return self._write("apply_transfer_policy", work)

    def _gate_market(
        self,
        session: Session,
        row: Version,
        decision: TransferDecision,
        facts: TransferFacts,
        carry_over: tuple[int, datetime] | None,
        fingerprint: str,
        trail: TrailState,
    ) -> tuple[str, dict[str, Any] | None, list[str]]:
        """One market's status under the policy's decision: (status, carried from, why not).

        `carry_over` is (max age in days, now), or None when no approval may carry over.
        """
        market = decision.market
        current = availability_row(session, row.id, market)
        was = current.status if current is not None else None
        carried: dict[str, Any] | None = None
        problems: list[str] = []
        if decision.decision == "denied":
            status = "denied"
        elif was == "rejected":
            status = "rejected"
        elif approved(session, row, market) or (
            decision.decision == "allowed" and was not in ("pending_approval", "expired")
        ):
            status = "available"
        elif decision.decision == "allowed":
            status = "pending_approval"  # gated before for this content: a person decides
        else:
            carried, problems = (
                _carry_over(session, row, decision, facts, trail, carry_over)
                if carry_over is not None
                else (None, [])
            )
            status = "available" if carried else "pending_approval"
        detail = {
            **decision.to_json(),
            "year_individuals": facts.year_individuals,
            "policy_sha256": fingerprint,  # the rules as loaded when this decision was made
        }
        now = self._now()
        store_availability(
            session, row, market, status, decision.rule_id, decision.route, detail, now
        )
        if status == "available":
            count_abroad(session, row, market, now)
        return status, carried, problems

    def running_count(self, exporter: str, year: int) -> dict[str, Any]:
        """The exporter's individuals sent abroad in a calendar year, and the versions counted."""

        def work(session: Session) -> dict[str, Any]:
            rows = session.execute(
                select(ExporterTransfer, Version)
                .join(Version, ExporterTransfer.version_id == Version.id)
                .where(ExporterTransfer.exporter == exporter, ExporterTransfer.year == year)
                .order_by(ExporterTransfer.id)
            ).all()
            sent, sensitive = sent_this_year(session, exporter, year)
            return {
                "exporter": exporter,
                "year": year,
                "individuals": sent,
                "sensitive_individuals": sensitive,
                "versions": [
                    {
                        "product": v.product_id,
                        "version": v.version,
                        "individuals": t.individuals,
                        "sensitive": t.sensitive,
                        "market": t.market,
                        "counted_at": iso(t.counted_at),
                    }
                    for t, v in rows
                ],
            }

        return self._read(work)
