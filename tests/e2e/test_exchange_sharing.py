"""Issue 20: buyers read a granted version with the official Delta Sharing client.

`bourse grant ... --profile FILE` makes the grant a recipient; `bourse exchange serve` runs as a
real process on a free port; the buyer's side is the official `delta-sharing` client (1.4.2) in
its own venv (it pins pandas<3 and pyarrow<=23, older than the project's), as a buyer's machine
would have it. What it loads must be exactly the version's rows, and each read is audited.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import bourse, free_port
from test_facts_and_grants import PRODUCT, World, gate, package, world

__all__ = ["world"]  # the fixture, shared with test_facts_and_grants

REPO = Path(__file__).resolve().parents[2]
# The official client and its whole dependency set, exact (pip's resolution on Python 3.11).
_CLIENT_FREEZE = """
aiohappyeyeballs==2.7.1 aiohttp==3.13.4 aiosignal==1.4.0 attrs==26.1.0
certifi==2026.10.19.post1 cffi==2.1.1 charset-normalizer==3.5.3 cryptography==51.0.1
delta-kernel-rust-sharing-wrapper==0.3.3 delta-sharing==1.4.2 frozenlist==1.8.0
fsspec==2026.2.0 idna==3.21 jwcrypto==1.6.1 multidict==6.9.1 numpy==2.4.6 pandas==2.3.3
propcache==0.5.4 pyarrow==23.0.1 pycparser==3.12 python-dateutil==2.9.0.post0 pytz==2026.6
requests==2.33.0 six==1.17.0 typing_extensions==4.16.0 tzdata==2026.6 urllib3==2.8.0
yarl==1.23.0
"""
CLIENT_PINS = _CLIENT_FREEZE.split()
CLIENTS_HOME = REPO / "state" / "test-buyer"

# Run in the buyer's venv: list the tables, load the one table as pandas and as Arrow (1.4.2 has
# no load_as_arrow: its REST client lists the files and pyarrow reads each URL, as it does).
BUYER_SCRIPT = r"""
import hashlib, json, os, sys
import delta_sharing, fsspec, pyarrow as pa, pyarrow.parquet as pq
from delta_sharing.protocol import DeltaSharingProfile, Table
from delta_sharing.rest_client import DataSharingRestClient

profile = sys.argv[1]
def digest(rows):
    return hashlib.sha256(json.dumps(sorted(rows), default=str).encode()).hexdigest()
