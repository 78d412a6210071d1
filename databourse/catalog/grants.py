"""The catalog's grants of access to buyers, and its audit trail."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from databourse.catalog import access_anchors, access_log, trail_state
from databourse.catalog import trail as audit
from databourse.catalog.engine import CatalogEngine, check_market
from databourse.catalog.markets import availability_row, count_abroad
from databourse.catalog.models import Approval, Availability, Grant, Version, iso
from databourse.catalog.trail_state import authenticated_events
from databourse.errors import CatalogError, DataBourseError, TransferNotApproved
from databourse.names import check_name
from databourse.storage.store import ObjectStore
from databourse.transfer.grant_conditions import acceptance_problem, conditions_sha256
from databourse.transfer.grant_terms import check_terms_expiry

__all__ = ["GrantsAndAudit", "offer_in_force"]

log = logging.getLogger("databourse.catalog")


class GrantsAndAudit(CatalogEngine):
    """Catalog methods for buyers' grants and the audit trail (mixed into Catalog)."""

    def record_grant(
        self,
        product_id: str,
        version: str,
        buyer: str,
        market: str,
        expires_at: datetime,
        max_days: int = 365,
        accepted_conditions: str | None = None,
        purpose: str | None = None,
        terms_expire: date | None = None,
    ) -> dict[str, Any]:
        """Record a buyer's access to a published version available in their market.

        Refused (TransferNotApproved) unless the version is published and its availability in
        `market` is "available", which for gated markets means an approval bound to its hash
        whose `valid_until` has not passed, and whose conditions, if it has any, were accepted:
        `accepted_conditions` is the sha256 of the text shown (`grant_conditions`). The grant
        ends by that day and within `max_days` (CatalogError otherwise). A grant abroad in a
        new calendar year counts the version in that year too. `purpose` (the buyer's, checked
        against the usage terms by `delivery.grant_access`) is recorded in the audited event;
        the grant is refused after `terms_expire` (the usage terms' expiry) and may not end
        later (grant_terms).
        """
        check_market(market)
        check_name(buyer, "buyer")  # InvalidName: empty, overlong, control characters
        _check_expiry(expires_at, self._now(), max_days)

        def work(session: Session) -> dict[str, Any]:
            row = self._version_row(session, product_id, version)
            where, approval = offer_in_force(session, row, market, expires_at, self._now())
            _refuse_unaccepted(approval, accepted_conditions, row)
            check_terms_expiry(product_id, version, terms_expire, expires_at, self._now())
            grant = Grant(
                version_id=row.id,
                content_hash=row.content_hash,
                buyer=buyer,
                market=market,
                expires_at=expires_at,
            )
            session.add(grant)
            session.flush()
            count_abroad(session, row, market, self._now())
            audit.append(
                session,
                "grant",
                product=product_id,
                version=version,
                market=market,
                actor=buyer,
                detail={
                    "grant_id": grant.id,
                    "expires_at": iso(expires_at),
                    "content_hash": row.content_hash,
                    "rule": where.rule_id,
                    "policy_sha256": (where.detail or {}).get("policy_sha256"),
                    "approval_id": approval.id if approval else None,
                    "conditions_sha256": conditions_sha256(approval.conditions)
                    if approval
                    else None,
                    "conditions_accepted": accepted_conditions is not None,
                    "purpose": purpose,
                },
            )
            log.info("granted %s %s in %s until %s", product_id, version, market, expires_at)
            return {
                "id": grant.id,
                "product": product_id,
                "version": version,
                "content_hash": row.content_hash,
                "buyer": buyer,
                "market": market,
                "expires_at": iso(expires_at),
                "granted_at": iso(grant.granted_at),
                "purpose": purpose,
            }

        return self._write("record_grant", work)

    def grant_conditions(self, product_id: str, version: str, market: str) -> dict[str, Any] | None:
        """The conditions of the approval a grant in `market` would rest on (None: none).

        What `bourse grant` shows before asking for their acceptance: the approval's id,
        reference, conditions and their sha256 (what `record_grant` takes as accepted).
        """
        check_market(market)

        def work(session: Session) -> dict[str, Any] | None:
            row = self._version_row(session, product_id, version)
            where = availability_row(session, row.id, market)
            approval = _latest_approval(session, row, where) if where is not None else None
            sha = conditions_sha256(approval.conditions) if approval is not None else None
            if approval is None or approval.decision != "approved" or sha is None:
                return None
            return {
                "approval_id": approval.id,
                "reference": approval.reference,
                "conditions": approval.conditions,
                "conditions_sha256": sha,
            }

        return self._read(work)

    def audit_append(
        self,
        kind: str,
        *,
        product: str | None = None,
        version: str | None = None,
        market: str | None = None,
        actor: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append an event that happened outside the catalog (an ingest, a quarantine)."""

        def work(session: Session) -> dict[str, Any]:
            return audit.event_json(
                audit.append(
                    session,
                    kind,
                    product=product,
                    version=version,
                    market=market,
                    actor=actor,
                    detail=detail,
                )
            )

        return self._write("audit_append", work)

    def audit_verify(self, store: ObjectStore | None = None) -> audit.ChainReport:
        """Walk the audit trail's hashes and MACs, and with a store its anchors there; then the
        access log's chain against the trail's seals (`access_log.verify`), and with a store
        its newest rows against their anchors there (`access_anchors.verify`)."""

        def work(session: Session) -> audit.ChainReport:
            report = audit.verify(session, store, self._now())
            reads = access_log.verify(session)
            problems = [*report.problems, *reads.problems]
            notes = [*report.notes, reads.note()]
            try:  # without the audit key nothing is authenticated (the trail's walk says so)
                keys = {k.key_id: k.material for k in audit.session_keys(session)}
            except DataBourseError:
                keys = {}
            if store is not None and keys:
                cut, odd = access_anchors.verify(session, store, keys, reads.sealed)
                problems, notes = [*problems, *cut], [*notes, *odd]
            return dataclasses.replace(report, ok=not problems, problems=problems, notes=notes)

        return self._read(work)

    def anchor_access(self, store: ObjectStore, after: int) -> dict[str, Any] | None:
        """Anchor the access log's newest row in the store when it is newer than row `after`
        (`access_anchors.anchor`); the anchor, or None."""
        return self._read(
            lambda session: access_anchors.anchor(session, store, audit.signing_key(session), after)
        )

    def audit_anchor(self, store: ObjectStore) -> dict[str, Any] | None:
        """Write the chain's head to the store as a write-once anchor (None on an empty chain)."""
        return self._write("audit_anchor", lambda session: audit.anchor(session, store))

    def audit_history(self, product: str | None = None) -> list[dict[str, Any]]:
        """The audit events, all or one product's, in order."""
        return self._read(lambda session: audit.history(session, product))

    def audit_authenticated(self, kind: str) -> list[dict[str, Any]]:
        """Events of one kind whose hash and MAC verify under the audit key (seq and detail)."""
        return self._read(lambda session: authenticated_events(session, kind))

    def trail_problems(self, product_id: str, version: str, market: str) -> list[str]:
        """What a grant in `market` would rest on that the authenticated audit trail contradicts."""

        def work(session: Session) -> list[str]:
            row = self._version_row(session, product_id, version)
            where = availability_row(session, row.id, market)
            problems = trail_state.version_problems(trail_state.TrailState.of(session), row)
            if where is not None:
                problems += trail_state.grant_problems(session, row, where, None)
            return list(dict.fromkeys(problems))

        return self._read(work)

    def audited_manifests(self) -> dict[tuple[str, str], str]:
        """(product, version) -> the manifest sha256 the authenticated trail records."""

        def work(session: Session) -> dict[tuple[str, str], str]:
            versions = trail_state.TrailState.of(session).versions
            return {
                k: v["manifest_sha256"] for k, v in versions.items() if v.get("manifest_sha256")
            }

        return self._read(work)

    def trail_findings(self) -> list[tuple[str, str]]:
        """Every catalog row the authenticated audit trail contradicts: (kind, message)."""
        return self._read(trail_state.catalog_problems)

    def grants(self, product_id: str) -> list[dict[str, Any]]:
        """Every grant of every version of a product, oldest first."""

        def work(session: Session) -> list[dict[str, Any]]:
            rows = session.execute(
                select(Grant, Version.version)
                .join(Version, Grant.version_id == Version.id)
                .where(Version.product_id == product_id)
                .order_by(Grant.id)
            )
            return [
                {
                    "id": g.id,
                    "version": v,
                    "buyer": g.buyer,
                    "market": g.market,
                    "content_hash": g.content_hash,
                    "expires_at": iso(g.expires_at),
                    "granted_at": iso(g.granted_at),
                }
                for g, v in rows
            ]

        return self._read(work)


def _check_expiry(expires_at: datetime, now: datetime, max_days: int) -> None:
    """A grant ends in the future and within `max_days` (settings: grant_max_days)."""
    if expires_at.tzinfo is None:
        raise CatalogError(f"grant expiry {expires_at.isoformat()} has no time zone")
    if expires_at <= now:
        raise CatalogError(f"grant expiry {iso(expires_at)} is not in the future")
    if expires_at > now + timedelta(days=max_days):
        raise CatalogError(
            f"grant expiry {iso(expires_at)} is more than {max_days} days away (grant_max_days "
            "in settings.yaml): give a shorter --expires and renew the grant when it ends",
            max_days=max_days,
        )


def offer_in_force(
    session: Session,
    row: Version,
    market: str,
    expires_at: datetime,
    now: datetime,
    trail: trail_state.TrailState | None = None,
) -> tuple[Availability, Approval | None]:
    """What a grant in `market` until `expires_at` rests on, checked for a new grant and again
    for every delivery of one (`catalog_shares`): the version published and available there,
    the approval in force past the grant's end, and those rows as the authenticated audit
    trail backs them. Returns the availability row and the approval (None where the market is
    open without one); raises TransferNotApproved or CatalogError naming the first failure.
    `trail`: the audit trail's fold when the caller already has it (one fold a request).
    """
    where = availability_row(session, row.id, market)
    if row.status != "published" or where is None or where.status != "available":
        raise TransferNotApproved(
            f"{row.product_id} {row.version} is not offered in {market} "
            f"(version {row.status}, market {where.status if where else 'undecided'})",
            product=row.product_id,
            version=row.version,
            market=market,
        )
    approval = _approval_in_force(session, row, where, expires_at, now)
    problems = trail_state.grant_problems(session, row, where, approval, trail)
    _refuse_untrailed(problems, row, market)
    return where, approval


def _approval_in_force(
    session: Session, row: Version, where: Availability, expires_at: datetime, now: datetime
) -> Approval | None:
    """The approval a gated market's availability rests on, valid until past the grant's end.

    None for markets open without one (domestic, or allowed by the policy). TransferNotApproved
    when it is missing or expired; CatalogError when the grant would outlast it.
    """
    if where.rule_id == "domestic" or (where.detail or {}).get("decision") == "allowed":
        return None
    approval = _latest_approval(session, row, where)
    names = {"product": row.product_id, "version": row.version, "market": where.market}
    if approval is None or approval.decision != "approved":
        raise TransferNotApproved(
            f"{row.product_id} {row.version} has no approval in force for {where.market}: no grant",
            **names,
        )
    until = approval.valid_until
    if until is None:
        return approval
    if until < now.date():
        raise TransferNotApproved(
            f"the approval of {row.product_id} {row.version} for {where.market} (reference "
            f"{approval.reference}) expired on {until.isoformat()}: no grant until a new "
            "approval is recorded",
            **names,
            valid_until=until.isoformat(),
        )
    if expires_at > _end_of(until):
        raise CatalogError(
            f"a grant until {iso(expires_at)} would outlast the approval it rests on (valid "
            f"until {until.isoformat()}): give --expires {until.isoformat()} or earlier",
            **names,
            valid_until=until.isoformat(),
        )
    return approval


def _latest_approval(session: Session, row: Version, where: Availability) -> Approval | None:
    """The latest decision for the market on this content, if the market is gated at all."""
    if where.rule_id == "domestic" or (where.detail or {}).get("decision") == "allowed":
        return None
    return session.scalars(
        select(Approval)
        .where(
            Approval.version_id == row.id,
            Approval.market == where.market,
            Approval.content_hash == row.content_hash,
        )
        .order_by(Approval.decided_at.desc(), Approval.id.desc())
        .limit(1)
    ).first()


def _refuse_unaccepted(approval: Approval | None, accepted: str | None, row: Version) -> None:
    """TransferNotApproved when the approval's conditions were not accepted as shown."""
    problem = acceptance_problem(approval.conditions, accepted) if approval else None
    if approval is not None and problem is not None:
        raise TransferNotApproved(
            f"no grant of {row.product_id} {row.version} in {approval.market}: approval "
            f"{approval.id} (reference {approval.reference}) has conditions; {problem}",
            product=row.product_id,
            version=row.version,
            market=approval.market,
            approval_id=approval.id,
        )


def _refuse_untrailed(problems: list[str], row: Version, market: str) -> None:
    """TransferNotApproved naming the first catalog row the audit trail does not back."""
    if problems:
        raise TransferNotApproved(
            f"no grant: the catalog contradicts the authenticated audit trail: {problems[0]}"
            f"{f' (+{len(problems) - 1} more)' if len(problems) > 1 else ''}; run "
            "`bourse verify --all` and `bourse audit verify`",
            product=row.product_id,
            version=row.version,
            market=market,
        )


def _end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
