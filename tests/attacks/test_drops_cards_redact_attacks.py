"""Adversarial pass 8 (issue 15): the surfaces that landed with drops as deployment runs,
Croissant cards and `bourse redact`, attacked as an insider would, through the real Prefect API,
CLI, catalog and store.

Each test asserts the promise, so it fails when the attack succeeds; an attack that still
succeeds is marked `xfail(strict=True)` with the pass-8 number of the report.
Profiles: (a) a holder of the Prefect API's auth string, (b) a store writer, (c) a provider,
(d) a catalog database writer; `bourse redact` is attacked with hostile input files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import api, bourse, cli_env, make_project, own_prefect_server
from test_facts_and_grants import PRODUCT, World, gate, package, world
from test_listing_attacks import export, offered, verify_all
from test_trail_backed_grants import sql

from databourse.storage import zones
from databourse_samples.demo import generate_drops

__all__ = ["world"]  # the fixture, shared with test_facts_and_grants

PROVIDER, DATASET = "sz-retail", "customer_orders"
FORGED_WORKER = "attacker-box"


# --- (a) the nightly's keyed drop runs -------------------------------------------------------


@pytest.fixture(scope="module")
def squatted_nightly(own_stack: Any) -> Any:
    """An API holder creates, before the nightly, a run of `process-drop/drop` under the drop's
    key with exactly the parameters the nightly will pass (all of them are predictable from the
    landing zone), already Completed and tagged with a worker of their choosing; then the
    nightly runs (`bourse nightly`, on this module's own stack: the drop it processes must not
    take a version of the session's catalog). Yields the drop, its outcome, whether it is still
    new after, the squat id."""
    import subprocess
    import sys

    from databourse.catalog.engine import catalog_identity
    from databourse.ingest.landing import discover

    url, project, env = own_stack
    cfg, store, key, drop = _land(project, 80806, "2026-12-06")
    try:
        parameters = _drop_parameters(store, key, drop)  # all readable from the landing zone
        run_key = f"{catalog_identity(cfg.catalog_url)}/drop/{PROVIDER}/{DATASET}#{drop.sha256}"
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
        dep = api(url, "GET", "/deployments/name/process-drop/drop")
        squat = api(
            url,
            "POST",
            f"/deployments/{dep['id']}/create_flow_run",
            {
                "parameters": parameters,
                "idempotency_key": run_key,
                "tags": ["nightly-drop", f"worker:{FORGED_WORKER}"],
                "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": later}},
            },
        )  # far ahead, so that no runner starts it before it is marked done
        done = {"state": {"type": "COMPLETED", "name": "Completed"}, "force": True}
        api(url, "POST", f"/flow_runs/{squat['id']}/set_state", done)  # no work was done
        proc = subprocess.run(
            [sys.executable, "-m", "bourse", "nightly", PROVIDER, "--wait", "5", "--json"],
            cwd=project, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        result = json.loads(proc.stdout[proc.stdout.index("{") :])
        [outcome] = [o for o in result["processed"] if o["key"] == key]
        still_new = any(d.key == key for d in discover(store, cfg.providers, PROVIDER).new)
        yield drop, outcome, still_new, str(squat["id"])
    finally:  # leave no new drop behind for another test's nightly
        store.delete(key)


@pytest.mark.prefect
def test_a_squatted_completed_run_is_not_reported_as_the_drop_processed(
    squatted_nightly: Any,
) -> None:
    _, outcome, still_new, _ = squatted_nightly
    # The promise: a drop the nightly reports Completed was processed (it is no longer new).
    assert not (outcome["state"] == "Completed" and still_new), (
        f"drop {outcome['key']} reported {outcome['state']} by run {outcome['run_id']}, "
        "but it was never ingested"
    )


@pytest.mark.prefect
def test_the_summary_never_names_a_worker_an_api_holder_wrote(squatted_nightly: Any) -> None:
    _, outcome, _, _ = squatted_nightly
    assert FORGED_WORKER not in (outcome["worker"] or "")


@pytest.mark.prefect
def test_a_squatted_completed_publish_run_is_not_taken_as_the_publication(runner: Any) -> None:
    """(a) The publish key names the catalog, product, version and content hash, all of which
    an API holder reads from earlier runs and artifacts; a Completed run created under it (and
    under the key after it, for `bourse approvals retry`) did no work."""
    from prefect.client.orchestration import get_client
    from prefect.states import Completed, Scheduled

    from tasks import resources
    from tasks.publishing import PUBLISH_DEPLOYMENT, catalog_tag, publish_key, start_publication

    catalog = resources.catalog()
    product, version, content_hash = "pass8-squat", "1.0.0", "5a" * 32
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(PUBLISH_DEPLOYMENT)
        squat = client.create_flow_run_from_deployment(
            dep.id,
            parameters={"product": product, "version": version},
            idempotency_key=publish_key(catalog, product, version, content_hash),
            tags=[f"product:{product}", catalog_tag(catalog)],
            state=Scheduled(scheduled_time=later),
        )
        client.set_flow_run_state(squat.id, Completed(), force=True)
    run = start_publication(product, version, content_hash)
    assert run.id != squat.id, "the pipeline took a run it never started as the publication"


# --- (a, c) drop runs on a stack of this module's own ------------------------------------------
# These runs build products: on the session's catalog they would take versions that other
# modules expect to make (test_flows.py), so they get a project, Prefect server and runner of
# their own.


def _drop_parameters(store: Any, key: str, drop: Any) -> dict[str, Any]:
    """The parameters flows/nightly.py passes to a drop run of the landed `drop` at `key`."""
    local = store.local_path(key)
    return {
        "provider": PROVIDER,
        "dataset": DATASET,
        "source": str(local) if local is not None else store.uri(key),
        "publish_wait_seconds": 5,
        "source_name": drop.name,
        "expected_rows": drop.expected_rows,
        "expected_sha256": drop.sha256,
    }


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Any]]:
    """A project, a Prefect server and a `bourse serve` runner of this module's own; yields
    the API URL, the project and the CLI's environment."""
    import signal
    import subprocess
    import sys
    import time

    import httpx

    project = make_project(tmp_path_factory.mktemp("pass8") / "project")
    settings = project / "configs" / "settings.yaml"  # the nightly reads its runs' states often
    text = settings.read_text()
    settings.write_text(text.replace("runs:\n", "runs:\n  nightly_poll_seconds: 0.5\n", 1))
    with own_prefect_server("databourse-pass8-") as url:
        env = {
            **{k: v for k, v in os.environ.items() if k != "PREFECT_HOME"},
            "PREFECT_API_URL": url,
            "PREFECT_HOME": str(project / "prefect-client"),
            "DATABOURSE_CONFIG_DIR": str(project / "configs"),
            "PYTHONUNBUFFERED": "1",
        }
        log = project / "runner.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bourse", "serve"],
                cwd=project,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        pid_file = project / "state" / "run" / "runner.pid"  # where the CLI looks for its runner
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(str(proc.pid))  # so that `bourse nightly` starts no second one
        try:
            deadline = time.monotonic() + 90
            while httpx.get(f"{url}/deployments/name/process-drop/drop").status_code != 200:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
            yield url, project, env
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def _land(project: Path, seed: int, day: str) -> tuple[Any, Any, str, Any]:
    """A sample orders drop of `seed` in the landing zone of `project`: (config, store, its
    landing key, what discovery says of it)."""
    from databourse.config import load_config
    from databourse.ingest.landing import discover
    from databourse.storage.opening import open_store

    cfg = load_config(project / "configs")
    store = open_store(cfg.store_root)
    [orders] = [
        d
        for d in generate_drops(project / "generated" / day, seed=seed, scale=0.05)
        if d.provider == PROVIDER
    ]
    key = f"{zones.landing_prefix(PROVIDER)}/{DATASET}/{day}/{orders.path.name}"
    store.put_file(key, orders.path)
    [drop] = [d for d in discover(store, cfg.providers, PROVIDER).new if d.key == key]
    return cfg, store, key, drop


