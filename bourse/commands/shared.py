"""What every command module uses: the consoles, one error line and exit, JSON output, the
process's runtime and the local stack.

`--json` (JsonOpt) is one mechanism for every command that has it: its value is remembered when
the command line is parsed, and from then on an error (`fail`, or one `bourse.cli.main` catches)
is one JSON object on stderr, `{"error": ..., "exit_code": N}` (plus `details` when there are
any), where the text error lines would be, with the same exit code. Stdout holds only the
command's result (a report that says what failed, then the error on stderr). An error in the
command line itself (an unknown option, a missing argument: exit 2) stays Typer's usage text.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Annotated, Any, NoReturn

import typer

from bourse import runtime
from bourse.display import PlainConsole, assemble, safe
from databourse.errors import DataBourseError

# Data printed here comes from buyers, approvers, providers and the catalog: plain text only,
# controls escaped (bourse/display.py); style is added as Text, never as markup.
out = PlainConsole(soft_wrap=True)
err = PlainConsole(stderr=True, soft_wrap=True)
_json_errors: ContextVar[bool] = ContextVar("json_errors", default=False)


def _remember_json(value: bool) -> bool:
    """JsonOpt's callback: errors of this command are JSON from now on when `--json` is given."""
    _json_errors.set(bool(value))
    return value


JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print JSON instead of text; an error is then one JSON object on stderr.",
        callback=_remember_json,
    ),
]

# For a command whose output is JSON already: the option only makes its errors JSON too.
JsonErrorsOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="The output is JSON either way; with --json an error is one JSON object on stderr.",
        callback=_remember_json,
    ),
]


def json_mode() -> bool:
    """True when the running command was given `--json`."""
    return _json_errors.get()


@functools.cache
def rt() -> runtime.Runtime:
    """This process's runtime, configured on first use: `bourse.cli` calls this when it is
    imported, before anything imports Prefect. Importing a command module configures nothing, so
    a test process that imports one keeps its own Prefect settings (tests/conftest.py)."""
    return runtime.configure()


def fail(message: str, code: int = 1, *, details: Iterable[object] = ()) -> NoReturn:
    """Report an error (`report_error`) and exit with `code`."""
    report_error(message, code, details=details)
    raise typer.Exit(code)


def report_error(message: str, code: int = 1, *, details: Iterable[object] = ()) -> None:
    """Print an error: `message` on one line, each of `details` on its own line (stderr).

    Every line break inside them is data (a name, key or message from the store or catalog) and
    is printed escaped (`\\n`), so no data can print a line of its own. With `--json`: one JSON
    object instead, `{"error": message, "details": [...], "exit_code": code}` (JSON escapes
    every control character).
    """
    shown = [str(d) for d in details]
    if json_mode():
        error: dict[str, Any] = {"error": message, "exit_code": code}
        if shown:
            error = {"error": message, "details": shown, "exit_code": code}
        sys.stderr.write(json.dumps(error, default=str) + "\n")
        return
    lines = [assemble(("error:", "bold red"), " ", safe(message))]
    lines += [assemble("  ", safe(d)) for d in shown]
    for line in lines:
        err.print(line)


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