client = delta_sharing.SharingClient(profile)
tables = [[t.share, t.schema, t.name] for t in client.list_all_tables()]
share, schema, name = tables[0]
frame = delta_sharing.load_as_pandas(f"{profile}#{share}.{schema}.{name}")
pandas_rows = [list(r) for r in frame.astype(object).itertuples(index=False)]
rest = DataSharingRestClient(DeltaSharingProfile.read_from_file(profile))
listed = rest.list_files_in_table(Table(name=name, share=share, schema=schema))
parts = [pq.read_table(f.url, filesystem=fsspec.filesystem("http")) for f in listed.add_files]
arrow = pa.concat_tables(parts)
arrow_rows = [list(r.values()) for r in arrow.to_pylist()]
print(json.dumps({
    "tables": tables, "columns": list(frame.columns), "pandas": digest(pandas_rows),
    "arrow": digest(arrow_rows), "rows": len(pandas_rows),
    "urls": [f.url for f in listed.add_files], "sizes": [f.size for f in listed.add_files],
}), flush=True)
os._exit(0)  # pyarrow's and fsspec's threads at interpreter exit abort now and then (C++)
"""


def install_client() -> Path:
    """The official client in its own venv under state/test-buyer, installed once; its python."""
    digest = hashlib.sha256(" ".join(CLIENT_PINS).encode()).hexdigest()[:8]
    home = CLIENTS_HOME / f"delta-sharing-1.4.2-{digest}"
    python, done = home / "bin" / "python", home / ".installed"
    if done.exists():
        return python
    CLIENTS_HOME.mkdir(parents=True, exist_ok=True)
    with (CLIENTS_HOME / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test sessions install it once
        if done.exists():
            return python
        shutil.rmtree(home, ignore_errors=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--only-binary=:all:"]
        pip += ["--disable-pip-version-check", *CLIENT_PINS]
        try:
            subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, timeout=300)
            subprocess.run(pip, check=True, capture_output=True, timeout=900)
        except subprocess.CalledProcessError as exc:
            shutil.rmtree(home, ignore_errors=True)
            raise RuntimeError(f"installing delta-sharing failed: {exc.stderr!r}") from exc
        done.write_text("1.4.2")
    return python


@pytest.fixture(scope="session")
def buyer_python() -> Path:
    return install_client()


@contextmanager
def serving(w: World, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """`bourse exchange serve` as a real process on a free port; its base URL."""
    port = free_port()
    log = w.cfg.state_dir / f"exchange-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bourse", "exchange", "serve", "--port", str(port)],
            env={**w.env, **(extra_env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError(f"the exchange did not start: {log.read_text()[-3000:]}")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def exchange(world: World) -> Iterator[str]:
    with serving(world) as base:
        yield base


def grant_profile(w: World, base: str, version: str, market: str = "CN", **opts: str) -> Any:
    """`bourse grant` with --profile; the grant's JSON (with `profile` and `table_url`)."""
    profile = w.cfg.state_dir / f"buyer-{market}-{len(list(w.cfg.state_dir.glob('buyer-*')))}.json"
    args = ["grant", f"{PRODUCT}@{version}", "--buyer", opts.get("buyer", "KL Mart")]
    args += ["--market", market, "--expires", opts.get("expires", "7d")]
    args += ["--profile", str(profile), "--endpoint", f"{base}/delta-sharing", "--json"]
    proc = w.cli(*args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def run(w: World, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI (World.cli would add --purpose to `grant list` and `grant revoke` too)."""
    proc = bourse(w.env, *args, check=False)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


def buyer(python: Path, profile: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-c", BUYER_SCRIPT, profile],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")},
    )


def rows_digest(table: pa.Table) -> str:
    rows = [list(r.values()) for r in table.to_pylist()]
    return hashlib.sha256(json.dumps(sorted(rows), default=str).encode()).hexdigest()


def version_table(w: World, version: str) -> pa.Table:
    """The version's rows read directly from its Parquet files in the store."""
    folder = w.store.root / "products" / PRODUCT / version
    manifest = json.loads((folder / "manifest.json").read_text())
    return pa.concat_tables([pq.read_table(folder / f["path"]) for f in manifest["files"]])


def access_events(w: World, grant_id: int, wait_for: str | None = None) -> list[dict[str, Any]]:
    """The grant's rows of the access log (waiting up to 20 s for a batch of file reads to
    flush); none of them is an event of the audit trail."""
    deadline = time.monotonic() + 20
    while True:
        events = w.catalog.access_history(grant_id)
        assert not [e for e in w.catalog.audit_history(PRODUCT) if e["kind"] == "access"]
        if wait_for is None or any(e["detail"]["what"] == wait_for for e in events):
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"no {wait_for} event for grant {grant_id}: {events}")
        time.sleep(0.5)


def test_the_official_client_reads_exactly_the_granted_version(
    world: World, exchange: str, buyer_python: Path
) -> None:
    version = package(world, rows=40)
    package(world, rows=25, tag="v2")  # another version of the product: never listed
    gate(world, version, rows=40)
    given = grant_profile(world, exchange, version)
    profile = Path(given["profile"])
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    body = json.loads(profile.read_text())
    assert body["shareCredentialsVersion"] == 1
    assert body["endpoint"] == f"{exchange}/delta-sharing"
    assert body["expirationTime"].startswith(given["expires_at"][:19])
    token = body["bearerToken"]
    assert len(token) >= 43
    # only its sha256 is kept: not in the catalog database, not in the audit trail
    database = Path(world.cfg.catalog_url.removeprefix("sqlite:///"))
    catalog_bytes = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert token.encode() not in catalog_bytes
    assert hashlib.sha256(token.encode()).hexdigest().encode() in catalog_bytes

    proc = buyer(buyer_python, str(profile))
    assert proc.returncode == 0, proc.stderr
    read = json.loads(proc.stdout)
    assert read["tables"] == [[f"grant-{given['id']}", PRODUCT, "v" + version.replace(".", "_")]]
    expected = version_table(world, version)
    assert read["rows"] == expected.num_rows == 40
    assert read["columns"] == expected.column_names
    assert read["pandas"] == read["arrow"] == rows_digest(expected)
    # links of the service itself, signed, never a path of this machine
    for url in read["urls"]:
        assert url.startswith(f"{exchange}/delta-sharing/files/{given['id']}/") and "sig=" in url
        assert str(world.store.root) not in url and "file:" not in url

    events = access_events(world, given["id"], wait_for="files")
    queries = [e for e in events if e["detail"]["what"] == "query"]
    files = [e for e in events if e["detail"]["what"] == "files"]
    assert len(queries) == 2  # load_as_pandas, then the Arrow read's listing
    assert all(e["actor"] == "KL Mart" and e["version"] == version for e in events)
    assert queries[0]["detail"]["bytes"] == sum(read["sizes"])
    assert sum(e["detail"]["bytes"] for e in files) >= sum(read["sizes"])
    assert len(files) <= 2 * len(queries)  # batched per query, not one event per byte range
    shown = run(world, "audit", "show", "--grant", str(given["id"]))
    assert shown.returncode == 0 and "access" in shown.stdout and "recipient" in shown.stdout
    exported = run(world, "audit", "export")
    assert exported.returncode == 0, exported.stderr
    lines = world.store.get_bytes("audit/access.jsonl").decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [
        r["id"] for r in world.catalog.access_history()
    ]
    assert token not in world.store.get_bytes("audit/access.jsonl").decode()
    assert world.catalog.audit_verify(world.store).ok


def test_grant_list_and_revoke(world: World, exchange: str, buyer_python: Path) -> None:
    version = package(world)
    gate(world, version)
    given = grant_profile(world, exchange, version)
    listed = json.loads(run(world, "grant", "list", "--json").stdout)
    assert [(g["id"], g["profile"], g["revoked"]) for g in listed] == [(given["id"], True, False)]
    assert buyer(buyer_python, given["profile"]).returncode == 0
    proc = run(world, "grant", "revoke", str(given["id"]), "--reason", "contract ended")
    assert proc.returncode == 0, proc.stderr
    refused = buyer(buyer_python, given["profile"])
    assert refused.returncode != 0 and "403" in refused.stderr and "revoked" in refused.stderr
    listed = json.loads(run(world, "grant", "list", "--json").stdout)
    assert listed[0]["revoked"] is True
    kinds = [e["kind"] for e in world.catalog.audit_history(PRODUCT)]
    assert kinds.count("revocation") == 1


def test_a_grant_without_profile_hands_out_no_link_and_gets_one_profile_later(
    world: World, exchange: str, buyer_python: Path
) -> None:
    """No file path or presigned URL reaches a buyer: `grant profile` issues the credential."""
    version = package(world)
    gate(world, version)
    args = ["grant", f"{PRODUCT}@{version}", "--buyer", "KL Mart", "--market", "CN"]
    printed = world.cli(*args)
    assert printed.returncode == 0, printed.stderr
    assert "file://" not in printed.stdout and str(world.store.root) not in printed.stdout
    assert "bourse grant profile 1 --profile FILE" in printed.stdout.replace("\n", " ")
    as_json = json.loads(world.cli(*args, "--json").stdout)
    assert "file://" not in json.dumps(as_json) and "url" not in json.dumps(as_json)
    profile = world.cfg.state_dir / "later.share"
    endpoint = ["--endpoint", f"{exchange}/delta-sharing"]
    proc = run(world, "grant", "profile", "1", "--profile", str(profile), *endpoint)
    assert proc.returncode == 0, proc.stderr
    assert buyer(buyer_python, str(profile)).returncode == 0
    again = run(world, "grant", "profile", "1", "--profile", str(profile) + "2", *endpoint)
    assert again.returncode == 1 and "already has a profile" in again.stderr
    assert run(world, "grant", "revoke", str(as_json["id"])).returncode == 0
    late = run(world, "grant", "profile", str(as_json["id"]), "--profile", str(profile) + "3")
    assert late.returncode == 1 and "revoked" in late.stderr
    assert run(world, "grant", "profile", "99", "--profile", str(profile) + "4").returncode == 1


def test_a_granted_versions_files_are_copied_ahead_of_the_first_query(world: World) -> None:
    """The exchange makes its private copies of a live grant's files at start (and each
    minute), so a buyer's first query does not wait for a large version to be copied."""
    version = package(world)
    gate(world, version)
    grant_profile(world, "http://127.0.0.1:9", version)  # the service is not running yet
    revoked = grant_profile(world, "http://127.0.0.1:9", version)
    assert run(world, "grant", "revoke", str(revoked["id"])).returncode == 0
    [entry] = json.loads(world.manifest_path(version).read_text())["files"]
    copy = world.cfg.state_dir / "exchange-cache" / entry["sha256"]
    assert not copy.exists()
    with serving(world):
        deadline = time.monotonic() + 30
        while not copy.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert copy.exists()  # no request was made
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == entry["sha256"]


def test_a_profile_that_cannot_be_written_leaves_no_usable_grant(
    world: World, exchange: str
) -> None:
    version = package(world)
    gate(world, version)
    proc = world.cli(
        "grant", f"{PRODUCT}@{version}", "--buyer", "KL Mart", "--market", "CN",
        "--profile", str(world.cfg.state_dir / "no-such-folder" / "p.json"),
    )  # fmt: skip
    assert proc.returncode == 1 and "existing folder" in proc.stderr
    assert world.catalog.grant_list() == []  # refused before anything was recorded


def test_on_s3_the_client_reads_through_the_exchanges_own_links_within_the_grant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, buyer_python: Path
) -> None:
    from s3_server import make_bucket, moto_server, use_dummy_aws_env

    use_dummy_aws_env(monkeypatch)
    with moto_server() as endpoint:
        make_bucket(endpoint, "exchange")
        monkeypatch.setenv("DATABOURSE_STORE_ROOT", "s3://exchange/zones")
        monkeypatch.setenv("DATABOURSE_S3_ENDPOINT_URL", endpoint)
        w = _s3_world(tmp_path)  # the `world` fixture insists on a LocalStore
        version = package(w, rows=30)
        gate(w, version, rows=30)
        with serving(w) as base:
            given = grant_profile(w, base, version, expires="2h")
            proc = buyer(buyer_python, given["profile"])
        assert proc.returncode == 0, proc.stderr
        read = json.loads(proc.stdout)
        expected = pa.concat_tables(
            [
                pq.read_table(pa.BufferReader(w.store.get_bytes(f"{prefix}/{f['path']}")))
                for prefix in [f"products/{PRODUCT}/{version}"]
                for f in json.loads(w.store.get_bytes(f"{prefix}/manifest.json"))["files"]
            ]
        )
        assert read["rows"] == expected.num_rows == 30
        assert read["pandas"] == read["arrow"] == rows_digest(expected)
        for url in read["urls"]:  # the exchange serves S3 too: no presigned store link
            assert url.startswith(f"{base}/delta-sharing/files/{given['id']}/") and "sig=" in url
            assert endpoint not in url and "X-Amz-" not in url
            exp = int(parse_qs(urlsplit(url).query)["exp"][0])
            assert 0 < exp - time.time() <= 15 * 60  # short-lived, and never past the grant (2 h)
        events = access_events(w, given["id"], wait_for="files")
        assert [e["detail"]["what"] for e in events].count("query") == 2
        w.catalog.close()


def _s3_world(tmp_path: Path) -> World:
    from helpers import make_project

    from databourse.catalog.database import Catalog
    from databourse.config import load_config
    from databourse.storage.opening import open_store

    project = make_project(tmp_path / "project-s3")
    configs = project / "configs"
    source = (configs / "products" / "sz-retail-baskets.yaml").read_text()
    (configs / "products" / f"{PRODUCT}.yaml").write_text(
        source.replace("id: sz-retail-baskets", f"id: {PRODUCT}")
    )
    cfg = load_config(configs)
    catalog = Catalog(cfg.catalog_url)
    catalog.create_schema()
    store = open_store(cfg.store_root, endpoint_url=cfg.s3_endpoint_url)
    env = {**os.environ, "DATABOURSE_CONFIG_DIR": str(configs)}
    env.pop("DATABOURSE_MANAGED_PREFECT", None)
    return World(cfg, catalog, store, env)  # type: ignore[arg-type]