def _ingests(store: Any) -> set[str]:
    return {i.key.split("/")[3] for i in store.list(f"raw/{PROVIDER}/{DATASET}/")}


@pytest.mark.prefect
def test_a_drop_swapped_after_discovery_is_refused_by_its_run(own_stack: Any) -> None:
    """(c) A provider swaps the landing file for other bytes of the same size after the nightly
    hashed it: the drop run (the nightly's parameters, expected_sha256 of what discovery read)
    fails, and nothing reaches raw/."""
    import time

    url, project, _ = own_stack
    _, store, key, drop = _land(project, 80807, "2026-12-07")
    try:
        before = _ingests(store)
        data = store.get_bytes(key)
        swapped = data.replace(b"2026-", b"2025-", 1)  # one row changed, same size
        assert swapped != data and len(swapped) == len(data)
        store.put_bytes(key, swapped)
        dep = api(url, "GET", "/deployments/name/process-drop/drop")
        run = api(
            url,
            "POST",
            f"/deployments/{dep['id']}/create_flow_run",
            {"parameters": _drop_parameters(store, key, drop)},
        )
        deadline = time.monotonic() + 180
        while (state := api(url, "GET", f"/flow_runs/{run['id']}")["state"])["type"] not in (
            "COMPLETED",
            "FAILED",
            "CRASHED",
            "CANCELLED",
        ):
            assert time.monotonic() < deadline, state
            time.sleep(1)
        assert state["type"] == "FAILED", state
        assert _ingests(store) == before
    finally:  # no new drop left for the next nightly
        store.delete(key)


