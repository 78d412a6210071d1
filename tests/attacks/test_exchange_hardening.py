"""Adversarial pass 7 (findings 4, 8, 9, 11) against the real `bourse exchange serve` process.

A tightened transfer policy stops grants decided under the old one; made-up tokens and links are
limited per client address, on the file endpoint too, in bounded memory; malformed links and
bodies are a 4xx with a short reason, never a traceback; file links never follow the Host header
and the OpenAPI document is off.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from urllib.parse import urlsplit

import httpx
import yaml
from helpers import bourse, free_port
from test_exchange_attacks import Buyer, granted, refused
from test_exchange_sharing import access_events, grant_profile, serving
from test_facts_and_grants import World, gate, package, world

from bourse.exchange_grants import FAILURES
from bourse.exchange_limits import RateLimiter
from databourse.catalog.access_anchors import ACCESS_ANCHORS, anchor_name
from databourse.delivery import sharing

__all__ = ["granted", "world"]  # the fixtures


def server_log(w: World, base: str) -> str:
    port = urlsplit(base).port
    return (w.cfg.state_dir / f"exchange-{port}.log").read_text(errors="replace")


def tighten_policy(w: World) -> None:
    """Sensitive personal data may no longer leave CN (test_facts_and_grants' change)."""
    path = w.cfg.root / "configs" / "policies" / "cross_border.yaml"
    policy = yaml.safe_load(path.read_text())
    [rule] = [r for r in policy["origins"]["CN"]["rules"] if r["id"] == "cn-sensitive-under-10k"]
    for name in ("route", "evidence", "obligations"):
        rule.pop(name, None)
    rule.update(decision="denied", reason="no longer allowed")
    path.write_text(yaml.safe_dump(policy, sort_keys=False))


def test_a_grant_decided_under_an_older_policy_is_refused(granted: Buyer) -> None:
    """Finding 4: the exchange asks what `bourse grant` asks (decided under today's policy)."""
    [link] = granted.file_urls()  # the control: served under the policy it was decided under
    tighten_policy(granted.w)
    with serving(granted.w) as base:  # the exchange started under the new rules
        again = Buyer(granted.w, base, granted.given)
        moved = base + link.removeprefix(granted.base)
        for answer in (
            again.query(),
            again.call("GET", "/delta-sharing/shares"),
            again.call("GET", again.table_path() + "/metadata"),
            again.call("GET", moved, token=None),
        ):
            message = refused(answer, 403, "transfer policy changed", "re-decide")
            assert granted.table.product not in message and "CN" not in message


def test_made_up_tokens_and_links_are_limited_per_address(granted: Buyer) -> None:
    """Finding 8: failures count against the address, and the file endpoint is limited too."""
    limit = FAILURES[0]
    codes = [granted.query(token=sharing.new_token()).status_code for _ in range(limit + 5)]
    assert codes[:limit] == [401] * limit and set(codes[limit:]) == {429}, codes
    slowed = granted.query()  # a good token from that address waits too
    refused(slowed, 429, "slow down")
    assert slowed.headers["Retry-After"] == "1"
    with serving(granted.w) as base:  # a fresh service: made-up signed links alone
        [link] = Buyer(granted.w, base, granted.given).file_urls()
        bad = link.rsplit("sig=", 1)[0] + "sig=" + "0" * 64
        codes = [httpx.get(bad, timeout=30).status_code for _ in range(limit + 5)]
        assert codes[:limit] == [403] * limit and set(codes[limit:]) == {429}, codes
        assert httpx.get(link, timeout=30).status_code == 429


def test_the_limiter_keeps_bounded_memory() -> None:
    """Finding 8: 20,000 made-up keys leave at most max_keys; idle keys are forgotten."""
    now = [0.0]
    limiter = RateLimiter(max_keys=1000, clock=lambda: now[0])
    for i in range(20_000):
        assert limiter.hit(f"fail:10.0.{i // 256}.{i % 256}", (3, 60.0))
    assert len(limiter) == 1000
    assert [limiter.hit("addr:a", (3, 60.0)) for _ in range(4)] == [True, True, True, False]
    now[0] = 130.0  # two windows later: everything is idle
    assert limiter.hit("addr:a", (3, 60.0))
    assert len(limiter) == 1


def test_malformed_links_and_bodies_are_refused_without_a_traceback(granted: Buyer) -> None:
    """Finding 9: a non-ASCII signature and a deeply nested query body are 4xx, not 500."""
    [link] = granted.file_urls()
    odd = link.rsplit("sig=", 1)[0] + "sig=%C3%A9"
    refused(granted.call("GET", odd, token=None), 403, "signature")
    nested = b"[" * 30000 + b"]" * 30000
    answer = httpx.post(
        granted.base + granted.table_path() + "/query",
        content=nested,
        headers={"Authorization": f"Bearer {granted.token}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    assert "nested too deeply" in answer.json()["message"]
    assert granted.query().status_code == 200  # the service still answers
    [link] = granted.file_urls()
    for huge in ("bytes=" + "9" * 5000 + "-", "bytes=0-" + "9" * 5000):
        ranged = httpx.get(link, headers={"Range": huge}, timeout=30)
        assert ranged.status_code == 416, ranged.text  # not int() of 5,000 digits: a 500
    assert "Traceback" not in server_log(granted.w, granted.base)


def test_links_never_follow_the_host_header_and_openapi_is_off(granted: Buyer) -> None:
    """Finding 11: file links use the address served on; /openapi.json is not served."""
    answer = httpx.post(
        granted.base + granted.table_path() + "/query",
        json={},
        headers={"Authorization": f"Bearer {granted.token}", "Host": "evil.example"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    lines = [json.loads(line) for line in answer.text.splitlines()]
    urls = [line["file"]["url"] for line in lines if "file" in line]
    assert urls and all(u.startswith(granted.base + "/delta-sharing/files/") for u in urls), urls
    page = httpx.get(f"{granted.base}/catalog/dcat.jsonld", headers={"Host": "evil.example"})
    assert page.status_code == 200 and "evil.example" not in page.text
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert httpx.get(granted.base + path, timeout=30).status_code == 404, path


def test_reads_a_killed_service_served_are_audited_once_by_the_next(world: World) -> None:
    """Finding 15 (left over): file reads were audited from memory every 2 s, so a service killed
    with SIGKILL lost the reads it had just served. Each read is spooled (fsynced) before its
    first byte; the next service audits a dead one's spool once, naming its batch; stopped, it
    seals what it logged and anchors the log's newest row in the store."""
    version = package(world)
    gate(world, version)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (world.cfg.state_dir / f"exchange-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bourse", "exchange", "serve", "--port", str(port)],
        env={**world.env, "DATABOURSE_EXCHANGE_FLUSH_SECONDS": "3600"},  # no flush before the kill
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not _up(base) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        buyer = Buyer(world, base, grant_profile(world, base, version))
        sizes = [len(buyer.call("GET", url).content) for url in buyer.file_urls()]
        assert sizes and all(sizes)
    finally:
        proc.kill()  # SIGKILL: no lifespan end, no last flush
        proc.wait(timeout=30)
        log.close()
    grant_id = buyer.given["id"]
    files = [e for e in access_events(world, grant_id) if e["detail"]["what"] == "files"]
    assert files == []  # the killed service audited none of what it served
    with serving(world):  # starts by auditing the dead service's spool
        events = access_events(world, grant_id, wait_for="files")
        time.sleep(3)  # a second flush of the new service: still one event
        events = access_events(world, grant_id)
    [read] = [e for e in events if e["detail"]["what"] == "files"]
    assert read["detail"]["files"] == len(sizes) and read["detail"]["bytes"] == sum(sizes)
    assert read["detail"]["batch"]
    assert not any((world.cfg.state_dir / "exchange-reads").glob("*/batch-*"))
    # the service stopped (SIGTERM): what it logged is sealed into the trail, one event for all
    seals = [e for e in world.catalog.audit_history() if e["kind"] == "access_seal"]
    rows = world.catalog.access_history()
    assert seals and seals[-1]["detail"]["last"] == rows[-1]["id"]
    assert sum(s["detail"]["rows"] for s in seals) == len(rows)
    report = world.catalog.audit_verify(world.store)
    assert report.ok, report.problems
    assert f"access log: {len(rows)} rows, {len(rows)} sealed by the trail, 0 not yet" in (
        report.notes
    )
    # and its newest row anchored in the store (between seals, a cut tail is named by it)
    anchored = [i.key for i in world.store.list(ACCESS_ANCHORS)]
    assert anchor_name(rows[-1]["id"]) in anchored


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_bad_flush_interval_is_one_error_line_before_anything_serves(world: World) -> None:
    for bad in ("0", "-3", "soon", "86400"):
        env = {**world.env, "DATABOURSE_EXCHANGE_FLUSH_SECONDS": bad}
        proc = bourse(env, "exchange", "serve", "--port", str(free_port()), check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "$DATABOURSE_EXCHANGE_FLUSH_SECONDS: a number of seconds" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (world.cfg.state_dir / "exchange-reads").exists()  # nothing made
