"""No personal value leaks: canaries in every personal column, searched wherever the run writes.

Each sample provider's drop gets one person whose personal columns hold distinctive but valid
canaries (a checksummed CN resident ID, a MyKad, phones, an email, a name, a birth date); in the
chat transcripts, one customer's MyKad, phone and e-mail in the running text and their name as the
author. The real flows process them against the session's Prefect server: three drops publish
(one of them the corpus, its identifiers replaced by placeholders), one is quarantined for
a contract error in a canary row, one fails the quality suite in a canary row. Then every canary is
searched in all Prefect logs, artifacts, flow and task run states and parameters, the server's
database and logs, Prefect's result storage, the store (reports, products, catalog and audit
exports, `_reason.json`) and the catalog database. Only the landing zone (providers' drops), the
raw zone, staging and the quarantined copy of a drop may hold the values; a hit elsewhere fails
the test with its location, never its context.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import os
import re
import shlex
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from databourse.errors import IngestRejected, QualityFailed
from databourse_samples.demo import generate_corpus_drop, generate_drops
from databourse_samples.demo_chats import chat_bytes
from databourse_samples.demo_orders import cn_check_char

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(900)]

CN_ID = "44030519880229937" + cn_check_char("44030519880229937")  # Nanshan, 1988-02-29, a man
CANARIES = {  # label -> the value planted
    "my-buildops/occupant_name": "Canaryname Zqx",
    "my-buildops/occupant_mykad": "880229-14-5371",
    "my-buildops/occupant_phone": "012-739 5184",
    "sz-retail/customer_id_number": CN_ID,
    "sz-retail/customer_name": "欧阳鹂鸾",
    "sz-retail/mobile": "13957318264",
    "sz-retail/email": "canary.7f3a@example.cn",
    "sz-retail/birth_date": "1988-02-29",
    "my-chatdesk/author": "Canaryauthor Vwx",
    "my-chatdesk/text_mykad": "910315-10-6627",
    "my-chatdesk/text_phone": "+60 13-628 4917",
    "my-chatdesk/text_email": "canary.chat9@example.my",
}
# What is searched (lower case): the value and the ways another writer could render it.
FORMS = {
    "my-buildops/occupant_name": ("canaryname",),
    "my-buildops/occupant_mykad": ("880229-14-5371", "880229145371"),
    "my-buildops/occupant_phone": ("127395184", "12-739 5184", "739 5184", "739-5184"),
    "sz-retail/customer_id_number": (CN_ID.lower(),),
    "sz-retail/customer_name": ("鹂鸾", json.dumps("鹂鸾")[1:-1]),
    "sz-retail/mobile": ("13957318264", "139 5731 8264", "139-5731-8264"),
    "sz-retail/email": ("canary.7f3a",),
    "sz-retail/birth_date": ("1988-02-29", "19880229", "1988/02/29", "29/02/1988"),
    "my-chatdesk/author": ("canaryauthor",),
    "my-chatdesk/text_mykad": ("910315-10-6627", "910315106627"),
    "my-chatdesk/text_phone": ("136284917", "13-628 4917", "628 4917", "628-4917"),
    "my-chatdesk/text_email": ("canary.chat9",),
}
Hit = tuple[str, str]  # (where, canary label): never the text around it


def find(where: str, text: str | bytes) -> list[Hit]:
    """The canaries in a text or byte string, as (where, label)."""
    data = text.lower() if isinstance(text, str) else text.decode("utf-8", "replace").lower()
    return [(where, label) for label, forms in FORMS.items() if any(f in data for f in forms)]


# --- the drops --------------------------------------------------------------------------------


def rewrite(path: Path, target: Path, change: Callable[[list[str], list[list[str]]], None]) -> Path:
    with path.open(encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    change(header, rows)
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows([header, *rows])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(buffer.getvalue().encode("utf-8"))
    return target


def plant(provider: str, key: str, pick: Callable[[dict[str, str]], bool]) -> Callable[..., None]:
    """Give one person (the first row `pick` accepts, and every row of theirs) the canaries."""

    def change(header: list[str], rows: list[list[str]]) -> None:
        col = {name: i for i, name in enumerate(header)}
        person = next(r[col[key]] for r in rows if pick(dict(zip(header, r, strict=True))))
        mine = [r for r in rows if r[col[key]] == person]
        for label, value in CANARIES.items():
            owner, column = label.split("/")
            for row in mine if owner == provider else []:
                row[col[column]] = value
        assert len(mine) >= 2

    return change


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dt.datetime]:
    """A file touched, and the time, before the canaries exist: the search reads what came after."""
    marker = tmp_path_factory.mktemp("canary-start") / "started"
    marker.touch()
    return marker, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)


@pytest.fixture(scope="module")
def drops(
    tmp_path_factory: pytest.TempPathFactory, started: tuple[Path, dt.datetime]
) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("canary-drops")
    base = {d.provider: d.path for d in generate_drops(folder / "base", seed=7731, scale=0.2)}
    sensors = plant("my-buildops", "occupant_name", lambda r: bool(r["occupant_name"]))
    orders = plant("sz-retail", "customer_id_number", lambda r: r["birth_date"].startswith("198"))
    out = {
        "sensors": rewrite(base["my-buildops"], folder / "readings-canary.csv", sensors),
        "orders": rewrite(base["sz-retail"], folder / "orders-canary.csv", orders),
    }

    def bad_type(header: list[str], rows: list[list[str]]) -> None:
        row = next(r for r in rows if CANARIES["my-buildops/occupant_mykad"] in r)
        row[header.index("temperature_c")] = "warm"  # the contract says float64

    def no_district(header: list[str], rows: list[list[str]]) -> None:
        row = next(r for r in rows if CANARIES["sz-retail/email"] in r)
        row[header.index("district")] = ""  # not nullable: fails the quality suite, not ingest

    out["chats"] = chat_canaries(generate_corpus_drop(folder / "base", seed=7731, scale=0.2).path)
    out["bad_type"] = rewrite(out["sensors"], folder / "readings-bad-type.csv", bad_type)
    out["no_district"] = rewrite(out["orders"], folder / "orders-no-district.csv", no_district)
    for key, path in out.items():  # the canaries are really there, and not in the plain samples
        provider = {"sensors": "my-buildops", "bad_type": "my-buildops", "chats": "my-chatdesk"}
        provider = provider.get(key, "sz-retail")
        wanted = {label for label in CANARIES if label.startswith(provider)}
        assert {label for _, label in find(path.name, path.read_bytes())} == wanted
    for path in base.values():
        assert find(path.name, path.read_bytes()) == []
    return out


def chat_canaries(path: Path) -> Path:
    """The transcripts with one customer's MyKad, phone and e-mail in the text replaced by the
    canaries (in every transcript of theirs), and that customer named as the author."""
    docs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    mykad = re.compile(r"\b\d{6}-\d{2}-\d{4}\b")
    chosen = next(d for d in docs if mykad.search(d["text"]) and "@" in d["text"])
    person = chosen["author"]
    mine = [d for d in docs if d["author"] == person]
    for doc in mine:
        doc["author"] = CANARIES["my-chatdesk/author"]
        text = mykad.sub(CANARIES["my-chatdesk/text_mykad"], doc["text"])
        text = re.sub(r"(\+60 |0)1\d-\d{3,4} \d{4}", CANARIES["my-chatdesk/text_phone"], text)
        doc["text"] = re.sub(r"[\w.]+@[\w.]+\w", CANARIES["my-chatdesk/text_email"], text)
    target = path.with_name("chats-canary.jsonl")
    target.write_bytes(chat_bytes(docs))
    return target


# --- where to look ----------------------------------------------------------------------------


def paged(read: Callable[..., list[Any]]) -> Iterator[Any]:
    offset = 0
    while page := read(limit=200, offset=offset):
        yield from page
        offset += len(page)


def prefect_hits(since: dt.datetime) -> tuple[list[Hit], dict[str, int]]:
    """Logs, artifacts, flow and task runs (state messages, parameters) read through the API:
    all that this test's runs wrote (nothing written before `since` can hold its canaries)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas import filters as f
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    hits: list[Hit] = []
    seen = dict.fromkeys(("logs", "artifacts", "flow runs", "task runs"), 0)
    with get_client(sync_client=True) as client:
        after = f.FlowRunFilter(expected_start_time=f.FlowRunFilterExpectedStartTime(after_=since))
        runs = list(paged(partial(client.read_flow_runs, flow_run_filter=after)))
        ids = [run.id for run in runs]
        for run in runs:
            state = run.state.message if run.state and run.state.message else ""
            text = json.dumps([state, run.parameters, run.name], default=str, ensure_ascii=False)
            hits += find(f"flow run {run.name} (state message, parameters)", text)
            seen["flow runs"] += 1
        logs = f.LogFilter(timestamp=f.LogFilterTimestamp(after_=since))
        for log in paged(partial(client.read_logs, log_filter=logs)):
            hits += find(f"Prefect log of flow run {log.flow_run_id}", log.message)
            seen["logs"] += 1
        arts = f.ArtifactFilter(flow_run_id=f.ArtifactFilterFlowRunId(any_=ids))
        for art in paged(partial(client.read_artifacts, artifact_filter=arts)):
            text = json.dumps([art.data, art.description, art.key], default=str, ensure_ascii=False)
            hits += find(f"Prefect artifact {art.key or art.id}", text)
            seen["artifacts"] += 1
        tasks = f.TaskRunFilter(flow_run_id=f.TaskRunFilterFlowRunId(any_=ids))
        for task in paged(partial(client.read_task_runs, task_run_filter=tasks)):
            state = task.state.message if task.state and task.state.message else ""
            hits += find(f"task run {task.name} (state message)", f"{state} {task.name}")
            seen["task runs"] += 1
    return hits, seen


