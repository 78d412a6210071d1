"""Tools on files and the store: scan a file for personal data, profile a dataset, anonymize a
file by a product's rules, verify a published version or the whole store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bourse.commands.shared import JsonOpt, fail, out, print_json
from bourse.display import safe, yaml_text
from databourse.errors import DataBourseError

quality_app = typer.Typer(help="Data quality suites.", no_args_is_help=True)


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
