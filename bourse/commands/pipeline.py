"""Pipeline commands: the demo, one drop end to end, an ingest, the nightly run, the landing
zone's new drops, the operators' automations."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from bourse.commands.shared import (
    JsonOpt,
    absolute,
    ensure_stack,
    err,
    fail,
    out,
    print_json,
    rt,
    run_flow,
)
from bourse.display import assemble, cells, safe
from databourse.errors import DataBourseError

automations_app = typer.Typer(help="Prefect automations for operators.", no_args_is_help=True)


def demo(
    scale: Annotated[
        float, typer.Option(help="Size of the sample drops (1.0 = a few thousand rows).")
    ] = 1.0,
) -> None:
    """Start the local stack, generate the sample drops and run the whole pipeline on them."""
    from bourse.demo import run_demo

    try:
        run_demo(rt(), out, scale=scale)
    except DataBourseError as exc:
        fail(str(exc))


ProviderArg = Annotated[str, typer.Argument(help="The provider's id (configs/providers/).")]
DatasetArg = Annotated[str, typer.Argument(help="One of the provider's datasets.")]


def run(
    provider: ProviderArg,
    dataset: DatasetArg,
    source: Annotated[str, typer.Argument(help="A file path or s3://bucket/key URI.")],
    wait: Annotated[float, typer.Option(help="Seconds to wait for the publish run.")] = 300,
    as_json: JsonOpt = False,
) -> None:
    """Process one provider drop end to end (ingest, validate, build, publish)."""
    from flows.process_drop import process_drop

    ensure_stack()
    result = run_flow(lambda: process_drop(provider, dataset, absolute(source), wait))
    if as_json:
        print_json(result)
        return
    for p in result["products"]:
        if p["version"] is None:  # a corpus drop of documents every earlier version holds
            out.print(safe(f"{p['product']}: no new version (every document was removed: "
                           "duplicates of earlier versions, opted out, or filtered)"))  # fmt: skip
            continue
        out.print(
            safe(
                f"{p['product']}@{p['version']} ({'new' if p['new'] else 'unchanged'}): "
                f"publish run {p['publish_run_name']} {p['publish_state']}"
            )
        )
        if p["publish_state"] == "Suspended":
            _print_approval_hint(p["publish_run_id"])


def ingest(
    provider: ProviderArg,
    dataset: DatasetArg,
    source: Annotated[
        str,
        typer.Argument(
            help="A file, a folder, a quoted glob, an s3://bucket/key or s3://bucket/prefix/."
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Ingest provider files into raw and staging; exit 1 naming the reason of any quarantine.

    With --json: `{"ingested": [...], "refused": [...]}` on stdout, an object per file (its
    ingest id, rows, format, sha256, keys; or its status, reason and quarantined copy).
    """
    from bourse.ingesting import Outcome, ingest_sources

    ensure_stack()
    ended: list[Outcome] = []

    def report(outcome: Outcome) -> None:
        ended.append(outcome)
        if as_json:
            return
        if outcome.status == "ingested":
            out.print(safe(outcome.line()))
        else:
            err.print(
                assemble((f"{outcome.status}:", "bold red"), safe(f" {outcome.reason}", keep="\n"))
            )

    failures = run_flow(lambda: ingest_sources(rt(), err, provider, dataset, source, report))
    if as_json:
        shown = {"provider": provider, "dataset": dataset}
        ingested = [o.to_json() for o in ended if o.status == "ingested"]
        refused = [o.to_json() for o in ended if o.status != "ingested"]
        print_json({**shown, "ingested": ingested, "refused": refused, "failures": failures})
        if failures:
            fail(f"{failures} file(s) quarantined or refused",
                 details=[f"{o['file']}: {o['reason']}" for o in refused])  # fmt: skip
    elif failures:
        fail(f"{failures} file(s) quarantined or refused (reasons above)")


def nightly(
    provider: Annotated[str | None, typer.Argument(help="One provider; default all.")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for each publish run.")] = 60,
    as_json: JsonOpt = False,
) -> None:
    """Process every new drop in the landing zone now (what the nightly schedule runs)."""
    from flows.nightly import nightly as nightly_flow

    ensure_stack()
    result = run_flow(lambda: nightly_flow(provider, wait))
    if as_json:
        print_json(result)
    else:
        for p in result["processed"]:
            out.print(safe(f"{p['key']}: {p['state']}"))
        out.print(f"{len(result['processed'])} new drop(s) processed, {result['failed']} failed")
    if result["failed"]:
        raise typer.Exit(1)


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

    ensure_stack()
    try:
        for line in ensure(timedelta(hours=approval_wait_hours), notify):
            out.print(line, highlight=False)
    except ValueError as exc:
        fail(str(exc))


def discover(
    provider: Annotated[str | None, typer.Argument(help="One provider; default all.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the drops in the landing zone and which are new (by content hash, not name)."""
    from flows.discover_landing import discover_landing

    ensure_stack()
    result = run_flow(lambda: discover_landing(provider))
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


def _print_approval_hint(run_id: str) -> None:
    out.print(
        f"  waiting for approval: {rt().run_url(run_id)}\n"
        f"  bourse approve {run_id} --approver NAME --reference FILING-NUMBER\n"
        f"  bourse reject {run_id} --approver NAME --reason TEXT"
    )
