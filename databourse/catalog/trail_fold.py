"""The fold of the authenticated audit trail into what it proves, and a reader's cache of it.

`TrailState.of(session)` folds every event whose hash recomputes and whose MAC verifies (the
rest prove nothing) into per version its content hash and status, per market its last decision
or answer, per approval its decision and terms, the grants and the exporters' yearly counts
(trail_state says what each is checked against). A full fold walks the whole trail: measured
here (2 cores, SQLite) about 3 s at 20,000 events, so a service that asks on every request
(`bourse exchange serve`) keeps a `TrailCache` in its catalog's sessions: the fold of the trail
up to a verified head, extended by the events after it, each checked as `audit.verify` checks
it (sequence, link to the one before, hash, MAC). Any doubt is a full fold: the cached head is
gone or has another hash (truncated or rewritten), a new event does not check, the keys
changed, or the last full fold is older than `STALE_TIMES` x `FULL_EVERY_S`. After
`FULL_EVERY_S` a thread folds the whole trail again while requests use the cache, so an edit of
an old event that keeps the head is found a full fold after `FULL_EVERY_S` at most and never
later than `STALE_TIMES` x `FULL_EVERY_S` (the cached state holds only what authentic events
said, so such an edit cannot change what it backs meanwhile). A state with breaks is never
cached. The store's anchors are read on every call, cached or not.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from databourse.catalog import trail as audit
from databourse.catalog.models import AuditEvent
from databourse.errors import DataBourseError

__all__ = ["CARRY_TERMS", "TRAIL_CACHE", "TrailCache", "TrailState"]

# What a carry-over compares between versions and answers, audited with each approval.
CARRY_TERMS = ("rule", "route", "basis", "schema_sha256", "categories")
TRAIL_CACHE = "trail_cache"  # session.info: the TrailCache of a long-running reader, if any
FULL_EVERY_S = 60.0  # a cached fold is redone from the first event at least this often
STALE_TIMES = 3  # a cached fold this many times FULL_EVERY_S old is not used at all
log = logging.getLogger("databourse.catalog")

VKey = tuple[str, str]  # (product, version)
MKey = tuple[str, str, str]  # (product, version, market)
Keys = dict[str, bytes]
_ANSWERED = {"approval": "available", "rejection": "rejected", "expiry": "expired"}
_STATUS = {"version": "staged", "publication": "published", "withdrawal": "withdrawn"}


@dataclass
class TrailState:
    """What the MAC-verified audit events prove (see the module docstring).

    A state handed out is read, never changed: `fold` is applied to a `branch` (new containers,
    entries replaced rather than edited), so a cached state stays as it was for its readers.
    """

    versions: dict[VKey, dict[str, Any]] = field(default_factory=dict)
    markets: dict[MKey, dict[str, Any]] = field(default_factory=dict)
    approvals: dict[int, dict[str, Any]] = field(default_factory=dict)
    answered: list[int] = field(default_factory=list)  # approval ids, in chain order
    grants: dict[int, dict[str, Any]] = field(default_factory=dict)
    counts: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    sensitive: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    recipients: dict[int, list[str]] = field(default_factory=dict)  # grant -> token sha256s
    revoked: set[int] = field(default_factory=set)  # grants a `revocation` event revoked
    breaks: list[str] = field(default_factory=list)  # the chain's breaks: nothing is backed

    @classmethod
    def of(cls, session: Session) -> TrailState:
        """Fold every authenticated event, in chain order; unauthenticated ones prove nothing.

        An event deleted from the middle of the trail (its MAC'd neighbours still verify) or one
        rewritten after authenticated events is a break of the chain (`audit.verify`'s checks):
        a state with breaks backs no grant, carry-over or count. So are the newest events cut
        off the end, or the chain rewritten, under an authenticated anchor in the store.
        """
        keys = {k.key_id: k.material for k in audit.session_keys(session)}
        cache: TrailCache | None = session.info.get(TRAIL_CACHE)
        state = cache.folded(session, keys) if cache is not None else cls.fold_all(session, keys)
        return replace(state, breaks=state.breaks + _anchor_breaks(session, keys))

    @classmethod
    def fold_all(cls, session: Session, keys: Keys) -> TrailState:
        """The fold from the first event, with the chain's breaks (anchors not read)."""
        state = cls(breaks=list(audit.verify(session).problems))
        for ev in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
            if _authentic(ev, keys):
                state.fold(audit.event_json(ev))
        return state

    def branch(self) -> TrailState:
        """A copy to fold more events into, sharing no container with this state."""
        return TrailState(
            versions=dict(self.versions),
            markets=dict(self.markets),
            approvals=dict(self.approvals),
            answered=list(self.answered),
            grants=dict(self.grants),
            counts=defaultdict(int, self.counts),
            sensitive=defaultdict(int, self.sensitive),
            recipients=dict(self.recipients),
            revoked=set(self.revoked),
            breaks=list(self.breaks),
        )

    def chain_problems(self) -> list[str]:
        """The trail's breaks, as a refusal names them (first three)."""
        if not self.breaks:
            return []
        shown = "; ".join(self.breaks[:3]) + ("; ..." if len(self.breaks) > 3 else "")
        return [f"the audit trail is broken ({shown}): `bourse audit verify` says where"]

    def count_problems(self, exporter: str, year: int, stored: tuple[int, int]) -> list[str]:
        """The stored running count (individuals, sensitive) against the audited count events."""
        audited = (self.counts.get((exporter, year), 0), self.sensitive.get((exporter, year), 0))
        if audited == tuple(stored):
            return []
        return [
            f"exporter {exporter} {year}: the stored running count {stored[0]} (sensitive "
            f"{stored[1]}) is not the audited {audited[0]} (sensitive {audited[1]}): rows of "
            "exporter_transfers were deleted or edited"
        ]

    def fold(self, e: dict[str, Any]) -> None:
        """Apply one authenticated event (entries are replaced, never edited in place)."""
        kind, d = e["kind"], e["detail"]
        vkey = (e["product"], e["version"])
        if kind in _STATUS and e["version"]:
            entry = dict(self.versions.get(vkey) or {"content_hash": d.get("content_hash")})
            if kind != "version" or "status" not in entry:  # a later `version` event: manifest
                entry["status"] = _STATUS[kind]
            if d.get("manifest_sha256"):
                entry["manifest_sha256"] = d["manifest_sha256"]
            self.versions[vkey] = entry
        elif kind == "decision" and e["market"]:
            self.markets[(*vkey, e["market"])] = {
                "status": d.get("status"),
                "rule": d.get("rule"),
                "policy_sha256": d.get("policy_sha256"),
                "decision": d.get("decision"),
                "approval_id": None,
            }
        elif kind in _ANSWERED and e["market"]:
            mkey = (*vkey, e["market"])
            self.markets[mkey] = {
                **self.markets.get(mkey, {}),
                "status": _ANSWERED[kind],
                "approval_id": d.get("approval_id"),
            }
            self.approvals[int(d["approval_id"])] = {
                "decision": {"approval": "approved", "rejection": "rejected"}.get(kind, "expired"),
                "valid_until": d.get("valid_until"),
                "reference": d.get("reference"),
                "market": e["market"],
                "version": vkey,
                "content_hash": d.get("content_hash"),
                "carry_over": bool(d.get("carry_over")),
                "answered_at": e["at"],  # a carry-over keeps its source's: the person's answer
                **{term: d[term] for term in (*CARRY_TERMS, "conditions_sha256") if term in d},
            }
            self.answered.append(int(d["approval_id"]))
        elif kind == "carry_over":
            self._carry(e, vkey)
        elif kind == "grant" and d.get("grant_id") is not None:
            self.grants[int(d["grant_id"])] = {
                **d, "version": vkey, "market": e["market"], "buyer": e["actor"], "at": e["at"]
            }  # fmt: skip
        elif kind == "recipient" and d.get("grant_id") is not None:
            gid = int(d["grant_id"])
            self.recipients[gid] = [*self.recipients.get(gid, []), d.get("token_sha256")]
        elif kind == "revocation" and d.get("grant_id") is not None:
            self.revoked.add(int(d["grant_id"]))
        elif kind == "count":
            who = (str(d.get("exporter")), int(d.get("year") or 0))
            self.counts[who] += int(d.get("individuals") or 0)
            if d.get("sensitive"):
                self.sensitive[who] += int(d.get("individuals") or 0)

    def _carry(self, e: dict[str, Any], vkey: VKey) -> None:
        """A carry-over proves an approval only when its source is an audited approved one."""
        d = e["detail"]
        source_id = (d.get("carried_over_from") or {}).get("approval_id")
        source = self.approvals.get(int(source_id)) if source_id is not None else None
        if source is None or source["decision"] != "approved" or not source["carry_over"]:
            return  # only an answer that said "covers later versions" carries over
        self.approvals[int(d["approval_id"])] = {
            **source,
            "reference": d.get("reference", source["reference"]),
            "market": e["market"],
            "version": vkey,
            "content_hash": d.get("content_hash"),
            **{term: d[term] for term in CARRY_TERMS if term in d},
        }
        self.answered.append(int(d["approval_id"]))

    def prior_answer(self, product: str, version: str, market: str) -> int | None:
        """The approval id of the last audited decision (approval, rejection, expiry or
        carry-over) for `market` on another version of `product`, given for that version's
        audited content: the trail's order decides, never the catalog's `decided_at`."""
        for approval_id in reversed(self.answered):
            proved = self.approvals[approval_id]
            owner = proved["version"]
            if owner[0] != product or owner[1] == version or proved["market"] != market:
                continue
            if proved.get("content_hash") == self.versions.get(owner, {}).get("content_hash"):
                return approval_id
        return None


@dataclass(frozen=True)
class _Folded:
    state: TrailState
    seq: int  # the verified head the state was folded up to, and its hash
    hash: str
    keys: str  # sha256 of the audit keys it was authenticated with
    full_at: float  # monotonic time of the last fold from the first event


@dataclass
class TrailCache:
    """The last verified fold of one catalog's trail, for a reader asked on every request.

    A cached fold older than `full_every_s` is still used while a thread folds the trail again
    from the first event (measured: 12 s at 60,000 events on 2 busy cores, too long for a
    buyer's request to wait); one older than `STALE_TIMES` that is not used (the request folds).
    """

    full_every_s: float = FULL_EVERY_S
    clock: Callable[[], float] = time.monotonic
    folds: int = 0  # full folds done, by requests and by the refresh thread
    _last: _Folded | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _refresh: threading.Thread | None = None

    def folded(self, session: Session, keys: Keys) -> TrailState:
        """The trail's fold as this session sees it (breaks included, anchors not read)."""
        keyprint = hashlib.sha256(repr(sorted(keys.items())).encode()).hexdigest()
        head = session.execute(
            select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
        ).first()
        with self._lock:
            last = self._last
            age = self.clock() - last.full_at if last is not None else 0.0
            if (
                last is not None
                and head is not None
                and last.keys == keyprint
                and age < self.full_every_s * STALE_TIMES
                and head.seq >= last.seq
            ):
                extended = self._extend(session, keys, last)
                if extended is not None:
                    if age >= self.full_every_s:
                        self._start_refresh(session, keys, keyprint)
                    return extended
            self.folds += 1
            state = TrailState.fold_all(session, keys)
            self._last = None
            if head is not None and not state.breaks:
                self._last = _Folded(state, head.seq, head.hash, keyprint, self.clock())
            return state

    def wait(self, timeout: float | None = None) -> None:
        """Until the refresh thread, if one runs, has finished."""
        thread = self._refresh
        if thread is not None:
            thread.join(timeout)

    def _start_refresh(self, session: Session, keys: Keys, keyprint: str) -> None:
        if self._refresh is not None and self._refresh.is_alive():
            return
        self._refresh = threading.Thread(
            target=self._refold,
            args=(session.get_bind(), dict(session.info), keys, keyprint, self.clock()),
            name="trail-refold",
            daemon=True,
        )
        self._refresh.start()

    def _refold(
        self, bind: Any, info: dict[str, Any], keys: Keys, keyprint: str, started: float
    ) -> None:
        """Fold from the first event in a session of its own; then trust it or drop the cache.

        A fold with breaks drops the cache (the next request folds and reports them). A clean
        one vouches for every event up to its head: the cached fold, extended event by event
        from an earlier verified fold, holds only events this chain has, so it counts as
        verified at `started`; a newer head than the cache's replaces it.
        """
        try:
            with Session(bind=bind, info=info) as session, session.begin():
                head = session.execute(
                    select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
                ).first()
                state = TrailState.fold_all(session, keys)
        except Exception as exc:  # a failed refresh must not leave an unchecked cache in use
            log.warning("refolding the audit trail failed (%s): the next request folds it",
                        type(exc).__name__)  # fmt: skip
            state, head = None, None
        with self._lock:
            self.folds += 1
            last = self._last
            if state is None or head is None or state.breaks:
                self._last = None
            elif last is not None and last.keys == keyprint:
                if head.seq > last.seq:
                    self._last = _Folded(state, head.seq, head.hash, keyprint, started)
                else:
                    self._last = replace(last, full_at=started)

    def _extend(self, session: Session, keys: Keys, last: _Folded) -> TrailState | None:
        """`last` with the events after its head folded in; None when anything does not check."""
        pinned = session.get(AuditEvent, last.seq)
        if pinned is None or pinned.hash != last.hash:
            return None  # cut off or rewritten: a full fold says how
        state, prev, seq = None, last.hash, last.seq
        newer = select(AuditEvent).where(AuditEvent.seq > last.seq).order_by(AuditEvent.seq)
        for ev in session.scalars(newer):
            if audit.link_problems(ev, prev, seq + 1, keys):
                return None
            state = state or last.state.branch()
            state.fold(audit.event_json(ev))
            prev, seq = ev.hash, ev.seq
        if state is None:
            return last.state
        self._last = replace(last, state=state, seq=seq, hash=prev)
        return state


def _anchor_breaks(session: Session, keys: Keys) -> list[str]:
    """The store's authenticated anchors the chain contradicts (`verify --all`'s rule), read
    from the newest down; planted, unauthenticated anchors are no break (see audit_anchors)."""
    resolve = session.info.get("anchor_store")
    if resolve is None:
        return []
    try:
        return audit.check_anchors(session, resolve(), keys, newest_only=True).problems
    except (OSError, DataBourseError) as exc:  # fail closed: an unread anchor backs nothing
        return [f"the audit anchors ({audit.ANCHORS}) could not be read: {type(exc).__name__}"]


def _authentic(ev: AuditEvent, keys: Keys) -> bool:
    """The event's hash recomputes and its MAC verifies under a known audit key."""
    key = keys.get(ev.key_id or "")
    if ev.mac is None or key is None:
        return False
    digest = audit.event_hash(
        ev.seq, ev.at, ev.kind, ev.product, ev.version, ev.market, ev.actor,
        dict(ev.detail or {}), ev.prev_hash,
    )  # fmt: skip
    return digest == ev.hash and hmac.compare_digest(audit.event_mac(key, digest), ev.mac)