def legitimate(path: Path, store_root: Path) -> bool:
    """The providers' drops (landing), raw, staging and the quarantined copy of a drop hold the
    values by design (the session's project is shared: other tests' drops land there too)."""
    if not path.is_relative_to(store_root):
        return False
    key = path.relative_to(store_root).as_posix()
    if key.startswith(("landing/", "raw/", "staging/")):
        return True
    return key.startswith("quarantine/") and path.name != "_reason.json"


def file_hits(path: Path, where: str) -> list[Hit]:
    """Canaries in a file: Parquet decoded, SQLite dumped, Prefect results' base64 unpacked."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        text = json.dumps([table.to_pylist(), str(table.schema)], default=str, ensure_ascii=False)
        return find(where, text)
    data = path.read_bytes()
    hits = find(where, data)
    if data.startswith(b"SQLite format 3"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            hits += find(f"{where} (SQL dump)", "\n".join(db.iterdump()))
    if data[:1] == b"{" and b'"serializer"' in data:  # a Prefect result record: base64 pickle
        payload = json.loads(data).get("result")
        if isinstance(payload, str):
            hits += find(f"{where} (result payload)", base64.b64decode(payload))
    return hits


def tree_hits(roots: Iterable[Path], store_root: Path, marker: Path) -> tuple[list[Hit], int]:
    """Canaries in every file under `roots` written since `marker` was (before the canaries
    existed: no earlier file can hold them), read from a copy another process makes.

    This process holds pooled SQLite connections to the catalog: opening and closing the live
    catalog.db here, even to read it, drops every POSIX lock this process holds on it (SQLite's
    "How To Corrupt", 2.2), and a writer in the runner then checkpoints under its feet: the
    session catalog was found malformed later in the suite. `cp` in a child process has locks of
    its own to drop, so the files are copied there and searched here.
    """
    hits: list[Hit] = []
    scanned = 0
    with tempfile.TemporaryDirectory(prefix="leak-scan-") as tmp:
        for n, root in enumerate(sorted(set(roots))):
            if not root.exists():
                continue
            copy = Path(tmp) / str(n)
            copy.mkdir()
            newer = f"find . -type f -newer {shlex.quote(str(marker))} -print0"
            done = subprocess.run(
                ["sh", "-c", f"{newer} | xargs -0 -r cp -a --parents -t {shlex.quote(str(copy))}"],
                cwd=root, capture_output=True, text=True,
            )  # fmt: skip
            gone = [e for e in done.stderr.splitlines() if "No such file" not in e]
            assert done.returncode == 0 or not gone, done.stderr  # only files removed meanwhile
            for path in sorted(p for p in copy.rglob("*") if p.is_file()):
                original = root / path.relative_to(copy)
                if not legitimate(original, store_root):
                    hits += file_hits(path, str(original))
                    scanned += 1
    return hits, scanned


# --- the test ---------------------------------------------------------------------------------


def test_canaries_appear_in_no_log_artifact_state_report_or_export(
    runner: Any, project: Path, drops: dict[str, Path], started: tuple[Path, dt.datetime]
) -> None:
    from flows.process_drop import process_drop
    from tasks import resources

    sensors = process_drop("my-buildops", "sensor_readings", str(drops["sensors"]), 180)
    orders = process_drop("sz-retail", "customer_orders", str(drops["orders"]), 180)
    chats = process_drop("my-chatdesk", "chat_transcripts", str(drops["chats"]), 180)
    assert chats["products"][0]["publish_state"] == "Completed"  # nothing left: no route needed
    assert sensors["products"][0]["publish_state"] == "Completed"
    assert orders["products"][0]["publish_state"] in {"Completed", "Suspended"}
    with pytest.raises(IngestRejected) as bad:
        process_drop("my-buildops", "sensor_readings", str(drops["bad_type"]), 180)
    assert bad.value.context["column"] == "temperature_c"
    with pytest.raises(QualityFailed):
        process_drop("sz-retail", "customer_orders", str(drops["no_district"]), 180)

    cfg = resources.config()
    store_root = Path(cfg.store_root).resolve()
    session = Path(os.environ["PREFECT_HOME"]).resolve().parent  # conftest's session folder
    marker, since = started
    hits, seen = prefect_hits(since)
    assert seen["logs"] > 50 and seen["artifacts"] > 10 and seen["flow runs"] >= 6, seen
    found, scanned = tree_hits({session, cfg.state_dir.resolve()}, store_root, marker)
    hits += found
    assert scanned > 20, f"only {scanned} files searched"
    assert not hits, "personal data found:\n" + "\n".join(f"{w}: {label}" for w, label in hits)

    # The search does find them where they belong: raw and staging of the five ingests.
    roots = [store_root / "raw", store_root / "staging"]
    control, _ = tree_hits(roots, Path("/nonexistent"), marker)
    assert {label for _, label in control} == set(CANARIES)
