"""HTML of the exchange's catalog pages (exchange_pages): every name escaped, no script.

Rendering only, from what exchange_pages gathered: listing entries (catalog_listing's shape),
public manifests and the markets each version is offered in. Every text from the catalog or a
manifest goes through `text` (html.escape); links are built by `href` from quoted path parts.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from fastapi.responses import HTMLResponse

from databourse.catalog.listing import UNVERIFIED
from databourse.catalog.page import STYLE
from databourse.delivery.sharing import SharedTable
from databourse.standards.dcat import available_markets

TITLE = "databourse data product catalog"
NOT_LISTED = "no such product or version is listed in this catalog"
HEADERS = {  # no script, no frames, no form posts, no sniffing, no referrer to other sites
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def text(value: Any) -> str:
    """The text of `value` for HTML: every name from the catalog goes through here."""
    return escape(str(value), quote=True)


def href(*parts: str) -> str:
    """An absolute path of this service from its parts, each percent-quoted."""
    return "/" + "/".join(quote(p, safe="") for p in parts)


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A whole page: escaped title, the catalog's style, navigation, `body`; no script."""
    html = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{text(title)}</title><style>{STYLE}</style></head><body>"
        '<nav><a href="/">All products</a> | <a href="/catalog/dcat.jsonld">DCAT-AP 3 '
        f"(JSON-LD)</a></nav>{body}</body></html>\n"
    )
    return HTMLResponse(html, status, headers=HEADERS)


def not_found() -> HTMLResponse:
    """404 naming nothing that is listed."""
    return page("not listed", f"<h1>Not listed</h1><p>{text(NOT_LISTED)}.</p>", 404)


def index(listing: list[dict[str, Any]]) -> str:
    """Every listed product: name, provider, newest published version, where it is available."""
    rows = []
    for entry in listing:
        p = entry["product"]
        newest = next((v for v in entry["versions"] if v["status"] == "published"), None)
        version = "none (withdrawn)"
        if newest is not None:
            link = href("products", p["id"], newest["version"])
            version = f'<a href="{text(link)}">{text(newest["version"])}</a>'
        markets = ", ".join(available_markets(newest)) if newest else ""
        rows.append(
            f'<tr><td><a href="{text(href("products", p["id"]))}">{text(p["name"])}</a><br>'
            f"<code>{text(p['id'])}</code></td><td>{text(p['provider'])}</td><td>{version}</td>"
            f"<td>{text(markets or 'none yet')}</td><td>{len(entry['versions'])}</td></tr>"
        )
    table = (
        "<table><tr><th>product</th><th>provider</th><th>newest version</th>"
        "<th>available in</th><th>versions</th></tr>" + "".join(rows) + "</table>"
        if rows
        else "<p>No product is listed yet.</p>"
    )
    return (
        f"<h1>{text(TITLE)}</h1><p>Every version is immutable and identified by its content hash; "
        "a market is offered only with its legal basis, as the authenticated audit trail "
        f"records it.</p>{table}"
    )


def pager(path: str, page: int, more: bool) -> str:
    """Links to the pages before and after `page` of a paged list (nothing on a single page)."""
    links = []
    if page > 1:
        links.append(f'<a rel="prev" href="{text(path)}?page={page - 1}">previous page</a>')
    if more:
        links.append(f'<a rel="next" href="{text(path)}?page={page + 1}">next page</a>')
    return f"<p>Page {page}: {' | '.join(links)}</p>" if links else ""


def product_head(entry: dict[str, Any], description: str) -> str:
    """The product's name, id, provider, dataset and description."""
    p = entry["product"]
    return (
        f"<h1>{text(p['name'])}</h1><p><code>{text(p['id'])}</code> from "
        f"<b>{text(p['provider'])}</b> (dataset <code>{text(p['dataset'])}</code>)</p>"
        + (f"<p>{text(description)}</p>" if description else "")
    )


