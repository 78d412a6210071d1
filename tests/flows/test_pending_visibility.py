"""No pending market is lost from view, and a form is bound whole (issue 15, adversary pass 4).

Row 2: a suspended publish run set to Cancelled through the API (or the UI's "Cancel") leaves
its markets `pending_approval`: `approvals list`, `approvals sweep` and `verify --all` name each
one with the command that asks again, and the sweep closes its open question (audited).
Row 3: the gated markets time out, each on its own run (every waiting market is asked at once,
issue 21): both are recorded expired and nothing is left `not asked`.
Row 4a: a form whose JSON schema was replaced through the API is flagged; its answer is refused.
Row 4b: an unknown run id, or a wrong auth string, is one `error:` line, never a traceback.

The publish flow is served from this module's own runner (`publish-product/visibility`) on a
project of its own with a short approval timeout; each test makes its own version.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from conftest import BIN, wait_healthy
from helpers import bourse, free_port, make_project, served_publish_flow
from test_gate_binding import ANSWER, MY_ANSWER, pause_key, resume, shown_constants
from test_transfer_gate import approvals, catalog_of, cli, package, status, wait_state

from databourse.config import Config, load_config
from databourse.transfer.form_binding import schema_sha256

PRODUCT = "vis-baskets"
DEPLOYMENT = "publish-product/visibility"
TIMEOUT_S = 90  # long enough for a test's run to stay in time on a loaded machine


@pytest.fixture(scope="module")
def vis_cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """A project with a short approval timeout and one product gated for MY, then SG."""
    project = make_project(tmp_path_factory.mktemp("visibility") / "project")
    configs = project / "configs"
    settings = configs / "settings.yaml"
    settings.write_text(
        settings.read_text().replace(
            "approval_timeout_seconds: 604800", f"approval_timeout_seconds: {TIMEOUT_S}"
        )
    )
    source = (configs / "products" / "sz-retail-baskets.yaml").read_text()
    assert "markets: [CN, MY, SG]" in source
    (configs / "products" / f"{PRODUCT}.yaml").write_text(
        source.replace("id: sz-retail-baskets", f"id: {PRODUCT}")
    )
    cfg = load_config(configs)
    assert cfg.settings.approval_timeout_seconds == TIMEOUT_S
    return cfg


@pytest.fixture(scope="module")
def vis_runner(prefect_api: str, vis_cfg: Config) -> Iterator[subprocess.Popen[bytes]]:
    with served_publish_flow(prefect_api, vis_cfg.root, "visibility") as proc:
        yield proc


def start(cfg: Config, tag: str) -> tuple[str, str]:
    """A new version of PRODUCT and its publish run (not waited for)."""
    from prefect.deployments import run_deployment

    version = package(cfg, PRODUCT, rows=4, individuals=4, tag=tag)
    run = run_deployment(DEPLOYMENT, parameters={"product": PRODUCT, "version": version}, timeout=0)
    return version, str(run.id)  # type: ignore[union-attr]


def suspended(cfg: Config, tag: str) -> tuple[str, str]:
    """A new version whose publish run waits on the MY form."""
    version, run_id = start(cfg, tag)
    assert wait_state(run_id, {"Suspended", "Completed", "Failed"}) == "Suspended"
    assert pause_key(run_id) == "approval-my"
    return version, run_id


@pytest.fixture(scope="module")
def timing_out(vis_runner: Any, vis_cfg: Config) -> tuple[str, str]:
    """A run nobody answers, started first so that its timeout runs out during other tests."""
    return start(vis_cfg, "t1")


def unasked_of(listing: dict[str, Any], version: str) -> dict[str, dict[str, Any]]:
    return {u["market"]: u for u in listing["unasked"] if u["version"] == version}


def refusals(cat: Any, version: str) -> list[dict[str, Any]]:
    return [
        e for e in cat.audit_history(PRODUCT) if e["kind"] == "refusal" and e["version"] == version
    ]


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The CLI's error lines; nothing else may look like a failure (no traceback)."""
    assert "Traceback" not in done.stderr, done.stderr
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


