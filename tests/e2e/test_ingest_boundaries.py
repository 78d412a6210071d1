"""Issue 15, slice G: the boundaries of ingest hold against a provider or an insider (attack 10).

Each attack is done as an insider would do it: links planted in a drop folder or in the landing
zone of the store, then the real CLI (`bourse ingest`, `bourse nightly`); hostile archives,
headers and workbooks made with zipfile and openpyxl. Refusals are read back from the CLI's
output, the store's files and the catalog's audit table (SQL).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow.parquet as pq
import pytest
from helpers import bourse, cli_env, make_project, stop_stack

from bourse.sources import expand
from databourse.config import DatasetSpec, IngestLimits
from databourse.errors import IngestRejected
from databourse.ingest.files import ingest_file
from databourse.ingest.landing import discover
from databourse.readers.stream import ReadHints, ReadLimits, open_source
from databourse.storage.opening import open_store
from databourse_samples.demo import generate_drops

SPEC = DatasetSpec.model_validate(
    {
        "primary_key": ["id"],
        "columns": [
            {"name": "id", "type": "string", "nullable": False},
            {"name": "name", "type": "string"},
            {"name": "amount", "type": "int64"},
        ],
    }
)
HINTS = ReadHints(("id", "name", "amount"))


# --- helpers -----------------------------------------------------------------------------------


def store_files(project: Path) -> dict[str, bytes]:
    """Every object of the project's local store: key -> bytes (links not followed)."""
    root = project / "state/store"
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and ".tmp" not in path.parts:
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def keys_holding(project: Path, data: bytes, under: str = "") -> list[str]:
    """The store keys (under a prefix) whose bytes are exactly `data`."""
    return sorted(k for k, v in store_files(project).items() if k.startswith(under) and v == data)


def audit_events(project: Path) -> list[tuple[str, dict[str, Any]]]:
    """(kind, detail) of every audit event, read from the catalog database with SQL."""
    with sqlite3.connect(project / "state/catalog.db") as db:
        rows = db.execute("SELECT kind, detail FROM audit_events ORDER BY seq").fetchall()
    return [
        (kind, json.loads(detail) if isinstance(detail, str) else detail) for kind, detail in rows
    ]


def refusals(project: Path, words: str) -> list[dict[str, Any]]:
    """Quarantine events whose message holds `words`."""
    return [d for k, d in audit_events(project) if k == "quarantine" and words in d["message"]]


