"""The exchange's file serving: signed links for a query, each fetch checked and streamed.

A query's file lines link to this service (never a presigned store URL, never a machine path),
HMAC-signed and valid for at most FILE_URL_SECONDS, never past the grant. Each fetch checks the
signature and the grant again, then streams the file, or one byte range of it, from its private
copy opened once (exchange_cache); what was read is audited in batches (Exchange.note_read).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from bourse.exchange_grants import Exchange
from bourse.exchange_protocol import PREFIX, error
from databourse.catalog.shares import GrantStanding
from databourse.delivery import sharing

_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")  # 19 digits: any file size, never a bignum


def add_files(app: FastAPI, ex: Exchange) -> None:
    """The route of the signed file links (GET and HEAD, byte ranges)."""

    @app.api_route(PREFIX + "/files/{grant_id}/{index}.parquet", methods=["GET", "HEAD"])
    def file(request: Request, grant_id: int, index: int, q: int, exp: int, sig: str) -> Response:
        problem = sharing.signature_problem(ex.url_key, grant_id, index, q, exp, sig, ex.now())
        if problem:
            return error(403, "PERMISSION_DENIED", problem)
        standing = ex.catalog.share_standing(grant_id)
        manifest = ex.deliverable(standing)
        if not 0 <= index < len(manifest["files"]):
            return error(404, "NOT_FOUND", "no such file in this grant's table")
        entry = manifest["files"][index]
        src = ex.verified_file(standing, entry)  # opened once: never reopened by name
        try:
            return _send(ex, request, standing, src, int(entry["bytes"]), q)
        except BaseException:
            src.close()
            raise


def file_lines(
    ex: Exchange, standing: GrantStanding, manifest: dict[str, Any], query: int, base: str
) -> list[str]:
    """The file lines: this service's signed links on every store (never a presigned URL)."""
    until = sharing.url_expiry(standing.expires_at, ex.now())
    exp = int(until.timestamp())
    lines = []
    for index, entry in enumerate(manifest["files"]):
        sig = sharing.file_signature(ex.url_key, standing.grant_id, index, query, exp)
        url = f"{base}{PREFIX}/files/{standing.grant_id}/{index}.parquet"
        url += f"?q={query}&exp={exp}&sig={sig}"
        lines.append(sharing.file_line(entry, url, until))
    return lines


def _send(
    ex: Exchange, request: Request, standing: GrantStanding, src: IO[bytes], size: int, query: int
) -> Response:
    """The file or one byte range of it from its open private copy (Parquet footers first)."""
    start, end, status = 0, size - 1, 200
    wanted = request.headers.get("range")
    if wanted:
        m = _RANGE.match(wanted.strip())
        if m is None or (not m.group(1) and not m.group(2)):
            src.close()
            return error(416, "INVALID_PARAMETER_VALUE", "one byte range: bytes=START-END")
        if m.group(1):
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
        else:
            start = max(0, size - int(m.group(2)))
        if start > end or start >= size:
            src.close()
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        status = 206
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)}
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD":
        src.close()
        return Response(status_code=status, headers=headers)
    ex.note_read(standing, query, end - start + 1)
    return StreamingResponse(_chunks(src, start, end), status, headers, "application/octet-stream")


def _chunks(src: IO[bytes], start: int, end: int) -> Iterator[bytes]:
    with src:
        src.seek(start)
        remaining = end - start + 1
        while remaining > 0 and (block := src.read(min(remaining, 1 << 20))):
            remaining -= len(block)
            yield block
