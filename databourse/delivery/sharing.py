"""Delta Sharing for buyers: a grant is a recipient whose share holds exactly one version.

Pure protocol logic, no I/O but the profile file: bearer tokens (random, stored only as their
sha256), the share/schema/table names of a grant, the profile file a buyer loads, the NDJSON
lines of the REST protocol (protocol, metaData, file; parquet response format), the
`delta-sharing-capabilities` header, and the HMAC-signed, expiring URLs the exchange serves
files of the embedded store under. Reasons given to a buyer name their own grant only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from databourse.errors import AccessRefused, CatalogError

__all__ = [
    "FILE_URL_SECONDS",
    "AccessRefused",
    "SharedTable",
    "file_line",
    "file_signature",
    "metadata_line",
    "new_token",
    "profile_json",
    "protocol_line",
    "response_format",
    "signature_problem",
    "token_sha256",
    "write_profile",
]

TOKEN_BYTES = 32  # secrets.token_urlsafe: 256 bits, 43 characters
FILE_URL_SECONDS = 15 * 60  # a file URL never lives longer than this (nor past the grant)
SHARE_CREDENTIALS_VERSION = 1
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43,128}$")
_SIGNATURE = re.compile(r"^[0-9A-Fa-f]{64}$")  # compare_digest takes ASCII text only
_PRIMITIVE = {
    "bool": "boolean",
    "int8": "byte",
    "int16": "short",
    "int32": "integer",
    "int64": "long",
    "uint8": "short",
    "uint16": "integer",
    "uint32": "long",
    "halffloat": "float",
    "float": "float",
    "double": "double",
    "string": "string",
    "large_string": "string",
    "string_view": "string",
    "binary": "binary",
    "large_binary": "binary",
    "date32[day]": "date",
    "date64[ms]": "date",
}
_DECIMAL = re.compile(r"^decimal(?:128|256)?\((\d+), ?(\d+)\)$")
_DICTIONARY = re.compile(r"^dictionary<values=([^,]+), indices=")


@dataclass(frozen=True)
class SharedTable:
    """The one table a grant's share holds: share `grant-<id>`, schema the product, table vX_Y_Z."""

    grant_id: int
    product: str
    version: str

    @property
    def share(self) -> str:
        return f"grant-{self.grant_id}"

    @property
    def schema(self) -> str:
        return self.product

    @property
    def table(self) -> str:
        # The client splits "<profile>#share.schema.table" on dots: none in the table's name.
        return "v" + self.version.replace(".", "_")

    def table_json(self) -> dict[str, str]:
        """The table as the list-tables endpoints name it."""
        return {
            "name": self.table,
            "schema": self.schema,
            "share": self.share,
            "shareId": self.share,
            "id": f"{self.share}.{self.schema}.{self.table}",
        }


def new_token() -> str:
    """A fresh bearer token (urlsafe base64 of 32 random bytes)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_sha256(token: str) -> str:
    """The only form a token is stored in: sha256 hex of its text."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header; None when absent or malformed."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN.match(token):
        return None
    return token


def profile_json(endpoint: str, token: str, expires_at: dt.datetime) -> dict[str, Any]:
    """The Delta Sharing profile a buyer loads (shareCredentialsVersion 1)."""
    if not re.match(r"^https?://[^\s/]+(/\S*)?$", endpoint):
        raise CatalogError(
            f"exchange endpoint {endpoint!r} is not an http(s) URL", endpoint=endpoint
        )
    moment = expires_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {
        "shareCredentialsVersion": SHARE_CREDENTIALS_VERSION,
        "endpoint": endpoint.rstrip("/"),
        "bearerToken": token,
        "expirationTime": moment,
    }


def check_profile_path(path: Path) -> Path:
    """The profile's path if a file can be written there (CatalogError naming it otherwise)."""
    path = Path(path)
    if path.is_dir() or not path.parent.is_dir():
        raise CatalogError(f"profile {path}: give a file in an existing folder", path=str(path))
    return path