def workbook(sheets: list[tuple[str, str, list[list[Any]]]]) -> bytes:
    """An xlsx with (title, state, rows) sheets in order."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, state, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
        sheet.sheet_state = state
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def one_row_members(path: Path, count: int, header: str = "id,name,amount") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(count):
            archive.writestr(f"part-{i:05d}.csv", f"{header}\n{i},n{i},{i}\n")
    return path


# --- through the real CLI ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    environment = cli_env(make_project(tmp_path_factory.mktemp("boundaries") / "project"))
    yield environment
    stop_stack(environment)


@pytest.fixture(scope="module")
def project(env: dict[str, str]) -> Path:
    return Path(env["DATABOURSE_CONFIG_DIR"]).parent


@pytest.fixture(scope="module")
def readings(tmp_path_factory: pytest.TempPathFactory) -> str:
    drops = generate_drops(tmp_path_factory.mktemp("drops"), seed=13, scale=0.05)
    path = next(d.path for d in drops if d.provider == "my-buildops")
    return path.read_text(encoding="utf-8")


@pytest.mark.e2e
def test_a_cli_source_linked_to_a_system_file_is_refused_unread_and_audited(
    env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    secret = Path("/etc/passwd").read_bytes()
    link = tmp_path / "readings.csv"
    link.symlink_to("/etc/passwd")
    proc = bourse(env, "ingest", "my-buildops", "sensor_readings", str(link), check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "refused: " in proc.stderr  # unread, so nothing quarantined
    assert "readings.csv: is a symbolic link; links are never followed" in proc.stderr
    assert keys_holding(project, secret) == []  # not in raw/, not in quarantine/
    [event] = refusals(project, "readings.csv: is a symbolic link")
    assert event["provider"] == "my-buildops" and event["error"] == "IngestRejected"


@pytest.mark.e2e
def test_links_in_a_drop_folder_are_refused_and_its_files_ingested(
    env: dict[str, str], project: Path, readings: str, tmp_path: Path
) -> None:
    lines = readings.splitlines()
    outside = tmp_path / "elsewhere"
    (outside / "deep").mkdir(parents=True)
    other = "\n".join([lines[0], *lines[5:9]]) + "\n"  # valid rows, other bytes
    (outside / "other-tenant.csv").write_text(other)
    (outside / "deep" / "more.csv").write_text("\n".join([lines[0], *lines[9:12]]) + "\n")
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "good.csv").write_text("\n".join(lines[:5]) + "\n")
    (folder / "linked.csv").symlink_to(outside / "other-tenant.csv")
    (folder / "sub").symlink_to(outside / "deep", target_is_directory=True)

    proc = bourse(env, "ingest", "my-buildops", "sensor_readings", str(folder), check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "ingested good.csv" in proc.stdout
    assert "linked.csv: is a symbolic link" in proc.stderr
    assert "sub: is a symbolic link" in proc.stderr
    assert keys_holding(project, other.encode()) == []
    assert keys_holding(project, (outside / "deep" / "more.csv").read_bytes()) == []
    assert len(refusals(project, "linked.csv: is a symbolic link")) == 1
    assert len(refusals(project, "sub: is a symbolic link")) == 1


@pytest.mark.e2e
def test_nightly_refuses_landing_links_to_another_tenants_raw_files(
    env: dict[str, str], project: Path, readings: str
) -> None:
    store = project / "state/store"
    lines = readings.splitlines()
    # Another provider's raw files, as an insider with access to the store would find them.
    theirs = store / "raw/sz-retail/orders/00000000000000aa/orders.csv"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("\n".join([lines[0], *lines[12:16]]) + "\n")  # sensor rows: would pass
    other = store / "raw/sz-retail/orders/00000000000000bb/orders.csv"
    other.parent.mkdir(parents=True)
    other.write_text("\n".join([lines[0], *lines[16:20]]) + "\n")
    landing = store / "landing/my-buildops/sensor_readings/2026-12-04"
    landing.mkdir(parents=True)
    (landing / "linked.csv").symlink_to(theirs)
    os.link(other, landing / "hard.csv")

    found = json.loads(bourse(env, "discover", "my-buildops", "--json").stdout)
    status = {d["name"]: (d["status"], d["reason"]) for d in found["drops"]}
    assert status["linked.csv"][0] == "refused" and "symbolic link" in status["linked.csv"][1]
    assert status["hard.csv"][0] == "refused" and "hard link" in status["hard.csv"][1]

    run = json.loads(bourse(env, "nightly", "my-buildops", "--json").stdout)
    assert run["processed"] == [] and run["summary"]["refused"] == 2
    for stolen in (theirs, other):
        assert keys_holding(project, stolen.read_bytes(), "raw/my-buildops") == []
        assert keys_holding(project, stolen.read_bytes(), "quarantine/") == []
    assert refusals(project, "2026-12-04/linked.csv: a symbolic link")
    assert refusals(project, "2026-12-04/hard.csv: a hard link")


@pytest.mark.e2e
def test_a_zip_of_10000_one_row_members_is_refused_in_seconds(
    env: dict[str, str], project: Path, readings: str, tmp_path: Path
) -> None:
    header, *lines = readings.splitlines()
    src = tmp_path / "many.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(10_000):
            archive.writestr(f"part-{i:05d}.csv", f"{header}\n{lines[i % len(lines)]}\n")
    started = time.monotonic()
    proc = bourse(env, "ingest", "my-buildops", "sensor_readings", str(src), check=False)
    took = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (
        "many.zip: holds 10000 entries, over the cap of 1000 members per archive"
        " (ingest.max_archive_members)" in proc.stderr
    )
    assert "quarantined at" in proc.stderr
    print(f"10,000-member zip ({src.stat().st_size} bytes) refused by the CLI in {took:.1f} s")


@pytest.mark.e2e
def test_a_20_mb_header_line_is_refused_in_seconds(
    env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    src = tmp_path / "wide.csv"
    with src.open("w") as out:
        out.write(",".join(f"column_{i}" for i in range(2_000_000)))  # ~ 20 MB, one line
        out.write("\n1\n")
    started = time.monotonic()
    proc = bourse(env, "ingest", "my-buildops", "sensor_readings", str(src), check=False)
    took = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (
        "wide.csv: the header line is longer than the 262144 byte cap (ingest.max_header_bytes)"
        in proc.stderr
    )
    assert "quarantined at" in proc.stderr
    print(f"{src.stat().st_size} byte header refused by the CLI in {took:.1f} s")


@pytest.mark.e2e
def test_a_workbook_whose_first_sheet_is_hidden_is_refused(
    env: dict[str, str], project: Path, readings: str, tmp_path: Path
) -> None:
    rows = [line.split(",") for line in readings.splitlines()]
    decoy = [rows[0], *[[*r[:4], "99.9", *r[5:]] for r in rows[1:6]]]  # same shape, other values
    src = tmp_path / "readings.xlsx"
    src.write_bytes(workbook([("Archive", "hidden", decoy), ("Readings", "visible", rows[:6])]))
    proc = bourse(env, "ingest", "my-buildops", "sensor_readings", str(src), check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "readings.xlsx: its first sheet 'Archive' is hidden" in proc.stderr
    assert "visible: ['Readings']" in proc.stderr and "read.sheet" in proc.stderr
    assert "quarantined at" in proc.stderr
    [reason] = [
        json.loads(v)
        for k, v in store_files(project).items()
        if k.startswith("quarantine/my-buildops/")
        and k.endswith("_reason.json")
        and json.loads(v)["file"] == "readings.xlsx"
    ]
    assert reason["sheet"] == "Archive"
    assert refusals(project, "its first sheet 'Archive' is hidden")


# --- symbolic and hard links in the domain -----------------------------------------------------


def test_ingest_file_refuses_a_link_and_stores_nothing(tmp_path: Path) -> None:
    target = tmp_path / "real.csv"
    target.write_text("id,name,amount\n1,a,2\n")
    link = tmp_path / "drop.csv"
    link.symlink_to(target)
    store = open_store(str(tmp_path / "store"))
    with pytest.raises(IngestRejected, match=r"^drop\.csv: is a symbolic link"):
        ingest_file(store, "p", "d", SPEC, link)
    assert list(store.list("")) == []


def test_expand_names_links_as_found_and_a_manifest_may_not_list_one(tmp_path: Path) -> None:
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "theirs.csv").write_text("id,name,amount\n1,a,2\n")
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "mine.csv").write_text("id,name,amount\n2,b,3\n")
    (folder / "link.csv").symlink_to(tmp_path / "secret" / "theirs.csv")
    (folder / "dir").symlink_to(tmp_path / "secret", target_is_directory=True)
    found = expand(str(folder))
    assert [(s.name, s.location) for s in found] == [
        ("dir", str(folder / "dir")),
        ("link.csv", str(folder / "link.csv")),  # not the file it points at
        ("mine.csv", str(folder / "mine.csv")),
    ]
    assert [s.name for s in expand(str(folder / "*.csv"))] == ["link.csv", "mine.csv"]
    sha = hashlib.sha256((tmp_path / "secret" / "theirs.csv").read_bytes()).hexdigest()
    (folder / "drop.manifest.json").write_text(
        json.dumps({"files": [{"name": "link.csv", "sha256": sha}]})
    )
    with pytest.raises(IngestRejected, match=r"lists 'link\.csv', a symbolic link"):
        expand(str(folder))


def test_a_file_replaced_while_it_is_ingested_is_quarantined(tmp_path: Path) -> None:
    src = tmp_path / "drop.csv"
    src.write_text("id,name,amount\n" + "".join(f"{i},n,{i}\n" for i in range(100_000)))
    swapped = tmp_path / "swap.csv"
    swapped.write_text("id,name,amount\n1,other,2\n")

    def swap(rows: int, share: float | None) -> None:
        os.replace(swapped, src) if swapped.exists() else None

    store = open_store(str(tmp_path / "store"))
    with pytest.raises(IngestRejected, match="changed while it was being ingested") as info:
        ingest_file(store, "p", "d", SPEC, src, progress=swap)
    assert info.value.context["quarantine_uri"]
    assert not [o for o in store.list("raw/") if o.key.endswith("_ingest.json")]


def test_discover_refuses_a_provider_folder_that_is_a_link(tmp_path: Path) -> None:
    from databourse.config import load_config

    providers = load_config(Path(__file__).resolve().parents[2] / "configs").providers
    store = open_store(str(tmp_path / "store"))
    store.put_bytes("raw/sz-retail/orders/00000000000000aa/sensor_readings/x.csv", b"a\n1\n")
    (tmp_path / "store/landing").mkdir()
    (tmp_path / "store/landing/my-buildops").symlink_to(
        tmp_path / "store/raw/sz-retail/orders/00000000000000aa"
    )
    [drop] = discover(store, providers, "my-buildops").drops
    assert drop.status == "refused" and drop.sha256 is None
    assert drop.reason is not None and "through a symbolic link to a folder" in drop.reason


# --- zip archives ------------------------------------------------------------------------------


def test_every_member_is_read_through_one_zipfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = one_row_members(tmp_path / "drop.zip", 200)
    parses = []
    real = zipfile.ZipFile._RealGetContents  # type: ignore[attr-defined]

    def counted(self: zipfile.ZipFile) -> None:
        parses.append(1)
        real(self)

    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", counted)
    with open_source(src, src.name, HINTS) as reader:
        rows = sum(b.num_rows for b in reader.batches())
    assert rows == 200 and len(parses) == 1  # was two per member, and twice more


@pytest.mark.timeout(120)
def test_10000_members_allowed_by_the_cap_are_read_in_seconds(tmp_path: Path) -> None:
    src = one_row_members(tmp_path / "many.zip", 10_000)
    started = time.monotonic()
    with open_source(src, src.name, HINTS, ReadLimits(max_archive_members=10_000)) as reader:
        rows = sum(b.num_rows for b in reader.batches())
    assert rows == 10_000 and reader.info.members[-1] == "part-09999.csv"
    print(f"10,000 members read with one ZipFile in {time.monotonic() - started:.1f} s")


def test_the_member_cap_is_a_setting_of_the_dataset(tmp_path: Path) -> None:
    src = one_row_members(tmp_path / "drop.zip", 11)
    store = open_store(str(tmp_path / "store"))
    limits = IngestLimits(max_archive_members=10)
    with pytest.raises(IngestRejected, match=r"holds 11 entries, over the cap of 10 members"):
        ingest_file(store, "p", "d", SPEC, src, limits=limits)
    result = ingest_file(store, "p", "d", SPEC, src, limits=IngestLimits(max_archive_members=11))
    assert result.rows == 11 and len(result.members) == 11


def test_many_small_members_cannot_add_up_to_a_bomb(tmp_path: Path) -> None:
    # Each member is 1 MiB, under the size where a ratio is checked while streaming; together
    # they are 300 MiB from a few hundred KiB.
    row = b"1,aaaaaaaaaaaaaaaaaaaa,1\n"
    body = b"id,name,amount\n" + row * ((1 << 20) // len(row) - 1)
    src = tmp_path / "bomb.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(300):
            archive.writestr(f"part-{i:03d}.csv", body)
    with pytest.raises(IngestRejected) as info, open_source(src, src.name, HINTS):
        pass
    assert str(info.value).startswith(f"bomb.zip: members declare {300 * len(body)} bytes")
    assert "a ratio above 200" in str(info.value) and "nothing was read" in str(info.value)


def test_a_bomb_inside_a_larger_archive_is_stopped_while_streaming(tmp_path: Path) -> None:
    bomb = b"id,name,amount\n" + b"1,a,1\n" * (40 << 20)  # 240 MiB of one row
    noise = b"id,name,amount\n" + b"".join(
        f"{i},{os.urandom(24).hex()},{i}\n".encode() for i in range(60_000)
    )  # ~3.7 MiB that barely compresses: the archive as a whole is under the ratio
    src = tmp_path / "hidden.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a-bomb.csv", bomb)
        archive.writestr("b-noise.csv", noise)
    assert (len(bomb) + len(noise)) / src.stat().st_size < 200
    with open_source(src, src.name, HINTS) as reader, pytest.raises(IngestRejected) as info:
        for _ in reader.batches():
            pass
    assert str(info.value).startswith("hidden.zip!a-bomb.csv: compression ratio above 200")
    assert reader.rows_read < 10_000_000


# --- header lines ------------------------------------------------------------------------------


def header_of(size: int) -> str:
    """A header of distinct names exactly `size` bytes long."""
    names: list[str] = []
    length = -1  # of ",".join(names)
    while length + len(f"c{len(names)}") + 1 <= size - 12:
        names.append(f"c{len(names)}")
        length += len(names[-1]) + 1
    return ",".join([*names, "z" * (size - length - 1)])


@pytest.mark.timeout(60)
def test_a_header_at_the_cap_is_read_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    cap = 256 << 10
    for size, accepted in ((cap, True), (cap + 1, False)):
        header = header_of(size)
        assert len(header) == size
        src = tmp_path / f"h{size}.csv"
        src.write_text(header + "\n" + ",".join("1" for _ in header.split(",")) + "\n")
        started = time.monotonic()
        try:
            with open_source(src, src.name, HINTS) as reader:
                rows = sum(b.num_rows for b in reader.batches())
            outcome: Any = rows
        except IngestRejected as exc:
            outcome = exc
        took = time.monotonic() - started
        if accepted:
            assert outcome == 1 and len(reader.columns) == len(header.split(","))
            print(f"{len(reader.columns)} columns, a {size} byte header, read in {took:.1f} s")
        else:
            assert isinstance(outcome, IngestRejected)
            assert f"the header line is longer than the {cap} byte cap" in str(outcome)
            assert outcome.context["row"] == 0 and outcome.context["file"] == src.name


def test_the_header_cap_is_a_setting_and_counts_encoded_bytes(tmp_path: Path) -> None:
    src = tmp_path / "drop.csv"
    header = "id,name,amount," + ",".join(f"列{i}" for i in range(400))  # 3 bytes a 列
    src.write_text(header + "\n1,a,2" + "," * 400 + "\n", encoding="utf-8")
    size = len(header.encode())
    smaller = ReadLimits(max_header_bytes=size - 1)
    with (
        pytest.raises(IngestRejected, match=f"longer than the {size - 1} byte cap"),
        open_source(src, src.name, HINTS, smaller),
    ):
        pass
    with open_source(src, src.name, HINTS, ReadLimits(max_header_bytes=size)) as reader:
        assert len(reader.columns) == 403


def test_a_headerless_files_first_row_is_capped_as_a_row_not_as_a_header(tmp_path: Path) -> None:
    src = tmp_path / "drop.csv"
    wide = ",".join(c * (120 << 10) for c in "xa9")  # 360 KiB of fields the csv module can take
    src.write_text(f"{wide}\n2,b,3\n")
    with open_source(src, src.name, ReadHints(HINTS.expected_columns, header="absent")) as reader:
        assert sum(b.num_rows for b in reader.batches()) == 2
    with (
        pytest.raises(IngestRejected, match="header line is longer"),
        open_source(src, src.name, HINTS),
    ):
        pass


# --- workbooks ---------------------------------------------------------------------------------


ROWS: list[list[Any]] = [["id", "name", "amount"], ["1", "Tan", 10], ["2", "Lim", 20]]
DECOY: list[list[Any]] = [["id", "name", "amount"], ["9", "Decoy", 99]]


def with_read(**read: Any) -> DatasetSpec:
    return SPEC.model_copy(update={"read": SPEC.read.model_copy(update=read)})


def ingest_xlsx(tmp_path: Path, data: bytes, spec: DatasetSpec = SPEC) -> Any:
    tmp_path.mkdir(exist_ok=True)
    src = tmp_path / "book.xlsx"
    src.write_bytes(data)
    store = open_store(str(tmp_path / "store"))
    result = ingest_file(store, "p", "d", spec, src)
    rows = pq.read_table(store.local_path(result.staged_key)).to_pylist()
    record = json.loads(store.get_bytes(result.raw_key.rsplit("/", 1)[0] + "/_ingest.json"))
    return record, rows


def test_the_sheet_read_is_recorded_in_the_ingest_record(tmp_path: Path) -> None:
    record, rows = ingest_xlsx(tmp_path, workbook([("Orders", "visible", ROWS)]))
    assert record["sheet"] == "Orders" and [r["name"] for r in rows] == ["Tan", "Lim"]


@pytest.mark.parametrize("state", ["hidden", "veryHidden"])
def test_a_hidden_first_sheet_is_refused_naming_it(tmp_path: Path, state: str) -> None:
    data = workbook([("Decoy", state, DECOY), ("Orders", "visible", ROWS)])
    with pytest.raises(IngestRejected) as info:
        ingest_xlsx(tmp_path, data)
    words = "very hidden" if state == "veryHidden" else "hidden"
    assert f"book.xlsx: its first sheet 'Decoy' is {words}" in str(info.value)
    assert info.value.context["sheet"] == "Decoy"


def test_a_named_sheet_is_read_and_a_hidden_one_needs_allowing(tmp_path: Path) -> None:
    data = workbook([("Decoy", "veryHidden", DECOY), ("Orders", "visible", ROWS)])
    record, rows = ingest_xlsx(tmp_path / "a", data, with_read(sheet="Orders"))
    assert record["sheet"] == "Orders" and len(rows) == 2
    with pytest.raises(IngestRejected, match=r"sheet 'Decoy' is very hidden.*allow_hidden_sheets"):
        ingest_xlsx(tmp_path / "b", data, with_read(sheet="Decoy"))
    record, rows = ingest_xlsx(
        tmp_path / "c", data, with_read(sheet="Decoy", allow_hidden_sheets=True)
    )
    assert record["sheet"] == "Decoy" and [r["name"] for r in rows] == ["Decoy"]


def test_a_formula_without_a_cached_value_is_refused_naming_its_cell(tmp_path: Path) -> None:
    data = workbook([("Orders", "visible", [*ROWS, ["3", "Ong", "=B2*2"]])])  # openpyxl: no value
    with pytest.raises(IngestRejected) as info:
        ingest_xlsx(tmp_path, data)
    message = str(info.value)
    assert "sheet 'Orders': 1 formula cell(s) without a cached value, the first at C4" in message
    assert "(column 'amount')" in message
    assert info.value.context["cell"] == "C4" and info.value.context["column"] == "amount"
    reason = json.loads(
        next((tmp_path / "store/quarantine").rglob("_reason.json")).read_text(encoding="utf-8")
    )
    assert reason["sheet"] == "Orders" and reason["cell"] == "C4"


def test_a_formula_with_its_cached_value_is_read(tmp_path: Path) -> None:
    data = workbook([("Orders", "visible", [*ROWS, ["3", "Ong", "=C2*3"], ["4", "Ho", '=""']])])
    source, patched = io.BytesIO(data), io.BytesIO()
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(patched, "w") as new:
        for item in old.infolist():
            body = old.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":  # what Excel saves: computed values
                body = body.replace(b"<f>C2*3</f><v />", b"<f>C2*3</f><v>30</v>")
                body = body.replace(
                    b'<c r="C5"><f>""</f><v />', b'<c r="C5" t="str"><f>""</f><v />'
                )
            new.writestr(item, body)
    _, rows = ingest_xlsx(tmp_path, patched.getvalue())
    assert [r["amount"] for r in rows] == [10, 20, 30, None]