def _crash_when_running(url: str, crashed: list[str], stop: Any) -> None:
    """The attacker: the first drop run of the provider seen Running is marked Crashed through
    the API (its process goes on: nothing killed it)."""
    import time

    dep = api(url, "GET", "/deployments/name/process-drop/drop")
    running = {
        "flow_runs": {
            "deployment_id": {"any_": [dep["id"]]},
            "tags": {"all_": [f"provider:{PROVIDER}"]},
            "state": {"type": {"any_": ["RUNNING"]}},
        },
        "limit": 1,
    }
    while not stop.is_set():
        found = api(url, "POST", "/flow_runs/filter", running)
        if found:
            body = {"state": {"type": "CRASHED", "message": "forced"}, "force": True}
            api(url, "POST", f"/flow_runs/{found[0]['id']}/set_state", body)
            crashed.append(str(found[0]["id"]))
            return
        time.sleep(0.2)


def _wait_for_its_tasks(url: str, run_id: str, seconds: float = 120) -> None:
    """Until every task run of the flow run has ended (its process outlives its state)."""
    import time

    final = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
    query = {"flow_runs": {"id": {"any_": [run_id]}}}
    deadline = time.monotonic() + seconds
    seen = -1
    while time.monotonic() < deadline:
        tasks = api(url, "POST", "/task_runs/filter", query)
        done = tasks and all(t["state_type"] in final for t in tasks)
        if done and len(tasks) == seen:  # ended, and no new task run since the last look
            return
        seen = len(tasks) if done else -1
        time.sleep(3)
    raise AssertionError(f"the tasks of run {run_id} did not end in {seconds} s")


