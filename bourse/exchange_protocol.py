"""The Delta Sharing protocol's wire at the exchange: its paths, error bodies, headers, queries."""

from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import JSONResponse

from databourse.delivery import sharing
from databourse.errors import AccessRefused, DataBourseError

PREFIX = "/delta-sharing"
TABLE_VERSION = "0"  # one immutable version per table: the Delta table never changes
MAX_BODY = 64 * 1024  # a query's JSON body
NDJSON = "application/x-ndjson; charset=utf-8"


def error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    """The protocol's error body."""
    return JSONResponse({"errorCode": code, "message": message}, status, headers=headers)


def refused(exc: AccessRefused) -> JSONResponse:
    code = "UNAUTHENTICATED" if exc.status == 401 else "PERMISSION_DENIED"
    return error(int(exc.status), code, str(exc))


def asked_format(request: Request) -> str | None:
    try:
        return sharing.response_format(request.headers.get("delta-sharing-capabilities"))
    except DataBourseError:
        return None


def protocol_headers(fmt: str) -> dict[str, str]:
    return {
        "delta-table-version": TABLE_VERSION,
        "delta-sharing-capabilities": f"responseformat={fmt}",
    }


async def query_problem(request: Request) -> str | None:
    """Why a query's body is refused: too large, not JSON, or asks for what is not served."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        return f"the query body is larger than {MAX_BODY} bytes"
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return f"the query body is larger than {MAX_BODY} bytes"
    try:
        asked = json.loads(body or b"{}")
    except ValueError:
        return "the query body is not JSON"
    except RecursionError:
        return "the query body is nested too deeply"
    if not isinstance(asked, dict):
        return "the query body is not a JSON object"
    if asked.get("version") not in (None, 0) or any(
        asked.get(k) is not None for k in ("timestamp", "startingVersion", "endingVersion")
    ):
        return "this table has one version, 0: no time travel or change feed"
    return None
