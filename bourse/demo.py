"""`bourse demo`: the whole pipeline on the bundled sample drops, then what happened."""

from __future__ import annotations

import os
import secrets
from typing import Any

from rich.console import Console

from bourse.runtime import Runtime
from databourse import zones
from databourse.errors import DataBourseError
from databourse.exports import JSONLD_KEY, PAGE_KEY


def ensure_pseudonym_key() -> str:
    """Make sure a pseudonymization key exists; create a random Prefect Secret block if not."""
    from prefect.blocks.system import Secret

    from tasks import resources

    ref = resources.config().settings.pseudonym_key
    if os.environ.get(ref.env):
        return f"pseudonymization key: from ${ref.env}"
    if not ref.block:
        raise DataBourseError(f"set {ref.env}: no Secret block is configured to fall back on")
    try:
        Secret.load(ref.block)
        return f"pseudonymization key: Prefect Secret block {ref.block!r}"
    except ValueError:
        Secret(value=secrets.token_hex(32)).save(ref.block)  # type: ignore[call-arg]
        return (
            f"pseudonymization key: generated a random local key and saved it as the Prefect "
            f"Secret block {ref.block!r} (for the demo; in production set ${ref.env} or "
            f"create that block yourself, and keep it: pseudonyms depend on it)"
        )


def run_demo(rt: Runtime, out: Console, scale: float = 1.0) -> None:
    """Start the stack, drop the samples in the landing zone, process each drop, report."""
    from bourse.localserver import start
    from databourse.samples import generate_drops
    from flows.process_drop import process_drop
    from tasks import resources

    out.rule("databourse demo")
    for line in start(rt):
        out.print(line)
    out.print(f"Prefect UI: {rt.ui_url}")
    out.print(ensure_pseudonym_key())
    store = resources.store()
    drops = generate_drops(rt.state / "samples", scale=scale)
    results: list[dict[str, Any]] = []
    for drop in drops:
        key = f"{zones.landing_prefix(drop.provider)}/{drop.dataset}/{drop.path.name}"
        store.put_file(key, drop.path)  # landing is the provider's inbox; raw is immutable
        source = store.local_path(key) or store.uri(key)
        out.print(f"processing drop {drop.provider}/{drop.dataset} ({drop.rows} rows) ...")
        try:
            results.append(process_drop(drop.provider, drop.dataset, str(source)))
        except DataBourseError as exc:
            out.print(f"[red]drop {drop.provider}/{drop.dataset} failed:[/] {exc}")
    report(rt, out, results)


def report(rt: Runtime, out: Console, results: list[dict[str, Any]]) -> None:
    """Print products and versions, what waits for approval and how to answer, where files are."""
    from bourse.approvals import waiting
    from tasks import resources

    out.rule("what happened")
    for r in results:
        seen = " (identical bytes seen before: nothing stored again)" if r["duplicate"] else ""
        out.print(f"drop {r['provider']}/{r['dataset']}: ingest {r['ingest_id']}{seen}")
        for p in r["products"]:
            state = "new version" if p["new"] else "unchanged, already published"
            out.print(
                f"  {p['product']}@{p['version']}: {state}; {p['rows']} rows; "
                f"publish run {p['publish_run_name']}: {p['publish_state']}"
            )
    out.rule("catalog")
    for p in resources.catalog().list_products():
        markets = ", ".join(p["markets"]) or "none yet"
        out.print(f"{p['id']}@{p['latest_version']}: available in {markets}")
    pending = waiting()
    out.rule("waiting for approval")
    if not pending:
        out.print("nothing")
    for w in pending:
        out.print(
            f"{w.product}@{w.version} -> {w.market}: run {w.run_name}\n"
            f"  in the UI: {rt.run_url(w.run_id)} (menu: Resume, fill in the form)\n"
            f"  or: bourse approve {w.run_id} --approver NAME --reference FILING-NUMBER\n"
            f"  or: bourse reject {w.run_id} --approver NAME --reason TEXT"
        )
    cfg = resources.config()
    store = resources.store()
    out.rule("where things are")
    out.print(
        f"catalog page (open in a browser): {store.uri(PAGE_KEY)}\n"
        f"DCAT-AP 3 export: {store.uri(JSONLD_KEY)}"
    )
    out.print(
        f"object store (zones): {cfg.store_root}\ncatalog: {cfg.catalog_url}\n"
        f"Prefect UI: {rt.ui_url}   logs: {rt.state / 'logs'}\n"
        f"browse: bourse catalog list | bourse catalog show PRODUCT\\[@VERSION] --json\n"
        f"audit trail: bourse audit show | bourse audit verify\n"
        f"stop the background server and runner: make stop"
    )
