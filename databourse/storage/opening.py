"""Opening a store from its root: an `s3://bucket/prefix` URI, a `file://` URI or a folder."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from databourse.storage.local import LocalStore
from databourse.storage.store import ObjectStore, parse_s3_uri


def open_store(
    root: str, *, endpoint_url: str | None = None, region: str = "us-east-1"
) -> ObjectStore:
    """S3Store for 's3://bucket/prefix', else a LocalStore on that folder (created if missing)."""
    if root.startswith("s3://"):
        from databourse.storage.s3 import S3Store  # boto3 is imported only for an S3 root

        bucket, prefix = parse_s3_uri(root)
        return S3Store(bucket, prefix, endpoint_url=endpoint_url, region=region)
    if root.startswith("file://"):
        return LocalStore(Path(url2pathname(urlparse(root).path)))
    return LocalStore(Path(root))
