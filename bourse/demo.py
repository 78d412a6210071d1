"""`bourse demo`: the whole pipeline on the bundled sample drops, then what happened."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Console

from bourse.display import assemble, safe
from bourse.runtime import Runtime
from databourse import keys
from databourse.config import Config
from databourse.errors import DataBourseError, KeyRefused, SecretMissing, TransferNotApproved
from databourse.standards.exports import JSONLD_KEY, PAGE_KEY
from databourse.storage import zones
from databourse.transfer.grant_terms import check_terms_expiry


def ensure_keys() -> list[str]:
    """Make sure the pseudonym and audit keys exist: key files (0600) outside state, if not set.

    Never a Prefect Secret block: an unauthenticated Prefect API returns block values to anyone.
    A key whose version the store already recorded is never replaced: that is a lost key, and a
    new series must start under a new version.
    """
    return [ensure_key(purpose) for purpose in ("pseudonym", "audit")]


def ensure_key(purpose: str) -> str:
    """One purpose's default key: where it comes from, or a new random key file."""
    from tasks import resources

    place = resources.key_place(purpose)
    recorded = keys.recorded_id(resources.store(), purpose, keys.DEFAULT_VERSION)
    try:
        key = resources.load_key(purpose)
    except SecretMissing:
        if recorded is not None:
            raise KeyRefused(
                f"the {purpose} key was lost: this store recorded key id {recorded} for version "
                f"{keys.DEFAULT_VERSION!r}, and neither ${place.env} nor {place.file('default')} "
                "holds it. Restore it; a new key must be a new version (key_version in the "
                "product config), never the same version with other pseudonyms",
                purpose=purpose,
                recorded=recorded,
            ) from None
        key = keys.create(place)
        resources.load_key(purpose)  # records its id in the store
        return (
            f"{purpose} key: generated a random local key in {key.origin} (mode 0600, id "
            f"{key.key_id}); keep it and back it up apart from the data: it cannot be remade"
        )
    return f"{purpose} key: from {key.origin} (id {key.key_id})"


def run_demo(rt: Runtime, out: Console, scale: float = 1.0) -> None:
    """Start the stack, drop the samples in the landing zone, process each drop, report."""
    from bourse.localserver import start
    from databourse_samples.demo import generate_corpus_drop, generate_drops
    from flows.process_drop import process_drop
    from tasks import resources

    out.rule("databourse demo")
    for line in start(rt):
        out.print(line)
    out.print(f"Prefect UI: {rt.ui_url}")
    for line in ensure_keys():
        out.print(line)
    store = resources.store()
    samples = rt.state / "samples"
    drops = [*generate_drops(samples, scale=scale), generate_corpus_drop(samples, scale=scale)]
    results: list[dict[str, Any]] = []
    for drop in drops:
        key = f"{zones.landing_prefix(drop.provider)}/{drop.dataset}/{drop.path.name}"
        store.put_file(key, drop.path)  # landing is the provider's inbox; raw is immutable
        source = store.local_path(key) or store.uri(key)
        out.print(f"processing drop {drop.provider}/{drop.dataset} ({drop.rows} rows) ...")
        try:
            results.append(process_drop(drop.provider, drop.dataset, str(source)))
        except DataBourseError as exc:
            failed = f"drop {drop.provider}/{drop.dataset} failed:"
            out.print(assemble((failed, "red"), safe(f" {exc}", keep="\n")))
    report(rt, out, results)


def report(rt: Runtime, out: Console, results: list[dict[str, Any]]) -> None:
    """Print products and versions, what waits for approval and how to answer, where files are."""
    from bourse.approvals import waiting
    from tasks import resources

    cfg = resources.config()
    out.rule("what happened")
    for r in results:
        seen = " (identical bytes seen before: nothing stored again)" if r["duplicate"] else ""
        out.print(f"drop {r['provider']}/{r['dataset']}: ingest {r['ingest_id']}{seen}")
        for p in r["products"]:
            if p["version"] is None:
                out.print(f"  {p['product']}: no new version (no document new to it)")
                continue
            state = "new version" if p["new"] else "unchanged, already published"
            unit = "documents" if cfg.product(p["product"]).type == "corpus" else "rows"
            out.print(
                f"  {p['product']}@{p['version']}: {state}; {p['rows']} {unit}; "
                f"publish run {p['publish_run_name']}: {p['publish_state']}"
            )
    out.rule("catalog")
    for p in resources.catalog().list_products():
        markets = ", ".join(p["markets"]) or "none yet"
        out.print(f"{p['id']}@{p['latest_version']}: available in {markets}")
        if expired := terms_expired(cfg, p["id"], p["latest_version"]):
            out.print(assemble("  ", (expired, "yellow")))
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
    store = resources.store()
    out.rule("where things are")
    out.print(
        f"catalog page (open in a browser): {store.uri(PAGE_KEY)}\n"
        f"DCAT-AP 3 export: {store.uri(JSONLD_KEY)}"
    )
    out.print(
        f"object store (zones): {cfg.store_root}\ncatalog: {cfg.catalog_url}\n"
        f"Prefect UI: {rt.ui_url}   logs: {rt.state / 'logs'}\n"
        f"browse: bourse catalog list | bourse catalog show PRODUCT[@VERSION] --json\n"
        f"audit trail: bourse audit show | bourse audit verify\n"
        f"stop the background server and runner: make stop"
    )


def terms_expired(cfg: Config, product: str, version: str) -> str | None:
    """What to tell a demo user whose sample product's usage terms have expired (else None):
    every grant of it is refused (`grant_terms.check_terms_expiry`, the one rule)."""
    spec = cfg.products.get(product)
    if spec is None:
        return None
    now = dt.datetime.now(dt.UTC)
    try:
        check_terms_expiry(product, version, spec.terms.expires, now, now)
    except TransferNotApproved as exc:
        return (
            f"{exc}; every `bourse grant` of it is refused until terms.expires in "
            f"configs/products/{product}.yaml is set to a later day"
        )
    return None
