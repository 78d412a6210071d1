"""What every command module uses: the consoles, one error line and exit, JSON output, the
process's runtime and the local stack."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer

from bourse import runtime
from bourse.display import PlainConsole, assemble, safe
from databourse.errors import DataBourseError

# Data printed here comes from buyers, approvers, providers and the catalog: plain text only,
# controls escaped (bourse/display.py); style is added as Text, never as markup.
out = PlainConsole(soft_wrap=True)
err = PlainConsole(stderr=True, soft_wrap=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@functools.cache
def rt() -> runtime.Runtime:
    """This process's runtime, configured on first use: `bourse.cli` calls this when it is
    imported, before anything imports Prefect. Importing a command module configures nothing, so
    a test process that imports one keeps its own Prefect settings (tests/conftest.py)."""
    return runtime.configure()


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
    """Print `data` as indented JSON on stdout (dates and paths as strings)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def ensure_stack() -> None:
    """Start the local Prefect server and runner unless they run (or the API is external)."""
    from bourse.localserver import LocalServerError, start

    try:
        for line in start(rt()):
            err.print(line, highlight=False)  # stderr: stdout stays the command's own output
    except LocalServerError as exc:
        fail(str(exc))


def absolute(source: str) -> str:
    """The source made absolute without resolving links (the ingest refuses a link, named)."""
    return source if source.startswith("s3://") else os.path.abspath(os.path.expanduser(source))


def run_flow(call: Callable[[], Any]) -> Any:
    """Run a flow in this process with Prefect's noise filtered; a domain error is one line."""
    from bourse import logfilter

    logfilter.install()
    try:
        return call()
    except DataBourseError as exc:
        fail(str(exc))
