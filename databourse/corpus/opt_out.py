"""Opt-outs of a corpus: documents removed from the next version, by id, author or source domain.

They come from the product's rules (the provider's config) and from the requests recorded in the
catalog (`bourse corpus opt-out`), where an author is kept only as a keyed digest
(`keys.name_digest`, under a key derived from the audit key that recorded it): a name must
not sit in a tamper-evident trail nobody can edit, and a plain hash of a name is found by
hashing names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa

from databourse.config.corpus import OptOut as OptOut
from databourse.errors import SecretMissing
from databourse.keys import OPT_OUT_AUTHOR, name_digester, normalized_name


def opted_out(
    table: pa.Table, opt_out: OptOut, keys: Mapping[str, bytes] | None = None
) -> np.ndarray:
    """Which documents (`id`, `author`, `source` columns) an opt-out removes; `keys` (key id ->
    material) are those the digests of `opt_out.author_digests` were made under."""
    ids = table.column("id").to_pylist()
    authors = table.column("author").to_pylist()
    sources = table.column("source").to_pylist()
    named = {normalized_name(a) for a in opt_out.authors}
    used = {d.split(":", 1)[0] for d in opt_out.author_digests}
    under = [name_digester(k, m, OPT_OUT_AUTHOR) for k, m in (keys or {}).items() if k in used]
    if opt_out.author_digests and len(under) < len(used):
        missing = ", ".join(sorted(used - set(keys or {})))
        raise SecretMissing(
            f"opt-out requests were recorded under audit keys not at hand ({missing}): their "
            "authors cannot be matched; restore those keys (DATABOURSE_AUDIT_KEY__<VERSION>)"
        )

    def out(doc: str, author: str | None, source: str | None) -> bool:
        if doc in opt_out.ids or in_domains(source, opt_out.domains):
            return True
        if not author:
            return False
        if normalized_name(author) in named:
            return True
        return any(digest(author) in opt_out.author_digests for digest in under)

    return np.array(
        [out(d, a, s) for d, a, s in zip(ids, authors, sources, strict=True)], dtype=bool
    )


def in_domains(source: str | None, domains: frozenset[str]) -> bool:
    """Whether a source URL's host is one of `domains` or under one."""
    if not domains or not source:
        return False
    host = (urlsplit(source).hostname or "").rstrip(".")
    return any(host == d or host.endswith("." + d) for d in domains)


def with_requests(opt_out: OptOut, events: list[dict[str, Any]]) -> OptOut:
    """The opt-out with the requests recorded in the catalog added (`Catalog.opt_out_requests`'s
    events: ids, domains and author digests)."""
    asked = OptOut(
        ids=frozenset(i for e in events for i in e["detail"]["ids"]),
        domains=frozenset(d for e in events for d in e["detail"]["domains"]),
        author_digests=frozenset(a for e in events for a in e["detail"]["author_digests"]),
    )
    return opt_out.merged(asked)
