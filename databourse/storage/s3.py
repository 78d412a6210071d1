"""S3Store: the ObjectStore on an S3 bucket and prefix (AWS or any S3-compatible endpoint).

If-absent writes are conditional requests (`If-None-Match: *`), so the existence check and the write
are one atomic step on the server: S3 answers 412 and we raise ObjectExists. Large files go through
the boto3 transfer manager (multipart); the transfer manager has no `IfNoneMatch` argument, so
if-absent transfers use a second client that adds the header to every PutObject, CopyObject and
CompleteMultipartUpload it sends (verified on moto 5.2.5 and LocalStack 4.13.1: both honour it on
PutObject and on CompleteMultipartUpload, which is where a multipart upload becomes visible).
Retries (throttling, 5xx) are botocore's "standard" mode, 9 attempts in all (`storage.s3_client`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from databourse.errors import ObjectExists, ObjectNotFound, StorageError
from databourse.storage.store import (
    ObjectInfo,
    ObjectStore,
    check_source_file,
    replacing_file,
    s3_client,
    validate_key,
    validate_prefix,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
# Bad or insufficient credentials; "403" is a HEAD answer, which has no body to name the cause.
_REFUSED = {
    "AccessDenied",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidToken",
    "ExpiredToken",
    "403",
}
_CONDITIONAL_WRITES = ("PutObject", "CopyObject", "CompleteMultipartUpload")


def _require_absent(params: dict[str, Any], **_: Any) -> None:
    """botocore hook: make the request conditional on the key not existing."""
    params["IfNoneMatch"] = "*"


class _S3Reader(io.RawIOBase):
    """A raw reader over a GetObject body that turns botocore read errors into StorageError."""

    def __init__(self, body: Any, store: S3Store, key: str) -> None:
        super().__init__()
        self._body = body
        self._store = store
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with self._store._errors(self._key, "read"):
            data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3Store(ObjectStore):
    """Objects under s3://bucket/prefix/; thread-safe (boto3 clients are)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        multipart_threshold: int = 8 * MiB,
        multipart_chunksize: int = 8 * MiB,
        max_concurrency: int = 8,
        copy_threshold: int = 5 * 1024 * MiB,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            validate_key(self.prefix)
        self.root_uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._init_args: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region": region,
            "multipart_threshold": multipart_threshold,
            "multipart_chunksize": multipart_chunksize,
            "max_concurrency": max_concurrency,
            "copy_threshold": copy_threshold,
        }
        self._client: S3Client = s3_client(endpoint_url, region)
        self._absent_client: S3Client = s3_client(endpoint_url, region)
        for operation in _CONDITIONAL_WRITES:
            self._absent_client.meta.events.register(
                f"before-parameter-build.s3.{operation}", _require_absent
            )
        # "classic": the CRT transfer client would bypass the client hooks above.
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
            preferred_transfer_client="classic",
        )
        # One CopyObject request handles up to 5 GiB; above that, multipart copy in 512 MiB parts.
        self.copy_config = TransferConfig(
            multipart_threshold=copy_threshold,
            multipart_chunksize=min(copy_threshold, 512 * MiB),
            max_concurrency=max_concurrency,
            preferred_transfer_client="classic",
        )
        self._bucket_seen = False

    def __repr__(self) -> str:
        return f"S3Store({self.root_uri!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # boto3 clients do not pickle; rebuild them on the other side (Dask workers, results).
        return (partial(S3Store, **self._init_args), (self.bucket, self.prefix))

    def _full(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _writer(self, if_absent: bool) -> S3Client:
        return self._absent_client if if_absent else self._client

    def _bucket_exists(self) -> bool:
        """Tell a missing bucket from a missing key after a bare 404 (HEAD has no error body)."""
        if self._bucket_seen:
            return True
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in {"404", "NoSuchBucket", "NotFound"}:
                return False
        except BotoCoreError:
            pass
        self._bucket_seen = True
        return True

    def _raise(self, exc: ClientError, key: str, op: str, writing: bool) -> NoReturn:
        """Re-raise a ClientError as StorageError / ObjectNotFound / ObjectExists."""
        code = str(exc.response.get("Error", {}).get("Code") or "Unknown")
        context = {"key": key, "bucket": self.bucket, "code": code, "operation": op}
        if writing and code in {"PreconditionFailed", "412"}:
            raise ObjectExists(f"object {key!r} already exists in {self.root_uri}", **context)
        if code in _NOT_FOUND and (code == "NoSuchKey" or self._bucket_exists()):
            raise ObjectNotFound(f"no object {key!r} in {self.root_uri}", **context)
        if code in _NOT_FOUND or code == "NoSuchBucket":
            context["code"] = "NoSuchBucket"
            raise StorageError(
                f"bucket {self.bucket!r} does not exist (S3 {op} of {key!r})", **context
            )
        if code in _REFUSED:
            raise StorageError(
                f"S3 refused the {op} of {key!r} in {self.root_uri} ({code}): check the "
                f"credentials and their permissions on bucket {self.bucket!r}",
                **context,
            )
        raise StorageError(f"S3 {op} of {key!r} in {self.root_uri} failed: {code}", **context)

    @contextmanager
    def _errors(self, key: str, op: str, *, writing: bool = False) -> Iterator[None]:
        """Translate every boto3/botocore failure inside the block; raw ClientErrors never leak."""
        try:
            yield
        except ClientError as exc:
            self._raise(exc, key, op, writing)
        except Boto3Error as exc:
            cause = exc.__context__  # upload_file wraps the ClientError without chaining it
            if isinstance(cause, ClientError):
                self._raise(cause, key, op, writing)
            raise StorageError(
                f"S3 {op} of {key!r} failed: {type(exc).__name__}",
                key=key,
                bucket=self.bucket,
                code=type(exc).__name__,
                operation=op,
            ) from exc
        except BotoCoreError as exc:
            raise StorageError(
                f"S3 {op} of {key!r} failed: {exc}",
                key=key,
                bucket=self.bucket,
                code=type(exc).__name__,
                operation=op,
            ) from exc

    def put_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> ObjectInfo:
        """PutObject (conditional with `if_absent`: ObjectExists if the key is taken)."""
        full = self._full(key)
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        # A retried conditional put whose first attempt landed reports ObjectExists: with
        # content-addressed keys callers treat that as "already there", which it is.
        with self._errors(key, "put", writing=True):
            response = self._writer(if_absent).put_object(
                Bucket=self.bucket, Key=full, Body=data, ContentMD5=md5
            )
        logger.debug("put %s (%d bytes) to %s", key, len(data), self.root_uri)
        return ObjectInfo(key=key, size=len(data), etag=_etag(response.get("ETag")))

    def put_file(self, key: str, path: Path, *, if_absent: bool = False) -> ObjectInfo:
        """Upload a local file, multipart above the threshold; `if_absent` as put_bytes."""
        full = self._full(key)
        check_source_file(key, path)
        # Cheap early refusal; the conditional PutObject/CompleteMultipartUpload is the real check.
        if if_absent and self.head(key) is not None:
            raise ObjectExists(f"object {key!r} already exists in {self.root_uri}", key=key)
        with self._errors(key, "upload", writing=True):
            self._writer(if_absent).upload_file(
                str(path), self.bucket, full, Config=self.transfer_config
            )
        logger.debug("uploaded %s to %s", key, self.root_uri)
        return self._written(key)

    def _written(self, key: str) -> ObjectInfo:
        info = self.head(key)
        if info is None:
            raise StorageError(f"object {key!r} vanished right after it was written", key=key)
        return info

    def get_bytes(self, key: str) -> bytes:
        """The whole object in memory; ObjectNotFound if missing."""
        with self.open(key) as reader:
            return reader.read()

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """`length` bytes of the object from byte `start` (fewer at its end): one ranged GET."""
        if length <= 0:
            return b""
        full = self._full(key)
        with self._errors(key, "get"):
            response = self._client.get_object(
                Bucket=self.bucket, Key=full, Range=f"bytes={start}-{start + length - 1}"
            )
            return bytes(response["Body"].read())

    def download(self, key: str, path: Path) -> None:
        """Stream the object to a local file through the transfer manager, atomically."""
        full = self._full(key)
        with replacing_file(Path(path)) as tmp, self._errors(key, "download"):
            self._client.download_file(self.bucket, full, str(tmp), Config=self.transfer_config)

    def open(self, key: str) -> BinaryIO:
        """A buffered streaming reader over GetObject; close it or use it as a context manager."""
        full = self._full(key)
        with self._errors(key, "get"):
            response = self._client.get_object(Bucket=self.bucket, Key=full)
        return io.BufferedReader(_S3Reader(response["Body"], self, key), buffer_size=MiB)

    def head(self, key: str) -> ObjectInfo | None:
        """HeadObject; None if the key is missing, StorageError if the bucket is."""
        full = self._full(key)
        try:
            with self._errors(key, "head"):
                response = self._client.head_object(Bucket=self.bucket, Key=full)
        except ObjectNotFound:
            return None
        return ObjectInfo(
            key=key,
            size=response["ContentLength"],
            etag=_etag(response["ETag"]),
            modified=response.get("LastModified"),
        )

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """ListObjectsV2 over every page; S3 already returns keys in sorted (UTF-8) order."""
        validate_prefix(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        return self._pages(full, prefix)

    def _pages(self, full: str, prefix: str) -> Iterator[ObjectInfo]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors(prefix, "list"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        key=item["Key"][strip:],
                        size=item["Size"],
                        etag=_etag(item.get("ETag")),
                        modified=item.get("LastModified"),
                    )

    def copy(self, src: str, dst: str, *, if_absent: bool = False) -> ObjectInfo:
        """Server-side copy (multipart above `copy_threshold`); `if_absent` as put_bytes."""
        source = {"Bucket": self.bucket, "Key": self._full(src)}
        full = self._full(dst)
        if self.head(src) is None:
            raise ObjectNotFound(f"no object {src!r} in {self.root_uri}", key=src)
        if if_absent and self.head(dst) is not None:
            # AWS honours If-None-Match on CopyObject, but moto 5.2.5 and LocalStack 4.13.1 ignore
            # it; on such servers a writer racing between this check and the copy is overwritten.
            raise ObjectExists(f"object {dst!r} already exists in {self.root_uri}", key=dst)
        with self._errors(dst, "copy", writing=True):
            self._writer(if_absent).copy(
                source,  # type: ignore[arg-type]
                self.bucket,
                full,
                Config=self.copy_config,
            )
        return self._written(dst)

    def delete(self, key: str) -> None:
        """DeleteObject; deleting a missing key is not an error."""
        full = self._full(key)
        with self._errors(key, "delete"):
            self._client.delete_object(Bucket=self.bucket, Key=full)

    def uri(self, key: str) -> str:
        """s3://bucket/prefix/key."""
        return f"s3://{self.bucket}/{self._full(key)}"

    def local_path(self, key: str) -> Path | None:
        """Always None: S3 objects have no local file."""
        validate_key(key)
        return None

    def access_url(self, key: str, expires_seconds: int) -> str:
        """A presigned GET URL (SigV4 allows at most 7 days)."""
        validate_key(key)
        seconds = max(1, min(expires_seconds, 7 * 24 * 3600))
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._full(key)}, ExpiresIn=seconds
        )
        return url


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else None
