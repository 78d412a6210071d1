"""The landing zone's drops: what discover says of each object (status, hash, ingest id, why)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from databourse.storage.store import ObjectInfo

STATUSES = (
    "new",
    "ingested",
    "quarantined",
    "duplicate",
    "waiting",
    "invalid",
    "manifest",
    "refused",
    "unknown_provider",
    "unknown_dataset",
)


@dataclass(frozen=True)
class Drop:
    """One landing object and what discover decided about it (names, sizes, hashes: no data)."""

    provider: str
    dataset: str
    key: str
    name: str
    size: int
    sha256: str | None  # None when not read: unknown provider/dataset, or changed while read
    ingest_id: str | None
    status: str
    reason: str | None = None
    duplicate_of: str | None = None
    expected_rows: int | None = None
    manifest_key: str | None = None


@dataclass(frozen=True)
class DiscoverResult:
    """Every landing object, sorted by key, with its status."""

    drops: tuple[Drop, ...]

    @property
    def new(self) -> list[Drop]:
        """The drops to ingest now, one per distinct content."""
        return [d for d in self.drops if d.status == "new"]

    def summary(self) -> dict[str, int]:
        """How many objects have each status (every status, zeros included)."""
        counts = dict.fromkeys(STATUSES, 0)
        for drop in self.drops:
            counts[drop.status] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        """Plain data for an artifact or a task result."""
        return {"drops": [asdict(d) for d in self.drops], "summary": self.summary()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DiscoverResult:
        """The result `to_json` described."""
        return cls(tuple(Drop(**d) for d in data["drops"]))


@dataclass
class LandingObject:
    """A landing object of a configured dataset while it is being classified."""

    info: ObjectInfo
    dataset: str
    folder: str
    name: str
    sha256: str | None = None
    holds: list[tuple[str, str]] = field(default_factory=list)  # (waiting|invalid, reason)
    manifest_key: str | None = None
    expected_rows: int | None = None

    def drop(self, provider: str, status: str, reason: str | None = None) -> Drop:
        """The object's line in the result."""
        return Drop(
            provider=provider,
            dataset=self.dataset,
            key=self.info.key,
            name=self.name,
            size=self.info.size,
            sha256=self.sha256,
            ingest_id=self.sha256[:16] if self.sha256 else None,
            status=status,
            reason=reason,
            expected_rows=self.expected_rows,
            manifest_key=self.manifest_key,
        )
