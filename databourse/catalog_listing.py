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

from databourse import audit
from databourse.catalog_engine import CatalogEngine, newest_first
from databourse.catalog_models import (
    Approval,
    ApprovalRecord,
    Availability,
    Product,
    Version,
    VersionRecord,
    availability_json,
    product_json,
)
from databourse.errors import VersionNotFound
from databourse.keys import Key
from databourse.trail_state import TrailState, approval_problems, availability_problems

__all__ = ["UNVERIFIED", "PublicListing", "listed_availability", "unverified_markets"]

UNVERIFIED = "unverified"  # the status listed for a market whose stored row the trail does not back


def listed_availability(session: Session, state: TrailState, row: Version) -> list[dict[str, Any]]:
    """The version's markets as listed: the stored row, or "unverified" where the trail differs."""
    out = []
    stored = session.scalars(
        select(Availability).where(Availability.version_id == row.id).order_by(Availability.market)
    )
    for where in stored:
        entry = availability_json(where)
        problems = availability_problems(state, row, where)
        if problems:  # its detail (citation, decision) is as unbacked as its status
            entry.update(
                status=UNVERIFIED, stored_status=where.status, detail=None, unverified=problems[0]
            )
        out.append(entry)
    return out


def listed_version(session: Session, state: TrailState, row: Version) -> dict[str, Any]:
    """A version as `Catalog.show` returns it, with its markets and approvals as listed."""
    approvals, unverified = [], []
    for approval in session.scalars(
        select(Approval).where(Approval.version_id == row.id).order_by(Approval.id)
    ):
        record = ApprovalRecord.of(approval, row).to_json()
        if problems := state.chain_problems() + approval_problems(state, approval, row):
            unverified.append({**record, "unverified": problems[0]})
        else:
            approvals.append(record)
    return {
        **VersionRecord.of(row).to_json(),
        "availability": listed_availability(session, state, row),
        "approvals": approvals,
        "unverified_approvals": unverified,
    }


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
        self, product_id: str | None = None, version: str | None = None
    ) -> list[dict[str, Any]]:
        """Every product (or one, or one version) shaped as `show`, markets as the trail backs them.

        One transaction and one fold of the trail for the whole listing.
        """

        def work(session: Session) -> list[dict[str, Any]]:
            state = TrailState.of(session)
            if product_id is None:
                products = list(session.scalars(select(Product).order_by(Product.id)))
            else:
                found = session.get(Product, product_id)
                if found is None:
                    raise VersionNotFound(
                        f"no product {product_id!r} in the catalog",
                        product=product_id,
                        version=version,
                    )
                products = [found]
            out = []
            for product in products:
                if version is not None:
                    rows = [self._version_row(session, product.id, version)]
                else:
                    rows = list(session.scalars(newest_first(product.id)))
                out.append(
                    {
                        "product": product_json(product),
                        "versions": [listed_version(session, state, row) for row in rows],
                    }
                )
            return out

        return self._read(work)

    def listing_keys(self) -> list[Key]:
        """The audit keys that check the listing's seal (signing key first); [] when none is set."""
        return self._read(audit.session_keys)

    def listing_signing_key(self) -> Key:
        """The audit key that seals the listing; SecretMissing, saying how to set it, if none."""
        return self._read(audit.signing_key)
