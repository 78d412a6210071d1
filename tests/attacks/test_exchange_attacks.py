"""Issue 20: what the exchange refuses, against the real service process.

Each attack is a buyer's (a wrong or another grant's token, a tampered link, names that climb
out of the share) or an insider's (rows rewritten with SQL, a file changed in the store). Every
refusal is 401 or 403 with a reason about the caller's own grant only, and no response ever
carries a path of the exchange's machine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from conftest import TEST_AUDIT_KEY
from sqlalchemy import text
from test_exchange_sharing import buyer, buyer_python, grant_profile, run, serving
from test_facts_and_grants import PRODUCT, World, gate, package, world

from databourse.delivery import sharing

__all__ = ["buyer_python", "world"]  # the fixtures


class Buyer:
    """Raw HTTP calls with one grant's token; every answer is checked for machine paths."""

    def __init__(self, w: World, base: str, given: dict[str, Any]) -> None:
        self.w, self.base, self.given = w, base, given
        self.token = json.loads(Path(given["profile"]).read_text())["bearerToken"]
        self.table = sharing.SharedTable(given["id"], given["product"], given["version"])

    def call(self, method: str, path: str, token: str | None = "", **kw: Any) -> httpx.Response:
        token = self.token if token == "" else token
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        url = path if path.startswith("http") else f"{self.base}{path}"
        answer = httpx.request(method, url, headers=headers, timeout=30, **kw)
        body = answer.content.decode(errors="replace")
        assert "file:" not in body and str(self.w.store.root) not in body, body[:500]
        assert str(self.w.cfg.state_dir) not in body, body[:500]
        return answer

    def table_path(self, share: str | None = None) -> str:
        t = self.table
        return f"/delta-sharing/shares/{share or t.share}/schemas/{t.schema}/tables/{t.table}"

    def query(self, token: str | None = "") -> httpx.Response:
        return self.call("POST", self.table_path() + "/query", token, json={})

    def file_urls(self) -> list[str]:
        answer = self.query()
        assert answer.status_code == 200, answer.text
        lines = [json.loads(line) for line in answer.text.splitlines()]
        return [line["file"]["url"] for line in lines if "file" in line]


def refused(answer: httpx.Response, status: int, *words: str) -> str:
    assert answer.status_code == status, answer.text
    message = answer.json()["message"]
    for word in words:
        assert word in message, message
    return str(message)


def sql(w: World, statement: str, **params: Any) -> None:
    with w.catalog.engine.begin() as conn:
        conn.execute(text(statement), params)


@pytest.fixture
def granted(world: World) -> Iterator[Buyer]:
    version = package(world)
    gate(world, version)
    with serving(world) as base:
        yield Buyer(world, base, grant_profile(world, base, version))


def test_a_wrong_token_is_refused_alike(granted: Buyer) -> None:
    assert granted.query().status_code == 200  # the control
    answers = [
        granted.query(token=None),
        granted.query(token="not a token"),
        granted.query(token=sharing.new_token()),
        granted.query(token=granted.token[:-1] + ("A" if granted.token[-1] != "A" else "B")),
    ]
    messages = {refused(a, 401) for a in answers}
    assert messages == {"the bearer token is not valid"}  # no oracle on which part was wrong


def test_an_expired_grant_is_refused(granted: Buyer, buyer_python: Path) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    sql(granted.w, "UPDATE grants SET expires_at = :t", t=past)
    refused(granted.query(), 403, "expired")
    proc = buyer(buyer_python, granted.given["profile"])
    assert proc.returncode != 0 and "403" in proc.stderr


def test_a_revoked_grant_is_refused_even_with_its_row_restored(granted: Buyer) -> None:
    proc = run(granted.w, "grant", "revoke", str(granted.given["id"]))
    assert proc.returncode == 0, proc.stderr
    refused(granted.query(), 403, "revoked")
    # the insider clears the row's revocation: the audited revocation still holds
    sql(granted.w, "UPDATE share_recipients SET revoked_at = NULL, revoked_reason = NULL")
    refused(granted.query(), 403, "revoked")


def test_a_withdrawn_version_is_refused(granted: Buyer) -> None:
    granted.w.catalog.withdraw_version(PRODUCT, granted.table.version, "recall")
    refused(granted.query(), 403, "cannot be delivered")
    refused(granted.call("GET", "/delta-sharing/shares"), 403, "cannot be delivered")


def test_a_grant_extended_or_a_token_swapped_with_sql_is_refused(granted: Buyer) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=300)
    sql(granted.w, "UPDATE grants SET expires_at = :t", t=later)
    refused(granted.query(), 403, "cannot be delivered")  # the audited grant event says 7 days
    sql(granted.w, "UPDATE grants SET expires_at = :t", t=dt.datetime.fromisoformat(
        granted.given["expires_at"]))  # fmt: skip
    assert granted.query().status_code == 200
    mine = sharing.new_token()
    sql(granted.w, "UPDATE share_recipients SET token_sha256 = :h", h=sharing.token_sha256(mine))
    refused(granted.query(token=mine), 403, "cannot be delivered")  # not the audited hash


