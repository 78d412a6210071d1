"""Issue 20/15 (pass 7, 1-3): a buyer only ever receives the exact bytes granted.

Against the real service process: a store writer swaps a product part for other bytes of the
same size (its mtime restored, or swapped after a link was handed out, or an S3 object replaced
after the query) and the buyer gets the original bytes or a refusal, never the new ones; on S3
the links are the exchange's own, so a revoked grant's links stop working at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_exchange_attacks import Buyer, granted, refused
from test_exchange_sharing import _s3_world, grant_profile, run, serving
from test_facts_and_grants import PRODUCT, gate, package, world

__all__ = ["granted", "world"]  # the fixtures


def swapped(part: Path, *, in_place: bool) -> bytes:
    """Other bytes of the same size put at `part`, its atime and mtime restored; the new bytes."""
    before = part.stat()
    new = bytes(b ^ 0xFF for b in part.read_bytes())
    if in_place:
        part.chmod(0o600)
        part.write_bytes(new)
    else:  # an atomic writer: a new file renamed over the old one
        fresh = part.with_name(part.name + ".swap")
        fresh.write_bytes(new)
        os.replace(fresh, part)
    os.chmod(part, stat.S_IMODE(before.st_mode))
    os.utime(part, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert part.stat().st_size == before.st_size
    assert part.stat().st_mtime_ns == before.st_mtime_ns
    return new


def the_part(b: Buyer) -> Path:
    folder = b.w.store.root / "products" / PRODUCT / b.table.version
    [part] = sorted(folder.glob("*.parquet"))
    return part


def fetch(b: Buyer, url: str, wanted: str | None = None) -> httpx.Response:
    """A file link fetched as a buyer's reader does (no token), maybe one byte range."""
    answer = httpx.get(url, headers={"Range": wanted} if wanted else {}, timeout=30)
    body = answer.content.decode(errors="replace")
    assert str(b.w.cfg.state_dir) not in body and "file:" not in body, body[:500]
    return answer


def original_or_refused(answer: httpx.Response, original: bytes, new: bytes) -> None:
    """A refusal (403), or exactly the original bytes asked for; never a byte of the swap."""
    if answer.status_code == 403:
        refused(answer, 403, "cannot be delivered")
        return
    assert answer.status_code in (200, 206), answer.text
    assert answer.content == original, "the buyer was sent bytes that are not the granted ones"
    assert answer.content != new


def test_a_same_size_swap_with_its_mtime_restored_is_never_served(granted: Buyer) -> None:
    [url] = granted.file_urls()
    first = fetch(granted, url)
    assert first.status_code == 200
    original = first.content
    part = the_part(granted)
    assert original == part.read_bytes()  # the control: the granted bytes
    new = swapped(part, in_place=True)
    original_or_refused(fetch(granted, url), original, new)
    answer = granted.query()  # a new query over the swapped store
    if answer.status_code == 200:
        [again] = granted.file_urls()
        original_or_refused(fetch(granted, again), original, new)
    else:
        refused(answer, 403, "cannot be delivered")


def test_a_swap_after_the_check_never_reaches_a_range_read(granted: Buyer) -> None:
    [url] = granted.file_urls()
    first = fetch(granted, url, "bytes=-8")
    assert first.status_code == 206 and first.content.endswith(b"PAR1")  # the footer
    original = the_part(granted).read_bytes()
    new = swapped(the_part(granted), in_place=False)  # right after a successful read
    size = len(original)
    for wanted, (start, end) in {
        "bytes=-8": (size - 8, size),
        "bytes=0-99": (0, 100),
        f"bytes={size // 2}-": (size // 2, size),
    }.items():
        original_or_refused(fetch(granted, url, wanted), original[start:end], new[start:end])
    original_or_refused(fetch(granted, url), original, new)


@pytest.fixture
def on_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Buyer, str]]:
    """A granted version on a moto S3 store, the exchange serving it; the buyer, the endpoint."""
    from s3_server import make_bucket, moto_server, use_dummy_aws_env

    use_dummy_aws_env(monkeypatch)
    with moto_server() as endpoint:
        make_bucket(endpoint, "exchange")
        monkeypatch.setenv("DATABOURSE_STORE_ROOT", "s3://exchange/zones")
        monkeypatch.setenv("DATABOURSE_S3_ENDPOINT_URL", endpoint)
        w = _s3_world(tmp_path)
        version = package(w)
        gate(w, version)
        try:
            with serving(w) as base:
                yield S3Buyer(w, base, grant_profile(w, base, version, expires="2h")), endpoint
        finally:
            w.catalog.close()


