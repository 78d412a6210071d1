"""The listing: what buyers and operators are shown is what the authenticated audit trail backs.

The catalog's rows can be written with SQL by an insider; the audit events are MAC'd with a key
the database does not hold (trail_state). Every listing (the DCAT export, the HTML page,
`bourse catalog show` and `list`) takes a market's status from here: a row that
`trail_state.availability_problems` (the rule a grant applies) does not back is listed as
"unverified", its stored status kept beside it as `stored_status`, never as available. An
approval row the trail does not back (`trail_state.approval_problems`) is left out of
`approvals` and kept, with why, under `unverified_approvals` (operators see it, buyers do not).
Messages name versions, markets and ids only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from databourse.catalog import trail as audit
from databourse.catalog.engine import CatalogEngine, newest_first
from databourse.catalog.models import Approval, Availability, Product, Version
from databourse.catalog.records import (
    ApprovalRecord,
    VersionRecord,
    availability_json,
    product_json,
)
from databourse.catalog.trail_state import TrailState, approval_problems, availability_problems
from databourse.errors import VersionNotFound
from databourse.keys import Key

__all__ = ["UNVERIFIED", "PublicListing", "listed_availability", "unverified_markets"]

UNVERIFIED = "unverified"  # the status listed for a market whose stored row the trail does not back


def listed_availability(
    session: Session, state: TrailState, row: Version, stored: list[Availability] | None = None
) -> list[dict[str, Any]]:
    """The version's markets as listed: the stored row, or "unverified" where the trail differs.

    `stored`: the version's availability rows when the caller loaded them (`by_version`)."""
    out = []
    if stored is None:
        stored = by_version(session, Availability, [row.id]).get(row.id, [])
    for where in sorted(stored, key=lambda a: a.market):
        entry = availability_json(where)
        problems = availability_problems(state, row, where)
        if problems:  # its detail (citation, decision) is as unbacked as its status
            entry.update(
                status=UNVERIFIED, stored_status=where.status, detail=None, unverified=problems[0]
            )
        out.append(entry)
    return out


def by_version(session: Session, model: Any, ids: list[int]) -> dict[int, list[Any]]:
    """The rows of `model` (Availability or Approval) of the versions `ids`, per version id, in
    id order: one query per 500 versions, not two per version (a listing of 10,000 versions)."""
    found: dict[int, list[Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in session.scalars(
            select(model).where(model.version_id.in_(chunk)).order_by(model.id)
        ):
            found.setdefault(row.version_id, []).append(row)
    return found


def listed_version(
    session: Session,
    state: TrailState,
    row: Version,
    stored: tuple[list[Availability], list[Approval]] | None = None,
) -> dict[str, Any]:
    """A version as `Catalog.show` returns it, with its markets and approvals as listed.

    `stored`: its availability and approval rows when the caller loaded them (`by_version`)."""
    if stored is None:
        stored = (
            by_version(session, Availability, [row.id]).get(row.id, []),
            by_version(session, Approval, [row.id]).get(row.id, []),
        )
    approvals, unverified = [], []
    for approval in stored[1]:
        record = ApprovalRecord.of(approval, row).to_json()
        if problems := state.chain_problems() + approval_problems(state, approval, row):
            unverified.append({**record, "unverified": problems[0]})
        else:
            approvals.append(record)
    return {
        **VersionRecord.of(row).to_json(),
        "status": listed_status(state, row),
        "availability": listed_availability(session, state, row, stored[0]),
        "approvals": approvals,
        "unverified_approvals": unverified,
    }


def listed_status(state: TrailState, row: Version) -> str:
    """The version's status as the trail backs it: a withdrawal the trail records stays one
    whatever the row says (an UPDATE undoing it), and a "published" the trail never recorded is
    listed as staged (`bourse verify --all` names both)."""
    proved = state.versions.get((row.product_id, row.version)) or {}
    if proved.get("status") == "withdrawn":
        return "withdrawn"
    if row.status == "published" and proved.get("status") != "published":
        return "staged"
    return str(row.status)


def unverified_markets(listing: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(product, version, market, stored status) of every market a listing shows as unverified."""
    return [
        (entry["product"]["id"], v["version"], a["market"], a["stored_status"])
        for entry in listing
        for v in entry["versions"]
        for a in v["availability"]
        if a["status"] == UNVERIFIED
    ]


class PublicListing(CatalogEngine):
    """Catalog methods that list products as the audit trail backs them (mixed into Catalog)."""

    def listing(
        self,
        product_id: str | None = None,
        version: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Every product (or one, or one version) shaped as `show`, markets as the trail backs them.

        One transaction and one fold of the trail for the whole listing; `offset` and `limit`
        take a page of the products in id order (a listing of all products only).
        """

        def work(session: Session) -> list[dict[str, Any]]:
            state = TrailState.of(session)
            if product_id is None:
                products = list(
                    session.scalars(
                        select(Product).order_by(Product.id).offset(offset).limit(limit)
                    )
                )
            else:
                found = session.get(Product, product_id)
                if found is None:
                    raise VersionNotFound(
                        f"no product {product_id!r} in the catalog",
                        product=product_id,
                        version=version,
                    )
                products = [found]
            if version is not None:
                shown = [(p, [self._version_row(session, p.id, version)]) for p in products]
            elif product_id is not None:
                shown = [(p, list(session.scalars(newest_first(p.id)))) for p in products]
            else:  # every product's versions in one query, highest version number first
                newest: dict[str, list[Version]] = {}
                paged = [p.id for p in products] if offset or limit is not None else None
                query = select(Version)
                if paged is not None:
                    query = query.where(Version.product_id.in_(paged))
                for row in session.scalars(
                    query.order_by(
                        Version.product_id,
                        Version.major.desc(),
                        Version.minor.desc(),
                        Version.patch.desc(),
                    )
                ):
                    newest.setdefault(row.product_id, []).append(row)
                shown = [(p, newest.get(p.id, [])) for p in products]
            ids = [row.id for _, rows in shown for row in rows]
            markets = by_version(session, Availability, ids)
            answers = by_version(session, Approval, ids)
            return [
                {
                    "product": product_json(product),
                    "versions": [
                        listed_version(
                            session, state, row, (markets.get(row.id, []), answers.get(row.id, []))
                        )
                        for row in rows
                    ],
                }
                for product, rows in shown
            ]

        return self._read(work)

    def listing_keys(self) -> list[Key]:
        """The audit keys that check the listing's seal (signing key first); [] when none is set."""
        return self._read(audit.session_keys)

    def listing_signing_key(self) -> Key:
        """The audit key that seals the listing; SecretMissing, saying how to set it, if none."""
        return self._read(audit.signing_key)
