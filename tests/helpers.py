"""Small helpers shared by test modules (kept out of conftest so importing them has no effects)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The managed Prefect API requires basic auth: tests that call it by hand give their CLI runs this
# auth string (cli_env(..., PREFECT_API_AUTH_STRING=API_AUTH_STRING)) and use API_AUTH.
API_AUTH = ("bourse", "tests-" + os.urandom(24).hex())
API_AUTH_STRING = ":".join(API_AUTH)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The sample products' usage terms expire on a fixed day (a demo's); a test project's expire this
# long after today, so that no test starts failing on the day the samples' terms pass.
PG_ADMIN_URL = os.environ.get(
    "DATABOURSE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextlib.contextmanager
def prefect_database(name: str) -> Iterator[str | None]:
    """A fresh PostgreSQL database for a Prefect server (its asyncpg URL), dropped after; None
    where PostgreSQL is not reachable (the server then uses its own SQLite)."""
    import psycopg

    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        yield None
        return
    try:
        base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def own_prefect_server(prefix: str, *, postgres: bool = False) -> Iterator[str]:
    """A Prefect server of the caller's own (no auth, no UI), stopped and removed after.

    A module that deploys deploy/prefect.yaml to a work pool needs one: on the session's server
    it would re-bind the deployments that the `runner` fixture serves. `postgres`: on a fresh
    PostgreSQL database where one is reachable, as several workers need (docs/scaling.md: on
    SQLite a second worker's API calls wait for tens of seconds)."""
    import tempfile

    home = Path(tempfile.mkdtemp(prefix=prefix))
    with contextlib.ExitStack() as stack:
        database = None
        if postgres:
            database = stack.enter_context(prefect_database(home.name.replace("-", "_").lower()))
        yield stack.enter_context(_prefect_server(home, database))


@contextlib.contextmanager
def _prefect_server(home: Path, database: str | None) -> Iterator[str]:
    from conftest import wait_healthy

    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "false"}
    if database:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database
    else:
        seed_prefect_home(home)
    log = home / "server.log"
    argv = ["server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [Path(sys.executable).parent / "prefect", *argv],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/api"
    try:
        wait_healthy(url, proc, log)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


TERMS_LEFT = dt.timedelta(days=2 * 365)
TERMS_EXPIRY = re.compile(r"^(?P<lead>\s+expires:\s*)\d{4}-\d{2}-\d{2}[ \t]*$", re.M)


def migrated_prefect_db() -> Path:
    """An empty Prefect database with every migration of the installed Prefect applied.

    A server on a fresh SQLite file spends 6-10 s migrating it before it answers; the suite
    starts dozens of servers. `prefect server database upgrade` makes this file once per Prefect
    version and user (a lock keeps two xdist workers from both making it; it is renamed into
    place, so it is never seen half-written); servers then start on copies of it."""
    import fcntl
    import tempfile

    import prefect

    folder = Path(tempfile.gettempdir()) / f"databourse-tests-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / f"prefect-{prefect.__version__}-migrated.db"
    with (folder / "prefect-db.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            home = Path(tempfile.mkdtemp(dir=folder))
            env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
            done = subprocess.run(
                [Path(sys.executable).parent / "prefect", "server", "database", "upgrade", "-y"],
                env={**env, "PREFECT_HOME": str(home)},
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            os.replace(home / "prefect.db", target)
            shutil.rmtree(home, ignore_errors=True)
    return target


def seed_prefect_home(home: Path) -> None:
    """Put a migrated, empty Prefect database where a server on `home` will look for it."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(migrated_prefect_db(), home / "prefect.db")


def make_project(root: Path, *, fresh: bool = False) -> Path:
    """A project folder with a copy of the repo's configs and its own state; the products'
    usage terms expire TERMS_LEFT after today.

    Its managed Prefect server starts on a migrated empty database (seed_prefect_home); with
    `fresh` the project has no state/ at all, as on a new clone."""
    root.mkdir(parents=True, exist_ok=True)
    if not fresh:
        seed_prefect_home(root / "state" / "prefect")
    shutil.copytree(REPO / "configs", root / "configs", dirs_exist_ok=True)
    day = (dt.date.today() + TERMS_LEFT).isoformat()
    for path in (root / "configs" / "products").glob("*.yaml"):
        text = path.read_text()
        if (moved := TERMS_EXPIRY.sub(rf"\g<lead>{day}", text)) != text:
            path.write_text(moved)
    return root


SAMPLE_PRODUCT = """\
# p1 of publish_sample_version: two columns of sz-retail's orders, no personal data left.
id: p1
name: Sample product
source: {provider: sz-retail, dataset: customer_orders}
columns:
  order_id: {action: keep, rename: id}
  customer_id_number: drop
  customer_name: drop
  mobile: drop
  email: drop
  birth_date: drop
  district: drop
  order_date: drop
  category: drop
  amount_cny: {action: keep, rename: amount}
terms: {purposes: [research]}
markets: [CN, MY]
"""


def with_sample_product(project: Path) -> Path:
    """`project` with the product config of publish_sample_version's p1 (grants derive facts
    from a product's config); never in the demo's configs, which would build it."""
    (project / "configs" / "products" / "p1.yaml").write_text(SAMPLE_PRODUCT)
    return project


# Variables of the test process that must not leak into a CLI run that manages its own stack.
NOT_FOR_CLI = (
    "PREFECT_API_URL",
    "PREFECT_HOME",
    "PREFECT_LOCAL_STORAGE_PATH",
    "DATABOURSE_PSEUDONYM_KEY",
    "DATABOURSE_MANAGED_PREFECT",
)


def cli_env(project: Path, **extra: str) -> dict[str, str]:
    """Environment of a `bourse` run on `project` with its own Prefect server on a free port."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_FOR_CLI}
    env.update(
        {
            "DATABOURSE_CONFIG_DIR": str(project / "configs"),
            "DATABOURSE_PREFECT_PORT": str(free_port()),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def bourse(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess; with check, fail the test with its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "bourse", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"bourse {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def stop_stack(env: dict[str, str]) -> None:
    bourse(env, "server", "stop", check=False)


def publish_sample_version(
    tmp_path: Path,
    name: str = "Sample product",
    store_root: str | None = None,
    endpoint_url: str | None = None,
) -> Any:
    """A catalog and store holding p1@1.0.0: published, CN available, MY pending approval."""
    import pyarrow as pa

    from databourse.catalog.database import Catalog
    from databourse.config import UsageTerms
    from databourse.product.package import (
        content_hash,
        manifest_sha256,
        publish_files,
        schema_of,
        transfer_facts,
        write_parquet,
    )
    from databourse.storage.opening import open_store

    sha = "0" * 64
    store = open_store(store_root or str(tmp_path / "store"), endpoint_url=endpoint_url)
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    cat.create_schema()
    table = pa.table({"id": ["a", "b"], "amount": [1.0, 2.0]})
    files = write_parquet(table, tmp_path / "out")
    chash = content_hash(files, schema_of(table), sha, transfer_facts("CN", {}, 0, False))
    cat.ensure_product("p1", name, "sz-retail", "customer_orders")
    version = cat.reserve_version("p1", chash, schema_of(table), 2).version
    terms = UsageTerms(purposes=["research"])
    manifest = sample_manifest(table, files, version=version, terms=terms, markets=["CN", "MY"])
    uri = publish_files(store, "p1", version, tmp_path / "out", files, manifest)
    cat.set_manifest("p1", version, uri, manifest_sha256(store, "p1", version))  # as the build
    cat.publish_version("p1", version)
    cat.set_availability(
        "p1",
        version,
        "CN",
        "available",
        "domestic",
        detail={"citation": "not a cross-border transfer"},
    )
    cat.set_availability(
        "p1",
        version,
        "MY",
        "pending_approval",
        "cn-sensitive-under-10k",
        route="standard_contract_or_certification",
        detail={"citation": "Provisions (2024) art. 8"},
    )
    cat.set_quality_scores("p1", version, {"completeness": 1.0, "validity": 0.99})
    return cat, store


def sample_manifest(
    table: Any,
    files: Any,
    version: str = "1.0.0",
    terms: Any = None,
    markets: list[str] | None = None,
    **override: Any,
) -> dict[str, Any]:
    """A valid manifest of product p1 for `table` written as `files`; `override` any field.

    Its content hash covers the transfer facts of `personal_data` (origin CN) unless
    `content_hash` is overridden.
    """
    from databourse.config import UsageTerms
    from databourse.product.package import build_manifest, content_hash, schema_of, transfer_facts
    from databourse.transfer.odrl import usage_policy

    sha = "0" * 64
    terms = terms or UsageTerms(purposes=["research"])
    markets = markets or ["MY", "CN"]
    personal = override.pop("personal_data", None) or {"remaining": {}, "individuals": 0}
    facts = transfer_facts(
        "CN", personal["remaining"], personal["individuals"], personal.get("important_data", False)
    )
    personal = {
        **personal,
        "sensitive_categories": facts["sensitive_categories"],
        "important_data": facts["important_data"],
    }
    schema = override.pop("schema", None) or schema_of(table)
    chash = content_hash(files, schema, sha, facts)
    args: dict[str, Any] = dict(
        product="p1",
        version=version,
        content_hash=chash,
        schema=schema,
        rows=table.num_rows,
        files=files,
        lineage={
            "provider": "sz-retail",
            "dataset": "customer_orders",
            "origin": "CN",
            "product_config_sha256": sha,
            "ingests": [{"ingest_id": "i", "sha256": sha, "raw": "file:///raw"}],
        },
        quality={"success": True, "report": "file:///q.json"},
        privacy={"model": None},
        personal_data=personal,
        usage_terms=terms.model_dump(mode="json"),
        usage_policy=usage_policy("p1", version, chash, terms, markets),
        markets=markets,
        schema_diff=None,
    )
    args.update(override)
    return build_manifest(**args)


def chromium_dom(url: str, wait_ms: int = 0) -> str:
    """The DOM of `url` as Debian's headless Chromium renders it (skips the test without it).

    `wait_ms` lets a single-page app fetch and render first (virtual time, not a sleep).
    """
    import tempfile

    import pytest

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                *(
                    [f"--virtual-time-budget={wait_ms}", "--window-size=1400,1000"]
                    if wait_ms
                    else []
                ),
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout


def signed_in_ui(ui_url: str, auth: str) -> Any:
    """A local proxy to a Prefect UI behind basic auth, signed in as a browser would be.

    The managed server requires its auth string; headless Chromium cannot type it into the UI's
    login page, so this proxy adds the Authorization header to every request, and points the
    UI's settings at itself with no login asked. Returns a context manager yielding its base URL.
    """
    import base64
    import contextlib
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import httpx

    header = "Basic " + base64.b64encode(auth.encode()).decode()
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            skip = {"host", "authorization", "accept-encoding", "content-length", "connection"}
            headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
            resp = httpx.request(
                self.command, ui_url + self.path, content=body,
                headers={**headers, "Authorization": header}, timeout=60,
            )  # fmt: skip
            content = resp.content
            if self.path.split("?")[0].endswith("/ui-settings") and resp.status_code == 200:
                settings = {**resp.json(), "api_url": f"{base}/api", "auth": None}
                content = json.dumps(settings).encode()
            self.send_response(resp.status_code)
            for k, v in resp.headers.items():
                if k.lower() not in ("content-length", "content-encoding", "transfer-encoding",
                                     "connection"):  # fmt: skip
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_OPTIONS = _forward

        def log_message(self, *args: Any) -> None:
            pass

    @contextlib.contextmanager
    def serving() -> Any:
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield base
        finally:
            server.shutdown()
            server.server_close()

    return serving()


@contextlib.contextmanager
def served_publish_flow(
    prefect_api: str, root: Path, name: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A runner serving publish-product as `publish-product/<name>` with `root`'s configs."""
    import httpx

    log = root / "runner.log"
    code = (
        f"from flows.publish_product import publish_product; publish_product.serve(name={name!r})"
    )
    env = {**os.environ, "DATABOURSE_CONFIG_DIR": str(root / "configs")}
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=root,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        url = f"{prefect_api}/deployments/name/publish-product/{name}"
        while httpx.get(url).status_code != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} runner did not start: {log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield proc
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def api_request(method: str, url: str, body: Any = None, auth: Any = None) -> Any:
    """One call to a Prefect API as Prefect's own client makes it: a 503 (a retryable server
    error, such as SQLite busy under load) or a read timeout (a server stalled on its database
    for a moment: Prefect's client retries those too) is tried again a few times; the last
    response, or the last timeout raised."""
    import httpx

    for attempt in range(6):
        try:
            response = httpx.request(method, url, json=body, timeout=30, auth=auth)
        except httpx.TimeoutException:
            if attempt == 5:
                raise
            time.sleep(0.5 * 2**attempt)
            continue
        if response.status_code != 503:
            break
        time.sleep(0.5 * 2**attempt)
    return response


def api_post(url: str, body: dict[str, Any], auth: Any = None) -> Any:
    """POST to a Prefect API (`api_request`); the last response is returned."""
    return api_request("POST", url, body, auth)


def api(base: str, method: str, path: str, body: Any = None) -> Any:
    """One call to a test's own Prefect API (`api_request`): its JSON, None when empty; an
    error status raises."""
    response = api_request(method, f"{base}{path}", body)
    response.raise_for_status()
    return response.json() if response.content else None


@contextlib.contextmanager
def two_dask_workers() -> Iterator[dict[str, Any]]:
    """A Dask LocalCluster of two single-threaded worker processes for a flow's task runner.
    Yields {"address": the scheduler's}; once the block is done, the dict also holds "tasks"
    (each worker's log entries: more than 0 when it ran tasks) and "pids"."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        seen: dict[str, Any] = {"address": cluster.scheduler_address}
        yield seen
        seen["tasks"] = client.run(lambda dask_worker: len(dask_worker.state.log))
        seen["pids"] = client.run(os.getpid)