class S3Buyer(Buyer):
    """A Buyer whose world's store is S3 (no local root to look for in answers)."""

    def call(self, method: str, path: str, token: str | None = "", **kw: Any) -> httpx.Response:
        token = self.token if token == "" else token
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        url = path if path.startswith("http") else f"{self.base}{path}"
        answer = httpx.request(method, url, headers=headers, timeout=30, **kw)
        assert str(self.w.cfg.state_dir) not in answer.content.decode(errors="replace")
        return answer


def _part_key(b: Buyer) -> tuple[str, dict[str, Any]]:
    prefix = f"products/{PRODUCT}/{b.table.version}"
    manifest = json.loads(b.w.store.get_bytes(f"{prefix}/manifest.json"))
    [entry] = manifest["files"]
    return f"{prefix}/{entry['path']}", entry


def test_on_s3_an_object_replaced_after_the_query_is_never_served(
    on_s3: tuple[Buyer, str],
) -> None:
    from s3_server import client

    b, endpoint = on_s3
    [url] = b.file_urls()
    key, _ = _part_key(b)
    original = b.w.store.get_bytes(key)
    new = bytes(x ^ 0xFF for x in original)
    client(endpoint).put_object(Bucket="exchange", Key=f"zones/{key}", Body=new)
    assert b.w.store.get_bytes(key) == new  # the store now holds other bytes
    original_or_refused(fetch(b, url), original, new)
    original_or_refused(fetch(b, url, "bytes=0-99"), original[:100], new[:100])
    assert url.startswith(f"{b.base}/delta-sharing/files/") and "X-Amz-" not in url  # no store link


def test_on_s3_a_revoked_grants_links_stop_at_once(on_s3: tuple[Buyer, str]) -> None:
    b, _ = on_s3
    [url] = b.file_urls()
    key, _ = _part_key(b)
    control = fetch(b, url)
    assert control.status_code == 200 and control.content == b.w.store.get_bytes(key)
    proc = run(b.w, "grant", "revoke", str(b.table.grant_id))
    assert proc.returncode == 0, proc.stderr
    answer = fetch(b, url)
    assert answer.status_code == 403 and "revoked" in answer.json()["message"], answer.text


def test_the_cache_keeps_only_verified_copies_within_its_size(tmp_path: Path) -> None:
    from bourse.exchange_cache import FileCache
    from databourse.errors import ConfigError
    from databourse.storage.local import LocalStore

    store = LocalStore(tmp_path / "store")
    blobs = {f"products/p/{i}.parquet": bytes([i]) * 1000 for i in range(3)}
    for key, data in blobs.items():
        store.put_bytes(key, data)
    sha = {key: hashlib.sha256(data).hexdigest() for key, data in blobs.items()}
    cache = FileCache(tmp_path / "cache", limit=2500)  # room for two copies
    assert stat.S_IMODE(cache.root.stat().st_mode) == 0o700
    first, second, third = blobs
    assert cache.verified(store, first, sha[second]) is None  # other bytes: refused, no copy
    assert sorted(p.name for p in cache.root.iterdir()) == []
    assert cache.verified(store, first, "../" + sha[first][3:]) is None  # not a sha256: no name
    copies = [cache.verified(store, key, sha[key]) for key in blobs]
    assert all(c is not None for c in copies)
    kept = sorted(p.name for p in cache.root.iterdir())
    assert kept == sorted([sha[second], sha[third]])  # the least recently used went first
    again = cache.verified(store, first, sha[first])  # copied again on need
    assert again is not None and again.read_bytes() == blobs[first]
    assert stat.S_IMODE(again.stat().st_mode) == 0o400
    with pytest.raises(ConfigError, match="outside the store"):
        FileCache(tmp_path / "store" / "cache").check_outside(store)