def test_a_file_changed_in_the_store_is_refused(granted: Buyer) -> None:
    [url] = granted.file_urls()
    folder = granted.w.store.root / "products" / PRODUCT / granted.table.version
    [part] = sorted(folder.glob("*.parquet"))
    part.write_bytes(part.read_bytes()[:-1] + b"\0")
    refused(granted.query(), 403, "cannot be delivered")
    refused(granted.call("GET", url, token=None), 403, "cannot be delivered")


def test_another_grants_table_is_out_of_reach(granted: Buyer) -> None:
    w = granted.w
    other_version = package(w, tag="v2")
    gate(w, other_version)
    other = Buyer(w, granted.base, grant_profile(w, granted.base, other_version, buyer="SG Shop"))
    t = other.table
    answers = [
        granted.call("GET", f"/delta-sharing/shares/{t.share}"),
        granted.call("GET", f"/delta-sharing/shares/{t.share}/schemas"),
        granted.call("GET", f"/delta-sharing/shares/{t.share}/all-tables"),
        granted.call("GET", f"/delta-sharing/shares/{t.share}/schemas/{t.schema}/tables"),
        granted.call("GET", other.table_path() + "/metadata"),
        granted.call("POST", other.table_path() + "/query", json={}),
        # its own share, the other grant's table name
        granted.call("POST", f"{granted.table_path()[:-len(granted.table.table)]}{t.table}/query",
                     json={}),
    ]  # fmt: skip
    for answer in answers:
        message = refused(answer, 403)
        assert t.share not in message and other_version not in message and t.table not in message
    # its file links are signed for its grant: moved onto another grant's id they fail
    [url] = other.file_urls()
    moved = url.replace(f"/files/{t.grant_id}/", f"/files/{granted.table.grant_id}/")
    refused(granted.call("GET", moved, token=None), 403, "signature")
    shares = granted.call("GET", "/delta-sharing/shares").json()
    assert shares["items"] == [{"name": granted.table.share, "id": granted.table.share}]


def test_a_tampered_or_expired_file_link_is_refused(granted: Buyer) -> None:
    [url] = granted.file_urls()
    assert granted.call("GET", url, token=None).status_code == 200  # the control, no token
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    path = parts.path
    index = int(path.rsplit("/", 1)[1].split(".")[0])

    def link(p: str = path, **changed: Any) -> str:
        query = "&".join(f"{k}={v}" for k, v in {**q, **changed}.items())
        return f"{granted.base}{p}?{query}"

    flipped = ("0" if q["sig"][0] != "0" else "1") + q["sig"][1:]
    for tampered in (
        link(sig=flipped),
        link(exp=int(q["exp"]) + 3600),
        link(q=int(q["q"]) + 1),
        link(path.replace(f"/{index}.parquet", f"/{index + 1}.parquet")),
    ):
        refused(granted.call("GET", tampered, token=None), 403, "signature")
    # signed with the service's key but past its expiry
    key = sharing.url_signing_key(TEST_AUDIT_KEY.encode())
    gone = int(dt.datetime.now(dt.UTC).timestamp()) - 5
    sig = sharing.file_signature(key, granted.table.grant_id, index, int(q["q"]), gone)
    refused(granted.call("GET", link(exp=gone, sig=sig), token=None), 403, "expired")


@pytest.mark.parametrize(
    "path",
    [
        "/delta-sharing/files/1/..%2F..%2Fcatalog.db",
        "/delta-sharing/files/1/../../catalog.db",
        "/delta-sharing/files/1/%2e%2e%2fmanifest.json?q=1&exp=9999999999&sig=00",
        "/delta-sharing/shares/..%2F..%2Fstate/schemas/x/tables/y/metadata",
        "/delta-sharing/shares/{share}/schemas/..%2F{schema}/tables/{table}/metadata",
        "/delta-sharing/shares/{share}/schemas/{schema}/tables/..%2F..%2Fmanifest.json/metadata",
        "/delta-sharing/shares/{share}/schemas/{schema}/tables/{table}%2F..%2F..%2Fv2/query",
    ],
)
def test_no_path_traversal_through_names(granted: Buyer, path: str) -> None:
    t = granted.table
    path = path.format(share=t.share, schema=t.schema, table=t.table)
    method = "POST" if path.endswith("/query") else "GET"
    answer = granted.call(method, path, json={} if method == "POST" else None)
    assert 400 <= answer.status_code < 500, answer.text
    assert b"SQLite" not in answer.content and b"content_hash" not in answer.content
    assert hashlib.sha256(answer.content).hexdigest() not in {
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in granted.w.store.root.rglob("*")
        if p.is_file()
    }