@pytest.mark.prefect
def test_a_cancelled_run_leaves_its_markets_listed_and_its_question_closed(
    vis_runner: Any, vis_cfg: Config, timing_out: tuple[str, str]
) -> None:
    """Row 2: Cancel on a suspended publish run; the operator still sees MY (not asked any more)
    and SG (asked at once by a run of its own, still waiting)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled, Scheduled

    from bourse.unasked import unasked

    cat = catalog_of(vis_cfg)
    version, run_id = suspended(vis_cfg, "c1")
    shown = shown_constants(run_id)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(run_id), Cancelled(), force=True)
    assert wait_state(run_id, {"Cancelled"}) == "Cancelled"

    listing = json.loads(cli(vis_cfg, "approvals", "list", "--all", "--json").stdout)
    assert run_id not in {w["run_id"] for w in listing["waiting"]}
    lost = unasked_of(listing, version)
    assert set(lost) == {"MY"}
    assert lost["MY"]["run_id"] == run_id and lost["MY"]["state"] == "Cancelled"
    assert lost["MY"]["then"] == f"bourse approvals retry {run_id}"
    assert "marked waiting" in lost["MY"]["why"]
    [sg] = [w for w in listing["waiting"] if (w["version"], w["market"]) == (version, "SG")]
    assert sg["run_id"] != run_id  # SG's own run still waits
    text = cli(vis_cfg, "approvals", "list").stdout
    assert f"not asked: {PRODUCT}@{version} -> SG" not in text
    assert f"not asked: {PRODUCT}@{version} -> MY" in text
    assert f"bourse approvals retry {run_id}" in text

    # verify --all: a warning per market, not an error (nothing is offered without an answer)
    verified = cli(vis_cfg, "verify", "--all", "--quick", "--json", check=False)
    findings = json.loads(verified.stdout)["findings"]
    warned = [f for f in findings if f["kind"] == "pending-unasked" and f["version"] == version]
    assert sorted(f["severity"] for f in warned) == ["warning"]
    assert all(run_id in f["message"] for f in warned)

    # the sweep closes the question left waiting, audited; the markets stay listed
    swept = json.loads(cli(vis_cfg, "approvals", "sweep", "--json").stdout)
    [closed] = [c for c in swept["closed"] if c["flow_run_id"] == run_id]
    assert (closed["market"], closed["status"], closed["version"]) == ("MY", "cancelled", version)
    assert set(unasked_of(swept, version)) == {"MY"}
    [event] = [
        e for e in cat.audit_history(PRODUCT)
        if e["kind"] == "question_closed" and e["version"] == version
    ]  # fmt: skip
    assert event["market"] == "MY" and event["detail"]["flow_run_id"] == run_id
    assert json.loads(cli(vis_cfg, "approvals", "sweep", "--json").stdout)["closed"] == []

    # an answer forced onto the cancelled run afterwards counts for nothing
    with get_client(sync_client=True) as client:
        key = "suspended-approval-my-response"
        client.create_flow_run_input(UUID(run_id), key, json.dumps({**ANSWER, **shown}))
        client.set_flow_run_state(UUID(run_id), Scheduled(), force=True)
    assert wait_state(run_id, {"Failed", "Completed"}) == "Failed"
    assert status(cat, PRODUCT, version)["MY"] == "pending_approval"
    assert approvals(cat, PRODUCT, version) == {}
    [refused] = refusals(cat, version)
    assert "was closed: its run was cancelled" in refused["detail"]["problems"][0]

    # the command listed asks again: the version is no longer lost
    new_id = cli(vis_cfg, "approvals", "retry", run_id).stdout.split("(", 1)[1].split(")")[0]
    assert wait_state(new_id, {"Suspended", "Completed", "Failed"}) == "Suspended"
    assert version not in {u.version for u in unasked(cat)}


@pytest.mark.prefect
def test_markets_asked_at_once_each_time_out_on_their_own_run(
    vis_runner: Any, vis_cfg: Config, timing_out: tuple[str, str]
) -> None:
    """Row 3: MY and SG, asked at once on runs of their own, both time out: both are recorded
    expired by the sweep, neither is a failure and nothing is left `not asked`."""
    cat = catalog_of(vis_cfg)
    version, run_id = timing_out
    assert wait_state(run_id, {"Failed"}, timeout=TIMEOUT_S + 120) == "Failed"
    asked = {p["market"]: p["flow_run_id"] for p in cat.pending_of_version(PRODUCT, version)}
    assert sorted(asked) == ["MY", "SG"] and asked["MY"] == run_id != asked["SG"]
    assert wait_state(asked["SG"], {"Failed"}, timeout=TIMEOUT_S + 120) == "Failed"
    swept = json.loads(cli(vis_cfg, "approvals", "sweep", "--json").stdout)
    markets = status(cat, PRODUCT, version)
    assert (markets["MY"], markets["SG"]) == ("expired", "expired")
    assert unasked_of(swept, version) == {}
    listing = json.loads(cli(vis_cfg, "approvals", "list", "--all", "--json").stdout)
    assert not {run_id, asked["SG"]} & {f["run_id"] for f in listing["failed"]}  # no failure
    text = cli(vis_cfg, "approvals", "list").stdout
    assert f"{PRODUCT}@{version} -> SG" not in text and f"{PRODUCT}@{version} -> MY" not in text


@pytest.mark.prefect
def test_a_replaced_form_schema_is_flagged_and_its_answer_refused(
    vis_runner: Any, vis_cfg: Config
) -> None:
    """Row 4a: the insider edits the form's field descriptions and drops the reference an
    approval requires; then (row 2) deletes the run."""
    from prefect.client.orchestration import get_client

    from bourse.approvals import waiting
    from bourse.unasked import close_abandoned, unasked

    cat = catalog_of(vis_cfg)
    version, run_id = suspended(vis_cfg, "s1")
    [pending] = cat.pending_of_run(run_id)
    key = "suspended-approval-my-schema"
    with get_client(sync_client=True) as client:
        [stored] = client.filter_flow_run_input(UUID(run_id), key, 1, set())
        assert schema_sha256(stored.decoded_value) == pending["detail"]["schema_sha256"]
        forged = copy.deepcopy(stored.decoded_value)
        approval = forged["properties"]["decision"]["anyOf"][0]
        approval["required"].remove("reference")
        approval["properties"]["reference"]["description"] = "Pre-cleared by legal: any text"
        client.delete_flow_run_input(UUID(run_id), key)
        client.create_flow_run_input(UUID(run_id), key, json.dumps(forged))
    [flagged] = [w for w in waiting(catalog=cat) if w.run_id == run_id]
    assert [w for w in flagged.warnings if "schema was replaced" in w]
    assert not [w for w in flagged.warnings if "description was replaced" in w]

    resume(run_id, {**ANSWER, **shown_constants(run_id)})  # the forged form, answered in the UI
    deadline = time.monotonic() + 120
    while pause_key(run_id) != "approval-my-2" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert pause_key(run_id) == "approval-my-2"  # refused: asked again on a fresh form
    assert status(cat, PRODUCT, version)["MY"] == "pending_approval"
    assert approvals(cat, PRODUCT, version) == {}
    first = {p["suspend_key"]: p for p in cat.pending_of_run(run_id)}["approval-my"]
    assert first["status"] == "refused"
    [event] = refusals(cat, version)
    assert event["actor"] == ANSWER["approver"] and event["detail"]["flow_run_id"] == run_id
    assert any("schema shown on form approval-my" in p for p in event["detail"]["problems"])

    # The run deleted from Prefect: its waiting question is closed, the market listed to re-run.
    with get_client(sync_client=True) as client:
        client.delete_flow_run(UUID(run_id))
    closed = [c for c in close_abandoned(cat) if c["flow_run_id"] == run_id]
    assert [(c["suspend_key"], c["status"]) for c in closed] == [("approval-my-2", "cancelled")]
    assert "deleted" in closed[0]["detail"]["cancelled"]
    lost = {u.market: u for u in unasked(cat) if u.version == version}
    assert set(lost) == {"MY"} and lost["MY"].run_id is None  # SG waits on its own run
    assert f"its publish run {run_id} was deleted" in lost["MY"].why
    assert lost["MY"].then == "re-run its drop: bourse run sz-retail customer_orders SOURCE"


def test_verify_warns_of_unasked_markets_and_of_an_unanswered_check(tmp_path: Path) -> None:
    """Row 2, verify's side: a warning per unasked market, and one when Prefect cannot say."""
    from databourse.catalog.database import Catalog
    from databourse.consistency.gate import GateEvidence
    from databourse.consistency.verify import check_all
    from databourse.storage.opening import open_store

    store = open_store(str(tmp_path / "store"))
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    cat.create_schema()
    lost = (("p", "1.0.0", "SG", "its publish run r is Cancelled; it was never asked"),)
    report = check_all(store, cat, grace_seconds=0, evidence=GateEvidence(runs={}, unasked=lost))
    [found] = [f for f in report.findings if f.kind.startswith("pending-")]
    assert (found.severity, found.kind, found.product, found.version) == (
        "warning", "pending-unasked", "p", "1.0.0",
    )  # fmt: skip
    assert "market SG" in found.message and "never asked" in found.message
    silent = GateEvidence(runs={}, unasked_error="the Prefect API did not answer (ConnectError)")
    report = check_all(store, cat, grace_seconds=0, evidence=silent)
    [found] = [f for f in report.findings if f.kind.startswith("pending-")]
    assert (found.severity, found.kind) == ("warning", "pending-unchecked")


