"""The exchange's cached fold of the audit trail (trail_fold.TrailCache) equals a full fold.

Differential: after every append of a random mix of events, the cached state equals a fold from
the first event. Attacks as a catalog SQL writer would try them while a reader holds a cached
fold: cut the newest events, rewrite the head, append an unkeyed or wrongly keyed event, edit or
delete an old event (found at the next full fold, and meanwhile the cached state is the
authentic one: a deleted revocation still revokes), swap the keys. Each must end in a full fold
that reports the break, never in a state the full fold would not give.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from databourse.catalog import trail as audit
from databourse.catalog.database import Catalog
from databourse.catalog.models import AuditEvent
from databourse.catalog.trail_fold import TrailCache, TrailState

KINDS = ("version", "publication", "decision", "approval", "grant", "recipient", "revocation")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def two(tmp_path: Path) -> tuple[Catalog, Catalog, TrailCache, Clock]:
    """One catalog database seen by a plain reader and by a reader with a cache."""
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    plain = Catalog(url)
    plain.create_schema()
    clock = Clock()
    cache = TrailCache(clock=clock)
    return plain, Catalog(url, trail_cache=cache), cache, clock


def event(rng: random.Random, i: int) -> dict[str, Any]:
    kind = rng.choice(KINDS)
    detail: dict[str, Any] = {"content_hash": f"{rng.randrange(4):064x}"}
    if kind in ("approval", "grant", "recipient", "revocation"):
        detail.update(approval_id=i, grant_id=rng.randrange(5), token_sha256=f"{i:064x}")
    if kind == "decision":
        detail.update(status=rng.choice(("available", "pending")), rule="anonymized")
    return {
        "kind": kind,
        "product": f"p{rng.randrange(3)}",
        "version": f"1.0.{rng.randrange(3)}",
        "market": rng.choice(("CN", "MY", "SG")),
        "actor": "officer",
        "detail": detail,
    }


def append(cat: Catalog, *events: dict[str, Any]) -> None:
    def work(session: Session) -> None:
        for e in events:
            audit.append(session, e.pop("kind"), **e)

    cat._write("test", work)


def fold(cat: Catalog) -> TrailState:
    return cat._read(TrailState.of)


def sql(cat: Catalog, statement: Any) -> None:
    with cat.engine.begin() as conn:
        conn.execute(statement)


def test_the_cached_fold_equals_a_full_fold_after_every_append(two: Any) -> None:
    plain, cached, cache, _ = two
    rng = random.Random(7)
    for i in range(40):
        append(cached, *(event(rng, i * 10 + j) for j in range(rng.randrange(1, 4))))
        assert fold(cached) == fold(plain)
    assert cache.folds == 1  # one fold from the first event, then only the new events


def test_cut_or_rewritten_newest_events_force_a_full_fold_that_reports_them(two: Any) -> None:
    plain, cached, cache, _ = two
    rng = random.Random(1)
    append(cached, *(event(rng, i) for i in range(12)))
    fold(cached)
    head = plain._read(lambda s: s.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())))
    sql(plain, delete(AuditEvent).where(AuditEvent.seq == head))  # the newest event cut off
    append(plain, event(rng, 99))  # and a new one written in its place, keyed
    state = fold(cached)
    assert cache.folds == 2  # the cached head is gone: folded again, never served from cache
    assert state == fold(plain)  # (a cut of the end is the anchors' to find: test_anchor_races)
    sql(plain, update(AuditEvent).where(AuditEvent.seq == head).values(hash="f" * 64))
    state = fold(cached)
    assert cache.folds == 3 and state.breaks and state == fold(plain)


def test_an_unkeyed_or_forged_new_event_is_not_folded(two: Any) -> None:
    plain, cached, cache, _ = two
    rng = random.Random(2)
    append(cached, *(event(rng, i) for i in range(6)))
    fold(cached)
    append(plain, {**event(rng, 50), "kind": "revocation", "detail": {"grant_id": 3}})
    sql(plain, update(AuditEvent).where(AuditEvent.seq == 7).values(mac="0" * 64))
    state = fold(cached)
    assert cache.folds == 2 and state.breaks and state == fold(plain)


def test_an_old_event_deleted_is_found_at_the_next_full_fold(two: Any) -> None:
    plain, cached, cache, clock = two
    rng = random.Random(3)
    append(cached, *(event(rng, i) for i in range(6)))
    append(cached, {**event(rng, 60), "kind": "revocation", "detail": {"grant_id": 4}})
    append(cached, *(event(rng, i) for i in range(70, 76)))
    before = fold(cached)
    assert 4 in before.revoked and not before.breaks
    sql(plain, delete(AuditEvent).where(AuditEvent.seq == 7))  # the revocation
    meanwhile = fold(cached)  # the head is untouched: the authentic fold still revokes
    assert 4 in meanwhile.revoked and cache.folds == 1
    clock.now += cache.full_every_s
    during = fold(cached)  # served from the cache while a thread folds the whole trail again
    assert 4 in during.revoked and not during.breaks
    cache.wait(60)
    after = fold(cached)
    assert cache.folds == 3 and after.breaks and after == fold(plain)


def test_a_clean_refold_keeps_the_cache_and_a_stale_one_is_not_used(two: Any) -> None:
    plain, cached, cache, clock = two
    rng = random.Random(6)
    append(cached, *(event(rng, i) for i in range(10)))
    fold(cached)
    clock.now += cache.full_every_s
    append(cached, *(event(rng, i) for i in range(20, 24)))
    fold(cached)
    cache.wait(60)
    assert cache.folds == 2  # the request's fold and the thread's
    for _ in range(3):
        assert fold(cached) == fold(plain)
    assert cache.folds == 2  # the refold vouched for the cache: no request folds
    clock.now += cache.full_every_s * 3  # no request for a long while: no refresh ran
    sql(plain, delete(AuditEvent).where(AuditEvent.seq == 3))
    assert fold(cached).breaks and cache.folds == 3  # the request folds, not the stale cache


def test_other_keys_force_a_full_fold(two: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    plain, cached, cache, _ = two
    rng = random.Random(4)
    append(cached, *(event(rng, i) for i in range(5)))
    fold(cached)
    monkeypatch.setenv("DATABOURSE_AUDIT_KEY", "Zq8-3kLmN0pQrStUvWxYz1A2b3C4d5E6f7G8h9I0jKlMnOp")
    state = fold(cached)
    assert cache.folds == 2 and state == fold(plain)
    assert state.breaks  # the events were keyed with the other key: none authenticates now


def test_a_state_handed_out_never_changes_under_its_reader(two: Any) -> None:
    _, cached, _, _ = two
    rng = random.Random(5)
    append(cached, *(event(rng, i) for i in range(30)))
    first = fold(cached)
    kept = copy.deepcopy(first)
    for i in range(10):  # answers, grants and recipients of the same keys as before
        append(cached, *(event(rng, 100 + i * 5 + j) for j in range(5)))
        fold(cached)
    assert first == kept
