"""Long-running services: the local Prefect server and runner, a work pool's worker, the buyers'
exchange."""

from __future__ import annotations

from typing import Annotated

import typer

from bourse.commands.shared import JsonOpt, ensure_stack, fail, out, print_json, rt
from databourse.errors import DataBourseError

server_app = typer.Typer(
    help="The local Prefect server and deployment runner.", no_args_is_help=True
)
exchange_app = typer.Typer(
    help="The buyers' service: catalog pages and Delta Sharing over the catalog and store.",
    no_args_is_help=True,
)


def serve() -> None:
    """Serve the deployments of deploy/prefect.yaml from this process (the embedded runner)."""
    from bourse.serving import serve as serve_declared

    serve_declared()


def worker(
    pool: Annotated[str, typer.Option(help="The work pool to take flow runs from.")] = "databourse",
    limit: Annotated[int | None, typer.Option(help="Most flow runs at once.")] = None,
    name: Annotated[
        str | None, typer.Option(help="The worker's name in the UI and on the runs it starts.")
    ] = None,
    healthcheck: Annotated[
        bool, typer.Option("--with-healthcheck", help="Serve /health on port 8080.")
    ] = False,
) -> None:
    """Run a work pool's flow runs, each from the flow imported here (never code the API names)."""
    from bourse.worker import work

    work(pool, limit=limit, name=name, with_healthcheck=healthcheck, printer=out.print)


@server_app.command("start")
def server_start() -> None:
    """Start the local Prefect server (unless PREFECT_API_URL is set) and the runner."""
    ensure_stack()
    out.print(f"Prefect UI: {rt().ui_url}")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the runner and the local Prefect server."""
    from bourse.localserver import stop

    done = stop(rt())
    out.print("\n".join(done) or "nothing was running")


@server_app.command("reclaim")
def server_reclaim() -> None:
    """Free concurrency slots whose holders are gone (lease expired, run ended, process dead)."""
    from bourse.localserver import healthy, recover, slot_report

    if not healthy(rt().api_url):
        fail(f"the Prefect API {rt().api_url} does not answer: `bourse server start` (it reclaims)")
    done = recover(rt())
    out.print("\n".join(done) or "no slot held by a dead holder", highlight=False)
    for line in slot_report():
        out.print(line, highlight=False)


@server_app.command("status")
def server_status(as_json: JsonOpt = False) -> None:
    """Show what is running."""
    from bourse.localserver import status

    shown = status(rt())
    if as_json:
        print_json(shown)
        return
    for k, v in shown.items():
        out.print(f"{k:7} {v}")


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
