"""A landing drop's state by its content: ingested, quarantined or new, once per content."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace

from databourse.ingest.landing_drops import Drop, LandingObject
from databourse.storage import zones
from databourse.storage.store import ObjectStore


class IngestState:
    """Whether an ingest id is ingested, quarantined or new (one HEAD each, remembered)."""

    def __init__(self, store: ObjectStore, provider: str) -> None:
        self._store = store
        self._provider = provider
        self._known: dict[tuple[str, str], str] = {}

    def __call__(self, dataset: str, sha256: str) -> str:
        ingest_id = sha256.lower()[:16]
        if (dataset, ingest_id) not in self._known:
            self._known[dataset, ingest_id] = self._look(dataset, ingest_id)
        return self._known[dataset, ingest_id]

    def _look(self, dataset: str, ingest_id: str) -> str:
        reason = f"{zones.quarantine_prefix(self._provider, dataset, ingest_id)}/_reason.json"
        if self._store.head(reason) is not None:
            return "quarantined"
        done = self._store.head(
            f"{zones.raw_prefix(self._provider, dataset, ingest_id)}/_ingest.json"
        )
        # ingest writes `_ingest.json` last and non-empty; anything else is an interrupted ingest
        return "ingested" if done is not None and done.size > 0 else "new"


def decide_drops(
    provider: str, data: Iterable[LandingObject], state: Callable[[str, str], str]
) -> list[Drop]:
    """Held files keep their hold; the others take the state of their hash, once per content."""
    drops = []
    groups: dict[tuple[str, str], list[LandingObject]] = defaultdict(list)
    for obj in data:
        if obj.holds or obj.sha256 is None:
            invalid = [r for s, r in obj.holds if s == "invalid"]
            status = "invalid" if invalid else "waiting"
            reasons = invalid or [r for _, r in obj.holds]
            drops.append(obj.drop(provider, status, "; ".join(reasons)))
        else:
            groups[obj.dataset, obj.sha256].append(obj)
    for (dataset, sha), members in groups.items():
        members.sort(key=lambda o: o.info.key)
        status = state(dataset, sha)
        first = members[0].drop(provider, status)
        drops.append(first)
        for other in members[1:]:
            dup = "duplicate" if status == "new" else status
            drops.append(replace(other.drop(provider, dup), duplicate_of=first.key))
    return drops
