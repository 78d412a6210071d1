"""A static HTML catalog page a buyer or an operator opens in a browser (no script, no server)."""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.3rem .6rem;
text-align:left;vertical-align:top}th{background:#f2f2f2}.available{color:#0a6b2d;font-weight:600}
.pending_approval{color:#8a5a00}.rejected,.denied,.expired,.unverified{color:#a11}
.withdrawn{color:#777}
code{font-size:.85em}
"""


def render(entries: list[dict[str, Any]], title: str, generated_at: str) -> str:
    """The page for the same `entries` that `dcat.catalog_jsonld` takes."""
    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p>Generated {escape(generated_at)}. Every version is immutable and identified by "
        "its content hash; a market is listed as available only with its legal basis, and only "
        "when the authenticated audit trail records it (otherwise: unverified).</p>",
    ]
    for entry in entries:
        body.append(_product(entry))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _product(entry: dict[str, Any]) -> str:
    p = entry["product"]
    rows = "".join(_version_row(v) for v in entry["versions"])
    return (
        f'<section class="product" id="{escape(p["id"])}"><h2>{escape(p["name"])}</h2>'
        f"<p><code>{escape(p['id'])}</code> from <b>{escape(p['provider'])}</b> "
        f"(dataset <code>{escape(p['dataset'])}</code>)</p>"
        "<table><tr><th>version</th><th>status</th><th>rows</th><th>quality</th>"
        "<th>privacy</th><th>markets</th><th>approvals</th><th>content hash</th></tr>"
        f"{rows}</table></section>"
    )


def _version_row(item: dict[str, Any]) -> str:
    r, m = item["record"], item.get("manifest") or {}
    markets = "<br>".join(
        f'<span class="{escape(a["status"])}">{escape(a["market"])}: {escape(a["status"])}</span>'
        for a in r.get("availability", [])
    )
    approvals = (
        "<br>".join(
            f"{escape(a['market'])}: {escape(a['decision'])} by {escape(a['approver'])}"
            f" ({escape(a.get('reference') or '')})"
            for a in r.get("approvals", [])
        )
        or "none"
    )
    cells = [
        f"<b>{escape(r['version'])}</b>",
        f'<span class="{escape(r["status"])}">{escape(r["status"])}</span>',
        str(r.get("row_count", "")),
        _quality(r, m),
        _privacy(m),
        markets or "none",
        approvals,
        f"<code>{escape(r['content_hash'][:16])}</code>",
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _quality(record: dict[str, Any], manifest: dict[str, Any]) -> str:
    scores = record.get("quality_scores") or {}
    if scores:
        return "<br>".join(f"{escape(k)} {v:.2f}" for k, v in scores.items() if v is not None)
    quality = manifest.get("quality") or {}
    return escape(str(quality.get("summary") or ("passed" if quality.get("success") else "")))


def _privacy(manifest: dict[str, Any]) -> str:
    privacy = manifest.get("privacy") or {}
    personal = manifest.get("personal_data") or {}
    parts = []
    if privacy.get("model"):
        parts.append(
            f"{escape(str(privacy['model']))} k={escape(str(privacy.get('k')))}, "
            f"{escape(str(privacy.get('classes')))} classes, smallest "
            f"{escape(str(privacy.get('smallest_class')))}"
        )
    remaining = personal.get("remaining") or {}
    parts.append(
        "personal data: "
        + (", ".join(f"{escape(c)} ({escape(k)})" for c, k in remaining.items()) or "none")
    )
    return "<br>".join(parts)