@pytest.mark.prefect
def test_a_drop_run_marked_crashed_while_it_runs_makes_each_version_once(
    own_stack: Any,
) -> None:
    """(a) An API holder marks a running drop run Crashed: the nightly starts the run after it
    while the first process goes on. The drop is still ingested once and each product gets one
    new version, not two."""
    import subprocess
    import sys
    import threading

    from databourse.catalog.database import Catalog

    url, project, env = own_stack
    cfg, store, key, _ = _land(project, 80808, "2026-12-08")
    products = [spec.id for spec in cfg.products_of(PROVIDER, DATASET)]
    catalog = Catalog(cfg.catalog_url)
    catalog.create_schema()

    def versions() -> dict[str, int]:
        known = {p["product"]["id"]: len(p["versions"]) for p in catalog.listing()}
        return {product: known.get(product, 0) for product in products}

    before, before_raw = versions(), _ingests(store)
    crashed: list[str] = []
    stop = threading.Event()
    attacker = threading.Thread(target=_crash_when_running, args=(url, crashed, stop))
    attacker.start()
    try:
        nightly = subprocess.run(
            [sys.executable, "-m", "bourse", "nightly", PROVIDER, "--wait", "5", "--json"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
    finally:
        stop.set()
        attacker.join(timeout=30)
    assert nightly.returncode == 0, nightly.stdout[-2000:] + nightly.stderr[-2000:]
    result = json.loads(nightly.stdout[nightly.stdout.index("{") :])
    [outcome] = [o for o in result["processed"] if o["key"] == key]
    assert crashed and outcome["attempts"] == 2, (crashed, outcome)  # the attack happened
    assert outcome["state"] == "Completed", outcome
    _wait_for_its_tasks(url, crashed[0])
    assert _ingests(store) - before_raw == {outcome["ingest_id"]}
    after = versions()
    assert {p: after[p] - before[p] for p in products} == {p: 1 for p in products}
    catalog.close()


# --- (b, d) Croissant cards in the sealed listing --------------------------------------------


def _card(version: str) -> str:
    return f"catalog/croissant/{PRODUCT}/{version}.json"


def test_a_card_pointed_elsewhere_fails_verify_naming_it(world: World) -> None:
    """(b) The card's contentUrl and sha256 rewritten to another file: named, not trusted."""
    version = package(world)
    gate(world, version)
    export(world)
    path = world.store.root / _card(version)
    doc = json.loads(path.read_text())
    files = [item for item in doc["distribution"] if "contentUrl" in item]
    assert files, "the card names no file"
    for item in files:
        item["contentUrl"] = "https://attacker.example/orders.parquet"
        item["sha256"] = "f" * 64
    path.write_text(json.dumps(doc, indent=2))
    code, errors, _ = verify_all(world)
    assert code == 1
    # named twice: the seal no longer vouches for it, and its files are not the manifest's
    card = _card(version)
    assert [(f["kind"], f["key"]) for f in errors] == [
        ("card-mismatch", card),
        ("listing-tampered", card),
    ]


def test_a_card_planted_for_an_unlisted_version_fails_verify(world: World) -> None:
    """(b) A card copied to the key of a version that was never listed."""
    version = package(world)
    gate(world, version)
    export(world)
    planted = world.store.root / _card("9.9.9")
    doc = json.loads((world.store.root / _card(version)).read_text())
    planted.write_text(json.dumps({**doc, "version": "9.9.9"}, indent=2))
    code, errors, _ = verify_all(world)
    assert code == 1
    assert [(f["kind"], f["key"]) for f in errors] == [("listing-unsealed", _card("9.9.9"))]


def _undo_a_withdrawal_with_sql(world: World) -> str:
    """A listed version withdrawn (the listing exported again), then set back to published in
    the catalog database, and a routine export after it."""
    version = package(world)
    gate(world, version)
    export(world)
    world.catalog.withdraw_version(PRODUCT, version, "recall")
    export(world)
    sql(world, "UPDATE versions SET status = 'published' WHERE version = :v", v=version)
    export(world)
    return version


def test_a_withdrawal_undone_with_sql_offers_nothing_and_fails_verify(world: World) -> None:
    """(d) The listing offers the version nowhere, and `verify --all` names the contradiction."""
    version = _undo_a_withdrawal_with_sql(world)
    assert offered(world, version) == []
    code, errors, _ = verify_all(world)
    assert code == 1
    assert any(
        f["kind"] == "trail-version" and "records its withdrawal" in f["message"] for f in errors
    ), errors


def test_a_withdrawal_undone_with_sql_is_not_sealed_as_published(world: World) -> None:
    """(d) The sealed card must not present a version the trail records withdrawn as current."""
    version = _undo_a_withdrawal_with_sql(world)
    card = json.loads((world.store.root / _card(version)).read_text())
    assert card.get("creativeWorkStatus") != "published"


# --- `bourse redact` on hostile input (a provider's bytes, an operator's paths) ---------------

FILLER = "the parcel was packed and shipped on time "  # eight words, nothing personal
NAME = "John Smith"


def _redact(tmp_path: Path, source: Path, target: Path, *more: str) -> Any:
    return bourse(
        cli_env(tmp_path), "redact", str(source), "--out", str(target), *more, check=False
    )


def _jsonl(path: Path, *records: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def _left_behind(folder: Path, *expected: str) -> list[str]:
    """The files in `folder` other than `expected` (a temporary one included)."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name not in expected and (p.is_file() or p.is_symlink())
    )


def test_a_name_late_in_a_long_document_is_redacted(tmp_path: Path) -> None:
    """(c) A 3 KB letter (480 plain words) signed with a name: replaced, or at least counted."""
    text = f"Dear team, {FILLER * 60}Regards, Mr. {NAME}, call me."
    source = _jsonl(tmp_path / "in.jsonl", {"id": 1, "text": text})
    target = tmp_path / "out.jsonl"
    proc = _redact(tmp_path, source, target, "--json")
    assert proc.returncode == 0, proc.stderr
    assert NAME not in proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    [written] = [json.loads(line) for line in target.read_text().splitlines()]
    left = report["leftover"].get("PERSON_NAME", 0)
    assert NAME not in written["text"], f"left in the text, leftover says {left}"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Thanks for the parcel.\nRegards,\nJohn Smith", "Smith"),  # a signature line
        ("Please ask John Smith\nabout the refund.", "Smith"),
        ("Please ask John\u00a0Smith about the refund.", "Smith"),
        ("Dear Tan Wei Ming,\nthanks for your order.", "Ming"),
    ],
    ids=["signature", "line-end", "nbsp", "cn-line-end"],
)
def test_a_name_beside_a_line_break_is_redacted(tmp_path: Path, text: str, name: str) -> None:
    """(c) Running text as documents are written: lines, not one long line."""
    source = _jsonl(tmp_path / "in.jsonl", {"id": 1, "text": text})
    target = tmp_path / "out.jsonl"
    proc = _redact(tmp_path, source, target, "--json")
    assert proc.returncode == 0, proc.stderr
    [written] = [json.loads(line) for line in target.read_text().splitlines()]
    left = json.loads(proc.stdout)["leftover"]
    assert name not in written["text"], f"kept; leftover says {left}"


def test_a_short_signed_document_is_redacted(tmp_path: Path) -> None:
    """The control of the attack above: the same letter without the filler."""
    text = f"Dear team, the parcel was shipped. Regards, Mr. {NAME}, call me."
    source = _jsonl(tmp_path / "in.jsonl", {"id": 1, "text": text})
    target = tmp_path / "out.jsonl"
    proc = _redact(tmp_path, source, target, "--json")
    assert proc.returncode == 0, proc.stderr
    [written] = [json.loads(line) for line in target.read_text().splitlines()]
    assert NAME not in written["text"] and "<PERSON_NAME>" in written["text"]


def test_redaction_time_grows_linearly_with_a_document(tmp_path: Path) -> None:
    """(c) One document 4x longer must take about 4x the time, not 16x (the domain function
    that `bourse redact` and the corpus build both call, timed in this process)."""
    import time

    import pyarrow as pa

    from databourse.pii.text_redact import redact_batch

    sentence = "Tan Wei Ming lives at 12 Orchard Road and calls +65 9123 4567 today. "

    def seconds(chars: int) -> float:
        texts = pa.array([sentence * (chars // len(sentence))], pa.large_string())
        start = time.perf_counter()
        redact_batch(texts)
        return time.perf_counter() - start

    seconds(50_000)  # warm the detectors' caches
    small, large = seconds(400_000), seconds(1_600_000)
    # linear: about 4x; quadratic (a slice of the whole text per span, as before): about 16x
    assert large / small < 10, f"4x the text took {large / small:.1f}x the time"


def test_deeply_nested_json_is_named_by_line_without_a_traceback(tmp_path: Path) -> None:
    nested = "[" * 100_000 + "]" * 100_000
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"text": "ok"})
        + "\n"
        + '{"text": "call +65 9123 4567", "meta": '
        + nested
        + "}\n"
    )
    target = tmp_path / "out.jsonl"
    proc = _redact(tmp_path, source, target)
    assert proc.returncode != 0
    assert _left_behind(tmp_path, "in.jsonl") == []  # nothing written, no temporary file
    assert "9123" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "line 2" in proc.stderr, proc.stderr[-300:]


def test_a_lone_surrogate_is_named_by_line_without_a_traceback(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "ok"}\n{"text": "Tan Wei Ming \\ud800 +65 9123 4567"}\n')
    target = tmp_path / "out.jsonl"
    proc = _redact(tmp_path, source, target)
    assert proc.returncode != 0
    assert _left_behind(tmp_path, "in.jsonl") == []
    assert "9123" not in proc.stdout + proc.stderr and "Tan Wei" not in proc.stderr
    assert "Traceback" not in proc.stderr and "line 2" in proc.stderr, proc.stderr[-300:]


def test_other_fields_stay_valid_json(tmp_path: Path) -> None:
    """(c) `1e400` parses as infinity and would be written back as `Infinity`, which is not
    JSON: the line is refused, named, and nothing is written."""
    source = _jsonl(tmp_path / "in.jsonl", {"text": "hello"})
    source.write_text('{"text": "hello", "score": 1e400}\n')
    target = tmp_path / "out.jsonl"
    proc = _redact(tmp_path, source, target)
    assert proc.returncode != 0 and "line 1: a number out of range" in proc.stderr
    assert not target.exists() and "Traceback" not in proc.stderr


def test_a_csv_cell_with_a_nul_byte_is_redacted_and_kept(tmp_path: Path) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text('id,text\n1,"call +65 9123 4567\x00 today"\n', encoding="utf-8")
    proc = _redact(tmp_path, source, target)
    assert proc.returncode == 0, proc.stderr
    written = target.read_text(encoding="utf-8")
    assert "9123" not in written and "<PHONE_NUMBER>\x00 today" in written
    assert "9123" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("how", ["symlink", "dotdot", "hardlink"])
def test_the_input_is_never_overwritten_through_another_path(tmp_path: Path, how: str) -> None:
    """--out names the input through a link or another spelling of its path: refused."""
    source = _jsonl(tmp_path / "in.jsonl", {"text": "call +65 9123 4567"})
    before = source.read_bytes()
    (tmp_path / "sub").mkdir()
    target = tmp_path / "sub" / "out.jsonl"
    if how == "symlink":
        target.symlink_to(source)
    elif how == "hardlink":
        os.link(source, target)
    else:
        target = tmp_path / "sub" / ".." / "in.jsonl"
    proc = _redact(tmp_path, source, target)
    assert proc.returncode != 0 and "overwrite" in proc.stderr
    assert source.read_bytes() == before
    assert _left_behind(tmp_path, "in.jsonl") == []
    assert _left_behind(tmp_path / "sub", "out.jsonl") == []


def test_a_symlinked_out_is_replaced_never_written_through(tmp_path: Path) -> None:
    """--out is a link to another file: the link is replaced; the file it named is untouched."""
    source = _jsonl(tmp_path / "in.jsonl", {"text": "call +65 9123 4567"})
    other = tmp_path / "other.txt"
    other.write_text("keep me\n")
    (tmp_path / "sub").mkdir()
    target = tmp_path / "sub" / "out.jsonl"
    target.symlink_to(other)
    proc = _redact(tmp_path, source, target)
    assert proc.returncode == 0, proc.stderr
    assert other.read_text() == "keep me\n"
    assert not target.is_symlink() and "<PHONE_NUMBER>" in target.read_text()
    assert _left_behind(tmp_path, "in.jsonl", "other.txt") == []
