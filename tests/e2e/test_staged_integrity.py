"""Issue 15, slice R5: staged and raw data are what was ingested (adversary rows 10 and 11).

An insider who can write the object store edits a staged Parquet (and, to cover it, the
`_ingest.json` beside the raw file), or rewrites a raw CSV and its record. The attacks go through
the real CLI (`bourse run` twice with an edit between, `bourse verify --all`); the store is edited
with pyarrow and plain file writes, the catalog read back with SQL.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import TEST_KEY
from helpers import bourse, cli_env, make_project, stop_stack

pytestmark = [pytest.mark.e2e, pytest.mark.prefect]

PROVIDER, DATASET = "sz-retail", "customer_orders"


def drop(project: Path, seed: int) -> Path:
    """A small customer_orders drop in the landing zone; another seed gives other bytes."""
    from databourse_samples.demo import generate_drops

    found = generate_drops(project / f"drops-{seed}", seed=seed, scale=0.2)
    [orders] = [d for d in found if d.dataset == DATASET]
    landing = project / "state" / "store" / "landing" / PROVIDER / DATASET
    landing.mkdir(parents=True, exist_ok=True)
    return orders.path.rename(landing / f"orders-{seed}.csv")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    project = make_project(tmp_path_factory.mktemp("staged") / "project")
    env = cli_env(project, DATABOURSE_PSEUDONYM_KEY=TEST_KEY)
    yield project, env
    stop_stack(env)


def ingest_folder(project: Path, source: Path) -> tuple[str, Path, Path]:
    """The ingest id of a drop, its raw folder and its staged Parquet."""
    ident = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    store = project / "state" / "store"
    return (
        ident,
        store / "raw" / PROVIDER / DATASET / ident,
        store / "staging" / PROVIDER / DATASET / ident / "data.parquet",
    )


def versions(project: Path) -> list[tuple[str, str]]:
    """(product, version) of every catalog version, read with SQL."""
    with sqlite3.connect(project / "state" / "catalog.db") as db:
        rows = db.execute("SELECT product_id, version FROM versions ORDER BY id").fetchall()
    return [(str(p), str(v)) for p, v in rows]


def ingest_events(project: Path, ident: str) -> list[dict[str, Any]]:
    return [d for d in audit_details(project, "ingest") if d["ingest_id"] == ident]


def audit_details(project: Path, kind: str) -> list[dict[str, Any]]:
    with sqlite3.connect(project / "state" / "catalog.db") as db:
        rows = db.execute("SELECT detail FROM audit_events WHERE kind = ?", (kind,)).fetchall()
    return [json.loads(d) if isinstance(d, str) else d for (d,) in rows]


def times_ten(path: Path, column: str) -> None:
    """The insider's edit: one numeric column multiplied by 10, written back in place."""
    table = pq.read_table(path)
    index = table.schema.get_field_index(column)
    scaled = pc.multiply(table[column], pa.scalar(10.0, table.schema.field(column).type))
    pq.write_table(table.set_column(index, column, scaled), path, compression="zstd")


def findings(env: dict[str, str]) -> tuple[int, list[dict[str, Any]]]:
    checked = bourse(env, "verify", "--all", "--json", check=False)
    return checked.returncode, json.loads(checked.stdout)["findings"]


def test_edited_staged_parquet_is_refused_on_rerun(stack: tuple[Path, dict[str, str]]) -> None:
    """Row 10: staged data multiplied by 10, the same drop run again: refused, nothing published;
    covering the edit in `_ingest.json` is refused too, against the MAC'd ingest event."""
    project, env = stack
    source = drop(project, 1)
    bourse(env, "run", PROVIDER, DATASET, str(source))
    published = versions(project)
    ident, raw, staged = ingest_folder(project, source)
    record = json.loads((raw / "_ingest.json").read_text())
    [event] = ingest_events(project, ident)
    assert record["staged_sha256"] == hashlib.sha256(staged.read_bytes()).hexdigest()
    assert event["staged_sha256"] == record["staged_sha256"]
    assert event["staged_size"] == staged.stat().st_size == record["staged_size"]
    lineage = json.loads(
        (
            project / "state/store/products" / published[0][0] / published[0][1] / "manifest.json"
        ).read_text()
    )["lineage"]["ingests"]
    assert lineage[0]["staged_sha256"] == record["staged_sha256"]
    assert lineage[0]["sha256"] == record["sha256"]

    times_ten(staged, "amount_cny")
    again = bourse(env, "run", PROVIDER, DATASET, str(source), check=False)
    said = again.stdout + again.stderr
    assert again.returncode != 0, said
    assert "staged Parquet changed after ingest" in said and ident in said, said
    assert versions(project) == published
    code, found = findings(env)
    assert code == 1
    assert any(f["kind"] == "staged-corrupted" and ident in f["key"] for f in found), found

    # The insider covers the edit in `_ingest.json`: the authenticated event still says otherwise.
    data = staged.read_bytes()
    record.update(staged_sha256=hashlib.sha256(data).hexdigest(), staged_size=len(data))
    (raw / "_ingest.json").write_text(json.dumps(record, indent=2))
    again = bourse(env, "run", PROVIDER, DATASET, str(source), check=False)
    said = again.stdout + again.stderr
    assert again.returncode != 0, said
    assert "authenticated audit event" in said and "staged_sha256" in said, said
    assert versions(project) == published
    refused = [e for e in audit_details(project, "quarantine") if e.get("stage") == "staged"]
    # one per refusal: the re-run's ingest, then both gates of the second re-run (concurrent)
    assert len(refused) >= 2 and all(ident in e["key"] for e in refused), refused
    assert {e["error"] for e in refused} == {"ObjectChanged"}, refused
    code, found = findings(env)
    assert code == 1
    rewritten = [f for f in found if f["kind"] == "ingest-record-rewritten" and ident in f["key"]]
    assert rewritten and "staged_sha256" in rewritten[0]["message"], found


def test_rewritten_raw_and_record_are_detected(stack: tuple[Path, dict[str, str]]) -> None:
    """Row 11: the raw CSV rewritten and `_ingest.json`'s sha256 and size set to match:
    `verify --all` names the ingest id rule and the MAC'd ingest event."""
    project, env = stack
    source = drop(project, 2)
    bourse(env, "run", PROVIDER, DATASET, str(source))
    ident, raw, _ = ingest_folder(project, source)
    record = json.loads((raw / "_ingest.json").read_text())
    raw_file = project / "state" / "store" / record["raw_key"]
    lines = raw_file.read_text(encoding="utf-8").splitlines(keepends=True)
    forged = "".join(lines[:-1]).encode()  # one order removed
    raw_file.write_bytes(forged)
    record.update(sha256=hashlib.sha256(forged).hexdigest(), size=len(forged))
    (raw / "_ingest.json").write_text(json.dumps(record, indent=2))

    code, found = findings(env)
    assert code == 1
    mine = [f for f in found if f["kind"] == "ingest-record-rewritten" and ident in f["key"]]
    said = " ".join(f["message"] for f in mine)
    assert f"ingest id {ident} is not the start of the recorded sha256" in said, found
    assert "sha256" in said and "size" in said and "authenticated audit event" in said, found
