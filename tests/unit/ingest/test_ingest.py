"""Ingest: raw byte for byte, typed staging, duplicates recognized, bad files quarantined."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databourse.config import DatasetSpec
from databourse.errors import IngestRejected
from databourse.ingest.files import ingest_file
from databourse.storage.opening import open_store
from databourse.storage.store import ObjectStore

SPEC = DatasetSpec.model_validate(
    {
        "primary_key": ["id"],
        "columns": [
            {"name": "id", "type": "string", "nullable": False},
            {"name": "n", "type": "int64"},
            {"name": "x", "type": "float64"},
            {"name": "d", "type": "date"},
            {"name": "t", "type": "timestamp"},
            {"name": "ok", "type": "bool"},
            {"name": "note", "type": "string"},
        ],
    }
)
GOOD = (
    "id,n,x,d,t,ok,note\n"
    'a1,1,1.5,2026-01-02,2026-01-02T03:04:05,true,"line one\nline two, with comma"\n'
    "a2,,2.5,2026-02-03,2026-02-03T00:00:00,false,\n"
)


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return open_store(str(tmp_path / "store"))


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_csv_ingested_raw_bytes_and_typed_staging(tmp_path: Path, store: ObjectStore) -> None:
    src = write(tmp_path, "drop.csv", GOOD)
    result = ingest_file(store, "prov", "ds", SPEC, src)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    assert (result.sha256, result.ingest_id, result.rows, result.duplicate) == (
        sha,
        sha[:16],
        2,
        False,
    )
    assert store.get_bytes(result.raw_key) == src.read_bytes()
    record = json.loads(store.get_bytes(f"raw/prov/ds/{sha[:16]}/_ingest.json"))
    assert record["sha256"] == sha and record["rows"] == 2 and record["format"] == "csv"
    table = pq.read_table(store.local_path(result.staged_key))
    assert table.schema.field("n").type == pa.int64()
    assert table.schema.field("d").type == pa.date32()
    assert table.schema.field("t").type == pa.timestamp("us")
    assert table["n"].to_pylist() == [1, None]
    assert table["note"].to_pylist()[0] == "line one\nline two, with comma"


def test_staged_row_groups_gather_the_readers_batches(
    tmp_path: Path, store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader's 64k-row batches are gathered into row groups of STAGED_ROW_GROUP_ROWS."""
    from databourse.ingest import staging as ingest

    rows = 200_000
    src = tmp_path / "drop.parquet"
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(rows)], "n": list(range(rows))}), src)
    spec = DatasetSpec.model_validate(
        {"primary_key": ["id"], "columns": [{"name": "id"}, {"name": "n", "type": "int64"}]}
    )
    whole = pq.ParquetFile(store.local_path(ingest_file(store, "p", "d", spec, src).staged_key))
    assert [whole.metadata.row_group(i).num_rows for i in range(whole.num_row_groups)] == [rows]
    monkeypatch.setattr(ingest, "STAGED_ROW_GROUP_ROWS", 100_000)
    other = store.local_path(ingest_file(store, "p", "d2", spec, src).staged_key)
    split = pq.ParquetFile(other)
    assert [split.metadata.row_group(i).num_rows for i in range(split.num_row_groups)] == [
        128_000,
        72_000,
    ]
    assert split.read().column("n").to_pylist() == list(range(rows))


def test_identical_bytes_stored_once(tmp_path: Path, store: ObjectStore) -> None:
    first = ingest_file(store, "prov", "ds", SPEC, write(tmp_path, "a.csv", GOOD))
    second = ingest_file(store, "prov", "ds", SPEC, write(tmp_path, "b-renamed.csv", GOOD))
    assert second.duplicate and second.ingest_id == first.ingest_id
    raw = [o.key for o in store.list("raw/prov/ds/")]
    assert raw == [f"raw/prov/ds/{first.ingest_id}/_ingest.json", first.raw_key]


