"""Opt-out requests of a corpus product: recorded in the audit trail, read back authenticated.

A request names documents (ids), source domains and authors to remove from the product's next
version. Ids and domains are recorded as given; an author only as a keyed digest under the
signing audit key (`keys.name_digest`): the trail keeps every event for good, and a name there
would be personal data no one could erase. The catalog shows the requests (`opt_out_requests`)
and a build applies them (`corpus.opt_out.opted_out`, with the keys they were made under).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from databourse.catalog import trail as audit
from databourse.catalog.engine import CatalogEngine
from databourse.catalog.models import AuditEvent
from databourse.catalog.trail_state import authenticated_events
from databourse.config.strict import IDENTIFIER
from databourse.errors import CatalogError
from databourse.keys import OPT_OUT_AUTHOR, name_digest
from databourse.names import check_name


class OptOutDesk(CatalogEngine):
    def record_opt_out(
        self,
        product: str,
        *,
        ids: list[str],
        authors: list[str],
        domains: list[str],
        reason: str,
        actor: str,
    ) -> dict[str, Any]:
        """Append one `opt_out` event for `product` (authors as keyed digests); the event."""
        if not re.fullmatch(IDENTIFIER, product):
            raise ValueError(
                f"product {product!r}: a product id is lowercase letters, digits, - and _, "
                "starting with a letter"
            )
        check_name(reason, "reason")
        check_name(actor, "recorder")
        if not (ids or authors or domains):
            raise ValueError("an opt-out request names documents, authors or domains")

        def work(session: Session) -> dict[str, Any]:
            key = audit.signing_key(session)
            digests = {name_digest(key.key_id, key.material, OPT_OUT_AUTHOR, a) for a in authors}
            detail = {
                "product": product,
                "ids": sorted(set(ids)),
                "domains": sorted({d.strip().lower().rstrip(".") for d in domains}),
                "author_digests": sorted(digests),
                "reason": reason,
            }
            event = audit.append(session, "opt_out", product=product, actor=actor, detail=detail)
            return audit.event_json(event)

        return self._write("record_opt_out", work)

    def opt_out_requests(self, product: str) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
        """The authenticated requests of `product` ({"seq", "detail"}) in order, and the audit
        keys (id -> material) their author digests may have been made under. CatalogError when
        the trail holds any request that does not verify (edited, its product moved, or keyed
        by a key not at hand): a build must not quietly put back what someone asked to leave
        out, and an edited request no longer says for which product it was."""

        def work(session: Session) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
            events = authenticated_events(session, "opt_out")
            held = session.scalar(select(func.count()).where(AuditEvent.kind == "opt_out")) or 0
            if held != len(events):  # which product an edited request was for cannot be told
                raise CatalogError(
                    f"{held - len(events)} of the {held} opt-out request(s) in the audit trail "
                    "do not verify under the audit key: nothing is decided on an edited trail; "
                    "run `bourse audit verify`",
                    product=product,
                )
            mine = [e for e in events if e["detail"].get("product") == product]
            return mine, {k.key_id: k.material for k in audit.session_keys(session)}

        return self._read(work)
