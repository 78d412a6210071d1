"""What `bourse ingest` is pointed at: files, folders, globs, s3:// keys and prefixes, manifests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3_server import client, make_bucket, moto_server, use_dummy_aws_env

from bourse.sources import expand
from databourse.errors import IngestRejected


def touch(path: Path, data: bytes = b"a,b\n1,2\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_is_walked_in_order_skipping_partial_hidden_and_manifests(tmp_path: Path) -> None:
    for name in ("b.csv", "a.csv", "sub/c.jsonl", ".hidden.csv", "d.csv.part", "x.tmp"):
        touch(tmp_path / name)
    sha = hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    manifest = {"files": [{"name": "a.csv", "sha256": sha, "size": 8, "rows": 1}]}
    (tmp_path / "drop.manifest.json").write_text(json.dumps(manifest))
    found = expand(str(tmp_path))
    assert [(s.name, s.expected_rows) for s in found] == [
        ("a.csv", 1),
        ("b.csv", None),
        ("c.jsonl", None),
    ]


def test_glob_and_single_file(tmp_path: Path) -> None:
    touch(tmp_path / "x-1.csv"), touch(tmp_path / "x-2.csv"), touch(tmp_path / "y.csv")
    assert [s.name for s in expand(str(tmp_path / "x-*.csv"))] == ["x-1.csv", "x-2.csv"]
    assert [s.name for s in expand(str(tmp_path / "y.csv"))] == ["y.csv"]


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"name": "a.csv", "sha256": "0" * 64}, "sha256 differs"),
        ({"name": "a.csv", "sha256": "0" * 64, "size": 3}, "3"),
        ({"name": "gone.csv", "sha256": "0" * 64}, "incomplete drop"),
        ({"name": "../a.csv", "sha256": "0" * 64}, "invalid manifest"),
    ],
)
def test_a_manifest_that_does_not_hold_refuses_the_folder(
    tmp_path: Path, entry: dict[str, object], words: str
) -> None:
    touch(tmp_path / "a.csv")
    (tmp_path / "a.csv.manifest.json").write_text(json.dumps({"files": [entry]}))
    with pytest.raises(IngestRejected, match=words):
        expand(str(tmp_path))


def test_nothing_there_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(IngestRejected, match="no such file"):
        expand(str(tmp_path / "missing.csv"))
    with pytest.raises(IngestRejected, match="no data files"):
        expand(str(tmp_path))


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    use_dummy_aws_env(monkeypatch)
    with moto_server() as url:
        yield url


def test_s3_prefix_lists_every_object_and_a_key_is_one_source(endpoint: str) -> None:
    make_bucket(endpoint, "drops")
    s3 = client(endpoint)
    for key in ("in/a.csv", "in/deep/b.csv", "in/.c.csv", "other/d.csv"):
        s3.put_object(Bucket="drops", Key=key, Body=b"a\n1\n")
    found = expand("s3://drops/in/", endpoint)
    assert [(s.location, s.name) for s in found] == [
        ("s3://drops/in/a.csv", "a.csv"),
        ("s3://drops/in/deep/b.csv", "b.csv"),
    ]
    assert [s.location for s in expand("s3://drops/other/d.csv", endpoint)] == [
        "s3://drops/other/d.csv"
    ]
