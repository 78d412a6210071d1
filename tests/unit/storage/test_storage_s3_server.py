"""S3Store against the most faithful S3 server available here: LocalStack, else moto (s3_server).

Conditional writes, a 20 MiB multipart round trip, listing past one 1000-key page, a missing
bucket, wrong credentials (moto with IAM checks on, as LocalStack's free edition checks none),
presigned URLs and retries of throttling answers.
"""

from __future__ import annotations

import hashlib
import pickle
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError
from s3_server import (
    IamKeys,
    S3Server,
    client,
    enforce_iam,
    make_bucket,
    moto_server,
    report_server,
    s3_server,
    use_dummy_aws_env,
)

from databourse.errors import ObjectExists, ObjectNotFound, StorageError
from databourse.storage.s3 import S3Store

MiB = 1024 * 1024
BIG = 20 * MiB + 123  # three parts with the store's default 8 MiB threshold and part size
PREFIX = "root/prefix"


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[S3Server]:
    with s3_server() as running:
        report_server(request.config, running)
        yield running


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    use_dummy_aws_env(monkeypatch)


@pytest.fixture
def store(server: S3Server, aws_env: None) -> S3Store:
    bucket = f"test-{uuid4().hex[:16]}"
    make_bucket(server.endpoint, bucket)
    return S3Store(bucket, PREFIX, endpoint_url=server.endpoint)


def write_random(path: Path, size: int) -> str:
    """Write `size` random bytes a MiB at a time; return their sha256."""
    rng, digest = random.Random(size), hashlib.sha256()
    with path.open("wb") as out:
        for offset in range(0, size, MiB):
            chunk = rng.randbytes(min(MiB, size - offset))
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- the server -------------------------------------------------------------------------------


def test_server_enforces_the_rules_the_store_relies_on(server: S3Server) -> None:
    raw = client(server.endpoint)
    bucket = f"rules-{uuid4().hex[:12]}"
    raw.create_bucket(Bucket=bucket)
    raw.put_object(Bucket=bucket, Key="k", Body=b"1")
    with pytest.raises(ClientError) as refused:
        raw.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    upload = {"Bucket": bucket, "Key": "small-parts"}
    upload["UploadId"] = raw.create_multipart_upload(**upload)["UploadId"]
    parts = [
        {"PartNumber": n, "ETag": raw.upload_part(**upload, PartNumber=n, Body=b"x")["ETag"]}
        for n in (1, 2)
    ]
    with pytest.raises(ClientError) as too_small:  # every part but the last needs 5 MiB
        raw.complete_multipart_upload(**upload, MultipartUpload={"Parts": parts})
    assert too_small.value.response["Error"]["Code"] == "EntityTooSmall"
    if server.fallback_reason:
        pytest.skip(f"the S3 server tests ran on moto: {server.fallback_reason}")
    assert server.kind == "localstack"


# --- conditional writes -----------------------------------------------------------------------


def test_put_if_absent_is_refused_by_the_server(store: S3Store) -> None:
    store.put_bytes("k", b"first", if_absent=True)
    with pytest.raises(ObjectExists) as caught:
        store.put_bytes("k", b"second", if_absent=True)
    assert caught.value.context["code"] == "PreconditionFailed"
    assert caught.value.context["bucket"] == store.bucket
    assert store.get_bytes("k") == b"first"

    def attempt(i: int) -> bool:
        try:
            store.put_bytes("race", str(i).encode(), if_absent=True)
            return True
        except ObjectExists:
            return False

    with ThreadPoolExecutor(8) as pool:
        wins = [i for i, won in enumerate(pool.map(attempt, range(16))) if won]
    assert len(wins) == 1 and store.get_bytes("race") == str(wins[0]).encode()


