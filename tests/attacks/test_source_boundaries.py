"""Attacks on what an ingest reads (issue 15, slice R1): sources, links, and header names.

An insider with the Prefect API starts the on-demand deployment with `source` = a key file or a
file under state/ (adversary row 1); a provider drops a CSV without a header row, so its first
record lands where header names go (row 16); someone at the terminal hands the CLI links (row 13);
a landing file is swapped for a hard link after discovery (row 12). Each run is the real one
(Prefect API, CLI subprocess, the flows); what it must not leak is searched wherever it writes.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import api_post, bourse, cli_env, make_project, stop_stack

from databourse.errors import IngestRejected
from databourse.keys import default_key_dir

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(600)]

DEPLOYMENT = "process-drop/on-demand"
PERSON = ("110105194912310029", "司马鹂鸾", "13900007731", "hdr.canary.91@example.cn")


def canary() -> str:
    """A key-like text found nowhere else."""
    return secrets.token_hex(32)


@pytest.fixture(scope="module")
def places(project: Path) -> dict[str, Path]:
    """The project's key folder, state folder and landing zone (the config the runner serves)."""
    from tasks import resources

    store = resources.store()
    landing = store.local_path("landing")
    assert landing is not None
    return {
        "keys": resources.key_place("audit").key_dir,
        "state": resources.config().state_dir,
        "landing": landing,
        "store": Path(resources.config().store_root),
    }


