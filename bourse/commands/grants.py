"""Buyers' access: give a grant (and its Delta Sharing profile), list grants, revoke one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
from rich.table import Table

from bourse.commands.shared import JsonOpt, err, fail, out, print_json
from bourse.display import assemble, cells, safe
from databourse.errors import DataBourseError


class _GrantGroup(typer.core.TyperGroup):
    """`bourse grant PRODUCT@VERSION ...` gives access; `grant list` and `grant revoke` manage."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["give", *args]  # the grant itself: `bourse grant PRODUCT@VERSION ...`
        return list(super().parse_args(ctx, args))


DEFAULT_ENDPOINT = "http://127.0.0.1:8780/delta-sharing"
EndpointOpt = Annotated[
    str,
    typer.Option(
        envvar="DATABOURSE_EXCHANGE_URL",
        help="The exchange's Delta Sharing URL written into --profile.",
    ),
]

grant_app = typer.Typer(
    cls=_GrantGroup,
    help="Buyers' access: `bourse grant PRODUCT@VERSION --buyer NAME --market XX --purpose P "
    "[--profile FILE]` gives it (`grant give` is the same); `grant profile ID --profile FILE`, "
    "`grant list`, `grant revoke ID`.",
    no_args_is_help=True,
)


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
    endpoint: EndpointOpt = DEFAULT_ENDPOINT,
    as_json: JsonOpt = False,
) -> None:
    """Give a buyer time-limited access to one published version available in their market."""
    from databourse.delivery import sharing
    from databourse.delivery.grants import expiry, grant_access
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
        out.print(safe(f"  {f['path']} ({f['bytes']} bytes, sha256 {f['sha256'][:16]}...)"))
    out.print(
        safe(
            "  no link is handed out: the buyer reads through the exchange with a Delta Sharing "
            f"profile: `bourse grant profile {given['id']} --profile FILE`"
        )
    )


@grant_app.command("profile")
def grant_profile(
    grant_id: Annotated[int, typer.Argument(help="The grant (bourse grant list).")],
    profile: Annotated[
        Path,
        typer.Option(
            help="Write the grant's Delta Sharing profile (endpoint, bearer token, expiry; mode "
            "0600) to this file for the buyer. Only the token's sha256 is kept."
        ),
    ],
    endpoint: EndpointOpt = DEFAULT_ENDPOINT,
    as_json: JsonOpt = False,
) -> None:
    """Make a grant given without --profile a Delta Sharing recipient (one profile a grant)."""
    import datetime as dt

    from databourse.delivery import sharing
    from databourse.errors import CatalogError
    from tasks import resources

    found = [g for g in resources.catalog().grant_list() if g["id"] == grant_id]
    if not found:
        fail(f"no grant {grant_id}: see `bourse grant list`")
    given = found[0]
    if given["revoked"]:
        fail(f"grant {grant_id} was revoked: no profile")
    if given["profile"]:
        fail(f"grant {grant_id} already has a profile: revoke it and give a new grant")
    if dt.datetime.fromisoformat(given["expires_at"]) <= dt.datetime.now(dt.UTC):
        fail(f"grant {grant_id} expired at {given['expires_at']}: no profile")
    try:
        sharing.check_profile_path(profile)
    except CatalogError as exc:
        fail(str(exc))
    _write_profile(given, profile, endpoint, as_json)


def _write_profile(given: dict[str, Any], path: Path, endpoint: str, as_json: bool) -> None:
    """Make the recorded grant a recipient and write its profile; revoke it if that fails."""
    import datetime as dt

    from databourse.delivery import sharing
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
        print_json({**given, "profile": str(path), "table_url": url})
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
