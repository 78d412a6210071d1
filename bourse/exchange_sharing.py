"""The exchange's Delta Sharing REST routes: shares, schemas, tables, version, metadata, query.

A grant's share holds one table, its version; every route checks the grant again (authorized)
and answers only for the grant's own names (own). A query is one `access` audit event and
answers with this service's signed file links (exchange_files).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response

from bourse.exchange_files import file_lines
from bourse.exchange_grants import Exchange, authorized, own
from bourse.exchange_protocol import (
    NDJSON,
    PREFIX,
    TABLE_VERSION,
    asked_format,
    error,
    protocol_headers,
    query_problem,
)
from databourse.delivery import sharing


def add_sharing(app: FastAPI, ex: Exchange) -> None:
    """The protocol's routes under PREFIX (the file links' route is exchange_files')."""

    @app.get(PREFIX + "/shares")
    def list_shares(request: Request) -> dict[str, Any]:
        _, table = authorized(ex, request)
        return {"items": [{"name": table.share, "id": table.share}]}

    @app.get(PREFIX + "/shares/{share}")
    def get_share(request: Request, share: str) -> dict[str, Any]:
        _, table = authorized(ex, request)
        own(table, share)
        return {"share": {"name": table.share, "id": table.share}}

    @app.get(PREFIX + "/shares/{share}/schemas")
    def list_schemas(request: Request, share: str) -> dict[str, Any]:
        _, table = authorized(ex, request)
        own(table, share)
        return {"items": [{"name": table.schema, "share": table.share}]}

    @app.get(PREFIX + "/shares/{share}/schemas/{schema}/tables")
    def list_tables(request: Request, share: str, schema: str) -> dict[str, Any]:
        _, table = authorized(ex, request)
        own(table, share, schema)
        return {"items": [table.table_json()]}

    @app.get(PREFIX + "/shares/{share}/all-tables")
    def all_tables(request: Request, share: str) -> dict[str, Any]:
        _, table = authorized(ex, request)
        own(table, share)
        return {"items": [table.table_json()]}

    tables = PREFIX + "/shares/{share}/schemas/{schema}/tables/{name}"

    @app.api_route(tables + "/version", methods=["GET", "HEAD"])
    def table_version(request: Request, share: str, schema: str, name: str) -> Response:
        standing, table = authorized(ex, request)
        own(table, share, schema, name)
        ex.deliverable(standing)
        return Response(headers={"delta-table-version": TABLE_VERSION})

    @app.get(tables + "/metadata")
    def metadata(request: Request, share: str, schema: str, name: str) -> Response:
        standing, table = authorized(ex, request)
        own(table, share, schema, name)
        fmt = asked_format(request)
        if fmt is None:
            return error(400, "INVALID_PARAMETER_VALUE", "responseformat=parquet only")
        manifest = ex.deliverable(standing)
        body = sharing.protocol_line() + sharing.metadata_line(table, manifest)
        return Response(body, media_type=NDJSON, headers=protocol_headers(fmt))

    @app.post(tables + "/query")
    async def query(request: Request, share: str, schema: str, name: str) -> Response:
        standing, table = authorized(ex, request)
        own(table, share, schema, name)
        fmt = asked_format(request)
        problem = await query_problem(request)
        if fmt is None or problem:
            return error(400, "INVALID_PARAMETER_VALUE", problem or "responseformat=parquet only")
        manifest = ex.deliverable(standing)
        ex.check_files(standing, manifest)
        size = sum(int(f["bytes"]) for f in manifest["files"])
        seq = ex.catalog.record_access(standing, "query", len(manifest["files"]), size)
        base = ex.link_base(request)
        lines = [sharing.protocol_line(), sharing.metadata_line(table, manifest)]
        lines += file_lines(ex, standing, manifest, seq, base)
        return Response("".join(lines), media_type=NDJSON, headers=protocol_headers(fmt))
