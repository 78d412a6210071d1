"""The catalog and its audit trail: list, show, export and withdraw versions; verify, anchor,
show and export the hash-chained events."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from bourse.commands.shared import JsonOpt, err, fail, out, print_json
from bourse.display import assemble, cells, safe
from databourse.errors import DataBourseError

catalog_app = typer.Typer(help="Browse the catalog of products and versions.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)


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
    from databourse.standards.exports import export_listing
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
    from databourse.standards.exports import refresh_listing
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
def audit_verify(as_json: JsonOpt = False) -> None:
    """Check the audit trail's hashes, MACs (audit key) and anchors; exit 1 on any break."""
    from tasks import resources

    report = resources.catalog().audit_verify(resources.store())
    if as_json:
        print_json(report.to_json())
    if not report.ok:
        fail(f"audit chain broken ({report.events} events):", details=report.problems)
    if as_json:
        return
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
    """The history: ingests, decisions, approvals, rejections, publications, withdrawals, grants;
    with --grant also the grant's reads from the access log (their ids marked `a`)."""
    from tasks import resources

    catalog = resources.catalog()
    events = catalog.audit_history(product)
    if grant_id is not None:
        events = [e for e in events if (e["detail"] or {}).get("grant_id") == grant_id]
        reads = [e for e in catalog.access_history(grant_id) if product in (None, e["product"])]
        events = sorted(events + reads, key=lambda e: (e["at"], "id" in e))
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
            safe(f"{_number(e):>5} {e['at'][:19]} {e['kind']:<11} {subject}{market}{who}{read}")
        )


def _number(event: dict[str, Any]) -> str:
    """An audit event's seq; an access log row's id, marked `a`."""
    return f"a{event['id']}" if "id" in event and "seq" not in event else str(event["seq"])


@audit_app.command("export")
def audit_export() -> None:
    """Write the whole chain as JSON Lines to the audit zone (audit/events.jsonl), and the
    access log's rows beside it (audit/access.jsonl)."""
    from tasks import resources

    catalog, store = resources.catalog(), resources.store()
    for key, rows, what in (
        ("audit/events.jsonl", catalog.audit_history(), "events"),
        ("audit/access.jsonl", catalog.access_history(), "reads"),
    ):
        body = "".join(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in rows)
        store.put_bytes(key, body.encode())
        out.print(f"{len(rows)} {what} -> {store.uri(key)}")
