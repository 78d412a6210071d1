"""Opt-outs matched by id, domain, author name and keyed author digest (issue 24 item 5)."""

from __future__ import annotations

import secrets

import pyarrow as pa
import pytest

from databourse.corpus.opt_out import OptOut, opted_out
from databourse.errors import SecretMissing
from databourse.keys import OPT_OUT_AUTHOR, name_digest, normalized_name

DOCS = pa.table(
    {
        "id": ["d1", "d2", "d3", "d4", "d5"],
        "author": ["Nur Aisyah binti Ahmad", "陈伟", None, "Tan Ah Kow", "ＴＡＮ　ＡＨ　ＫＯＷ"],
        "source": [
            "https://forum.example.my/t/1",
            "https://news.example.cn/a",
            "https://a.b.forum.example.my./x",
            None,
            "https://notforum.example.my/",
        ],
    }
)


def test_ids_domains_and_names_each_remove_theirs() -> None:
    assert opted_out(DOCS, OptOut(ids=frozenset({"d2"}))).tolist() == [0, 1, 0, 0, 0]
    by_domain = OptOut(domains=frozenset({"forum.example.my"}))
    assert opted_out(DOCS, by_domain).tolist() == [1, 0, 1, 0, 0]  # not notforum.example.my
    by_name = OptOut(authors=frozenset({"  tan ah KOW "}))
    assert opted_out(DOCS, by_name).tolist() == [0, 0, 0, 1, 1]  # full-width folded (NFKC)


def test_digests_match_under_the_key_they_were_made_with_only() -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    digest = name_digest("k-old", old, OPT_OUT_AUTHOR, "NUR AISYAH BINTI AHMAD")
    asked = OptOut(author_digests=frozenset({digest}))
    assert opted_out(DOCS, asked, {"k-old": old, "k-new": new}).tolist() == [1, 0, 0, 0, 0]
    forged = OptOut(author_digests=frozenset({digest.replace("k-old", "k-new")}))
    assert not opted_out(DOCS, forged, {"k-new": new}).any()
    with pytest.raises(SecretMissing, match="k-old"):
        opted_out(DOCS, asked, {"k-new": new})
    under_new = name_digest("k-new", new, OPT_OUT_AUTHOR, "NUR AISYAH BINTI AHMAD")
    assert under_new.split(":")[1] != digest.split(":")[1]  # the key, not the name alone
    assert normalized_name("ＴＡＮ　ＡＨ  kow") == "tan ah kow"
