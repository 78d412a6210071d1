"""The buyers' service at exchange scale: pages and Delta Sharing with many products and versions.

Issue 20 asks the pages and the API to stay fast with 1,000 products and 10,000 versions. This
fills a fresh project's catalog and store through the catalog's own API (every version reserved,
packaged with its manifest, published and decided by the transfer policy, so the audit trail has
the events a real exchange has: about six per version), grants one version to a buyer through the
real `bourse grant --profile`, starts the real `bourse exchange serve` process and times, over
HTTP, what buyers and their tools ask: the index, a product page, a version page, a manifest, the
DCAT export, and the Delta Sharing calls (shares, tables, metadata, query). Each request is timed
`--repeat` times; the first ("cold": the service folds the whole trail) is shown apart from the
median of the rest. A baseline in the same run: the same GETs of /health (the service's fixed
cost per request). Run: `python benchmarks/exchange_scale.py [--products 1000] [--versions 10]`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from helpers import make_project, sample_manifest  # noqa: E402

PRODUCT = "bench-0000"  # the one product with a config: the one a buyer is granted
EXPORTER = "sz-retail"
PURPOSE = "market-research"  # permitted by sz-retail-baskets' terms, which PRODUCT copies


def fill(configs: Path, products: int, versions: int) -> float:
    """The catalog and store of `products` x `versions` published versions; seconds taken."""
    from databourse.catalog.database import Catalog
    from databourse.catalog.trail_fold import TrailCache
    from databourse.config import load_config
    from databourse.product.package import (
        content_hash,
        publish_version,
        schema_of,
        transfer_facts,
        write_parquet,
    )
    from databourse.storage.opening import open_store
    from databourse.transfer.odrl import usage_policy
    from databourse.transfer.policy import facts_for

    cfg = load_config(configs)
    catalog = Catalog(cfg.catalog_url, trail_cache=TrailCache())  # each decision folds the trail
    catalog.create_schema()
    store = open_store(cfg.store_root)
    spec = cfg.product("sz-retail-baskets")
    facts = facts_for("CN", {}, 0, False)
    started = time.perf_counter()
    for p in range(products):
        product = f"bench-{p:04d}"
        catalog.ensure_product(product, f"Benchmark product {p}", EXPORTER, "customer_orders")
        for v in range(versions):
            table = pa.table({"basket": [f"{p}-{v}-{i}" for i in range(10)], "n": list(range(10))})
            out = cfg.state_dir / "build" / product / str(v)
            files = write_parquet(table, out)
            chash = content_hash(
                files, schema_of(table), "0" * 64, transfer_facts("CN", {}, 0, False)
            )
            version = catalog.reserve_version(product, chash, schema_of(table), 10).version
            manifest = sample_manifest(
                table,
                files,
                version=version,
                terms=spec.terms,
                markets=list(spec.markets),
                product=product,
                usage_policy=usage_policy(product, version, chash, spec.terms, list(spec.markets)),
            )
            uri, sha256 = publish_version(store, product, version, out, files, manifest)
            catalog.set_manifest(product, version, uri, sha256)
            catalog.publish_version(product, version)
            catalog.apply_transfer_policy(
                product, version, cfg.policy, facts, list(spec.markets), EXPORTER
            )
            shutil.rmtree(out)
        if p % 50 == 49:
            done = (p + 1) * versions
            rate = done / (time.perf_counter() - started)
            print(f"  filled {done:,} versions ({rate:.0f}/s)", flush=True)
    catalog.close()
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(client: httpx.Client, method: str, url: str, repeat: int, **kw: Any) -> dict[str, Any]:
    times, size = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        answer = client.request(method, url, **kw)
        times.append(time.perf_counter() - t)
        if answer.status_code != 200:
            raise SystemExit(f"{method} {url}: {answer.status_code} {answer.text[:300]}")
        size = len(answer.content)
    rest = times[1:] or times
    return {"cold": times[0], "median": statistics.median(rest), "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10, help="versions per product")
    parser.add_argument("--repeat", type=int, default=6)
    parser.add_argument("--keep", type=Path, help="project folder to keep (and reuse if filled)")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="bourse-exchange-bench-"))
    filled = (root / "filled.json").is_file()
    project = root if filled else make_project(root)
    configs = project / "configs"
    source = (configs / "products" / "sz-retail-baskets.yaml").read_text()
    (configs / "products" / f"{PRODUCT}.yaml").write_text(
        source.replace("id: sz-retail-baskets", f"id: {PRODUCT}")
    )
    env = {**os.environ, "DATABOURSE_CONFIG_DIR": str(configs), "DATABOURSE_SCHEDULES": "off"}
    if filled:
        env.update(json.loads((root / "filled.json").read_text())["keys"])
    else:  # keys of this benchmark only, from the environment as in production
        env.update(
            DATABOURSE_AUDIT_KEY=secrets.token_urlsafe(36),
            DATABOURSE_PSEUDONYM_KEY=secrets.token_urlsafe(36),
        )
    os.environ.update(env)
    cores, memory = os.cpu_count(), os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(f"machine: {cores} cores, {memory / 1024**3:.0f} GiB; project {project}")
    if not filled:
        seconds = fill(configs, args.products, args.versions)
        n = args.products * args.versions
        print(f"filled {args.products:,} x {args.versions} = {n:,} versions in {seconds:.0f} s")
        keys = {k: env[k] for k in ("DATABOURSE_AUDIT_KEY", "DATABOURSE_PSEUDONYM_KEY")}
        kept = root / "filled.json"  # the benchmark's own throwaway keys, for --keep's reuse
        kept.touch(mode=0o600)
        kept.write_text(json.dumps({"keys": keys, "versions": n}))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = project / "exchange.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bourse", "exchange", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise SystemExit(f"the exchange did not start: {log.read_text()[-2000:]}")
        profile = project / "buyer.json"
        grant = subprocess.run(
            [sys.executable, "-m", "bourse", "grant", f"{PRODUCT}@1.0.0", "--buyer", "KL Mart",
             "--market", "CN", "--expires", "7d", "--purpose", PURPOSE, "--profile", str(profile),
             "--endpoint", f"{base}/delta-sharing", "--json"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        if grant.returncode != 0:
            raise SystemExit(f"bourse grant failed: {grant.stderr[-2000:]}")
        token = json.loads(profile.read_text())["bearerToken"]
        table = json.loads(grant.stdout)["table_url"].split("#", 1)[1]
        share, schema, name = table.split(".")
        ds = f"{base}/delta-sharing/shares/{share}/schemas/{schema}/tables/{name}"
        auth = {"Authorization": f"Bearer {token}"}
        rows = []
        with httpx.Client(timeout=600) as client:
            cases = [
                ("health (baseline)", "GET", f"{base}/health", {}),
                ("index page", "GET", f"{base}/", {}),
                ("product page", "GET", f"{base}/products/{PRODUCT}", {}),
                ("version page", "GET", f"{base}/products/{PRODUCT}/1.0.0", {}),
                ("manifest.json", "GET", f"{base}/products/{PRODUCT}/1.0.0/manifest.json", {}),
                ("dcat.jsonld", "GET", f"{base}/catalog/dcat.jsonld", {}),
                ("DS list shares", "GET", f"{base}/delta-sharing/shares", {"headers": auth}),
                ("DS table metadata", "GET", f"{ds}/metadata", {"headers": auth}),
                ("DS query", "POST", f"{ds}/query", {"headers": auth, "json": {}}),
            ]
            for label, method, url, kw in cases:
                rows.append((label, timed(client, method, url, args.repeat, **kw)))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    versions = json.loads((root / "filled.json").read_text())["versions"]
    health = rows[0][1]["median"]
    print(f"\n{versions:,} versions in the catalog; {args.repeat} requests each")
    print(f"{'request':<20} {'cold s':>8} {'median s':>9} {'x health':>9} {'bytes':>10}")
    for label, r in rows:
        ratio = r["median"] / health if health else float("nan")
        print(f"{label:<20} {r['cold']:>8.3f} {r['median']:>9.3f} {ratio:>9.1f} {r['bytes']:>10,}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