def versions(entry: dict[str, Any], offered: dict[str, list[str]]) -> str:
    """Every listed version of the product: status, where it is offered, when published."""
    pid, rows = entry["product"]["id"], []
    for record in entry["versions"]:
        markets = offered.get(record["version"], [])
        rows.append(
            f'<tr><td><a href="{text(href("products", pid, record["version"]))}">'
            f'{text(record["version"])}</a></td><td class="{text(record["status"])}">'
            f"{text(record['status'])}</td><td>{text(', '.join(markets) or 'not offered')}</td>"
            f"<td>{text(record.get('published_at') or '')}</td></tr>"
        )
    return (
        "<h2>Versions</h2><table><tr><th>version</th><th>status</th><th>offered in</th>"
        f"<th>published</th></tr>{''.join(rows)}</table>"
    )


def details(
    product: dict[str, Any],
    record: dict[str, Any],
    manifest: dict[str, Any] | None,
    markets: list[str],
    base: str,
) -> str:
    """One version: what it is, its terms, figures, markets and how to get it."""
    version = record["version"]
    head = (
        f'<h2>Version {text(version)}</h2><p>Status: <b class="{text(record["status"])}">'
        f"{text(record['status'])}</b>; {text(record.get('row_count', ''))} rows; content hash "
        f"<code>{text(record['content_hash'])}</code></p>"
    )
    if record["status"] == "withdrawn":
        return head + (
            f'<p class="withdrawn">Withdrawn on {text(record.get("withdrawn_at") or "")}: this '
            "version is no longer offered, and grants of it are refused.</p>"
        )
    if manifest is None:
        return head + "<p>This version is not offered now.</p>"
    manifest_url = href("products", product["id"], version, "manifest.json")
    card_url = href("products", product["id"], version, "croissant.json")
    return (
        head + f'<p><a href="{text(manifest_url)}">manifest.json</a> (files with sha256, lineage, '
        "the ODRL usage policy) &middot; "
        f'<a href="{text(card_url)}">croissant.json</a> (Croissant 1.1 card for ML tools)</p>'
        + _schema(manifest)
        + _terms(manifest.get("usage_terms") or {})
        + _figures(record, manifest)
        + _markets(record)
        + _access(product, record, manifest, markets, base)
    )


