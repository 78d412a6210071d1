"""Readers: every supported format, encoding and compression, and every way a drop can be bad."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import random
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import hypothesis.strategies as st
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

from databourse.errors import IngestRejected
from databourse.readers.decompress import SAMPLE_BYTES
from databourse.readers.stream import ReadHints, ReadLimits, SourceReader, open_source

HINTS = ReadHints(("id", "name", "city"))
SECRET = "SECRET-7731"  # a cell value that must never appear in a message

# Realistic mainland (simplified, GBK) and Taiwan/Hong Kong (traditional, Big5) records.
GBK_ROWS = [
    ("1", "张伟", "广东省深圳市南山区科技园南路88号"),
    ("2", "李秀英", "广州市天河区体育西路103号 华联超市"),
    ("3", "王建国", "北京市朝阳区建国路甲12号 老王烧烤店"),
    ("4", "刘芳", "上海市浦东新区世纪大道200号 兰州拉面馆"),
    ("5", "陈静", "浙江省杭州市西湖区文三路9号 新华书店"),
]
BIG5_ROWS = [
    ("1", "陳大文", "臺北市中山區南京東路二段100號"),
    ("2", "林美華", "新北市板橋區文化路一段55號 鼎泰豐小籠包"),
    ("3", "黃志明", "高雄市前鎮區中山二路7號 永和豆漿大王"),
    ("4", "張淑芬", "香港九龍旺角彌敦道600號 誠品書店"),
    ("5", "蔡俊傑", "臺中市西屯區臺灣大道三段99號 春水堂茶館"),
]


def csv_text(rows: Sequence[tuple[str, ...]], delimiter: str = ",", header: bool = True) -> str:
    lines = [delimiter.join(HINTS.expected_columns)] if header else []
    return "\n".join([*lines, *(delimiter.join(r) for r in rows)]) + "\n"


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def read(
    path: Path, name: str | None = None, hints: ReadHints = HINTS, limits: ReadLimits = ReadLimits()
) -> tuple[SourceReader, pa.Table | None]:
    with open_source(path, name or path.name, hints, limits) as reader:
        batches = list(reader.batches())
    return reader, pa.Table.from_batches(batches) if batches else None


def rejected(
    path: Path, name: str | None = None, hints: ReadHints = HINTS, limits: ReadLimits = ReadLimits()
) -> IngestRejected:
    """The rejection of a file, checked to name the file and to hold no cell value."""
    with pytest.raises(IngestRejected) as info:
        read(path, name, hints, limits)
    error = info.value
    assert str(error).startswith(f"{name or path.name}"), str(error)
    assert SECRET not in str(error) and SECRET not in repr(error.context)
    return error


def table(path: Path, hints: ReadHints = HINTS) -> pa.Table:
    _, result = read(path, hints=hints)
    assert result is not None
    return result


def where(error: IngestRejected, *keys: str) -> tuple[object, ...]:
    return tuple(error.context.get(k) for k in keys)


def rows(result: pa.Table) -> list[tuple[str | None, ...]]:
    return list(zip(*(result[c].to_pylist() for c in result.column_names), strict=True))


def zip_file(path: Path, members: Mapping[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


# --- CSV: delimiters, headers, quoting ---------------------------------------------------------


def test_csv_quoted_newlines_empty_is_null_and_na_is_text(tmp_path: Path) -> None:
    src = write(tmp_path, "drop.csv", 'id,name,city\n1,"Tan, Mei","line one\nline two"\n2,,NA\n')
    reader, result = read(src)
    assert result is not None and rows(result) == [
        ("1", "Tan, Mei", "line one\nline two"),
        ("2", None, "NA"),
    ]
    assert result.schema == pa.schema([(c, pa.string()) for c in HINTS.expected_columns])
    assert reader.rows_read == 2
    assert reader.info.to_json() == {
        "format": "csv",
        "compression": "none",
        "encoding": "utf-8",
        "bom": False,
        "delimiter": ",",
        "header": True,
        "members": [],
        "member_encodings": [],
        "sheet": None,
    }


def test_crlf_line_ends(tmp_path: Path) -> None:
    src = write(tmp_path, "drop.csv", 'id,name,city\r\n1,"a\r\nb",c\r\n2,x,y\r\n')
    assert rows(table(src)) == [("1", "a\r\nb", "c"), ("2", "x", "y")]
    error = rejected(write(tmp_path, "bad.csv", 'id,name,city\r\n1,"a\r\nb",c\r\n2,x\r\n'))
    assert where(error, "row", "line") == (2, 4) and "2 fields, the header has 3" in str(error)


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"])
def test_delimiter_detected_from_header(tmp_path: Path, delimiter: str) -> None:
    data = csv_text([("1", "a,b", "x"), ("2", "c", "y")], delimiter).replace("a,b", '"a,b"')
    reader, result = read(write(tmp_path, "drop.txt", data))
    assert reader.info.delimiter == delimiter
    assert result is not None and rows(result)[0] == ("1", "a,b", "x")


def test_header_matched_stripped_and_case_folded_in_contract_spelling(tmp_path: Path) -> None:
    reader, _ = read(write(tmp_path, "drop.csv", " ID ;Name;CITY\n1;a;b\n"))
    assert reader.columns == ["id", "name", "city"] and reader.info.delimiter == ";"


def test_headerless_auto_names_columns_by_contract_and_sniffs_delimiter(tmp_path: Path) -> None:
    reader, result = read(write(tmp_path, "drop.csv", "1|Ana|Penang\n2|Budi|Johor\n"))
    assert reader.info.header is False and reader.info.delimiter == "|"
    assert reader.columns == list(HINTS.expected_columns)
    assert result is not None and rows(result) == [("1", "Ana", "Penang"), ("2", "Budi", "Johor")]


def test_headerless_ragged_row(tmp_path: Path) -> None:
    error = rejected(write(tmp_path, "drop.csv", "1,a,b\n2,c\n"))
    assert where(error, "row", "line") == (2, 2) and "2 fields, 3 expected" in str(error)


def test_header_with_drift_is_returned_as_found(tmp_path: Path) -> None:
    reader, _ = read(write(tmp_path, "drop.csv", "id,full_name,city,extra\n1,a,b,c\n"))
    assert reader.columns == ["id", "full_name", "city", "extra"] and reader.info.header


def test_declared_header_and_delimiter_win(tmp_path: Path) -> None:
    hints = ReadHints(("id", "name", "city"), delimiter=";", header="present")
    reader, result = read(write(tmp_path, "drop.csv", "a;b;c\n1;x,y;z\n"), hints=hints)
    assert reader.columns == ["a", "b", "c"]
    assert result is not None and rows(result) == [("1", "x,y", "z")]


def test_declared_delimiter_must_be_one_character(tmp_path: Path) -> None:
    hints = ReadHints(("id", "name", "city"), delimiter="tab")
    assert "single character" in str(rejected(write(tmp_path, "drop.csv", "id\n"), hints=hints))


def test_headerless_declared_with_wrong_width(tmp_path: Path) -> None:
    hints = ReadHints(("id", "name", "city"), header="absent")
    error = rejected(write(tmp_path, "drop.csv", "1,a\n"), hints=hints)
    assert error.context.get("row") == 1 and "2 fields" in str(error)


def test_duplicate_header_name(tmp_path: Path) -> None:
    error = rejected(write(tmp_path, "drop.csv", "id,name,Name\n1,a,b\n"))
    assert error.context.get("column") == "name"


def test_header_only_gives_columns_and_no_rows(tmp_path: Path) -> None:
    reader, result = read(write(tmp_path, "drop.csv", "id,name,city\n"))
    assert result is None and reader.rows_read == 0 and reader.columns == ["id", "name", "city"]


def test_leading_blank_lines_before_header(tmp_path: Path) -> None:
    reader, result = read(write(tmp_path, "drop.csv", "\n\nid,name,city\n\n1,a,b\n"))
    assert reader.info.header and result is not None and rows(result) == [("1", "a", "b")]


# --- encodings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "data_rows", "reported", "bom"),
    [
        ("utf-8", GBK_ROWS, "utf-8", False),
        ("utf-8-sig", GBK_ROWS, "utf-8-sig", True),
        ("gbk", GBK_ROWS, "gb18030", False),
        ("gb18030", GBK_ROWS, "gb18030", False),
        ("big5", BIG5_ROWS, "big5", False),
        ("utf-16", BIG5_ROWS, "utf-16-le", True),
        ("utf-16-be", GBK_ROWS, "utf-16-be", False),
        ("utf-16-le", GBK_ROWS, "utf-16-le", False),
    ],
)
def test_encoding_detected_and_text_round_trips(
    tmp_path: Path, codec: str, data_rows: list[tuple[str, ...]], reported: str, bom: bool
) -> None:
    data = csv_text(data_rows).encode(codec)
    if codec == "utf-16":  # Python writes its native order with a BOM; make it explicit
        data = b"\xff\xfe" + csv_text(data_rows).encode("utf-16-le")
    reader, result = read(write(tmp_path, "drop.csv", data))
    assert (reader.info.encoding, reader.info.bom) == (reported, bom)
    assert reader.columns == ["id", "name", "city"]
    assert result is not None and rows(result) == data_rows


def test_gbk_and_big5_told_apart_on_a_single_record(tmp_path: Path) -> None:
    gbk = write(tmp_path, "gbk.csv", csv_text(GBK_ROWS[:1]).encode("gbk"))
    big5 = write(tmp_path, "big5.csv", csv_text(BIG5_ROWS[:1]).encode("big5"))
    assert read(gbk)[0].info.encoding == "gb18030"
    assert read(big5)[0].info.encoding == "big5"


def test_declared_encoding_wins(tmp_path: Path) -> None:
    src = write(tmp_path, "drop.csv", csv_text(GBK_ROWS).encode("gbk"))
    reader, result = read(src, hints=ReadHints(HINTS.expected_columns, encoding="GB2312"))
    assert reader.info.encoding == "gb18030"  # GB2312 and GBK are read as their superset
    assert result is not None and rows(result) == GBK_ROWS
    latin = write(tmp_path, "latin.csv", "id,name,city\n1,José,São Paulo\n".encode("latin-1"))
    reader, result = read(latin, hints=ReadHints(HINTS.expected_columns, encoding="latin-1"))
    assert reader.info.encoding == "iso8859-1"
    assert result is not None and rows(result) == [("1", "José", "São Paulo")]


def test_unknown_encoding_is_rejected_with_first_bad_byte(tmp_path: Path) -> None:
    data = "id,name,city\n1,José,São Paulo ação\n".encode("latin-1")
    error = rejected(write(tmp_path, "drop.csv", data))
    assert where(error, "byte_offset", "line") == (data.index(b"\xe9"), 2)
    error = rejected(
        write(tmp_path, "x.csv", "id\n1\n"), hints=ReadHints(("id",), encoding="klingon")
    )
    assert "unknown encoding 'klingon'" in str(error)


def big_utf8(rows_before: int, bad: bytes, after: int = 10) -> tuple[bytes, int, int]:
    """A UTF-8 CSV over the sample size with `bad` bytes in a later row: (data, offset, line)."""
    head = "id,name,city\n" + "".join(f"{i},张伟,深圳\n" for i in range(rows_before))
    tail = "".join(f"{i},李娜,广州\n" for i in range(after))
    prefix = head.encode() + b"9,x"
    return prefix + bad + b",y\n" + tail.encode(), len(prefix), rows_before + 2


def test_multibyte_character_cut_at_sample_end(tmp_path: Path) -> None:
    head = b"id,name,city\n1,a,"
    filler = b"x" * (SAMPLE_BYTES - len(head) - 1)  # the 3-byte character straddles the sample end
    src = write(tmp_path, "drop.csv", head + filler + "张".encode() + b"\n2,b,c\n")
    reader, result = read(src)
    assert reader.info.encoding == "utf-8" and result is not None and result.num_rows == 2


def test_undecodable_utf8_after_the_sample_names_offset_and_line(tmp_path: Path) -> None:
    data, offset, line = big_utf8(60_000, b"\xff\xfe")
    assert offset > SAMPLE_BYTES
    error = rejected(write(tmp_path, "drop.csv", data))
    assert where(error, "byte_offset", "line") == (offset, line)
    assert f"byte offset {offset} (line {line})" in str(error)


def test_undecodable_gb18030_after_the_sample_names_offset_and_line(tmp_path: Path) -> None:
    head = ("id,name,city\n" + "".join(f"{i},张伟,深圳市南山区\n" for i in range(50_000))).encode(
        "gb18030"
    )
    src = write(tmp_path, "drop.csv", head + b"9,\x81\x20,x\n" + "1,李娜,广州\n".encode("gb18030"))
    error = rejected(src)
    assert where(error, "byte_offset", "line") == (len(head) + 2, 50_002)


def test_nul_bytes_are_binary_garbage(tmp_path: Path) -> None:
    garbage = random.Random(1).randbytes(4096)
    error = rejected(write(tmp_path, "drop.csv", garbage))
    assert "NUL" in str(error) and error.context.get("byte_offset") == garbage.index(b"\0")
    data, offset, _ = big_utf8(60_000, b"\0")
    error = rejected(write(tmp_path, "late.csv", data))
    assert error.context.get("byte_offset") == offset


# --- bad CSV -----------------------------------------------------------------------------------


def test_ragged_row_names_data_row_and_line(tmp_path: Path) -> None:
    data = f'id,name,city\n1,"two\nlines",x\n2,a,b\n3,{SECRET},b,extra\n'
    error = rejected(write(tmp_path, "drop.csv", data))
    assert where(error, "row", "line") == (3, 5)
    assert "4 fields" in str(error)


def test_row_larger_than_block(tmp_path: Path) -> None:
    src = write(tmp_path, "drop.csv", f"id,name,city\n1,{SECRET * 500},b\n")
    error = rejected(src, limits=ReadLimits(max_record_bytes=1024))
    assert "larger than the block size" in str(error)


@pytest.mark.parametrize("data", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path: Path, data: bytes) -> None:
    assert "empty file" in str(rejected(write(tmp_path, "drop.csv", data)))


def test_file_over_size_cap_rejected_before_reading(tmp_path: Path) -> None:
    src = tmp_path / "huge.csv"
    with src.open("wb") as fh:
        fh.truncate(2 << 30)  # sparse: 2 GiB of NUL bytes that are never read
    error = rejected(src, limits=ReadLimits(max_file_bytes=1 << 30))
    assert "byte cap" in str(error)


# --- gzip --------------------------------------------------------------------------------------


def test_gzip_csv_and_jsonl(tmp_path: Path) -> None:
    src = write(tmp_path, "drop.csv.gz", gzip.compress(csv_text(GBK_ROWS).encode("gbk")))
    reader, result = read(src)
    assert (reader.info.compression, reader.info.encoding) == ("gzip", "gb18030")
    assert result is not None and rows(result) == GBK_ROWS
    lines = "".join(
        json.dumps(dict(zip(HINTS.expected_columns, r, strict=True))) + "\n" for r in GBK_ROWS
    )
    reader, result = read(write(tmp_path, "drop.jsonl.gz", gzip.compress(lines.encode())))
    assert reader.info.format == "jsonl" and result is not None and rows(result) == GBK_ROWS


def test_truncated_and_corrupt_gzip(tmp_path: Path) -> None:
    data = gzip.compress(csv_text(GBK_ROWS * 200).encode())
    assert "truncated" in str(rejected(write(tmp_path, "cut.csv.gz", data[: len(data) // 2])))
    corrupt = data[:-8] + bytes(8)  # wrong CRC and length
    assert "corrupt" in str(rejected(write(tmp_path, "bad.csv.gz", corrupt)))


def test_parquet_inside_gzip_and_false_names(tmp_path: Path) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": ["1"]}), buf)
    assert "Parquet inside gzip" in str(
        rejected(write(tmp_path, "x.parquet.gz", gzip.compress(buf.getvalue())))
    )
    assert "magic" in str(rejected(write(tmp_path, "x.parquet", "id\n1\n")))
    assert "magic" in str(rejected(write(tmp_path, "x.csv.gz", "id\n1\n")))
    assert ".xls" in str(rejected(write(tmp_path, "old.xls", b"\xd0\xcf\x11\xe0" + bytes(600))))


def test_decompressed_size_over_cap(tmp_path: Path) -> None:
    data = csv_text(GBK_ROWS * 40_000).encode()
    limits = ReadLimits(max_uncompressed_bytes=len(data) // 2)
    error = rejected(write(tmp_path, "drop.csv.gz", gzip.compress(data)), limits=limits)
    assert "once decompressed" in str(error)
    error = rejected(zip_file(tmp_path / "drop.zip", {"a.csv": data}), limits=limits)
    assert "declare" in str(error)


BOMB_BLOCK = b"1,a,b\n" * 174_763  # 1 MiB of a tiny repeated row


def bomb_chunks() -> Iterator[bytes]:
    yield b"id,name,city\n"
    for _ in range(200):
        yield BOMB_BLOCK


def test_gzip_bomb_stopped_by_ratio_while_streaming(tmp_path: Path) -> None:
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    data = b"".join([*(packer.compress(c) for c in bomb_chunks()), packer.flush()])
    assert len(data) < 1 << 20  # 200 MiB in well under 1 MiB
    src = write(tmp_path, "bomb.csv.gz", data)
    with open_source(src, "bomb.csv.gz", HINTS) as reader, pytest.raises(IngestRejected) as info:
        for _ in reader.batches():
            pass
    assert (
        "compression ratio" in str(info.value) and info.value.context.get("file") == "bomb.csv.gz"
    )
    assert reader.rows_read < 10_000_000  # of 35 million: stopped early


def test_zip_bomb_stopped_by_ratio_while_streaming(tmp_path: Path) -> None:
    src = tmp_path / "bomb.zip"
    with (
        zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("bomb.csv", "w", force_zip64=True) as member,
    ):
        for chunk in bomb_chunks():
            member.write(chunk)
    # The sizes members declare bound what they produce: this one is refused before any read.
    # (A bomb that hides in a larger archive is stopped while streaming: test_ingest_boundaries.)
    with pytest.raises(IngestRejected) as info, open_source(src, "bomb.zip", HINTS):
        pass
    assert str(info.value).startswith("bomb.zip: members declare 209715613 bytes")
    assert "ratio above 200" in str(info.value)


# --- zip ---------------------------------------------------------------------------------------


def test_zip_members_concatenated_in_name_order(tmp_path: Path) -> None:
    src = zip_file(
        tmp_path / "drop.zip",
        {
            "part-2.csv": "city,id,name\nc2,2,b\n",
            "part-1.csv": csv_text([("1", "张伟", "深圳")]).encode("gbk"),
            "docs/": "",
            "__MACOSX/._part-1.csv": "junk",
        },
    )
    reader, result = read(src)
    assert reader.info.members == ("part-1.csv", "part-2.csv")
    assert reader.info.member_encodings == ("gb18030", "utf-8")
    assert reader.info.compression == "zip" and reader.columns == ["id", "name", "city"]
    assert result is not None and rows(result) == [("1", "张伟", "深圳"), ("2", "b", "c2")]


def test_fraction_read_follows_the_drop(tmp_path: Path) -> None:
    rng = random.Random(0)  # digits that do not compress away
    data = csv_text(
        [(str(i), str(rng.random()), str(rng.random())) for i in range(300_000)]
    ).encode()
    # Arrow reads ahead on a thread of its own: a small plain file at once, and how far ahead of
    # the first batch a compressed one is depends on the machine's load (0.86 of the gzip was
    # seen read on a loaded CI machine). What must hold: the fraction only grows, a compressed
    # drop is not reported whole before its first batch, and it ends near 1.
    for src, compressed in (
        (write(tmp_path, "drop.csv", data), False),
        (write(tmp_path, "drop.csv.gz", gzip.compress(data)), True),
        (zip_file(tmp_path / "drop.zip", {"a.csv": data, "b.csv": data}), True),
    ):
        with open_source(src, src.name, HINTS, ReadLimits(max_record_bytes=1 << 20)) as reader:
            assert reader.fraction_read is None
            seen = [reader.fraction_read or 0.0 for _ in reader.batches()]
        assert seen == sorted(seen) and seen[0] > 0 and seen[-1] > 0.95, seen
        assert not compressed or seen[0] < 1.0, seen


def test_zip_members_with_different_columns(tmp_path: Path) -> None:
    src = zip_file(
        tmp_path / "drop.zip", {"a.csv": "id,name,city\n1,a,b\n", "b.csv": "id,name\n2,c\n"}
    )
    error = rejected(src, "drop.zip")
    assert str(error).startswith("drop.zip!b.csv:") and error.context.get("column") == "city"
    mixed = zip_file(tmp_path / "mixed.zip", {"a.csv": "id\n1\n", "b.jsonl": '{"id": 2}\n'})
    assert "members must match" in str(rejected(mixed))


def test_zip_parquet_and_jsonl_members(tmp_path: Path) -> None:
    parts = {}
    for i in (1, 2):
        buf = io.BytesIO()
        pq.write_table(pa.table({"id": [i], "name": [f"n{i}"], "city": ["c"]}), buf)
        parts[f"p{i}.parquet"] = buf.getvalue()
    reader, result = read(zip_file(tmp_path / "drop.zip", parts))
    assert reader.info.format == "parquet" and result is not None
    assert result["id"].to_pylist() == [1, 2] and result.schema.field("id").type == pa.int64()
    reader, result = read(zip_file(tmp_path / "j.zip", {"a.ndjson": '{"id": 1, "name": "x"}\n'}))
    assert reader.info.format == "jsonl" and result is not None and result.num_rows == 1


@pytest.mark.parametrize(
    "member", ["../x.csv", "/etc/x.csv", "C:\\x.csv", "dir\\x.csv", "a/../../x.csv"]
)
def test_zip_path_traversal(tmp_path: Path, member: str) -> None:
    error = rejected(zip_file(tmp_path / "drop.zip", {"ok.csv": "id\n1\n", member: "id\n2\n"}))
    assert "unsafe member path" in str(error) and error.context.get("member") == member


def test_zip_symlink_member(tmp_path: Path) -> None:
    src = tmp_path / "drop.zip"
    with zipfile.ZipFile(src, "w") as archive:
        link = zipfile.ZipInfo("data.csv")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    assert "symbolic link" in str(rejected(src))


def test_zip_encrypted_member(tmp_path: Path) -> None:
    data = bytearray(zip_file(tmp_path / "plain.zip", {"data.csv": "id\n1\n"}).read_bytes())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + flag_at
        data[at] |= 0x1  # the "encrypted" bit of the general purpose flags
    assert "encrypted" in str(rejected(write(tmp_path, "drop.zip", bytes(data))))


@pytest.mark.parametrize(
    ("member", "content"),
    [("inner.zip", b"PK\x05\x06" + bytes(18)), ("data.csv.gz", b""), ("data.csv", b"\x1f\x8b\x08")],
)
def test_zip_nested_archive(tmp_path: Path, member: str, content: bytes) -> None:
    error = rejected(zip_file(tmp_path / "drop.zip", {member: content}))
    assert "nested archive" in str(error)


def test_zip_without_data_member(tmp_path: Path) -> None:
    src = zip_file(
        tmp_path / "drop.zip", {"docs/": "", "__MACOSX/._x.csv": "junk", ".DS_Store": ""}
    )
    assert "no data member" in str(rejected(src))
    error = rejected(zip_file(tmp_path / "other.zip", {"readme.pdf": "%PDF"}))
    assert "not a data file" in str(error)


def test_zip_empty_member_named(tmp_path: Path) -> None:
    error = rejected(zip_file(tmp_path / "drop.zip", {"a.csv": ""}), "drop.zip")
    assert str(error) == "drop.zip!a.csv: empty file"


# --- Parquet -----------------------------------------------------------------------------------


def test_parquet_keeps_native_types(tmp_path: Path) -> None:
    src = tmp_path / "drop.pq"
    pq.write_table(
        pa.table({"id": [1, 2], "name": ["a", None], "when": [dt.date(2024, 1, 2)] * 2}), src
    )
    reader, result = read(src)
    assert reader.info.format == "parquet" and reader.info.encoding is None
    assert result is not None and result.schema.field("when").type == pa.date32()
    assert result["id"].to_pylist() == [1, 2]


# --- JSON Lines --------------------------------------------------------------------------------


def test_jsonl_scalars_become_their_json_text(tmp_path: Path) -> None:
    lines = [
        '{"id": 1, "name": "张伟", "amount": 1.50, "ok": true, "none": null,'
        ' "big": 123456789012345678901}',
        "",
        '{"id": -2e3, "city": "深圳", "ok": false}',
    ]
    reader, result = read(write(tmp_path, "drop.ndjson", "\n".join(lines) + "\n"))
    assert reader.columns == ["id", "name", "amount", "ok", "none", "big", "city"]
    assert result is not None and result.to_pylist() == [
        {"id": "1", "name": "张伟", "amount": "1.50", "ok": "true", "none": None,
         "big": "123456789012345678901", "city": None},
        {"id": "-2e3", "name": None, "amount": None, "ok": "false", "none": None, "big": None,
         "city": "深圳"},
    ]  # fmt: skip


def test_jsonl_detected_by_first_byte_and_missing_contract_keys_are_null(tmp_path: Path) -> None:
    reader, result = read(write(tmp_path, "drop.txt", '\n  {"name": "a"}\n'))
    assert reader.info.format == "jsonl" and reader.columns == ["name", "id", "city"]
    assert result is not None and result.to_pylist() == [{"name": "a", "id": None, "city": None}]


@pytest.mark.parametrize(
    ("line", "says", "column"),
    [
        (f'{{"id": 2, "name": {{"first": "{SECRET}"}}}}', "nested dict", "name"),
        (f'{{"id": 2, "name": ["{SECRET}"]}}', "nested list", "name"),
        (f'["{SECRET}"]', "not a JSON object", None),
        (f'{{"id": 2, "name": {SECRET}}}', "invalid JSON (Expecting value at column 19)", None),
        (
            f'{{"id": 2, "name": "{SECRET}", "name": "b"}}',
            "duplicate key #2",
            None,
        ),  # a key's place, never its text
        ('{"id": NaN}', "NaN is not valid JSON", None),
        ('{"id": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply", None),
    ],
)
def test_jsonl_bad_line(tmp_path: Path, line: str, says: str, column: str | None) -> None:
    src = write(tmp_path, "drop.jsonl", '{"id": 1}\n\n' + line + "\n")
    error = rejected(src)
    assert says in str(error) and where(error, "row", "line") == (2, 3)
    assert error.context.get("column") == column


def test_jsonl_key_first_seen_after_first_batch(tmp_path: Path) -> None:
    data = '{"id": 1}\n' * 50_000 + '{"id": 2, "surprise": 1}\n'
    error = rejected(write(tmp_path, "drop.jsonl", data))
    assert where(error, "row", "column") == (50_001, "#2")  # outside the contract: its place


def test_jsonl_array_and_overlong_line(tmp_path: Path) -> None:
    assert "JSON Lines" in str(rejected(write(tmp_path, "drop.json", '[{"id": 1}]')))
    long = write(tmp_path, "long.jsonl", '{"id": "' + SECRET * 100 + '"}\n')
    error = rejected(long, limits=ReadLimits(max_record_bytes=256))
    assert error.context.get("line") == 1


def test_jsonl_undecodable_line(tmp_path: Path) -> None:
    data = b'{"id": "\xe5\xbc\xa0"}\n{"id": "\xff"}\n'
    error = rejected(
        write(tmp_path, "drop.jsonl", data), hints=ReadHints(("id",), encoding="utf-8")
    )
    assert where(error, "byte_offset", "line") == (data.index(b"\xff"), 2)


# --- Excel -------------------------------------------------------------------------------------


def workbook(path: Path, *sheets: tuple[str, list[list[object]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for title, values in sheets:
        sheet = book.create_sheet(title)
        for row in values:
            sheet.append(row)
    book.save(path)
    return path


def test_xlsx_cells_as_text(tmp_path: Path) -> None:
    src = workbook(
        tmp_path / "drop.xlsx",
        ("Data", [
            ["ID", "name", "city", "when", "amount", "flag"],
            [1, "张伟", "深圳", dt.date(2024, 3, 1), 3.0, True],
            [2.0, None, "", dt.datetime(2024, 3, 1, 10, 30, 5), 0.1 + 0.2, False],
            [None] * 6,
            [3, "c", "d", dt.time(8, 15), -1234.5, None],
        ]),
    )  # fmt: skip
    book = openpyxl.load_workbook(src)
    book["Data"].cell(row=40, column=2).number_format = "0.00"  # a styled empty cell far below
    book.save(src)
    reader, result = read(src)
    assert reader.info.format == "xlsx" and reader.columns[0] == "id" and reader.rows_read == 3
    assert result is not None and rows(result) == [
        ("1", "张伟", "深圳", "2024-03-01", "3", "true"),
        ("2", None, None, "2024-03-01T10:30:05", "0.3", "false"),
        ("3", "c", "d", "08:15:00", "-1234.5", None),
    ]


def test_xlsx_sheet_choice_and_errors(tmp_path: Path) -> None:
    src = workbook(
        tmp_path / "drop.xlsx",
        ("First", [["id", "name", "city"], [1, "a", "b"]]),
        ("Second", [["id", "name", "city"], [2, "c", "d"], [3, "e", "f", SECRET]]),
        ("Empty", []),
    )
    assert rows(table(src)) == [("1", "a", "b")]
    error = rejected(src, hints=ReadHints(HINTS.expected_columns, sheet="Second"))
    assert error.context.get("row") == 2 and "beyond the header" in str(error)
    error = rejected(src, hints=ReadHints(HINTS.expected_columns, sheet="Missing"))
    assert "'First', 'Second', 'Empty'" in str(error)
    assert "sheet is empty" in str(rejected(src, hints=ReadHints(("id",), sheet="Empty")))
    broken = zip_file(tmp_path / "broken.xlsx", {"xl/workbook.xml": "<"})
    assert "not a readable xlsx" in str(rejected(broken))


def test_xlsx_sheet_xml_cut_short(tmp_path: Path) -> None:
    good = workbook(tmp_path / "good.xlsx", ("Data", [["id", "name", "city"], [1, "a", "b"]]))
    with zipfile.ZipFile(good) as archive:
        parts = {i.filename: archive.read(i) for i in archive.infolist()}
    sheet = parts["xl/worksheets/sheet1.xml"]
    parts["xl/worksheets/sheet1.xml"] = sheet[: sheet.index(b"<row") + 12]
    assert "not a readable xlsx" in str(rejected(zip_file(tmp_path / "cut.xlsx", parts)))


# --- invariants --------------------------------------------------------------------------------

CELLS = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
    st.sampled_from(["", "NA", "null", "张伟", "臺北市", 'say "hi"', "a,b", "x\ny", " pad "]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(st.tuples(CELLS, CELLS, CELLS), min_size=1, max_size=20),
    codec=st.sampled_from(["utf-8", "gb18030", "utf-16-le"]),
    delimiter=st.sampled_from([",", "\t", ";", "|"]),
)
def test_csv_round_trip(data: list[tuple[str, str, str]], codec: str, delimiter: str) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(HINTS.expected_columns)
    writer.writerows(data)
    hints = ReadHints(HINTS.expected_columns, encoding=codec, delimiter=delimiter)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "drop.csv"
        src.write_bytes(buf.getvalue().encode(codec))
        _, result = read(src, hints=hints)
    expected = [tuple(v or None for v in row) for row in data]
    assert result is not None and rows(result) == expected
