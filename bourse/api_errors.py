"""What the CLI says when the Prefect API refuses a call no command caught: one line, no traceback.

A 404 names what the API does not hold (`no flow run <id>`), a 401 or 403 says the API refused
the auth string (never the string itself), any other status names the call and its status.
"""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

# /api/<collection>/<id>: what a 404 on such a path is about
_NOUN = {
    "flow_runs": "flow run",
    "flows": "flow",
    "deployments": "deployment",
    "task_runs": "task run",
    "block_documents": "block document",
    "work_pools": "work pool",
}


def api_error_line(exc: BaseException) -> str | None:
    """The error line for a Prefect API refusal (None: `exc` is not one)."""
    prefect_exceptions = sys.modules.get("prefect.exceptions")  # not imported: not Prefect's
    httpx = sys.modules.get("httpx")
    if prefect_exceptions is not None and isinstance(exc, prefect_exceptions.ObjectNotFound):
        http = getattr(exc, "http_exc", None)
        request = getattr(http, "request", None)
        return f"the Prefect API has no {_what(str(request.url)) if request else 'such object'}"
    if httpx is None or not isinstance(exc, httpx.HTTPStatusError):
        return None
    status = exc.response.status_code
    if status in (401, 403):
        return (
            f"the Prefect API refused the auth string ({status}): set PREFECT_API_AUTH_STRING to "
            "the server's (PREFECT_SERVER_API_AUTH_STRING); for the managed server, the key file "
            "or DATABOURSE_PREFECT_API_KEY"
        )
    if status == 404:
        return f"the Prefect API has no {_what(str(exc.request.url))}"
    request = exc.request
    return f"the Prefect API answered {status} to {request.method} {_path(str(request.url))}"


def _what(url: str) -> str:
    """`flow run <id>` for .../flow_runs/<id>[/...], else the path."""
    parts = _path(url).strip("/").split("/")
    if "api" in parts:
        parts = parts[parts.index("api") + 1 :]
    if len(parts) >= 2 and parts[0] in _NOUN:
        return f"{_NOUN[parts[0]]} {parts[1]}"
    return _path(url)


def _path(url: str) -> str:
    return urlsplit(url).path