def test_multipart_if_absent_is_refused_at_completion(
    store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer wins after our existence check: CompleteMultipartUpload answers 412."""
    store.put_bytes("taken", b"winner")
    source = tmp_path / "big.bin"
    write_random(source, BIG)
    monkeypatch.setattr(store, "head", lambda key: None)  # the early check saw nothing
    with pytest.raises(ObjectExists) as caught:
        store.put_file("taken", source, if_absent=True)
    assert caught.value.context["code"] == "PreconditionFailed"
    assert store.get_bytes("taken") == b"winner"
    uploads = client(store._init_args["endpoint_url"]).list_multipart_uploads(Bucket=store.bucket)
    assert not uploads.get("Uploads")  # the refused upload was aborted, no parts left behind


def test_copy_if_absent(store: S3Store) -> None:
    store.put_bytes("src", b"payload")
    store.put_bytes("dst", b"other")
    with pytest.raises(ObjectExists):
        store.copy("src", "dst", if_absent=True)
    assert store.get_bytes("dst") == b"other"
    sent: list[bytes] = []  # botocore hands over header values encoded
    store._absent_client.meta.events.register(
        "before-send.s3.CopyObject",
        lambda request, **_: sent.append(request.headers["If-None-Match"]),
    )
    # Both LocalStack 4.13.1 and moto ignore If-None-Match on CopyObject; AWS honours it.
    assert store.copy("src", "fresh", if_absent=True).size == 7
    assert sent == [b"*"]
    assert store.get_bytes("fresh") == b"payload"


# --- multipart and listing --------------------------------------------------------------------


def test_multipart_round_trip_of_20_mib(store: S3Store, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    expected = write_random(source, BIG)
    info = store.put_file("big/data.bin", source)
    assert info.size == BIG and info.etag is not None and info.etag.endswith("-3")
    target = tmp_path / "out.bin"
    store.download("big/data.bin", target)
    assert file_sha(target) == expected
    digest = hashlib.sha256()
    with store.open("big/data.bin") as reader:
        while chunk := reader.read(MiB):
            digest.update(chunk)
    assert digest.hexdigest() == expected
    assert [(i.key, i.size) for i in store.list("big/")] == [("big/data.bin", BIG)]


def test_list_follows_continuation_tokens(store: S3Store) -> None:
    keys = [f"many/{i:05d}" for i in range(1100)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: store.put_bytes(key, b"."), keys))
    outside = client(store._init_args["endpoint_url"])  # beside the store's prefix: not listed
    outside.put_object(Bucket=store.bucket, Key="many/00000", Body=b"")
    pages: list[int] = []
    store._client.meta.events.register(
        "after-call.s3.ListObjectsV2", lambda parsed, **_: pages.append(parsed.get("KeyCount", 0))
    )
    listed = list(store.list("many/"))
    assert [i.key for i in listed] == keys and {i.size for i in listed} == {1}
    assert pages == [1000, 100]  # the second page came from the continuation token
    assert [i.key for i in store.list("many/0109")] == [f"many/0109{d}" for d in range(10)]


# --- error paths ------------------------------------------------------------------------------


def test_missing_bucket_is_a_storage_error_naming_it(
    server: S3Server, aws_env: None, tmp_path: Path
) -> None:
    store = S3Store(f"absent-{uuid4().hex[:12]}", PREFIX, endpoint_url=server.endpoint)
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    small.write_bytes(b"x")
    write_random(big, 9 * MiB)  # above the threshold: CreateMultipartUpload is refused
    calls: dict[str, Any] = {
        "put_bytes": lambda: store.put_bytes("k", b"x"),
        "put_file": lambda: store.put_file("k", small),
        "put_file multipart": lambda: store.put_file("k", big),
        "get_bytes": lambda: store.get_bytes("k"),
        "head": lambda: store.head("k"),
        "list": lambda: list(store.list("")),
        "download": lambda: store.download("k", tmp_path / "out.bin"),
        "copy": lambda: store.copy("k", "k2"),
        "delete": lambda: store.delete("k"),
    }
    for name, call in calls.items():
        with pytest.raises(StorageError) as caught:
            call()
        assert not isinstance(caught.value, ObjectNotFound), name
        assert caught.value.context["code"] == "NoSuchBucket", name
        assert f"bucket {store.bucket!r} does not exist" in str(caught.value), name
    assert not (tmp_path / "out.bin").exists()


def test_missing_key_is_object_not_found(store: S3Store, tmp_path: Path) -> None:
    assert store.head("nope") is None
    with pytest.raises(ObjectNotFound) as caught:
        store.get_bytes("nope")
    assert caught.value.context == {
        "key": "nope",
        "bucket": store.bucket,
        "code": "NoSuchKey",
        "operation": "get",
    }
    with pytest.raises(ObjectNotFound):
        store.download("nope", tmp_path / "x")
    store.delete("nope")  # deleting what is not there is fine


@pytest.fixture(scope="module")
def guarded() -> Iterator[tuple[str, IamKeys]]:
    """A moto server that checks signatures and IAM policies, with s3://guarded/root/prefix/k."""
    with moto_server() as endpoint:
        make_bucket(endpoint, "guarded")
        client(endpoint).put_object(Bucket="guarded", Key=f"{PREFIX}/k", Body=b"kept")
        yield endpoint, enforce_iam(endpoint)


SECRET_MARK = "not-the-secret-e4b1"


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("wrong-secret", "SignatureDoesNotMatch"),
        ("unknown-key", "InvalidAccessKeyId"),
        ("no-permission", "AccessDenied"),
    ],
)
def test_refused_credentials_name_bucket_and_key_not_secret(
    guarded: tuple[str, IamKeys],
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    who: str,
    code: str,
) -> None:
    endpoint, keys = guarded
    key_id, secret = {
        "wrong-secret": (keys.allowed[0], SECRET_MARK),
        "unknown-key": ("AKIAUNKNOWNKEY000000", SECRET_MARK),
        "no-permission": keys.denied,
    }[who]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    store = S3Store("guarded", PREFIX, endpoint_url=endpoint)
    source = tmp_path / "f.bin"
    source.write_bytes(b"y")
    calls = {
        "k": lambda: store.get_bytes("k"),
        "k2": lambda: store.put_bytes("k2", b"y", if_absent=True),
        "k3": lambda: store.put_file("k3", source),
        "k4": lambda: store.head("k4"),  # a 403 must not read as "missing"
        "k5/": lambda: list(store.list("k5/")),
    }
    for name, call in calls.items():
        with pytest.raises(StorageError) as caught:
            call()
        error = caught.value
        assert type(error) is StorageError and error.context["key"] == name, name
        assert error.context["code"] in {code, "403"}, name  # HEAD answers carry no error code
        assert f"{name!r} in s3://guarded/{PREFIX}" in str(error), name
        assert "check the credentials" in str(error), name
        assert secret not in f"{error} {error.context} {pickle.dumps(error)!r}", name


