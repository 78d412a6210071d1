"""Ingest at production grade: formats, encodings, layouts, drift, keys, caps, corruption."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow.parquet as pq
import pytest

from databourse.config import DatasetSpec, IngestLimits
from databourse.errors import IngestRejected, StorageError
from databourse.ingest.files import ingest_file
from databourse.ingest.records import IngestResult, load_ingest
from databourse.storage.opening import open_store
from databourse.storage.store import ObjectStore

SPEC = DatasetSpec.model_validate(
    {
        "primary_key": ["order_id"],
        "columns": [
            {"name": "order_id", "type": "string", "nullable": False},
            {"name": "customer", "type": "string", "personal_data": "PERSON_NAME"},
            {"name": "shop", "type": "string"},
            {
                "name": "ordered_on",
                "type": "date",
                "formats": ["%Y-%m-%d", "%d/%m/%Y", "%Y年%m月%d日"],
            },
            {"name": "amount", "type": "float64"},
        ],
    }
)
ROWS = [
    ("SZ-0001", "王小明", "深圳市南山区科技园店", "2026年03月05日", "128.50"),
    ("SZ-0002", "陳大文", "福田區華強北旗艦店", "05/03/2026", "77.00"),
    ("SZ-0003", "李娜", "罗湖区东门步行街店", "2026-03-06", "9.90"),
]


def csv_text(rows: list[tuple[str, ...]] = ROWS, sep: str = ",") -> str:
    header = sep.join(c.name for c in SPEC.columns)
    return "\n".join([header, *(sep.join(r) for r in rows)]) + "\n"


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return open_store(str(tmp_path / "store"))


def ingest(store: ObjectStore, path: Path, **kw: Any) -> IngestResult:
    return ingest_file(store, "sz-retail", "orders", kw.pop("spec", SPEC), path, **kw)


def staged_rows(store: ObjectStore, result: IngestResult) -> list[dict[str, Any]]:
    path = store.local_path(result.staged_key)
    assert path is not None
    return pq.read_table(path).to_pylist()


def check_typed(store: ObjectStore, result: IngestResult) -> None:
    rows = staged_rows(store, result)
    assert [r["customer"] for r in rows] == [r[1] for r in ROWS]
    assert [r["ordered_on"] for r in rows] == [
        dt.date(2026, 3, 5),
        dt.date(2026, 3, 5),
        dt.date(2026, 3, 6),
    ]
    assert rows[0]["amount"] == 128.5
    record = load_ingest(store, "sz-retail", "orders", result.ingest_id)
    assert record.encoding == result.encoding and record.format == result.format


@pytest.mark.parametrize(
    ("encoding", "recorded"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("gb18030", "gb18030"),
        ("utf-16", "utf-16"),
    ],
)
def test_text_encodings_are_detected_recorded_and_converted(
    tmp_path: Path, store: ObjectStore, encoding: str, recorded: str
) -> None:
    rows = ROWS if encoding != "gb18030" else [(a, b.replace("陳", "陈"), *c) for a, b, *c in ROWS]
    text = csv_text(
        [(r[0], r[1], r[2].replace("區", "区").replace("華", "华"), *r[3:]) for r in rows]
    )
    path = tmp_path / "orders.csv"
    path.write_bytes(text.encode(encoding))
    result = ingest(store, path)
    assert result.encoding.replace("_", "-").startswith(recorded), result.encoding
    assert result.rows == 3 and len(staged_rows(store, result)) == 3


def test_big5_drop_from_hong_kong_is_told_apart_from_gbk(
    tmp_path: Path, store: ObjectStore
) -> None:
    rows = [
        ("HK-1", "陳大文", "中環皇后大道中店", "05/03/2026", "10.00"),
        ("HK-2", "黃美玲", "旺角彌敦道分店", "06/03/2026", "12.50"),
        ("HK-3", "張志強", "銅鑼灣時代廣場專門店", "07/03/2026", "8.00"),
    ] * 20
    rows = [(f"HK-{i}", *r[1:]) for i, r in enumerate(rows)]
    path = tmp_path / "hk.csv"
    path.write_bytes(csv_text(rows).encode("big5"))
    result = ingest(store, path)
    assert result.encoding.replace("_", "").lower().startswith("big5"), result.encoding
    assert staged_rows(store, result)[0]["customer"] == "陳大文"


def test_declared_encoding_wins(tmp_path: Path, store: ObjectStore) -> None:
    spec = SPEC.model_copy(update={"read": SPEC.read.model_copy(update={"encoding": "gb18030"})})
    path = tmp_path / "orders.csv"
    path.write_bytes(csv_text([(r[0], "李娜", "罗湖店", *r[3:]) for r in ROWS]).encode("gb18030"))
    assert ingest(store, path, spec=spec).encoding.startswith("gb18030")


@pytest.mark.parametrize("sep", [",", "\t", ";", "|"])
def test_delimiters_are_detected(tmp_path: Path, store: ObjectStore, sep: str) -> None:
    path = tmp_path / "orders.txt"
    path.write_text(csv_text(sep=sep), encoding="utf-8")
    result = ingest(store, path)
    assert result.delimiter == sep
    check_typed(store, result)


def test_jsonl_gzip(tmp_path: Path, store: ObjectStore) -> None:
    names = [c.name for c in SPEC.columns]
    lines = [json.dumps(dict(zip(names, r, strict=True)), ensure_ascii=False) for r in ROWS]
    path = tmp_path / "orders.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    result = ingest(store, path)
    assert (result.format, result.compression) == ("jsonl", "gzip")
    check_typed(store, result)


def test_xlsx(tmp_path: Path, store: ObjectStore) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append([c.name for c in SPEC.columns])
    for r in ROWS:
        sheet.append([r[0], r[1], r[2], r[3], float(r[4])])
    path = tmp_path / "orders.xlsx"
    book.save(path)
    result = ingest(store, path)
    assert result.format == "xlsx"
    check_typed(store, result)


def test_zip_of_two_csv_members_is_one_ingest(tmp_path: Path, store: ObjectStore) -> None:
    path = tmp_path / "orders.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("part-1.csv", csv_text(ROWS[:2]))
        zf.writestr("part-2.csv", csv_text(ROWS[2:]))
    result = ingest(store, path)
    assert (result.compression, result.members, result.rows) == (
        "zip",
        ["part-1.csv", "part-2.csv"],
        3,
    )
    check_typed(store, result)


def reason(store: ObjectStore, err: IngestRejected) -> dict[str, Any]:
    prefix = err.quarantine_uri.split("/store/", 1)[1]  # type: ignore[attr-defined]
    return dict(json.loads(store.get_bytes(f"{prefix}/_reason.json")))


def quarantined(store: ObjectStore, path: Path, **kw: Any) -> tuple[IngestRejected, dict[str, Any]]:
    with pytest.raises(IngestRejected) as info:
        ingest(store, path, **kw)
    err = info.value
    why = reason(store, err)
    ingest_id = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert store.get_bytes(f"quarantine/sz-retail/orders/{ingest_id}/{path.name}") == (
        path.read_bytes()
    )
    assert not store.exists(f"raw/sz-retail/orders/{ingest_id}/_ingest.json")
    for value in ("王小明", "陳大文", "李娜", "SZ-0002"):
        assert value not in str(err) and value not in json.dumps(why, ensure_ascii=False)
    return err, why


def test_duplicate_primary_key_names_both_rows(tmp_path: Path, store: ObjectStore) -> None:
    path = tmp_path / "dupes.csv"
    path.write_text(csv_text([*ROWS, ROWS[1]]), encoding="utf-8")
    err, why = quarantined(store, path)
    assert (why["column"], why["row"], why["first_row"]) == ("order_id", 4, 2)
    assert "duplicate primary key" in str(err)


def test_layout_that_does_not_match_names_the_row(tmp_path: Path, store: ObjectStore) -> None:
    path = tmp_path / "dates.csv"
    path.write_text(csv_text([*ROWS[:2], ("SZ-9", "x", "y", "2026.03.07", "1")]), encoding="utf-8")
    _, why = quarantined(store, path)
    assert (why["column"], why["row"]) == ("ordered_on", 3)


def test_row_count_promised_by_the_manifest_is_checked(tmp_path: Path, store: ObjectStore) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(csv_text(), encoding="utf-8")
    err, _ = quarantined(store, path, expected_rows=4)
    assert "the provider's manifest says 4" in str(err)


def test_file_over_the_size_cap(tmp_path: Path, store: ObjectStore) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(csv_text(), encoding="utf-8")
    err, _ = quarantined(store, path, limits=IngestLimits(max_file_bytes=100))
    assert "100" in str(err)


def test_zip_bomb_is_stopped(tmp_path: Path, store: ObjectStore) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("orders.csv", csv_text() + "0" * (30 << 20))
    err, _ = quarantined(store, path, limits=IngestLimits(max_compression_ratio=50))
    assert "ratio" in str(err)


def test_path_traversal_member_is_refused(tmp_path: Path, store: ObjectStore) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("../../etc/orders.csv", csv_text())
    path = tmp_path / "evil.zip"
    path.write_bytes(buffer.getvalue())
    err, _ = quarantined(store, path)
    assert "member" in str(err)


def test_truncated_gzip(tmp_path: Path, store: ObjectStore) -> None:
    data = gzip.compress(csv_text(ROWS * 200).encode())
    path = tmp_path / "orders.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    quarantined(store, path)


def test_undecodable_bytes_name_offset_and_line(tmp_path: Path, store: ObjectStore) -> None:
    data = csv_text().encode("utf-8")
    bad = data.replace("李娜".encode(), b"\xff\xfe\xfa")
    path = tmp_path / "orders.csv"
    path.write_bytes(bad)
    _, why = quarantined(
        store,
        path,
        spec=SPEC.model_copy(update={"read": SPEC.read.model_copy(update={"encoding": "utf-8"})}),
    )
    assert why.get("line") == 4 and why.get("byte_offset") == bad.index(b"\xff")


def test_additive_drift_is_accepted_and_recorded(tmp_path: Path, store: ObjectStore) -> None:
    spec = SPEC.model_copy(update={"schema_drift": "additive"})
    text = csv_text().splitlines()
    path = tmp_path / "orders.csv"
    path.write_text("\n".join([text[0] + ",channel"] + [t + ",app" for t in text[1:]]) + "\n")
    result = ingest(store, path, spec=spec)
    assert result.drift["added"] == ["#6"]  # a header outside the contract: its place only
    assert staged_rows(store, result)[0]["channel"] == "app"
    assert {"name": "channel", "type": "string"} in result.schema


def test_corrupted_raw_object_is_detected_on_reread(tmp_path: Path, store: ObjectStore) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(csv_text(), encoding="utf-8")
    result = ingest(store, path)
    raw = store.local_path(result.raw_key)
    assert raw is not None
    corrupted = raw.read_bytes().replace(b"128.50", b"999.99")
    raw.unlink()  # a new file: the stored copy may share its inode with the source
    raw.write_bytes(corrupted)
    with pytest.raises(StorageError, match="raw object corrupted"):
        ingest(store, path)  # the same bytes again: the stored copy is re-read and checked