def write_profile(path: Path, profile: dict[str, Any]) -> None:
    """Write the profile atomically with mode 0600 (a temp file beside it, then a rename)."""
    path = check_profile_path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(profile, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def response_format(capabilities: str | None) -> str:
    """The response format to answer a `delta-sharing-capabilities` header with: "parquet".

    No header, or one that lists parquet, is answered in parquet. A request for delta only
    must be answered in delta or refused (the spec): AccessRefused is not right there, so
    CatalogError is raised and the service answers 400.
    """
    formats = ["parquet"]
    for part in (capabilities or "").split(";"):
        key, _, values = part.partition("=")
        if key.strip().lower() == "responseformat":
            formats = [v.strip().lower() for v in values.split(",") if v.strip()]
    if "parquet" not in formats:
        raise CatalogError(
            "this server answers in responseformat=parquet only", formats=",".join(formats)
        )
    return "parquet"


def delta_type(column: str, arrow_type: str) -> Any:
    """The Delta (Spark JSON schema) type of an Arrow type name, as the manifest records it."""
    if arrow_type in _PRIMITIVE:
        return _PRIMITIVE[arrow_type]
    if arrow_type.startswith("timestamp["):
        return "timestamp"
    if m := _DECIMAL.match(arrow_type):
        return f"decimal({m.group(1)},{m.group(2)})"
    if m := _DICTIONARY.match(arrow_type):
        return delta_type(column, m.group(1))
    raise CatalogError(
        f"column {column!r} has Arrow type {arrow_type!r}, which has no Delta Sharing type",
        column=column,
    )


def schema_string(schema: list[dict[str, Any]]) -> str:
    """The table's schemaString: a Spark struct of the version's columns, in order."""
    fields = [
        {
            "name": c["name"],
            "type": delta_type(c["name"], c["type"]),
            "nullable": True,
            "metadata": {},
        }
        for c in schema
    ]
    return json.dumps({"type": "struct", "fields": fields}, separators=(",", ":"))


def partition_values(path: str) -> dict[str, str | None]:
    """Hive folders of a file's path (`col=value/part-0.parquet`) as partition values."""
    values: dict[str, str | None] = {}
    for segment in path.split("/")[:-1]:
        name, eq, value = segment.partition("=")
        if eq:
            values[name] = None if value == "__HIVE_DEFAULT_PARTITION__" else unquote(value)
    return values


def protocol_line() -> str:
    """The NDJSON protocol line of a parquet-format response."""
    return json.dumps({"protocol": {"minReaderVersion": 1}}) + "\n"


def metadata_line(table: SharedTable, manifest: dict[str, Any]) -> str:
    """The NDJSON metaData line: id (the content hash), schema, partition columns, size."""
    files = manifest["files"]
    names = {c["name"] for c in manifest["schema"]}
    partitions = sorted({k for f in files for k in partition_values(f["path"])} & names)
    meta = {
        "id": manifest["content_hash"],
        "name": table.table,
        "description": f"{table.product} {table.version}",
        "format": {"provider": "parquet"},
        "schemaString": schema_string(manifest["schema"]),
        "partitionColumns": partitions,
        "configuration": {},
        "size": sum(int(f["bytes"]) for f in files),
        "numFiles": len(files),
    }
    return json.dumps({"metaData": meta}, separators=(",", ":")) + "\n"


def file_line(entry: dict[str, Any], url: str, expires_at: dt.datetime) -> str:
    """The NDJSON file line of one of the version's files: its sha256 is its stable id."""
    body = {
        "url": url,
        "id": entry["sha256"],
        "partitionValues": partition_values(entry["path"]),
        "size": int(entry["bytes"]),
        "expirationTimestamp": int(expires_at.timestamp() * 1000),
    }
    return json.dumps({"file": body}, separators=(",", ":")) + "\n"


def url_expiry(grant_expires: dt.datetime, now: dt.datetime) -> dt.datetime:
    """When a file URL handed out now stops working: FILE_URL_SECONDS, never past the grant."""
    return min(grant_expires, now + dt.timedelta(seconds=FILE_URL_SECONDS))


def file_signature(key: bytes, grant_id: int, index: int, query: int, expires: int) -> str:
    """HMAC-SHA256 over what a signed file URL names: grant, file index, query and expiry."""
    message = f"databourse-file-v1:{grant_id}:{index}:{query}:{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signature_problem(
    key: bytes, grant_id: int, index: int, query: int, expires: int, sig: str, now: dt.datetime
) -> str | None:
    """Why a signed file URL is refused (tampered, expired), or None when it holds."""
    wanted = file_signature(key, grant_id, index, query, expires)
    if not _SIGNATURE.match(sig) or not hmac.compare_digest(wanted, sig.lower()):
        return "the link's signature does not match: ask the exchange for a new query"
    if expires <= int(now.timestamp()):
        return "the link has expired: query the table again for new links"
    return None


def url_signing_key(audit_key: bytes) -> bytes:
    """The file URLs' HMAC key, derived from the audit key (one secret, every replica agrees)."""
    return hmac.new(audit_key, b"databourse exchange file urls v1", hashlib.sha256).digest()
