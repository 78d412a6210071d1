"""`bourse`: run the pipeline, answer approvals, browse the catalog, manage the local server."""

from __future__ import annotations

import gc
import sys
from importlib.metadata import version
from typing import Annotated

import typer

from bourse.commands.shared import rt

rt()  # configure the process before anything imports Prefect

from bourse.commands import (  # noqa: E402
    approvals,
    catalog,
    corpus,
    data,
    grants,
    pipeline,
    project,
    server,
    transfers,
)
from bourse.commands.shared import out, report_error  # noqa: E402
from databourse.errors import DataBourseError  # noqa: E402

# The commands are in bourse/commands/, one module per concern; this is the order `--help` lists
# them in (commands first, then the groups).
app = typer.Typer(
    help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False
)


def _print_version(wanted: bool) -> None:
    if wanted:
        out.print(f"bourse (databourse) {version('databourse')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the installed version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    """Options before any command."""


for command in (
    pipeline.demo,
    pipeline.run,
    pipeline.ingest,
    pipeline.nightly,
    pipeline.discover,
    server.serve,
    server.worker,
    data.scan,
    data.anonymize,
    data.redact,
    data.verify,
    approvals.approve,
    approvals.reject,
):
    app.command()(command)
for sub, name in (
    (catalog.catalog_app, "catalog"),
    (server.server_app, "server"),
    (approvals.approvals_app, "approvals"),
    (project.config_app, "config"),
    (project.secrets_app, "secrets"),
    (catalog.audit_app, "audit"),
    (data.quality_app, "quality"),
    (corpus.corpus_app, "corpus"),
    (transfers.transfer_app, "transfer"),
    (project.samples_app, "samples"),
    (server.exchange_app, "exchange"),
    (grants.grant_app, "grant"),
    (pipeline.automations_app, "automations"),
):
    app.add_typer(sub, name=name)


def main() -> None:
    """The CLI. A databourse error no command caught (a missing key, say), or a refusal of the
    Prefect API (no such run, a wrong auth string), is one error line and exit 1, never a
    traceback (a JSON object after `--json`, as every error of the command)."""
    from bourse import logfilter
    from bourse.api_errors import api_error_line

    logfilter.install()  # every command's console, `demo` included
    try:
        app()
    except DataBourseError as exc:
        report_error(str(exc))
        sys.exit(1)
    except Exception as exc:
        line = api_error_line(exc)
        if line is None:
            raise
        report_error(line)
        sys.exit(1)
    finally:
        # The interpreter's last collection walks every object Prefect, pyarrow and GX made:
        # 1.5 s of `bourse run`'s exit (issue 18). Frozen, they are skipped; objects are still
        # released (files closed, buffers flushed) as the modules are cleared.
        gc.freeze()


if __name__ == "__main__":
    main()
