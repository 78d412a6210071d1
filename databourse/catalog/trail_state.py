"""The state the authenticated audit trail proves, and the catalog rows it contradicts.

The catalog database is writable by an insider; the audit events are MAC'd with a key it does not
hold. `TrailState.of(session)` folds only the events whose hash recomputes and whose MAC verifies
into what they prove: per version its content hash and status, per market its last decision or
answer, per approval its decision and terms, the grants and the exporters' yearly counts.
`availability_problems` is the one rule of whether a market's stored status is backed (a grant
and every public listing ask it); `grant_problems` and `catalog_problems` name every row a grant
or `verify --all` relies on that this state does not back. Messages name versions, markets, ids
and hashes only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from databourse.catalog import trail as audit
from databourse.catalog.models import (
    Approval,
    AuditEvent,
    Availability,
    ExporterTransfer,
    Grant,
    Version,
    iso,
)
from databourse.catalog.trail_fold import TrailState
from databourse.transfer.grant_conditions import conditions_sha256

__all__ = [
    "TrailState",
    "answer_age_problems",
    "approval_problems",
    "availability_problems",
    "carry_over_terms",
    "catalog_problems",
    "grant_problems",
]


def carry_over_terms(
    schema: list[dict[str, Any]] | None,
    facts: dict[str, Any] | None,
    rule: str | None,
    route: str | None,
    basis: str | None,
) -> dict[str, Any]:
    """The terms an approval is audited with, for a later carry-over to compare against."""
    categories = (facts or {}).get("categories")
    return {
        "rule": rule,
        "route": route,
        "basis": basis,
        "schema_sha256": hashlib.sha256(
            json.dumps(schema or [], sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest(),
        "categories": sorted(categories) if categories is not None else None,
    }


def manifest_problem(audited: str | None, found: str | None, name: str) -> str | None:
    """Why a manifest's bytes (sha256 `found`) are not the ones packaged, or None if they are."""
    if audited is None or found == audited:
        return None  # None: packaged before manifests were hashed (verify --all warns)
    return (
        f"{name}: manifest.json hashes to {str(found)[:16]}, packaged as {audited[:16]} (edited "
        "after packaging: terms, markets or privacy figures cannot be trusted)"
    )


def version_problems(state: TrailState, row: Version) -> list[str]:
    """The version row's content hash and status against the trail."""
    name = f"{row.product_id} {row.version}"
    proved = state.versions.get((row.product_id, row.version))
    if proved is None:
        return [f"{name}: no authenticated `version` event records it"]
    problems = []
    if proved["content_hash"] != row.content_hash:
        problems.append(
            f"{name}: content hash {row.content_hash[:16]} is not the audited "
            f"{str(proved['content_hash'])[:16]} (the catalog row was rewritten)"
        )
    if row.manifest_sha256 != proved.get("manifest_sha256"):
        problems.append(f"{name}: its manifest sha256 is not the audited one")
    if proved.get("status") == "withdrawn" and row.status != "withdrawn":
        problems.append(f"{name}: the trail records its withdrawal, the catalog says {row.status}")
    elif row.status == "published" and proved.get("status") != "published":
        problems.append(f"{name}: published in the catalog, the trail records no publication")
    return problems


def market_problems(state: TrailState, row: Version, where: Availability) -> list[str]:
    """One market's stored status, rule and policy against its last audited decision/answer."""
    name = f"{row.product_id} {row.version} market {where.market}"
    proved = state.markets.get((row.product_id, row.version, where.market))
    if proved is None:
        return [f"{name}: {where.status} without any authenticated gate decision"]
    problems = []
    if proved.get("status") != where.status:
        problems.append(f"{name}: {where.status}, the audited trail says {proved.get('status')}")
    detail = where.detail or {}
    if proved.get("policy_sha256") != detail.get("policy_sha256"):
        problems.append(f"{name}: its policy fingerprint is not the audited decision's")
    if proved.get("rule") != where.rule_id:
        problems.append(f"{name}: rule {where.rule_id}, the audited decision's is {proved['rule']}")
    if proved.get("decision") is not None and proved["decision"] != detail.get("decision"):
        problems.append(f"{name}: policy decision {detail.get('decision')} is not the audited one")
    return problems


def approval_problems(
    state: TrailState, approval: Approval, row: Version | None = None
) -> list[str]:
    """An approval row against its audited decision, terms, version and content hash."""
    proved = state.approvals.get(approval.id)
    name = f"approval {approval.id} ({approval.market})"
    if proved is None:
        return [f"{name}: no authenticated approval (or approved carry-over source) records it"]
    problems = []
    if row is not None and proved["version"] != (row.product_id, row.version):
        problems.append(f"{name}: audited for {proved['version'][0]} {proved['version'][1]}")
    if proved.get("content_hash") and proved["content_hash"] != approval.content_hash:
        problems.append(f"{name}: its content hash is not the audited one")
    until = approval.valid_until.isoformat() if approval.valid_until else None
    if (proved.get("valid_until") or None) != until:
        problems.append(f"{name}: valid until {until}, audited {proved.get('valid_until')}")
    if proved.get("reference") != approval.reference:
        problems.append(f"{name}: its reference is not the audited one")
    if "conditions_sha256" in proved and (  # audited since conditions were hashed
        proved["conditions_sha256"] != conditions_sha256(approval.conditions)
    ):
        problems.append(f"{name}: its conditions are not the audited ones")
    if proved["decision"] != approval.decision:
        problems.append(
            f"{name}: {approval.decision}, the audited decision is {proved['decision']}"
        )
    if proved["market"] != approval.market:
        problems.append(f"{name}: audited for market {proved['market']}")
    return problems


