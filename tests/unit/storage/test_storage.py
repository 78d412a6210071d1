"""Contract tests of ObjectStore: every behaviour runs on LocalStore and on S3Store (moto)."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from s3_server import client, make_bucket, report_server, s3_server, use_dummy_aws_env

from databourse.errors import ObjectExists, ObjectNotFound, StorageError
from databourse.storage import local as storage_local
from databourse.storage.local import LocalStore
from databourse.storage.opening import open_store
from databourse.storage.s3 import S3Store
from databourse.storage.store import ObjectStore, validate_key

MiB = 1024 * 1024
PART = 5 * MiB  # S3's minimum part size; the S3 store under test uses it as its multipart threshold
S3_PREFIX = "root/prefix"


@pytest.fixture(scope="module")
def s3_endpoint(request: pytest.FixtureRequest) -> Iterator[str]:
    """The most faithful S3-compatible server available (LocalStack, else moto; it says which)."""
    with s3_server() as server:
        report_server(request.config, server)
        yield server.endpoint


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    use_dummy_aws_env(monkeypatch)


def new_s3_store(endpoint: str, *, bucket: str | None = None, create: bool = True) -> S3Store:
    name = bucket or f"test-{uuid4().hex[:16]}"
    if create:
        make_bucket(endpoint, name)
    return S3Store(
        name,
        S3_PREFIX,
        endpoint_url=endpoint,
        multipart_threshold=PART,
        multipart_chunksize=PART,
        copy_threshold=PART,
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, aws_env: None) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    return new_s3_store(request.getfixturevalue("s3_endpoint"))


@pytest.fixture
def s3_store(s3_endpoint: str, aws_env: None) -> S3Store:
    return new_s3_store(s3_endpoint)


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_random(path: Path, size: int, seed: int = 7) -> bytes:
    data = random.Random(seed).randbytes(size)
    path.write_bytes(data)
    return data


# --- round trips ------------------------------------------------------------------------------


def test_put_get_head_round_trip(store: ObjectStore) -> None:
    info = store.put_bytes("raw/p/d/1/data.csv", b"a,b\n1,2\n")
    assert (info.key, info.size) == ("raw/p/d/1/data.csv", 8)
    assert store.get_bytes("raw/p/d/1/data.csv") == b"a,b\n1,2\n"
    head = store.head("raw/p/d/1/data.csv")
    assert head is not None and head.size == 8 and head.key == "raw/p/d/1/data.csv"
    assert store.exists("raw/p/d/1/data.csv")
    assert store.put_bytes("raw/p/d/1/data.csv", b"").size == 0  # plain put overwrites
    assert store.get_bytes("raw/p/d/1/data.csv") == b""


def test_s3_etag_and_prefix(s3_store: S3Store) -> None:
    info = s3_store.put_bytes("a/b", b"hello")
    assert info.etag == hashlib.md5(b"hello", usedforsecurity=False).hexdigest()
    raw = client(s3_store._init_args["endpoint_url"]).list_objects_v2(Bucket=s3_store.bucket)
    assert [item["Key"] for item in raw["Contents"]] == [f"{S3_PREFIX}/a/b"]
    assert s3_store.uri("a/b") == f"s3://{s3_store.bucket}/{S3_PREFIX}/a/b"
    assert s3_store.root_uri == f"s3://{s3_store.bucket}/{S3_PREFIX}"
    assert s3_store.local_path("a/b") is None


def test_local_uri_and_path(local_store: LocalStore) -> None:
    local_store.put_bytes("x/y.txt", b"1")
    path = local_store.local_path("x/y.txt")
    assert path is not None and path.read_bytes() == b"1"
    assert local_store.uri("x/y.txt") == path.as_uri()
    assert local_store.root_uri == local_store.root.as_uri()


def test_random_valid_keys_round_trip(store: ObjectStore) -> None:
    rng = random.Random(1234)
    alphabet = "abcXYZ019-_.@+=~ é中"
    keys = set()
    for _ in range(15):
        segments = ["".join(rng.choices(alphabet, k=rng.randint(1, 8))) for _ in range(3)]
        key = "/".join("s" + segment for segment in segments)  # never '.', '..' or '.tmp'
        keys.add(validate_key(key))
    for key in keys:
        store.put_bytes(key, key.encode())
    assert [info.key for info in store.list("")] == sorted(keys)
    assert all(store.get_bytes(key) == key.encode() for key in keys)


# --- if_absent --------------------------------------------------------------------------------


def test_if_absent_bytes(store: ObjectStore) -> None:
    assert store.put_bytes("k", b"first", if_absent=True).size == 5
    with pytest.raises(ObjectExists) as caught:
        store.put_bytes("k", b"second", if_absent=True)
    assert caught.value.key == "k"
    assert store.get_bytes("k") == b"first"


def test_if_absent_file(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"file-one")
    assert store.put_file("f", source, if_absent=True).size == 8
    source.write_bytes(b"file-two")
    with pytest.raises(ObjectExists):
        store.put_file("f", source, if_absent=True)
    assert store.get_bytes("f") == b"file-one"
    store.put_file("f", source)  # without if_absent it overwrites
    assert store.get_bytes("f") == b"file-two"


def test_put_file_missing_source(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        store.put_file("k", tmp_path / "absent.bin")
    assert type(caught.value) is StorageError and caught.value.key == "k"
    assert not store.exists("k")


def test_if_absent_race_has_one_winner(store: ObjectStore) -> None:
    def attempt(i: int) -> bool:
        try:
            store.put_bytes("race", str(i).encode(), if_absent=True)
            return True
        except ObjectExists:
            return False

    with ThreadPoolExecutor(8) as pool:
        wins = [i for i, won in enumerate(pool.map(attempt, range(16))) if won]
    assert len(wins) == 1
    assert store.get_bytes("race") == str(wins[0]).encode()


@pytest.mark.parametrize("size", [1000, 2 * PART + 123], ids=["put", "multipart"])
def test_s3_if_absent_is_atomic_on_the_server(
    s3_store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """Another writer wins between our existence check and the upload: the server refuses."""
    s3_store.put_bytes("taken", b"winner")
    source = tmp_path / "src.bin"
    write_random(source, size)
    monkeypatch.setattr(s3_store, "head", lambda key: None)  # the check saw nothing
    with pytest.raises(ObjectExists) as caught:
        s3_store.put_file("taken", source, if_absent=True)
    assert caught.value.code in {"PreconditionFailed", "412"}
    assert s3_store.get_bytes("taken") == b"winner"
    uploads = client(s3_store._init_args["endpoint_url"]).list_multipart_uploads(
        Bucket=s3_store.bucket
    )
    assert not uploads.get("Uploads")  # the refused multipart upload was aborted


# --- copy, list, delete -----------------------------------------------------------------------


def test_copy(store: ObjectStore) -> None:
    store.put_bytes("src/a", b"payload")
    info = store.copy("src/a", "dst/a")
    assert (info.key, info.size) == ("dst/a", 7)
    assert store.get_bytes("dst/a") == b"payload"
    store.put_bytes("src/b", b"other")
    with pytest.raises(ObjectExists):
        store.copy("src/b", "dst/a", if_absent=True)
    assert store.get_bytes("dst/a") == b"payload"
    assert store.copy("src/b", "dst/b", if_absent=True).size == 5
    with pytest.raises(ObjectNotFound) as caught:
        store.copy("src/missing", "dst/c")
    assert caught.value.key == "src/missing"
    assert not store.exists("dst/c")


def test_list_with_prefix(store: ObjectStore) -> None:
    sizes = {"a/1": 1, "a/2": 2, "a/b/3": 3, "ab/4": 4, "b/5": 5}
    for key, size in sizes.items():
        store.put_bytes(key, b"x" * size)
    assert [(i.key, i.size) for i in store.list("a/")] == [("a/1", 1), ("a/2", 2), ("a/b/3", 3)]
    assert [i.key for i in store.list("a")] == ["a/1", "a/2", "a/b/3", "ab/4"]
    assert [i.key for i in store.list("a/b")] == ["a/b/3"]
    assert [i.key for i in store.list("")] == sorted(sizes)  # LocalStore hides its .tmp folder
    assert list(store.list("zzz/")) == []
    with pytest.raises(StorageError):
        store.list("../")


def test_delete_is_idempotent(store: ObjectStore) -> None:
    store.put_bytes("staging/x", b"1")
    store.delete("staging/x")
    assert not store.exists("staging/x")
    store.delete("staging/x")
    store.delete("staging/never")


def test_s3_list_paginates(s3_store: S3Store) -> None:
    keys = [f"many/{i:05d}" for i in range(1010)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: s3_store.put_bytes(key, b"."), keys))
    listed = [info.key for info in s3_store.list("many/")]
    assert listed == keys  # more than one 1000-key page, in order


# --- streaming: multipart, download, open -----------------------------------------------------


def test_large_file_multipart_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    data = write_random(source, 4 * PART)  # 20 MiB
    info = store.put_file("big/data.bin", source)
    assert info.size == len(data)
    if isinstance(store, S3Store):
        assert info.etag is not None and info.etag.endswith("-4")  # really 4 parts
    target = tmp_path / "out" / "big.bin"
    store.download("big/data.bin", target)
    assert sha(target.read_bytes()) == sha(data)
    assert sorted(p.name for p in target.parent.iterdir()) == ["big.bin"]  # no temp left
    copied = store.copy("big/data.bin", "big/copy.bin")
    assert copied.size == len(data)
    if isinstance(store, S3Store):
        assert copied.etag is not None and "-" in copied.etag  # multipart copy above threshold
    digest = hashlib.sha256()
    with store.open("big/copy.bin") as reader:
        while chunk := reader.read(MiB):
            digest.update(chunk)
    assert digest.hexdigest() == sha(data)


def test_open_streams(store: ObjectStore) -> None:
    store.put_bytes("s", b"0123456789")
    with store.open("s") as reader:
        assert reader.read(3) == b"012"
        assert reader.read() == b"3456789"
        assert reader.read() == b""
    assert reader.closed


def test_download_replaces_atomically(store: ObjectStore, tmp_path: Path) -> None:
    target = tmp_path / "dl" / "file.txt"
    target.parent.mkdir()
    target.write_bytes(b"old")
    with pytest.raises(ObjectNotFound):
        store.download("missing", target)
    assert target.read_bytes() == b"old"
    assert os.listdir(target.parent) == ["file.txt"]
    store.put_bytes("present", b"new")
    store.download("present", target)
    assert target.read_bytes() == b"new"


# --- errors -----------------------------------------------------------------------------------


def test_missing_key(store: ObjectStore, tmp_path: Path) -> None:
    for call in (
        lambda: store.get_bytes("no/such"),
        lambda: store.open("no/such"),
        lambda: store.download("no/such", tmp_path / "x"),
    ):
        with pytest.raises(ObjectNotFound) as caught:
            call()
        assert caught.value.key == "no/such"
    assert store.head("no/such") is None
    assert not store.exists("no/such")
    store.put_bytes("dir/file", b"1")
    assert store.head("dir") is None  # a "folder" is not an object on either store
    with pytest.raises(ObjectNotFound):
        store.get_bytes("dir")


BAD_KEYS = ["", "/abs", "a/../b", "..", "a/./b", ".", "a//b", "a/", "a\\b", "a\x00b", ".tmp/x"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_rejected_everywhere(store: ObjectStore, key: str, tmp_path: Path) -> None:
    source = tmp_path / "s"
    source.write_bytes(b"1")
    store.put_bytes("good", b"1")
    calls: list[Callable[[], Any]] = [
        lambda: store.put_bytes(key, b"1"),
        lambda: store.put_file(key, source),
        lambda: store.get_bytes(key),
        lambda: store.download(key, tmp_path / "d"),
        lambda: store.open(key),
        lambda: store.head(key),
        lambda: store.exists(key),
        lambda: store.copy("good", key),
        lambda: store.copy(key, "good2"),
        lambda: store.delete(key),
        lambda: store.uri(key),
        lambda: store.local_path(key),
    ]
    for call in calls:
        with pytest.raises(StorageError) as caught:
            call()
        assert type(caught.value) is StorageError
        assert caught.value.key == key and repr(key) in str(caught.value)
    assert [info.key for info in store.list("")] == ["good"]


def test_missing_bucket_is_storage_error(s3_endpoint: str, aws_env: None, tmp_path: Path) -> None:
    store = new_s3_store(s3_endpoint, bucket="no-such-bucket-here", create=False)
    source = tmp_path / "s"
    source.write_bytes(b"1")
    calls: list[Callable[[], Any]] = [
        lambda: store.put_bytes("k", b"1"),
        lambda: store.put_bytes("k", b"1", if_absent=True),
        lambda: store.put_file("k", source),
        lambda: store.get_bytes("k"),
        lambda: store.head("k"),
        lambda: store.download("k", tmp_path / "d"),
        lambda: list(store.list("")),
        lambda: store.copy("k", "k2"),
        lambda: store.delete("k"),
    ]
    for call in calls:
        with pytest.raises(StorageError) as caught:
            call()
        assert type(caught.value) is StorageError  # not ObjectNotFound, not a raw ClientError
        assert caught.value.code == "NoSuchBucket"
        assert caught.value.bucket == "no-such-bucket-here"


def test_storage_errors_pickle(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound) as caught:
        store.get_bytes("gone")
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is ObjectNotFound and again.key == "gone" and str(again) == str(caught.value)


def test_stores_pickle(store: ObjectStore) -> None:
    store.put_bytes("p", b"1")
    clone = pickle.loads(pickle.dumps(store))
    assert clone.root_uri == store.root_uri and clone.get_bytes("p") == b"1"


# --- LocalStore specifics ---------------------------------------------------------------------


def test_symlink_escape_refused(local_store: LocalStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    (local_store.root / "link").symlink_to(outside, target_is_directory=True)
    (local_store.root / "filelink").symlink_to(outside / "secret")
    for call in (
        lambda: local_store.get_bytes("link/secret"),
        lambda: local_store.put_bytes("link/new", b"x"),
        lambda: local_store.head("filelink"),
        lambda: local_store.delete("link/secret"),
        lambda: local_store.copy("filelink", "inside"),
        lambda: list(local_store.list("link/")),
    ):
        with pytest.raises(StorageError, match="outside the store root"):
            call()
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_bytes() == b"s"
    assert list(local_store.list("")) == []


class _FailingReader(io.RawIOBase):
    """Gives one chunk of data, then fails like a disk or network read would."""

    def __init__(self) -> None:
        self.calls = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.calls += 1
        if self.calls > 1:
            raise OSError(5, "Input/output error")
        buffer[:4] = b"part"
        return 4


@pytest.mark.parametrize("if_absent", [False, True])
def test_failed_write_leaves_no_partial_object(
    local_store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, if_absent: bool
) -> None:
    local_store.put_bytes("kept", b"old content")
    source = tmp_path / "src.bin"
    source.write_bytes(b"irrelevant")
    real_open = open

    def failing_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if Path(file) == source:
            return io.BufferedReader(_FailingReader())
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(storage_local, "open", failing_open, raising=False)
    key = "new" if if_absent else "kept"
    with pytest.raises(StorageError) as caught:
        local_store.put_file(key, source, if_absent=if_absent)
    assert caught.value.key == key and caught.value.code == "EIO"
    assert [info.key for info in local_store.list("")] == ["kept"]
    assert local_store.get_bytes("kept") == b"old content"
    assert list((local_store.root / ".tmp").iterdir()) == []


def test_sweep_tmp_removes_orphans(local_store: LocalStore) -> None:
    local_store.put_bytes("a", b"1")
    orphan = local_store.root / ".tmp" / "put-crashed"
    orphan.write_bytes(b"half")
    os.utime(orphan, (0, 0))
    assert local_store.sweep_tmp() == 1
    assert not orphan.exists()


# --- factory ----------------------------------------------------------------------------------


def test_open_store(tmp_path: Path, aws_env: None) -> None:
    local = open_store(str(tmp_path / "new" / "root"))
    assert isinstance(local, LocalStore) and (tmp_path / "new" / "root").is_dir()
    spaced = tmp_path / "with space"
    via_uri = open_store(spaced.as_uri())
    assert isinstance(via_uri, LocalStore) and via_uri.root == spaced.resolve()
    s3 = open_store("s3://bucket/some/prefix/", endpoint_url="http://127.0.0.1:9")
    assert isinstance(s3, S3Store) and (s3.bucket, s3.prefix) == ("bucket", "some/prefix")
    assert s3.uri("k") == "s3://bucket/some/prefix/k"
    bare = open_store("s3://bucket")
    assert isinstance(bare, S3Store) and bare.root_uri == "s3://bucket"
    with pytest.raises(StorageError):
        open_store("s3://bucket/a/../b")
