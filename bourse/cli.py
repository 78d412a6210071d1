"""`bourse`: run the pipeline, answer approvals, browse the catalog, manage the local server."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
from rich.table import Table

from bourse import runtime

RT = runtime.configure()  # before anything imports Prefect

from bourse.display import (  # noqa: E402
    PlainConsole,
    assemble,
    cells,
    fold_all_but_the_run,
    minute,
    safe,
    yaml_text,
)
from databourse.errors import DataBourseError  # noqa: E402

app = typer.Typer(
    help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False
)
catalog_app = typer.Typer(help="Browse the catalog of products and versions.", no_args_is_help=True)
server_app = typer.Typer(
    help="The local Prefect server and deployment runner.", no_args_is_help=True
)
approvals_app = typer.Typer(
    help="Transfers waiting for an operator's approval.", no_args_is_help=True
)
config_app = typer.Typer(help="Check the configs.", no_args_is_help=True)
secrets_app = typer.Typer(help="Secrets the pipeline needs.", no_args_is_help=True)
samples_app = typer.Typer(help="Sample provider drops.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
quality_app = typer.Typer(help="Data quality suites.", no_args_is_help=True)
transfer_app = typer.Typer(help="Cross-border transfer decisions.", no_args_is_help=True)
exchange_app = typer.Typer(
    help="The buyers' service: catalog pages and Delta Sharing over the catalog and store.",
    no_args_is_help=True,
)


class _GrantGroup(typer.core.TyperGroup):
    """`bourse grant PRODUCT@VERSION ...` gives access; `grant list` and `grant revoke` manage."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["give", *args]  # the grant itself: `bourse grant PRODUCT@VERSION ...`
        return list(super().parse_args(ctx, args))


grant_app = typer.Typer(
    cls=_GrantGroup,
    help="Buyers' access: `bourse grant PRODUCT@VERSION --buyer NAME --market XX --purpose P "
    "[--profile FILE]` gives it (`grant give` is the same); `grant list`, `grant revoke ID`.",
    no_args_is_help=True,
)
for sub, name in (
    (catalog_app, "catalog"),
    (server_app, "server"),
    (approvals_app, "approvals"),
    (config_app, "config"),
    (secrets_app, "secrets"),
    (audit_app, "audit"),
    (quality_app, "quality"),
    (transfer_app, "transfer"),
    (samples_app, "samples"),
    (exchange_app, "exchange"),
    (grant_app, "grant"),
):
    app.add_typer(sub, name=name)
# Data printed here comes from buyers, approvers, providers and the catalog: plain text only,
# controls escaped (bourse/display.py); style is added as Text, never as markup.
out = PlainConsole(soft_wrap=True)
err = PlainConsole(stderr=True, soft_wrap=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str, code: int = 1, *, details: Iterable[object] = ()) -> None:
    """Print an error and exit: `message` on one line, each of `details` on its own line.

    Every line break inside them is data (a name, key or message from the store or catalog) and
    is printed escaped (`\\n`), so no data can print a line of its own.
    """
    lines = [assemble(("error:", "bold red"), " ", safe(message))]
    lines += [assemble("  ", safe(d)) for d in details]
    for line in lines:
        err.print(line)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# ---------------------------------------------------------------- pipeline
@app.command()
def demo(
    scale: Annotated[
        float, typer.Option(help="Size of the sample drops (1.0 = a few thousand rows).")
    ] = 1.0,
) -> None:
    """Start the local stack, generate the sample drops and run the whole pipeline on them."""
    from bourse.demo import run_demo

    try:
        run_demo(RT, out, scale=scale)
    except DataBourseError as exc:
        fail(str(exc))


@app.command()
def run(
    provider: str,
    dataset: str,
    source: Annotated[str, typer.Argument(help="A file path or s3://bucket/key URI.")],
    wait: Annotated[float, typer.Option(help="Seconds to wait for the publish run.")] = 300,
) -> None:
    """Process one provider drop end to end (ingest, validate, build, publish)."""
    from flows.process_drop import process_drop

    _ensure_stack()
    result = _run_flow(lambda: process_drop(provider, dataset, _abs(source), wait))
    for p in result["products"]:
        out.print(
            safe(
                f"{p['product']}@{p['version']} ({'new' if p['new'] else 'unchanged'}): "
                f"publish run {p['publish_run_name']} {p['publish_state']}"
            )
        )
        if p["publish_state"] == "Suspended":
            _print_approval_hint(p["publish_run_id"])


@app.command()
def ingest(
    provider: str,
    dataset: str,
    source: Annotated[
        str,
        typer.Argument(
            help="A file, a folder, a quoted glob, an s3://bucket/key or s3://bucket/prefix/."
        ),
    ],
) -> None:
    """Ingest provider files into raw and staging; exit 1 naming the reason of any quarantine."""
    from bourse.ingesting import ingest_sources

    _ensure_stack()
    failures = _run_flow(lambda: ingest_sources(RT, out, err, provider, dataset, source))
    if failures:
        fail(f"{failures} file(s) quarantined or refused (reasons above)")