def test_allowed_credentials_pass_the_same_checks(
    guarded: tuple[str, IamKeys], aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, keys = guarded
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys.allowed[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys.allowed[1])
    store = S3Store("guarded", PREFIX, endpoint_url=endpoint)
    assert store.get_bytes("k") == b"kept"
    store.put_bytes("ok", b"1", if_absent=True)
    assert [i.key for i in store.list("")] == ["k", "ok"]


# --- presigned URLs and retries ---------------------------------------------------------------


def test_access_url_is_fetchable(store: S3Store) -> None:
    store.put_bytes("shared/file.csv", b"a,b\n")
    assert fetch(store.access_url("shared/file.csv", 60)) == (200, b"a,b\n")
    assert fetch(store.access_url("shared/missing.csv", 60))[0] == 404


def test_presigned_url_signature_and_expiry_are_checked(server: S3Server, store: S3Store) -> None:
    if server.kind != "localstack":
        pytest.skip("moto does not check presigned URLs")
    store.put_bytes("shared/file.csv", b"a,b\n")
    url = store.access_url("shared/file.csv", 60)
    status, body = fetch(url.replace("shared/file.csv", "shared/other.csv"))
    assert status == 403 and b"SignatureDoesNotMatch" in body
    short = store.access_url("shared/file.csv", 1)
    time.sleep(2.1)
    status, body = fetch(short)
    assert status == 403 and b"Request has expired" in body


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def test_throttling_and_5xx_are_retried(store: S3Store) -> None:
    """Answers 503 SlowDown and 500 before the server sees the request; botocore retries."""
    config: Any = store._client.meta.config
    # botocore counts the first attempt in: 8 retries
    assert config.retries == {"mode": "standard", "total_max_attempts": 9}
    answers = [(503, b"SlowDown"), (500, b"InternalError")]

    def fail_first(request: Any, **_: Any) -> AWSResponse | None:
        if not answers:
            return None  # send it for real
        status, code = answers.pop(0)
        body = b"<Error><Code>" + code + b"</Code><Message>retry</Message></Error>"
        return AWSResponse(request.url, status, HTTPHeaders(), _Body(body))

    events: Any = store._client.meta.events
    events.register("before-send.s3.PutObject", fail_first)
    info = store.put_bytes("retried", b"payload")
    assert info.size == 7 and not answers
    assert store.get_bytes("retried") == b"payload"