def answer_age_problems(
    state: TrailState, approval_id: int, max_days: int, now: datetime
) -> list[str]:
    """Why an approval is too old to carry over: its audited answer (not the catalog's row)
    was given more than `max_days` ago (settings: carry_over_max_age_days)."""
    answered = (state.approvals.get(approval_id) or {}).get("answered_at")
    if answered is None:
        return [f"approval {approval_id}: no audited answer time: ask again"]
    when = datetime.fromisoformat(answered)
    if now - when <= timedelta(days=max_days):
        return []
    return [
        f"approval {approval_id} was answered on {when.date().isoformat()}, more than "
        f"{max_days} days ago (carry_over_max_age_days): ask again"
    ]


def availability_problems(state: TrailState, row: Version, where: Availability) -> list[str]:
    """Why the trail does not back a market's stored status (none: it does): the chain, the
    version's row and the market's row. A grant and every listing of the market ask this."""
    return (
        state.chain_problems() + version_problems(state, row) + market_problems(state, row, where)
    )


def grant_problems(
    session: Session,
    row: Version,
    where: Availability,
    approval: Approval | None,
    state: TrailState | None = None,
) -> list[str]:
    """Everything a new grant rests on that the authenticated trail does not back (`state`:
    the trail's fold when the caller has it, else folded here)."""
    state = state if state is not None else TrailState.of(session)
    problems = availability_problems(state, row, where)
    if approval is not None:
        problems += approval_problems(state, approval, row)
        made_available = state.markets.get((row.product_id, row.version, where.market), {})
        if made_available.get("approval_id") not in (None, approval.id):
            problems.append(
                f"approval {approval.id} ({where.market}): the audited trail made the market "
                f"available with approval {made_available['approval_id']}"
            )
    return problems


def catalog_problems(session: Session) -> list[tuple[str, str]]:
    """Every catalog row `verify --all` relies on that the trail contradicts: (kind, message)."""
    state = TrailState.of(session)
    out: list[tuple[str, str]] = []
    versions = {v.id: v for v in session.scalars(select(Version))}
    for row in versions.values():
        out += [("trail-version", p) for p in version_problems(state, row)]
    for where in session.scalars(select(Availability)):
        out += [
            ("trail-market", p) for p in market_problems(state, versions[where.version_id], where)
        ]
    for approval in session.scalars(select(Approval)):
        owner = versions.get(approval.version_id)
        out += [("trail-approval", p) for p in approval_problems(state, approval, owner)]
    rows = set()
    for grant in session.scalars(select(Grant)):
        rows.add(grant.id)
        out += [("trail-grant", p) for p in _grant_row_problems(state, grant, versions)]
    for gone in sorted(set(state.grants) - rows):
        proved = state.grants[gone]
        out.append((
            "trail-grant",
            f"grant {gone} ({proved['market']}): audited, but its row is gone from the catalog",
        ))  # fmt: skip
    who = (ExporterTransfer.exporter, ExporterTransfer.year)
    stored = session.execute(
        select(*who, func.sum(ExporterTransfer.individuals)).group_by(*who)
    ).all()
    sums = {(e, int(y)): int(n or 0) for e, y, n in stored}
    for key in sorted(set(sums) | set(state.counts)):
        if sums.get(key, 0) != state.counts.get(key, 0):
            out.append((
                "trail-count",
                f"exporter {key[0]} {key[1]}: {sums.get(key, 0)} individuals counted, "
                f"the audited count events sum to {state.counts.get(key, 0)}",
            ))  # fmt: skip
    return out


def _close(audited: str | None, moment: datetime | None, seconds: float = 5) -> bool:
    if audited is None or moment is None:
        return False
    at = datetime.fromisoformat(audited)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=at.tzinfo)
    return abs((at - moment).total_seconds()) <= seconds


def _grant_row_problems(state: TrailState, grant: Grant, versions: dict[int, Version]) -> list[str]:
    """A grant row needs its audited grant event: same version, market, hash, expiry, buyer,
    and a grant time within seconds of the event's (the row and the event share a transaction)."""
    proved = state.grants.get(grant.id)
    if proved is None:
        return [f"grant {grant.id} ({grant.market}): no authenticated grant event records it"]
    row = versions.get(grant.version_id)
    same = (
        row is not None
        and proved["version"] == (row.product_id, row.version)
        and proved["market"] == grant.market
        and proved.get("content_hash") == grant.content_hash
        and proved.get("expires_at") == iso(grant.expires_at)
        and proved.get("buyer") == grant.buyer
        and _close(proved.get("at"), grant.granted_at)
    )
    return [] if same else [f"grant {grant.id} ({grant.market}): differs from its audit event"]


def authenticated_events(session: Session, kind: str) -> list[dict[str, Any]]:
    """Events of one kind whose hash and MAC verify under the audit key (others are left out)."""
    audit.signing_key(session)  # SecretMissing, saying how to set it, when there is no key
    keys = {k.key_id: k.material for k in audit.session_keys(session)}
    found = []
    query = select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.seq)
    for ev in session.scalars(query):
        detail = dict(ev.detail or {})
        digest = audit.event_hash(
            ev.seq, ev.at, ev.kind, ev.product, ev.version, ev.market, ev.actor, detail,
            ev.prev_hash,
        )  # fmt: skip
        key = keys.get(ev.key_id or "")
        if digest != ev.hash or key is None or ev.mac is None:
            continue  # edited, or written without a known key: `bourse audit verify` names it
        if hmac.compare_digest(audit.event_mac(key, digest), ev.mac):
            found.append({"seq": ev.seq, "detail": detail})
    return found
