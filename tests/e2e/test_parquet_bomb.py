"""Issue 15, adversary pass 3, row 6: a Parquet dictionary bomb is refused before it is decoded.

A dictionary-encoded BINARY column whose one long value every row points at is a few hundred KB
of Parquet; read plainly, one 64k-row batch decoded to 2.1 GB before the ratio check ran. Every
variable-width column is now read as a dictionary and measured before decoding, and a
fixed-width one (FIXED_LEN_BYTE_ARRAY, which Arrow cannot read as a dictionary) is counted as
rows x width from the footer before anything is read.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import bourse, cli_env, make_project, stop_stack

from databourse.errors import IngestRejected
from databourse.readers.parquet import BATCH_BYTES, decoded_slices
from databourse.readers.stream import ReadHints, open_source

CONTRACT = (  # my-buildops sensor_readings, as configs/providers/my-buildops.yaml declares it
    "reading_id", "site_id", "floor", "reading_time", "temperature_c", "humidity_pct",
    "co2_ppm", "occupant_name", "occupant_mykad", "occupant_phone",
)  # fmt: skip


def bomb_table(rows: int, value: pa.Array) -> pa.Table:
    """The contract's columns; occupant_name is `value`'s one entry, repeated on every row."""
    blob = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), value)
    return pa.table(
        {
            "reading_id": [f"R{i}" for i in range(rows)],
            "site_id": ["KUL-1"] * rows,
            "floor": [3] * rows,
            "reading_time": ["2026-01-05T10:00:00"] * rows,
            "temperature_c": [21.5] * rows,
            "humidity_pct": [55.0] * rows,
            "co2_ppm": [420] * rows,
            "occupant_name": blob,
            "occupant_mykad": pa.nulls(rows, pa.string()),
            "occupant_phone": pa.nulls(rows, pa.string()),
        }
    )


def write_bomb(path: Path, value: pa.Array, rows: int = 65_536) -> Path:
    pq.write_table(bomb_table(rows, value), path, compression="zstd", store_schema=False)
    return path


def read(path: Path) -> int:
    with open_source(path, path.name, ReadHints(CONTRACT)) as reader:
        return sum(batch.num_rows for batch in reader.batches())


def test_a_binary_dictionary_bomb_is_refused_naming_its_column(tmp_path: Path) -> None:
    bomb = write_bomb(tmp_path / "bomb.parquet", pa.array([b"x" * (32 << 10)], pa.binary()))
    assert bomb.stat().st_size < 400_000  # 2 GB once decoded
    with pytest.raises(IngestRejected) as caught:
        read(bomb)
    message = str(caught.value)
    assert message.startswith("bomb.parquet: decodes to 2") and "decompression bomb" in message
    assert "most in column occupant_name" in message
    assert caught.value.context["column"] == "occupant_name"

    honest = pa.table(  # binary and fixed-width columns still read as themselves
        {
            "reading_id": ["R1", "R2", "R3"],
            "occupant_name": pa.array([b"a", None, b"ccc"], pa.binary()),
            "occupant_mykad": pa.array([b"12", b"34", b"56"], pa.binary(2)),
        }
    )
    pq.write_table(honest, tmp_path / "honest.parquet")
    with open_source(tmp_path / "honest.parquet", "honest.parquet", ReadHints(CONTRACT)) as reader:
        [batch] = list(reader.batches())
    assert batch.schema.field("occupant_name").type == pa.binary()
    assert batch.column("occupant_name").to_pylist() == [b"a", None, b"ccc"]
    assert batch.column("occupant_mykad").to_pylist() == [b"12", b"34", b"56"]


def test_a_fixed_width_dictionary_bomb_is_refused_from_its_footer(tmp_path: Path) -> None:
    """Arrow decodes FIXED_LEN_BYTE_ARRAY to full width whatever the dictionary: counted first."""
    wide = pa.array([b"x" * (8 << 10)], pa.binary(8 << 10))
    bomb = write_bomb(tmp_path / "fixed.parquet", wide, rows=4096)  # 32 MiB wide, 30 KB small
    refused = pytest.raises(IngestRejected, match=r"declares \d+ bytes of data .* occupant_name")
    with refused, open_source(bomb, bomb.name, ReadHints(CONTRACT)):
        pass  # refused while planning: nothing was read


def test_a_large_batch_is_decoded_in_slices() -> None:
    """A batch measured at 3 x BATCH_BYTES is decoded (and handed on) in three slices."""
    values = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0, 1, 0, 1]), ["a", "bb"])
    batch = pa.RecordBatch.from_arrays([values, pa.array(range(6))], names=["v", "n"])
    parts = list(decoded_slices(batch, ["v"], 3 * BATCH_BYTES))
    assert [p.num_rows for p in parts] == [2, 2, 2]
    assert all(p.schema.field("v").type == pa.string() for p in parts)
    assert [v for p in parts for v in p.column("v").to_pylist()] == ["a", "bb"] * 3


# --- through the real CLI, in a child whose peak memory is measured ---------------------------

_MEASURE = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=300)
sys.stderr.write(proc.stderr)
sys.stdout.write(proc.stdout)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss >> 10
print(f"\\nrc={proc.returncode} peak_mib={peak}")
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    environment = cli_env(make_project(tmp_path_factory.mktemp("bomb") / "project"))
    bourse(environment, "server", "start")  # started here, so the measured run only ingests
    yield environment
    stop_stack(environment)


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_bourse_ingest_refuses_the_bomb_within_bounded_memory(
    env: dict[str, str], tmp_path: Path
) -> None:
    bomb = write_bomb(tmp_path / "bomb.parquet", pa.array([b"x" * (32 << 10)], pa.binary()))
    command = [sys.executable, "-m", "bourse", "ingest", "my-buildops", "sensor_readings"]
    started = dt.datetime.now()
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command, str(bomb)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    took = (dt.datetime.now() - started).total_seconds()
    *_, last = proc.stdout.strip().splitlines()
    rc, peak = (int(part.split("=")[1]) for part in last.split())
    assert rc == 1, proc.stdout + proc.stderr
    said = " ".join(proc.stderr.split())
    assert "bomb.parquet: decodes to" in said and "most in column occupant_name" in said, said
    assert "quarantined at" in said and "Traceback" not in said
    assert peak < 600, f"peak RSS {peak} MiB"  # the old reader: about 3,500 MiB
    assert took < 120  # refused at the first batch, not after reading on
    project = Path(env["DATABOURSE_CONFIG_DIR"]).parent
    [reason] = (project / "state/store/quarantine/my-buildops/sensor_readings").glob(
        "*/_reason.json"
    )
    found = json.loads(reason.read_text())
    assert found["file"] == "bomb.parquet" and "occupant_name" in found["error"]
    assert os.path.getsize(reason.parent / "bomb.parquet") == bomb.stat().st_size