def _schema(manifest: dict[str, Any]) -> str:
    remaining = (manifest.get("personal_data") or {}).get("remaining") or {}
    rows = []
    for column in manifest.get("schema") or []:
        category = column.get("personal_data") or remaining.get(column["name"])
        status = f"personal data remains: {category}" if category else "no personal data"
        rows.append(
            f"<tr><td><code>{text(column['name'])}</code></td><td>{text(column['type'])}</td>"
            f"<td>{text(status)}</td></tr>"
        )
    return (
        "<h3>Schema</h3><table><tr><th>column</th><th>type</th><th>personal data</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _terms(terms: dict[str, Any]) -> str:
    purposes = ", ".join(str(p) for p in terms.get("purposes") or [])
    items = [
        f"Use it only for: {purposes}; any other use is not permitted.",
        "Use it only in the market your grant names.",
        "Re-identifying anyone in it, alone or combined with other data, is prohibited."
        if terms.get("reidentification_prohibited", True)
        else "These terms do not prohibit re-identification; the law of your market still does.",
        "It may be passed on to others only under these same terms."
        if terms.get("onward_transfer_allowed")
        else "It may not be passed on or transferred to anyone else.",
        f"These terms, and every grant under them, end on {terms['expires']}."
        if terms.get("expires")
        else "These terms have no end date; every grant has its own expiry.",
    ]
    return "<h3>Usage terms</h3><ul>" + "".join(f"<li>{text(i)}</li>" for i in items) + "</ul>"


def _figures(record: dict[str, Any], manifest: dict[str, Any]) -> str:
    quality = record.get("quality_scores") or {}
    rows = [(f"quality: {k}", f"{v:.2f}") for k, v in quality.items() if v is not None]
    if (manifest.get("quality") or {}).get("success"):
        rows.append(("quality checks", "all passed"))
    privacy = manifest.get("privacy") or {}
    if not privacy.get("model"):
        rows.append(("privacy model", "none (no anonymization model applies)"))
    for key, value in _flat(privacy):
        rows.append((f"privacy: {key}", value))
    personal = manifest.get("personal_data") or {}
    for key in ("individuals", "sensitive_categories", "important_data"):
        if key in personal:
            rows.append((f"personal data: {key.replace('_', ' ')}", _scalar(personal[key])))
    cells = "".join(f"<tr><td>{text(k)}</td><td>{text(v)}</td></tr>" for k, v in rows)
    return f"<h3>Quality and privacy</h3><table>{cells}</table>"


def _flat(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            if not prefix:  # one level down (an aggregate's figures); deeper is in the manifest
                out += _flat(value, f"{key}.")
        elif value is not None and (not isinstance(value, list) or len(value) <= 20):
            out.append((f"{prefix}{key}", _scalar(value)))
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _markets(record: dict[str, Any]) -> str:
    approvals = {a["market"]: a for a in record.get("approvals", [])}
    rows = []
    for where in record.get("availability", []):
        market, status = where["market"], where["status"]
        rows.append(
            f'<tr><td>{text(market)}</td><td class="{text(status)}">'
            f"{text(status.replace('_', ' '))}</td>"
            f"<td>{text(_basis(where, approvals.get(market)))}</td></tr>"
        )
    return (
        "<h3>Markets</h3><table><tr><th>market</th><th>status</th><th>legal basis</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _basis(where: dict[str, Any], approval: dict[str, Any] | None) -> str:
    """The legal basis of a market's status in words (the trail-backed detail and approval)."""
    if where["status"] == UNVERIFIED:
        return "not offered: the authenticated audit trail does not back this market"
    detail = where.get("detail") or {}
    parts = [str(detail.get("citation") or "")]
    if detail.get("exemption"):
        parts.append(f"exemption: {detail['exemption']}")
    route = (approval or {}).get("route") or detail.get("route")
    if route:
        parts.append(f"route: {route}")
    if approval is not None and approval.get("decision") == "approved":
        until = approval.get("valid_until")
        parts.append(
            f"approved, reference {approval.get('reference') or 'none'}"
            + (f", valid until {until}" if until else "")
        )
    return "; ".join(p for p in parts if p) or "no decision recorded"


def _access(
    product: dict[str, Any],
    record: dict[str, Any],
    manifest: dict[str, Any],
    markets: list[str],
    base: str,
) -> str:
    if not markets:
        return "<h3>How to get access</h3><p>Not offered in any market yet.</p>"
    table = SharedTable(0, product["id"], record["version"])
    purposes = ", ".join(str(p) for p in (manifest.get("usage_terms") or {}).get("purposes") or [])
    ref = f"{product['id']}@{record['version']}"
    return (
        "<h3>How to get access</h3><ol>"
        f"<li>Ask the exchange for a grant of <code>{text(ref)}</code>, naming your market (one of "
        f"{text(', '.join(markets))}) and your purpose (one of {text(purposes)}).</li>"
        "<li>You receive a Delta Sharing profile file for this one version, valid until the "
        "grant's expiry; it holds your bearer token: keep it secret.</li>"
        f"<li>Read it with any Delta Sharing client (endpoint <code>{text(base)}/delta-sharing"
        "</code>): <code>pip install delta-sharing</code>, then <code>delta_sharing."
        "load_as_pandas(&quot;profile.share#SHARE."
        + text(table.schema)
        + "."
        + text(table.table)
        + "&quot;)</code>, where <code>SharingClient(&quot;profile.share&quot;)."
        "list_all_tables()</code> names SHARE.</li></ol>"
    )
