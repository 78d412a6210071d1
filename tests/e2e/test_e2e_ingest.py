"""`bourse ingest` and `bourse discover` through the real CLI: folders, formats, bad files."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import bourse, cli_env, make_project, stop_stack

from databourse_samples.demo import generate_drops

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    environment = cli_env(make_project(tmp_path_factory.mktemp("e2e-ingest") / "project"))
    yield environment
    stop_stack(environment)


@pytest.fixture(scope="module")
def readings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    drops = generate_drops(tmp_path_factory.mktemp("drops"), seed=11, scale=0.05)
    return next(d.path for d in drops if d.provider == "my-buildops")


def test_a_folder_of_formats_with_a_manifest(
    env: dict[str, str], readings: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    text = readings.read_text(encoding="utf-8")
    (folder / "a-utf16.csv").write_bytes(text.encode("utf-16"))
    (folder / "b.tsv.gz").write_bytes(gzip.compress(text.replace(",", "\t").encode(), mtime=0))
    with zipfile.ZipFile(folder / "c.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("part-1.csv", text)
    rows = len(text.splitlines()) - 1
    sha = hashlib.sha256((folder / "a-utf16.csv").read_bytes()).hexdigest()
    manifest = {"files": [{"name": "a-utf16.csv", "sha256": sha, "rows": rows}]}
    (folder / "drop.manifest.json").write_text(json.dumps(manifest))

    proc = bourse(env, "ingest", "my-buildops", "sensor_readings", str(folder))
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3, proc.stdout
    assert f"a-utf16.csv as {sha[:16]}: {rows} rows (csv, utf-16" in lines[0]
    assert f": {rows} rows (csv, utf-8)" in lines[1] and f": {rows} rows (csv, utf-8)" in lines[2]
    again = bourse(env, "ingest", "my-buildops", "sensor_readings", str(folder / "*.zip"))
    assert "identical bytes already ingested" in again.stdout


def test_one_bad_file_in_a_folder_fails_the_command_but_not_the_others(
    env: dict[str, str], readings: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    lines = readings.read_text(encoding="utf-8").splitlines()
    (folder / "good.csv").write_text("\n".join([lines[0], *lines[1:5]]) + "\n")
    ragged = [lines[0], lines[1], lines[2] + ",EXTRA-SECRET", lines[3]]
    (folder / "ragged.csv").write_text("\n".join(ragged) + "\n")
    proc = bourse(env, "ingest", "my-buildops", "sensor_readings", str(folder), check=False)
    assert proc.returncode == 1
    assert "ingested good.csv" in proc.stdout
    assert "ragged.csv: data row 2 (line 3) has 11 fields, the header has 10" in proc.stderr
    assert "quarantined at" in proc.stderr and "EXTRA-SECRET" not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr  # an expected outcome, said in one line


def test_a_manifest_that_does_not_match_refuses_the_drop(
    env: dict[str, str], readings: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "lying"
    folder.mkdir()
    shutil.copy(readings, folder / "r.csv")
    (folder / "r.csv.manifest.json").write_text(
        json.dumps({"files": [{"name": "r.csv", "sha256": "0" * 64}]})
    )
    proc = bourse(env, "ingest", "my-buildops", "sensor_readings", str(folder), check=False)
    assert proc.returncode == 1 and "r.csv: sha256 differs from its manifest" in proc.stderr


def test_discover_says_what_is_new_by_content(
    env: dict[str, str], readings: Path, tmp_path: Path
) -> None:
    project = Path(env["DATABOURSE_CONFIG_DIR"]).parent
    landing = project / "state/store/landing/my-buildops/sensor_readings"
    landing.mkdir(parents=True, exist_ok=True)
    fresh = readings.read_text(encoding="utf-8").replace("KUL", "PNG")  # other bytes
    (landing / "today.csv").write_text(fresh)
    shutil.copy(readings, landing / "renamed-old.csv")
    bourse(env, "ingest", "my-buildops", "sensor_readings", str(readings))
    found = json.loads(bourse(env, "discover", "my-buildops", "--json").stdout)
    status = {d["name"]: d["status"] for d in found["drops"]}
    assert status == {"today.csv": "new", "renamed-old.csv": "ingested"}
    table = bourse(env, "discover").stdout
    assert "1 new" in table and "1 ingested" in table