def test_parquet_source(tmp_path: Path, store: ObjectStore) -> None:
    table = pa.table(
        {
            "id": ["p1"],
            "n": [3],
            "x": [0.5],
            "d": ["2026-03-01"],
            "t": ["2026-03-01T00:00:00"],
            "ok": [True],
            "note": [None],
        },
        schema=pa.schema(
            [
                ("id", pa.string()),
                ("n", pa.int64()),
                ("x", pa.float64()),
                ("d", pa.string()),
                ("t", pa.string()),
                ("ok", pa.bool_()),
                ("note", pa.string()),
            ]
        ),
    )
    src = tmp_path / "drop.parquet"
    pq.write_table(table, src)
    result = ingest_file(store, "prov", "ds", SPEC, src)
    staged = pq.read_table(store.local_path(result.staged_key))
    assert staged["d"].type == pa.date32() and result.rows == 1


def reason_of(store: ObjectStore, err: IngestRejected) -> dict[str, object]:
    prefix = err.quarantine_uri.split("/store/", 1)[1]  # type: ignore[attr-defined]
    return dict(json.loads(store.get_bytes(f"{prefix}/_reason.json")))


@pytest.mark.parametrize(
    ("name", "data", "column", "row", "words"),
    [
        ("empty.csv", b"", None, 0, "empty file"),
        ("header.csv", "id,n,x,d,t,ok,note\n", None, 0, "no data rows"),
        (
            "ragged.csv",
            "id,n,x,d,t,ok,note\na,1,1,2026-01-01,2026-01-01T00:00:00,true,x\n"
            "b,2,2,2026-01-01,2026-01-01T00:00:00,true,x,SECRET-VALUE\n",
            None,
            2,
            "data row 2 (line 3) has 8 fields, the header has 7",
        ),
        (
            "missing.csv",
            "id,n,x,d,t,ok\na,1,1,2026-01-01,2026-01-01T00:00:00,true\n",
            "note",
            None,
            "missing column(s) ['note']",
        ),
        (
            "drift.csv",
            "id,n,x,d,t,ok,note,extra\na,1,1,2026-01-01,2026-01-01T00:00:00,true,x,y\n",
            "#8",
            None,
            "1 new column(s) at #8",
        ),
        (
            "badint.csv",
            GOOD.replace("a2,,", "a2,SECRET-VALUE,"),
            "n",
            2,
            "does not convert to int64",
        ),
        ("baddate.csv", GOOD.replace("2026-02-03,", "03/02/2026,", 1), "d", 2, "convert to date"),
        ("binary.csv", bytes(range(256)) * 40, None, None, "binary content (NUL byte)"),
        ("drop.xlsx", b"PK\x03\x04 not really", None, None, "not a readable zip archive"),
    ],
)
def test_bad_input_is_quarantined_with_reason(
    tmp_path: Path,
    store: ObjectStore,
    name: str,
    data: str | bytes,
    column: str | None,
    row: int | None,
    words: str,
) -> None:
    src = write(tmp_path, name, data)
    with pytest.raises(IngestRejected) as info:
        ingest_file(store, "prov", "ds", SPEC, src)
    err = info.value
    assert words in str(err) and name in str(err)
    assert "SECRET-VALUE" not in str(err)
    reason = reason_of(store, err)
    assert "SECRET-VALUE" not in json.dumps(reason)
    assert reason["file"] == name and reason["column"] == column and reason["row"] == row
    ingest_id = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    kept = store.get_bytes(f"quarantine/prov/ds/{ingest_id}/{name}")
    assert kept == src.read_bytes()  # the original bytes are kept
    assert not store.exists(f"raw/prov/ds/{ingest_id}/_ingest.json")  # never a completed ingest
    assert not store.exists(f"staging/prov/ds/{ingest_id}/data.parquet")


def test_unsafe_file_name_refused(tmp_path: Path, store: ObjectStore) -> None:
    src = write(tmp_path, "ok.csv", GOOD)
    with pytest.raises(IngestRejected, match="not a usable file name"):
        ingest_file(store, "prov", "ds", SPEC, src, source_name="../../etc/passwd")
    assert list(store.list("")) == []


def test_non_ascii_file_name_gets_a_safe_key_and_is_recorded(
    tmp_path: Path, store: ObjectStore
) -> None:
    src = write(tmp_path, "ok.csv", GOOD)
    result = ingest_file(store, "prov", "ds", SPEC, src, source_name="订单 2026-11.csv")
    assert result.source_name.endswith(".csv") and result.source_name.isascii()
    assert result.original_name == "订单 2026-11.csv"
    assert store.get_bytes(result.raw_key) == src.read_bytes()
