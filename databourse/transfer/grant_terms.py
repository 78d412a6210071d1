"""A grant stays within its version's usage terms: a permitted purpose, and not past their expiry.

The terms are the product's config (the manifest states them too, and `facts.confirmed_facts`
refuses a manifest whose terms differ from the config it was built from). A grant names the
buyer's purpose, which must be one the terms permit (the audited grant event records it); it
is refused once the terms have expired, and may not end after the day they expire.
"""

from __future__ import annotations

import datetime as dt

from databourse.config import UsageTerms
from databourse.errors import CatalogError, TransferNotApproved

__all__ = ["check_purpose", "check_terms_expiry"]


def check_purpose(product: str, version: str, terms: UsageTerms, purpose: str | None) -> None:
    """CatalogError, listing the permitted purposes, for a purpose missing or not permitted."""
    if purpose and purpose in terms.purposes:
        return
    given = "no purpose was given" if not purpose else "that purpose is not permitted"
    raise CatalogError(
        f"no grant of {product}@{version}: {given}; give --purpose, one of the purposes its "
        f"usage terms permit: {', '.join(terms.purposes)}",
        product=product,
        version=version,
        permitted=list(terms.purposes),
    )


def check_terms_expiry(
    product: str,
    version: str,
    terms_expire: dt.date | None,
    expires_at: dt.datetime,
    now: dt.datetime,
) -> None:
    """TransferNotApproved once the terms have expired; CatalogError for a grant past them."""
    if terms_expire is None:
        return
    name, day = f"{product}@{version}", terms_expire.isoformat()
    if terms_expire < now.date():
        raise TransferNotApproved(
            f"the usage terms of {name} expired on {day}: no grant",
            product=product,
            version=version,
            terms_expire=day,
        )
    if expires_at > dt.datetime.combine(terms_expire, dt.time(23, 59, 59), tzinfo=dt.UTC):
        raise CatalogError(
            f"a grant of {name} until {expires_at.isoformat(timespec='seconds')} would outlast "
            f"its usage terms (they expire on {day}): give --expires {day} or earlier",
            product=product,
            version=version,
            terms_expire=day,
        )