def start_run(api: str, source: str) -> str:
    """POST create_flow_run on the on-demand deployment, as anyone with the API can."""
    dep = httpx.get(f"{api}/deployments/name/{DEPLOYMENT}").json()
    params = {"provider": "sz-retail", "dataset": "customer_orders", "source": source}
    made = api_post(f"{api}/deployments/{dep['id']}/create_flow_run", {"parameters": params})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def final_run(api: str, run_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = httpx.get(f"{api}/flow_runs/{run_id}").json()
        if run["state"]["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            return dict(run)
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not finish")


def everything_written(api: str | None, project: Path, skip: tuple[str, ...] = ()) -> Iterator[str]:
    """Where a leak would land: runs' states, logs, artifacts, the catalog (SQL), the store."""
    for kind in ("flow_runs", "task_runs", "logs", "artifacts") if api else ():
        offset = 0
        while True:
            page = api_post(f"{api}/{kind}/filter", {"limit": 200, "offset": offset})
            yield f"{kind}: " + page.text
            if len(page.json()) < 200:
                break
            offset += 200
    with sqlite3.connect(project / "state" / "catalog.db") as db:
        yield "catalog: " + "\n".join(db.iterdump())
    for path in sorted((project / "state" / "store").rglob("*")):
        rel = path.relative_to(project / "state" / "store").as_posix()
        if path.is_file() and not rel.startswith(skip):
            yield f"store {rel}: " + path.read_bytes().decode("utf-8", "replace")


def leaks(text: str, api: str | None, project: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """The places (never the text around) that hold `text`."""
    return [w.split(":", 1)[0] for w in everything_written(api, project, skip) if text in w]


@pytest.mark.parametrize("where", ["keys", "state"])
def test_an_api_run_cannot_ingest_a_key_file_or_state(
    prefect_api: str, runner: Any, project: Path, places: dict[str, Path], where: str
) -> None:
    """Row 1: `source` = the audit key file (or a file under state/) is refused unread."""
    secret = canary()
    folder = places[where]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ("audit-default.key" if where == "keys" else "stolen.csv")
    target.write_text(secret + "\n")
    target.chmod(0o600)
    try:
        run = final_run(prefect_api, start_run(prefect_api, str(target)))
        assert run["state"]["type"] == "FAILED"
        assert "never reads a source there" in run["state"]["message"]
        assert leaks(secret, prefect_api, project) == []
        with sqlite3.connect(project / "state" / "catalog.db") as db:
            refused = db.execute(
                "SELECT detail FROM audit_events WHERE kind = 'quarantine' AND detail LIKE ?",
                (f"%{target.name}%never reads a source there%",),
            ).fetchall()
        assert refused, "the refusal is audited"
    finally:
        target.unlink()


def test_an_api_run_cannot_ingest_a_file_outside_the_landing_zone(
    prefect_api: str, runner: Any, project: Path, tmp_path: Path
) -> None:
    """Row 1: any other local file (not landing, not source_roots) is refused unread."""
    secret = canary()
    outside = tmp_path / "orders.csv"
    outside.write_text(f"order_id,{secret}\n1,2\n")
    run = final_run(prefect_api, start_run(prefect_api, str(outside)))
    assert run["state"]["type"] == "FAILED"
    assert "outside the landing zone" in run["state"]["message"]
    assert leaks(secret, prefect_api, project) == []


def test_an_api_run_cannot_ingest_another_tenants_landing_drop(
    prefect_api: str, runner: Any, project: Path, places: dict[str, Path]
) -> None:
    """Pass 4, row 1: a run of sz-retail naming a drop in another provider's (or dataset's)
    landing folder is refused unread: tenants are kept apart by their landing folders."""
    secret = canary()
    for other in ("my-buildops/customer_orders", "sz-retail/another_dataset"):
        drop = places["landing"] / other / "orders-2026-11-20.csv"
        drop.parent.mkdir(parents=True, exist_ok=True)
        drop.write_text(f"order_id,{secret}\n1,2\n")
        try:
            run = final_run(prefect_api, start_run(prefect_api, str(drop)))
            assert run["state"]["type"] == "FAILED"
            assert "another provider's or dataset's landing folder" in run["state"]["message"]
            assert leaks(secret, prefect_api, project, skip=("landing/",)) == []
        finally:
            drop.unlink()


def test_the_cli_cannot_name_another_tenants_landing_drop(tmp_path: Path) -> None:
    """The CLI may name any file of its own, but not a drop of another tenant."""
    from databourse.ingest.landing_bounds import SourceBounds

    landing = tmp_path / "landing"
    bounds = SourceBounds(
        landing=str(landing), own=str(landing / "sz-retail" / "orders"), caller_named=True
    )
    bounds.check(str(landing / "sz-retail" / "orders" / "a.csv"))
    bounds.check(str(tmp_path / "elsewhere" / "a.csv"))
    for other in ("my-retail/orders/a.csv", "sz-retail/other/a.csv", "sz-retail/a.csv"):
        with pytest.raises(IngestRejected, match="another provider's or dataset's"):
            bounds.check(str(landing / other))


def test_a_headerless_first_record_never_reaches_a_message(
    prefect_api: str, runner: Any, project: Path, places: dict[str, Path]
) -> None:
    """Row 16: a first row of personal data is read as the header: no value in any message."""
    drop = places["landing"] / "sz-retail" / "customer_orders" / "no-header.csv"
    drop.parent.mkdir(parents=True, exist_ok=True)
    drop.write_text(",".join(PERSON) + "\n" + ",".join(["x"] * len(PERSON)) + "\n")
    run = final_run(prefect_api, start_run(prefect_api, str(drop)))
    assert run["state"]["type"] == "FAILED"
    assert "4 new column(s) at #1, #2, #3, #4" in run["state"]["message"]
    # the raw zone and the quarantined copy keep the provider's bytes; nothing else may
    copies = ("raw/", "landing/")
    for value in PERSON:
        found = leaks(value, prefect_api, project, copies)
        found = [f for f in found if not f.endswith("no-header.csv")]  # the quarantined copy
        assert found == [], f"a personal value of the first row is in {found}"


@pytest.fixture(scope="module")
def terminal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    """A project the CLI runs with its own stack (the house way of the e2e tests)."""
    project = make_project(tmp_path_factory.mktemp("r1-cli") / "project")
    env = cli_env(project)
    try:
        yield env, project
    finally:
        stop_stack(env)


@pytest.fixture
def linked(tmp_path: Path) -> dict[str, Path]:
    """A secret CSV outside, and every kind of link to it (file link, folder link, hard link)."""
    real = tmp_path / "real"
    real.mkdir()
    secret = real / "orders-a.csv"
    secret.write_text("order_id\nSECRET-ROW-7731\n")
    (real / "orders-c1.csv").write_text("order_id\nSECRET-ROW-7731\n")
    links = tmp_path / "links"
    links.mkdir()
    (links / "filelink.csv").symlink_to(secret)
    (links / "dirlink").symlink_to(real, target_is_directory=True)
    hard = real / "hard-source.csv"
    hard.write_text("order_id\nSECRET-ROW-7731\n")
    os.link(hard, links / "hard-d.csv")
    return {"links": links, "secret": secret}


def test_the_cli_follows_no_link(
    terminal: tuple[dict[str, str], Path], linked: dict[str, Path]
) -> None:
    """Row 13: `bourse run` and `bourse ingest` refuse file, folder and hard links, named."""
    env, project = terminal
    links = linked["links"]
    cases = [
        ("run", str(links / "filelink.csv"), "symbolic link"),
        ("ingest", str(links / "dirlink" / "orders-a.csv"), "symbolic link to a folder"),
        ("ingest", str(links / "dirlink" / "orders-c*"), "symbolic link to a folder"),
        ("ingest", str(links / "hard-d.csv"), "hard link"),
        ("run", str(links / "hard-d.csv"), "hard link"),
    ]
    for command, source, why in cases:
        done = bourse(env, command, "sz-retail", "customer_orders", source, check=False)
        said = " ".join((done.stdout + done.stderr).split())
        assert done.returncode != 0, (command, source, said)
        assert why in said and Path(source).name.rstrip("*") in said, (command, source, said)
    assert leaks("SECRET-ROW-7731", None, project) == []
    with sqlite3.connect(project / "state" / "catalog.db") as db:
        audited = db.execute(
            "SELECT count(*) FROM audit_events WHERE kind = 'quarantine' AND detail LIKE ?",
            ("%links are never followed%",),
        ).fetchone()[0]
    assert audited == len(cases)


def test_the_cli_refuses_the_key_folder_and_state(terminal: tuple[dict[str, str], Path]) -> None:
    """Row 1 at the terminal: an explicit path in the key folder or state/ is refused too."""
    env, project = terminal
    secret = canary()
    keys = default_key_dir(str(project / "state" / "store"))
    keys.mkdir(parents=True, exist_ok=True)
    planted = keys / "pseudonym-v9.key"
    planted.write_text(canary())
    planted.chmod(0o600)
    for target in (keys / "stolen.csv", project / "state" / "taken.csv"):
        target.write_text(f"order_id\n{secret}\n")
        try:
            done = bourse(env, "ingest", "sz-retail", "customer_orders", str(target), check=False)
            said = " ".join((done.stdout + done.stderr).split())
            assert done.returncode != 0 and "never reads a source there" in said, said
        finally:
            target.unlink()
    done = bourse(env, "run", "sz-retail", "customer_orders", str(planted), check=False)
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode != 0 and "never reads a source there" in said, said
    material = planted.read_text().strip()
    assert leaks(secret, None, project) == [] and leaks(material, None, project) == []


def test_a_landing_file_swapped_after_discovery_is_refused(
    prefect_api: str, project: Path, places: dict[str, Path], tmp_path: Path
) -> None:
    """Row 12: discovery hashed one file; a hard link, or other bytes, then take its name."""
    from databourse.ingest.landing import discover
    from flows.ingest_dataset import ingest_dataset
    from tasks import resources

    folder = places["landing"] / "sz-retail" / "customer_orders"
    folder.mkdir(parents=True, exist_ok=True)
    drop = folder / "rb-5.csv"
    drop.write_text("order_id\nfine\n")
    seen = discover(resources.store(), resources.config().providers, "sz-retail")
    sha = next(d.sha256 for d in seen.drops if d.key.endswith("rb-5.csv"))
    secret = tmp_path / "secret.csv"
    secret.write_text("order_id\nSECRET-ROW-9907\n")
    os.link(secret, tmp_path / "tmp-link")
    os.replace(tmp_path / "tmp-link", drop)  # `ln -f secret rb-5.csv`: two names, one file
    with pytest.raises(IngestRejected, match="hard link"):
        ingest_dataset("sz-retail", "customer_orders", str(drop), "rb-5.csv", None, sha)
    drop.unlink()
    drop.write_bytes(secret.read_bytes())  # a regular file again, with other bytes
    with pytest.raises(IngestRejected, match="replaced after discovery"):
        ingest_dataset("sz-retail", "customer_orders", str(drop), "rb-5.csv", None, sha)
    drop.unlink()
    assert leaks("SECRET-ROW-9907", prefect_api, project) == []