# --- row 4b: one error line --------------------------------------------------------------------


@pytest.mark.prefect
def test_an_unknown_run_id_is_one_error_line(prefect_api: str, vis_cfg: Config) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from bourse.api_errors import api_error_line

    ghost = str(uuid4())
    for args in (
        ("approve", ghost, *MY_ANSWER),
        ("reject", ghost, "--approver", "Li Wei", "--reason", "no filing"),
        ("approvals", "retry", ghost),
    ):
        done = cli(vis_cfg, *args, check=False)
        assert done.returncode == 1, args
        [line] = error_lines(done)
        assert f"the Prefect API has no flow run {ghost}" in line, args
    # what main() prints for a 404 no command caught, from the real API's exception
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound) as info:
        client.read_flow_run(UUID(ghost))
    assert api_error_line(info.value) == f"the Prefect API has no flow run {ghost}"
    assert api_error_line(ValueError("x")) is None


@pytest.fixture
def auth_api(tmp_path: Path) -> Iterator[str]:
    """A real Prefect server that requires an auth string (not the one the test gives)."""
    home = tmp_path / "prefect-auth"
    home.mkdir()
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_API_AUTH_STRING": "bourse:" + os.urandom(16).hex(),
    }
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    try:
        wait_healthy(url, proc, log)
        assert httpx.post(f"{url}/flow_runs/filter", json={}).status_code == 401
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


@pytest.mark.prefect
def test_a_wrong_auth_string_is_one_error_line(auth_api: str, vis_cfg: Config) -> None:
    wrong = "bourse:" + os.urandom(16).hex()
    env = {
        **os.environ,
        "DATABOURSE_CONFIG_DIR": str(vis_cfg.root / "configs"),
        "PREFECT_API_URL": auth_api,
        "PREFECT_API_AUTH_STRING": wrong,
    }
    env.pop("DATABOURSE_MANAGED_PREFECT", None)
    for args in (("approvals", "list"), ("approve", str(uuid4()), *MY_ANSWER)):
        done = bourse(env, *args, check=False)
        assert done.returncode == 1, args
        [line] = error_lines(done)
        assert "the Prefect API refused the auth string (401)" in line, args
        assert wrong.split(":")[1] not in done.stdout + done.stderr