@app.command()
def nightly(
    provider: Annotated[str | None, typer.Argument(help="One provider; default all.")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for each publish run.")] = 60,
    as_json: JsonOpt = False,
) -> None:
    """Process every new drop in the landing zone now (what the nightly schedule runs)."""
    from flows.nightly import nightly as nightly_flow

    _ensure_stack()
    result = _run_flow(lambda: nightly_flow(provider, wait))
    if as_json:
        print_json(result)
    else:
        for p in result["processed"]:
            out.print(safe(f"{p['key']}: {p['state']}"))
        out.print(f"{len(result['processed'])} new drop(s) processed, {result['failed']} failed")
    if result["failed"]:
        raise typer.Exit(1)


automations_app = typer.Typer(help="Prefect automations for operators.", no_args_is_help=True)
app.add_typer(automations_app, name="automations")


@automations_app.command("setup")
def automations_setup(
    approval_wait_hours: Annotated[
        float, typer.Option(help="Warn when a publish run waits for approval longer than this.")
    ] = 48,
    notify: Annotated[
        str | None,
        typer.Option(help="A Prefect notification block (e.g. slack-webhook/ops) to notify."),
    ] = None,
) -> None:
    """Create or update the automations: run failed, approval waiting, quality dropped."""
    from datetime import timedelta

    from bourse.automations import ensure

    _ensure_stack()
    try:
        for line in ensure(timedelta(hours=approval_wait_hours), notify):
            out.print(line, highlight=False)
    except ValueError as exc:
        fail(str(exc))


@app.command()
def discover(
    provider: Annotated[str | None, typer.Argument(help="One provider; default all.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the drops in the landing zone and which are new (by content hash, not name)."""
    from flows.discover_landing import discover_landing

    _ensure_stack()
    result = _run_flow(lambda: discover_landing(provider))
    if as_json:
        print_json(result)
        return
    table = Table("key", "status", "reason", "duplicate of", "rows")
    for d in result["drops"]:
        rows = "" if d["expected_rows"] is None else str(d["expected_rows"])
        table.add_row(*cells(d["key"], d["status"], d["reason"], d["duplicate_of"], rows))
    out.print(table)
    out.print(
        ", ".join(f"{v} {k}" for k, v in result["summary"].items() if v) or "landing is empty"
    )


@app.command()
def serve() -> None:
    """Serve the deployments of deploy/prefect.yaml from this process (the embedded runner)."""
    from bourse.serving import serve as serve_declared

    serve_declared()


@app.command()
def worker(
    pool: Annotated[str, typer.Option(help="The work pool to take flow runs from.")] = "databourse",
    limit: Annotated[int | None, typer.Option(help="Most flow runs at once.")] = None,
    healthcheck: Annotated[
        bool, typer.Option("--with-healthcheck", help="Serve /health on port 8080.")
    ] = False,
) -> None:
    """Run a work pool's flow runs, each from the flow imported here (never code the API names)."""
    from bourse.worker import work

    work(pool, limit=limit, with_healthcheck=healthcheck, printer=out.print)


@app.command()
def scan(
    path: Annotated[Path, typer.Argument(help="A CSV, Parquet or JSONL file.")],
    as_json: JsonOpt = False,
    threshold: Annotated[float, typer.Option(help="Share of values that must match.")] = 0.8,
    sample_rows: Annotated[int, typer.Option(help="Rows used to pick a column's category.")] = 2000,
    dirty_threshold: Annotated[
        float, typer.Option(help="Share of non-empty values that classifies a messy column.")
    ] = 0.5,
) -> None:
    """Classify every column of any file by content; prints categories and shares, never values."""
    from bourse.scan import scan_file

    code, text = scan_file(
        path,
        as_json=as_json,
        threshold=threshold,
        sample_rows=sample_rows,
        dirty_threshold=dirty_threshold,
    )
    if code:
        fail(text, code)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@quality_app.command("profile")
def quality_profile(
    provider: str,
    dataset: str,
    file: Annotated[
        Path | None,
        typer.Option(help="Profile this CSV/Parquet file instead of the latest ingest."),
    ] = None,
    rows: Annotated[int, typer.Option(help="Sample size.")] = 100_000,
) -> None:
    """Propose a starting expectation suite (YAML) from a sample, for review and commit."""
    from bourse.datatools import profile
    from tasks import resources

    try:
        text = profile(resources.config(), resources.store(), provider, dataset, file, rows)
    except DataBourseError as exc:
        fail(str(exc))
    sys.stdout.write(yaml_text(text))


@app.command()
def anonymize(
    path: Annotated[Path, typer.Argument(help="A CSV or Parquet file of the product's source.")],
    product: Annotated[str, typer.Option(help="The product whose rules apply.")],
    out: Annotated[Path, typer.Option(help="Where to write the anonymized Parquet.")],
) -> None:
    """Apply a product's rules and privacy model to any file and print the privacy report."""
    from bourse.datatools import anonymize_file
    from tasks import resources

    cfg = resources.config()
    spec = cfg.product(product)
    keyed = any(r.action in ("pseudonymize", "noise") for r in spec.columns.values())
    try:
        report = anonymize_file(
            cfg, product, path, out, resources.pseudonym_keys(spec) if keyed else None
        )
    except DataBourseError as exc:
        fail(str(exc))
    print_json(report)


@app.command()
def verify(
    ref: Annotated[str | None, typer.Argument(help="PRODUCT@VERSION (or --all)")] = None,
    everything: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Check the whole store against the catalog: raw sha256 against _ingest.json, "
            "manifests and their files, published versions, markets, the audit chain.",
        ),
    ] = False,
    grace_hours: Annotated[
        float,
        typer.Option(help="With --all: younger objects without their record are a live run."),
    ] = 6.0,  # the ingest task's timeout
    quick: Annotated[
        bool, typer.Option("--quick", help="With --all: compare sizes, skip re-hashing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-check a published version from its files, or with --all the whole store and catalog.

    Exits 1 on any failure (--all: on any error finding; warnings and info do not fail).
    """
    from bourse.datatools import verify_all, verify_version
    from tasks import resources

    if everything:
        try:
            report, lines = verify_all(
                resources.store(), resources.catalog(), grace_hours, not quick, resources.config()
            )
        except DataBourseError as exc:
            fail(str(exc))
        if as_json:
            print_json(report.to_json())
        else:
            for text in lines:
                out.print(safe(text))
        if not report.ok:
            raise typer.Exit(1)
        return
    product, _, version = (ref or "").partition("@")
    if not version:
        fail("give the exact version (PRODUCT@VERSION) or --all")
    try:
        problems = verify_version(
            resources.config(), resources.store(), product, version, resources.catalog()
        )
    except DataBourseError as exc:
        problems = [str(exc)]
    if as_json:
        print_json(
            {"product": product, "version": version, "ok": not problems, "problems": problems}
        )
        if problems:
            raise typer.Exit(1)
    if problems:
        fail(f"{ref} fails verification:", details=problems)
    out.print(safe(f"{ref}: files, content hash, privacy model and identifier scan all verified"))


@transfer_app.command("explain")
def transfer_explain(
    ref: Annotated[str, typer.Argument(help="PRODUCT@VERSION")],
    market: Annotated[str, typer.Option(help="Destination jurisdiction (2 letters).")],
    as_json: JsonOpt = False,
) -> None:
    """The transfer decision for one market (with the exporter's count this year) and its rules."""
    import datetime as dt

    from databourse.transfer import (
        calendar_year,
        decide,
        explain,
        policy_fingerprint,
        with_running_count,
    )
    from tasks import resources
    from tasks.publishing import version_facts

    product, _, version = ref.partition("@")
    cfg = resources.config()
    try:  # the facts only through the content hash: an edited manifest is refused here too
        facts, exporter = version_facts(product, version)
        [shown] = resources.catalog().show(product, version)["versions"]
    except DataBourseError as exc:
        fail(f"{ref}: {exc}")
        return
    policy = policy_fingerprint(cfg.policy)
    stored = next((a for a in shown["availability"] if a["market"] == market.upper()), None)
    under = ((stored or {}).get("detail") or {}).get("policy_sha256")
    year = calendar_year(cfg.policy.origin(facts.origin).timezone, dt.datetime.now(dt.UTC))
    others = [
        v
        for v in resources.catalog().running_count(exporter, year)["versions"]
        if (v["product"], v["version"]) != (product, version)
    ]
    facts = with_running_count(
        facts,
        year,
        sum(v["individuals"] for v in others),
        sum(v["individuals"] for v in others if v["sensitive"]),
    )
    decision = decide(cfg.policy, facts, market.upper())
    chain = explain(cfg.policy, facts, market.upper())
    if as_json:
        print_json(
            {
                "decision": decision.to_json(),
                "facts": facts.to_json(),
                "chain": chain,
                "policy_sha256": policy,
                "stored": stored,
            }
        )
        return
    out.print(
        assemble(
            f"{ref} -> {market.upper()}: ",
            (decision.decision, "bold"),
            f" by rule {decision.rule_id} ({decision.citation})",
        )
    )
    out.print(safe(f"facts: {facts.to_json()}"))
    out.print(safe(f"policy sha256 {policy} (configs/policies/cross_border.yaml as loaded)"))
    if stored is not None:
        same = "the same policy" if under == policy else f"policy {under or 'unrecorded'}"
        out.print(
            safe(f"stored: {stored['status']} by rule {stored['rule_id']}, decided under {same}")
        )
    for step in chain:
        verdict = "decides" if step["decided"] else "skipped: " + "; ".join(step["failed"])
        out.print(safe(f"  {step['rule']}: {verdict}"))


# ---------------------------------------------------------------- approvals
StuckAfterOpt = Annotated[
    float,
    typer.Option(help="Report a publish run answered but silent this many seconds as stuck."),
]


@approvals_app.command("list")
def approvals_list(
    as_json: JsonOpt = False,
    stuck_after: StuckAfterOpt = 600,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also every decision: approved, rejected, expired.")
    ] = False,
) -> None:
    """Publish runs suspended on an approval form, those that failed while a market waits, and
    every market pending approval that no live run asks for (with the command to ask again).

    Timed-out ones are recorded expired first; a failed one is restarted by `approvals retry`.
    """
    from bourse.approvals import stopped, waiting
    from bourse.stuck import describe
    from bourse.stuck import find as find_stuck
    from bourse.unasked import describe as describe_unasked
    from bourse.unasked import unasked
    from bourse.unrecorded import unrecorded
    from tasks import resources
    from tasks.publishing import sweep_expired

    sweep_expired(resources.catalog())
    items = waiting()
    failed = stopped(resources.catalog())
    lost = unasked(resources.catalog())
    tampered = unrecorded(resources.catalog())
    decided = resources.catalog().transfer_decisions() if show_all else []
    stuck_runs = [s for s in find_stuck(resources.catalog().transfer_decisions(), stuck_after)
                  if s.run_id not in {f.run_id for f in failed}]  # fmt: skip
    if as_json:
        pending = [{**w.to_json(), "url": RT.run_url(w.run_id)} for w in items]
        stuck = [{**f.to_json(), "url": RT.run_url(f.run_id)} for f in failed]
        listing: dict[str, Any] = {"waiting": pending, "failed": stuck, "decided": decided}
        listing["stuck"] = [s.to_json() for s in stuck_runs]
        listing["unasked"] = [u.to_json() for u in lost]
        listing["unrecorded"] = tampered
        print_json(listing if show_all else pending)
        for line in tampered:
            err.print(assemble(("error:", "bold red"), " ", safe(line)))
        return
    _print_stopped(failed)
    for s in stuck_runs:
        out.print(safe(describe(s)))
    for u in lost:
        out.print(safe(describe_unasked(u)))
    for line in tampered:
        err.print(assemble(("error:", "bold red"), " ", safe(line)))
    if not items:
        out.print("no transfer is waiting for approval")
    else:
        table = Table("run", "version", "market", "asked (UTC)", "expires (UTC)")
        fold_all_but_the_run(table)
        for w in items:
            asked, until = minute(w.since), minute(w.timeout_at or "")
            table.add_row(*cells(w.run_id, f"{w.product}@{w.version}", w.market, asked, until))
        out.print(table)
        for w in items:
            for warning in w.warnings:
                out.print(safe(f"warning: run {w.run_id} ({w.market}): {warning}"))
    if show_all:
        _print_decisions(decided)


def _print_stopped(failed: list[Any]) -> None:
    if not failed:
        return
    table = Table("failed run", "product", "version", "state", "since", "why")
    fold_all_but_the_run(table)
    for f in failed:
        table.add_row(*cells(f.run_id, f.product, f.version, f.state, f.since[:19], f.why))
    out.print(table)
    out.print("a market still waits: start a new publish run with `bourse approvals retry RUN`")


@approvals_app.command("retry")
def approvals_retry(
    run_id: Annotated[str, typer.Argument(help="A failed publish run (bourse approvals list).")],
) -> None:
    """Start a fresh publish run for the version of a failed (or cancelled) one."""
    from bourse.approvals import ApprovalError, retry
    from tasks import resources

    try:
        new = retry(resources.catalog(), run_id)
    except (ApprovalError, DataBourseError) as exc:
        fail(str(exc))
    out.print(safe(f"new publish run {new.name} ({new.id}): {RT.run_url(str(new.id))}"))


def _print_decisions(decided: list[dict[str, Any]]) -> None:
    table = Table("decided", "product", "version", "market", "decision", "by", "reference", "note")
    for column in table.columns:
        column.overflow = "fold"
    for d in decided:
        carried = d.get("carried_over_from")
        note = f"carried over from {carried['version']}" if carried else (d.get("conditions") or "")
        table.add_row(*cells(
            (d["decided_at"] or "")[:19], d["product_id"], d["version"], d["market"],
            d["decision"], d["approver"], d.get("reference") or "", note,
        ))  # fmt: skip
    out.print(table)


@approvals_app.command("sweep")
def approvals_sweep(as_json: JsonOpt = False, stuck_after: StuckAfterOpt = 600) -> None:
    """Record expired approvals (idempotent); close the questions of runs cancelled or deleted
    in Prefect (audited); report publish runs stopped after an answer and every market pending
    approval that no live run asks for."""
    from bourse.stuck import describe, find
    from bourse.unasked import close_abandoned, unasked
    from bourse.unasked import describe as describe_unasked
    from tasks import resources
    from tasks.publishing import sweep_expired

    expired = sweep_expired(resources.catalog())
    closed = close_abandoned(resources.catalog())
    stuck = find(resources.catalog().transfer_decisions(), stuck_after, crash=True)
    lost = unasked(resources.catalog())
    if as_json:
        print_json({
            "expired": expired, "stuck": [s.to_json() for s in stuck], "closed": closed,
            "unasked": [u.to_json() for u in lost],
        })  # fmt: skip
        return
    for s in stuck:
        out.print(safe(describe(s)))
    for c in closed:
        why = c["detail"].get("cancelled", "")
        where = f"{c['product']}@{c['version']} -> {c['market']}, form {c['suspend_key']}"
        out.print(safe(f"closed: {where} of run {c['flow_run_id']}: {why}"))
    for u in lost:
        out.print(safe(describe_unasked(u)))
    for e in expired:
        where = f"{e['product_id']}@{e['version']} -> {e['market']}"
        out.print(safe(f"expired: {where} ({e['conditions']})"))
    out.print(f"{len(expired)} approval(s) recorded as expired")


@app.command()
def approve(
    run_id: Annotated[
        str, typer.Argument(help="The suspended publish run (bourse approvals list).")
    ],
    approver: Annotated[str, typer.Option(help="Who approves (name or staff id).")],
    reference: Annotated[str, typer.Option(help="Filing, certificate or assessment number.")],
    route: Annotated[str | None, typer.Option(help="Legal route; defaults to the rule's.")] = None,
    valid_until: Annotated[
        str | None, typer.Option(help="Expiry of the filing, YYYY-MM-DD.")
    ] = None,
    conditions: Annotated[str, typer.Option(help="Conditions attached.")] = "",
    evidence_url: Annotated[str, typer.Option(help="Where the evidence is kept.")] = "",
    basis: Annotated[
        str | None, typer.Option(help="Basis within the route; defaults to the route's first.")
    ] = None,
    carry_over: Annotated[
        bool,
        typer.Option(help="The reference also covers later versions (same schema, categories)."),
    ] = False,
) -> None:
    """Approve a gated transfer (the same answer as the form in the Prefect UI)."""
    _answer(
        run_id,
        {
            "approver": approver,
            "decision": "approve",
            "reference": reference,
            "route": route,
            "basis": basis,
            "valid_until": valid_until,
            "conditions": conditions,
            "evidence_url": evidence_url,
            "carry_over": carry_over,
        },
    )


@app.command()
def reject(
    run_id: Annotated[
        str, typer.Argument(help="The suspended publish run (bourse approvals list).")
    ],
    approver: Annotated[str, typer.Option(help="Who rejects (name or staff id).")],
    reason: Annotated[str, typer.Option(help="Why the transfer is refused.")],
    reference: Annotated[str, typer.Option(help="A reference, if any.")] = "none",
) -> None:
    """Reject a gated transfer; the version stays unavailable in that market."""
    _answer(
        run_id,
        {"approver": approver, "decision": "reject", "reference": reference, "conditions": reason},
    )


def _answer(run_id: str, form: dict[str, Any]) -> None:
    import datetime as dt

    from bourse.approvals import ApprovalError, answer, asked
    from databourse.approval_rules import Binding
    from databourse.names import name_problems
    from databourse.transfer import approval_problems
    from tasks import resources

    if problems := name_problems(form["approver"], "approver"):
        fail("--approver: answer not sent: " + "; ".join(problems))
    catalog = resources.catalog()
    try:  # the question the pipeline recorded for the run's form, checked against the run
        pending = asked(catalog, run_id)
    except ApprovalError as exc:
        fail(f"answer not sent: {exc}")
    binding = Binding.of(pending)
    form = {**binding.to_json(), **form, "route": form.get("route") or pending["route"]}
    policy = resources.config().policy
    # The form's rules and the flow's, done first: a bad answer is never sent.
    if problems := approval_problems(policy, pending["route"], form, dt.date.today(), binding):
        fail("answer not sent, the run keeps waiting: " + "; ".join(problems))
    try:
        state = answer(run_id, form)
    except ApprovalError as exc:
        fail(str(exc))
    url = RT.run_url(run_id)
    what = f"{binding.product}@{binding.version} -> {binding.market}"
    after = catalog.pending_for(run_id, pending["suspend_key"]) or pending
    if after["status"] == "refused":
        refused = "; ".join(after["detail"].get("refused", []))
        fail(f"{form['decision']} for {what} refused by the pipeline: {refused} ({state}: {url})")
    out.print(safe(f"answered for {what} (content {binding.content_hash[:16]})"))
    out.print(safe(f"{form['decision']} recorded; publish run is now {state}: {url}"))


@grant_app.command("give")
def grant(
    ref: Annotated[str, typer.Argument(help="PRODUCT@VERSION")],
    buyer: Annotated[str, typer.Option(help="Who gets access.")],
    market: Annotated[str, typer.Option(help="The buyer's jurisdiction (2 letters).")],
    purpose: Annotated[
        str | None,
        typer.Option(
            help="The buyer's purpose: one the version's usage terms permit (required; the "
            "error lists them); recorded in the audited grant event."
        ),
    ] = None,
    expires: Annotated[
        str,
        typer.Option(
            help="24h, 7d or a date YYYY-MM-DD; at most grant_max_days (settings) and never "
            "past the approval the market rests on or the usage terms' expiry."
        ),
    ] = "7d",
    accept_conditions: Annotated[
        bool,
        typer.Option(
            "--accept-conditions",
            help="Accept the conditions of the approval the grant rests on (printed first); "
            "without it a grant on an approval with conditions is refused.",
        ),
    ] = False,
    profile: Annotated[
        Path | None,
        typer.Option(
            help="Also make the grant a Delta Sharing recipient: write its profile (endpoint, "
            "bearer token, expiry; mode 0600) to this file for the buyer. Only the token's "
            "sha256 is kept; `bourse exchange serve` answers it.",
        ),
    ] = None,
    endpoint: Annotated[
        str,
        typer.Option(
            envvar="DATABOURSE_EXCHANGE_URL",
            help="The exchange's Delta Sharing URL written into --profile.",
        ),
    ] = "http://127.0.0.1:8780/delta-sharing",
    as_json: JsonOpt = False,
) -> None:
    """Give a buyer time-limited access to one published version available in their market."""
    from databourse import sharing
    from databourse.delivery import expiry, grant_access
    from databourse.errors import CatalogError
    from databourse.names import name_problems
    from tasks import resources

    product, _, version = ref.partition("@")
    if not version:
        fail("give the exact version: PRODUCT@VERSION")
    if problems := name_problems(buyer, "buyer"):
        fail("--buyer: " + "; ".join(problems))
    try:
        until = expiry(expires)
        if profile is not None:  # before anything is recorded
            sharing.check_profile_path(profile)
            sharing.profile_json(endpoint, sharing.new_token(), until)
    except CatalogError as exc:
        fail(f"--expires: {exc}" if profile is None else str(exc))
    try:
        shown = _grant_conditions(product, version, market.upper(), accept_conditions)
        given = grant_access(
            resources.config(),
            resources.catalog(),
            resources.store(),
            product,
            version,
            buyer,
            market.upper(),
            until,
            accepted_conditions=shown["conditions_sha256"] if shown else None,
            purpose=purpose,
        )
    except DataBourseError as exc:  # refused: manifest or files changed, approval, expiry
        fail(str(exc))
    if profile is not None:
        _write_profile(given, profile, endpoint, as_json)
        return
    if as_json:
        print_json({**given, "conditions": shown})
        return
    out.print(
        safe(
            f"grant {given['id']}: {buyer} may read {product}@{version} in {given['market']} "
            f"until {given['expires_at']}"
        )
    )
    for f in given["files"]:
        size, sha = f["bytes"], f["sha256"][:16]
        out.print(safe(f"  {f['path']} ({size} bytes, sha256 {sha}...): {f['url']}"))


def _write_profile(given: dict[str, Any], path: Path, endpoint: str, as_json: bool) -> None:
    """Make the recorded grant a recipient and write its profile; revoke it if that fails."""
    import datetime as dt

    from databourse import sharing
    from tasks import resources

    token = sharing.new_token()
    until = dt.datetime.fromisoformat(given["expires_at"])
    catalog = resources.catalog()
    try:
        catalog.add_recipient(given["id"], sharing.token_sha256(token), endpoint)
        sharing.write_profile(path, sharing.profile_json(endpoint, token, until))
    except (DataBourseError, OSError) as exc:
        catalog.revoke_grant(given["id"], "its profile could not be written")
        fail(f"grant {given['id']} revoked: its profile could not be written: {exc}")
    table = sharing.SharedTable(given["id"], given["product"], given["version"])
    url = f"{path}#{table.share}.{table.schema}.{table.table}"
    if as_json:
        files = [{k: f[k] for k in ("path", "bytes", "sha256")} for f in given["files"]]
        print_json({**given, "files": files, "manifest_url": None, "profile": str(path),
                    "table_url": url})  # fmt: skip
        return
    out.print(
        safe(
            f"grant {given['id']}: {given['buyer']} may read {given['product']}@"
            f"{given['version']} in {given['market']} until {given['expires_at']}"
        )
    )
    out.print(safe(f"  Delta Sharing profile (0600): {path}"))
    out.print(safe(f"  table: {url}"))


@grant_app.command("list")
def grant_list(as_json: JsonOpt = False) -> None:
    """Every grant: product, version, buyer, market, expiry, profile, revoked."""
    from tasks import resources

    items = resources.catalog().grant_list()
    if as_json:
        print_json(items)
        return
    table = Table("id", "product@version", "buyer", "market", "expires", "profile", "revoked")
    for g in items:
        table.add_row(
            *cells(
                g["id"], f"{g['product']}@{g['version']}", g["buyer"], g["market"],
                g["expires_at"], "yes" if g["profile"] else "no", "yes" if g["revoked"] else "no",
            )
        )  # fmt: skip
    out.print(table)


@grant_app.command("revoke")
def grant_revoke(
    grant_id: Annotated[int, typer.Argument(help="The grant (bourse grant list).")],
    reason: Annotated[str, typer.Option(help="Why it is revoked (kept for audit).")] = "revoked",
) -> None:
    """Revoke a grant: the exchange refuses its token from the next request on (audited)."""
    from tasks import resources

    try:
        done = resources.catalog().revoke_grant(grant_id, reason)
    except DataBourseError as exc:
        fail(str(exc))
    out.print(safe(f"grant {grant_id} of {done['product']}@{done['version']} revoked"))


@exchange_app.command("serve")
def exchange_serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8780,
    public_url: Annotated[
        str | None,
        typer.Option(
            help="The base URL buyers reach this service at (file links); default: "
            "http://HOST:PORT as started (never a request's Host header)."
        ),
    ] = None,
) -> None:
    """Serve buyers (read-only): the catalog pages, DCAT and manifests of what is offered, and
    the Delta Sharing protocol to holders of a grant's profile."""
    from bourse.exchange import serve

    try:
        serve(host, port, public_url)
    except DataBourseError as exc:
        fail(str(exc))


def _grant_conditions(
    product: str, version: str, market: str, accepted: bool
) -> dict[str, Any] | None:
    """Print the conditions the grant would rest on (stderr, escaped); refuse unaccepted ones."""
    from tasks import resources

    shown = resources.catalog().grant_conditions(product, version, market)
    if shown is None:
        return None
    err.print(
        safe(
            f"approval {shown['approval_id']} (reference {shown['reference']}) for {market} "
            "was given under these conditions:"
        )
    )
    err.print(assemble("  ", safe(shown["conditions"])))  # one line: its breaks print as \n
    if not accepted:
        fail(
            f"no grant of {product}@{version} in {market}: accept the conditions of approval "
            f"{shown['approval_id']} above with --accept-conditions (the grant records it)"
        )
    return shown


# ---------------------------------------------------------------- catalog
@catalog_app.command("list")
def catalog_list(as_json: JsonOpt = False) -> None:
    """Products with their latest version and where the audit trail backs it as available."""
    from tasks import resources

    items = resources.catalog().list_products()
    if as_json:
        print_json(items)
        return
    table = Table("product", "provider/dataset", "latest", "versions", "available in")
    for column in table.columns:
        column.overflow = "fold"  # never cut an id: people copy them
    for p in items:
        table.add_row(
            *cells(
                p["id"],
                f"{p['provider']}/{p['dataset']}",
                p["latest_version"],
                p["version_count"],
                ", ".join(p["markets"]),
            )
        )
    out.print(table)


@catalog_app.command("show")
def catalog_show(
    ref: Annotated[str, typer.Argument(help="PRODUCT or PRODUCT@VERSION")],
    as_json: JsonOpt = False,
) -> None:
    """One product (all versions) or one version: availability, approvals, manifest.

    Markets and approvals as the authenticated audit trail backs them: a stored row it does not
    back is shown as unverified.
    """
    from databourse.errors import CatalogError
    from tasks import resources

    product, _, version = ref.partition("@")
    try:
        [shown] = resources.catalog().listing(product, version or None)
    except CatalogError as exc:
        fail(str(exc))
    if as_json:
        print_json(shown)
        return
    out.print(assemble((shown["product"]["id"], "bold"), " ", shown["product"]["name"]))
    for v in shown.get("versions", []):
        out.print(
            safe(
                f"  {v['version']}  {v['status']}  rows={v.get('row_count')}  "
                f"hash={str(v.get('content_hash'))[:12]}  {v.get('manifest_uri') or ''}"
            )
        )
        for a in v.get("availability", []):
            stored = (
                f", stored as {a['stored_status']}: {a['unverified']}" if "unverified" in a else ""
            )
            out.print(safe(f"    {a['market']}: {a['status']} ({a.get('rule_id')}{stored})"))
        for ap in [*v.get("approvals", []), *v.get("unverified_approvals", [])]:
            carried = ap.get("carried_over_from")
            since = f", carried over from {carried['version']}" if carried else ""
            since += f"; UNVERIFIED: {ap['unverified']}" if "unverified" in ap else ""
            who = ap.get("prefect_identity") or "no Prefect identity"
            out.print(
                safe(
                    f"    approval {ap['market']}: {ap['decision']} by {ap['approver']} ({who}) "
                    f"route {ap.get('route')}/{ap.get('basis') or '-'} ref {ap.get('reference')} "
                    f"until {ap.get('valid_until') or '-'}{since}"
                )
            )


@catalog_app.command("export")
def catalog_export() -> None:
    """Write the catalog as DCAT-AP 3 JSON-LD and a static HTML page to the catalog zone, sealed.

    A market whose stored status the authenticated audit trail does not back is listed as
    unverified, never as available, and named in a warning.
    """
    from databourse.exports import export_listing
    from tasks import resources

    try:
        exported = export_listing(resources.catalog(), resources.store())
    except DataBourseError as exc:  # a manifest edited after packaging is not published
        fail(str(exc))
    for kind, uri in exported.uris.items():
        out.print(safe(f"{kind}: {uri}"))
    for line in exported.warnings():
        err.print(assemble(("warning:", "bold yellow"), " ", safe(line)))


@catalog_app.command("withdraw")
def catalog_withdraw(
    ref: Annotated[str, typer.Argument(help="PRODUCT@VERSION")],
    reason: Annotated[str, typer.Option(help="Why it is withdrawn (kept for audit).")],
) -> None:
    """Withdraw a version: kept for audit, offered nowhere; its waiting publish runs cancelled."""
    import httpx

    from bourse.approvals import cancel_waiting
    from databourse.errors import CatalogError
    from databourse.exports import refresh_listing
    from tasks import resources

    product, _, version = ref.partition("@")
    if not version:
        fail("give the exact version to withdraw: PRODUCT@VERSION")
    try:
        resources.catalog().withdraw_version(product, version, reason=reason)
    except CatalogError as exc:
        fail(str(exc))
    out.print(safe(f"{product}@{version} withdrawn: {reason}"))
    try:
        cancelled = cancel_waiting(resources.catalog(), product, version, reason)
    except httpx.HTTPError:  # the withdrawal stands; an answer to a waiting run is refused anyway
        resources.catalog().cancel_pending(product, version, reason)
        cancelled = []
        err.print(
            "warning: the Prefect API is not reachable: publish runs waiting on this version"
            " were not cancelled there (an answer to them is refused: the version is withdrawn)"
        )
    if refresh_listing(resources.catalog(), resources.store()) is not None:
        out.print("the public listing (catalog/) was exported again without it")
    for run_id in cancelled:  # an answer to them would be refused anyway: nothing waits now
        out.print(safe(f"cancelled publish run {run_id}, which waited for an approval"))


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit trail's hashes, MACs (audit key) and anchors; exit 1 on any break."""
    from tasks import resources

    report = resources.catalog().audit_verify(resources.store())
    if not report.ok:
        fail(f"audit chain broken ({report.events} events):", details=report.problems)
    for note in report.notes + report.planted:
        out.print(safe(note))
    out.print(
        f"audit chain intact: {report.events} events, authenticated with the audit key; "
        f"{report.anchors} anchor(s) in the store agree"
    )


@audit_app.command("anchor")
def audit_anchor() -> None:
    """Copy the chain's head (seq, hash, MAC) into the store as a write-once anchor."""
    from tasks import resources

    try:
        anchored = resources.catalog().audit_anchor(resources.store())
    except DataBourseError as exc:
        fail(str(exc))
    if anchored is None:
        out.print("the audit trail is empty: nothing to anchor")
        return
    out.print(f"anchored event {anchored['seq']} ({anchored['hash'][:16]}...) in the store")


@audit_app.command("show")
def audit_show(
    product: Annotated[str | None, typer.Argument(help="Only this product's events.")] = None,
    grant_id: Annotated[
        int | None,
        typer.Option(
            "--grant", help="Only this grant's events (grant, profile, reads, revocation)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The history: ingests, decisions, approvals, rejections, publications, withdrawals, grants."""
    from tasks import resources

    events = resources.catalog().audit_history(product)
    if grant_id is not None:
        events = [e for e in events if (e["detail"] or {}).get("grant_id") == grant_id]
    if as_json:
        print_json(events)
        return
    for e in events:
        detail = e["detail"]
        subject = "@".join(x for x in (e["product"], e["version"]) if x) or (
            f"{detail.get('provider', '-')}/{detail.get('dataset', '-')}"
        )
        who = f" by {e['actor']}" if e["actor"] else ""
        market = f" -> {e['market']}" if e["market"] else ""
        read = f" ({detail['what']}: {detail['bytes']} bytes)" if e["kind"] == "access" else ""
        out.print(
            safe(f"{e['seq']:>5} {e['at'][:19]} {e['kind']:<11} {subject}{market}{who}{read}")
        )


@audit_app.command("export")
def audit_export() -> None:
    """Write the whole chain as JSON Lines to the audit zone (audit/events.jsonl)."""
    from tasks import resources

    events = resources.catalog().audit_history()
    store = resources.store()
    body = "".join(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in events)
    store.put_bytes("audit/events.jsonl", body.encode())
    out.print(f"{len(events)} events -> {store.uri('audit/events.jsonl')}")


# ---------------------------------------------------------------- stack, configs, secrets
@server_app.command("start")
def server_start() -> None:
    """Start the local Prefect server (unless PREFECT_API_URL is set) and the runner."""
    _ensure_stack()
    out.print(f"Prefect UI: {RT.ui_url}")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the runner and the local Prefect server."""
    from bourse.localserver import stop

    done = stop(RT)
    out.print("\n".join(done) or "nothing was running")


@server_app.command("reclaim")
def server_reclaim() -> None:
    """Free concurrency slots whose holders are gone (lease expired, run ended, process dead)."""
    from bourse.localserver import healthy, recover, slot_report

    if not healthy(RT.api_url):
        fail(f"the Prefect API {RT.api_url} does not answer: `bourse server start` (it reclaims)")
    done = recover(RT)
    out.print("\n".join(done) or "no slot held by a dead holder", highlight=False)
    for line in slot_report():
        out.print(line, highlight=False)


@server_app.command("status")
def server_status() -> None:
    """Show what is running."""
    from bourse.localserver import status

    for k, v in status(RT).items():
        out.print(f"{k:7} {v}")


@config_app.command("check")
def config_check() -> None:
    """Load every config file; list every problem by file and key path."""
    from databourse.config import load_config
    from databourse.errors import ConfigError
    from databourse.quality import check_suite

    try:
        cfg = load_config()
        problems: list[str] = []
        for pid, provider in cfg.providers.items():
            for name, spec in provider.datasets.items():
                try:
                    check_suite(spec)
                except ConfigError as exc:
                    file = cfg.files[f"provider/{pid}"]
                    problems += [f"{file}: datasets.{name}.{p}" for p in exc.problems]
        if problems:
            raise ConfigError(problems)
    except DataBourseError as exc:
        fail(str(exc))
    out.print(
        f"ok: {len(cfg.providers)} provider(s), {len(cfg.products)} product(s), "
        f"{len(cfg.policy.origins)} origin rule set(s)"
    )


@secrets_app.command("init")
def secrets_init() -> None:
    """Create the pseudonym and audit keys as private key files (0600), if none is set."""
    from bourse.demo import ensure_keys

    try:
        lines = ensure_keys()
    except DataBourseError as exc:
        fail(str(exc))
    out.print("\n".join(lines), highlight=False, markup=False)


@samples_app.command("generate")
def samples_generate(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the drops into.")],
    scale: float = 1.0,
    seed: int = 20261120,
) -> None:
    """Write the sample provider drops (deterministic for a seed)."""
    from databourse.samples import generate_drops

    for d in generate_drops(out_dir, seed=seed, scale=scale):
        out.print(f"{d.provider}/{d.dataset}: {d.rows} rows -> {d.path}")


# ---------------------------------------------------------------- helpers
def _ensure_stack() -> None:
    from bourse.localserver import LocalServerError, start

    try:
        for line in start(RT):
            err.print(line, highlight=False)  # stderr: stdout stays the command's own output
    except LocalServerError as exc:
        fail(str(exc))


def _abs(source: str) -> str:
    """The source made absolute without resolving links (the ingest refuses a link, named)."""
    return source if source.startswith("s3://") else os.path.abspath(os.path.expanduser(source))


def _run_flow(call: Any) -> Any:
    from bourse import logfilter

    logfilter.install()
    try:
        return call()
    except DataBourseError as exc:
        fail(str(exc))


def _print_approval_hint(run_id: str) -> None:
    out.print(
        f"  waiting for approval: {RT.run_url(run_id)}\n"
        f"  bourse approve {run_id} --approver NAME --reference FILING-NUMBER\n"
        f"  bourse reject {run_id} --approver NAME --reason TEXT"
    )


def main() -> None:
    """The CLI. A databourse error no command caught (a missing key, say), or a refusal of the
    Prefect API (no such run, a wrong auth string), is one error line and exit 1, never a
    traceback."""
    from bourse import logfilter
    from bourse.api_errors import api_error_line

    logfilter.install()  # every command's console, `demo` included
    try:
        app()
    except DataBourseError as exc:
        err.print(assemble(("error:", "bold red"), " ", safe(str(exc))))
        sys.exit(1)
    except Exception as exc:
        line = api_error_line(exc)
        if line is None:
            raise
        err.print(assemble(("error:", "bold red"), " ", safe(line)))
        sys.exit(1)


if __name__ == "__main__":
    main()
