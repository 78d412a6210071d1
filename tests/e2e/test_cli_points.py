"""Issue 21 item 5, each point through the real CLI (subprocesses): `--version`; `--json` on
every command that reports, with its errors as one JSON object on stderr; help text on every
argument and option; `transfer explain` refuses an unknown market and prints no Python dict;
`approvals list` changes nothing (an expired question is shown, recorded only by the sweep).
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import test_facts_and_grants
from helpers import REPO, bourse, cli_env, free_port, make_project, own_prefect_server
from sqlalchemy import inspect, text
from test_facts_and_grants import PRODUCT, SCC, World, gate, package

from databourse.catalog.database import Catalog

pytestmark = pytest.mark.e2e
world = test_facts_and_grants.world  # the fixture: a project with its catalog, store and CLI env


def json_error(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The error object a `--json` command printed: the last line of stderr, no traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert not any(line.startswith("error:") for line in proc.stderr.splitlines()), proc.stderr
    error = json.loads(proc.stderr.strip().splitlines()[-1])
    assert isinstance(error, dict) and error["exit_code"] == proc.returncode, error
    return error


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A project of its own; its Prefect API (a free port) does not answer."""
    return cli_env(make_project(tmp_path / "project"))


# --- 1. --version -------------------------------------------------------------------------------


def test_version_prints_the_installed_version(env: dict[str, str]) -> None:
    done = bourse(env, "--version")
    assert done.stdout.split() == ["bourse", "(databourse)", installed_version("databourse")]


# --- 2. --json, and errors as JSON --------------------------------------------------------------


def test_config_check_json_and_its_problems_as_json(env: dict[str, str]) -> None:
    assert json.loads(bourse(env, "config", "check", "--json").stdout) == {
        "ok": True, "providers": 3, "products": 3, "origins": 4,
    }  # fmt: skip
    product = Path(env["DATABOURSE_CONFIG_DIR"]) / "products" / "kl-building-environment.yaml"
    product.write_text(product.read_text().replace("  k: 5", "  k: 0"))
    broken = bourse(env, "config", "check", "--json", check=False)
    assert broken.returncode == 1 and broken.stdout == ""
    error = json_error(broken)
    assert error["error"] == "1 config problem(s):"
    [problem] = error["details"]
    assert "kl-building-environment.yaml" in problem and "privacy.k" in problem


def test_server_status_json(env: dict[str, str]) -> None:
    shown = json.loads(bourse(env, "server", "status", "--json").stdout)
    assert {"api", "ui", "server", "runner", "auth"} <= set(shown)
    assert shown["api"].endswith("(down)")


def test_run_and_ingest_json_errors(env: dict[str, str], tmp_path: Path) -> None:
    """An external Prefect API that does not answer: the same exit 1, as one JSON object."""
    down = {**env, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    drop = tmp_path / "orders.csv"
    drop.write_text("order_id\n1\n")
    for command in ("run", "ingest"):
        done = bourse(
            down, command, "sz-retail", "customer_orders", str(drop), "--json", check=False
        )
        assert done.returncode == 1 and done.stdout == "", (command, done.stderr)
        assert "does not answer" in json_error(done)["error"], command


@pytest.mark.prefect
def test_ingest_json_lists_each_file(world: World, tmp_path: Path) -> None:
    """On a Prefect server of its own: `ingest` starts this project's runner, which on the
    session's server would take over the deployments the other tests' runner serves."""
    drops = tmp_path / "drops"
    bourse(world.env, "samples", "generate", str(drops), "--scale", "0.02", "--seed", "7")
    [orders] = drops.glob("sz-retail/customer_orders/*.csv")
    ragged = orders.parent / "ragged.csv"
    ragged.write_text(orders.read_text().splitlines()[0] + "\n1,2\n")  # too few fields
    with own_prefect_server("cli-ingest-") as api:
        env = {**world.env, "PREFECT_API_URL": api}
        try:
            done = bourse(env, "ingest", "sz-retail", "customer_orders", str(orders), "--json")
            bad = bourse(env, "ingest", "sz-retail", "customer_orders", str(ragged), "--json",
                         check=False)  # fmt: skip
        finally:
            bourse(env, "server", "stop", check=False)
    shown = json.loads(done.stdout)
    assert (shown["failures"], shown["refused"]) == (0, [])
    [one] = shown["ingested"]
    assert (one["file"], one["status"], one["format"], one["duplicate"]) == (
        orders.name, "ingested", "csv", False,
    )  # fmt: skip
    assert one["rows"] == len(orders.read_text().splitlines()) - 1 and len(one["sha256"]) == 64
    assert one["raw_key"].startswith("raw/sz-retail/customer_orders/")
    assert bad.returncode == 1
    refused = json.loads(bad.stdout)
    [why] = refused["refused"]
    assert (why["file"], why["status"], refused["failures"]) == ("ragged.csv", "quarantined", 1)
    assert "ragged.csv" in why["reason"] and why["quarantine_uri"]


def test_anonymize_reports_in_text_and_in_json(env: dict[str, str], tmp_path: Path) -> None:
    """`anonymize` prints a summary; the whole privacy report only with --json."""
    drops = tmp_path / "drops"
    bourse(env, "secrets", "init")  # the product pseudonymizes customer_ref
    bourse(env, "samples", "generate", str(drops), "--scale", "0.02", "--seed", "5")
    [orders] = drops.glob("sz-retail/customer_orders/*.csv")
    args = ("anonymize", str(orders), "--product", "sz-retail-baskets")
    text_out = bourse(env, *args, "--out", str(tmp_path / "a.parquet")).stdout
    lines = text_out.splitlines()
    assert lines[0].startswith("sz-retail-baskets: ") and " rows in, " in lines[0]
    assert lines[1].startswith("privacy model k-anonymity, k=5 over ")
    assert lines[1].endswith("model satisfied: True") and "re-identification risk" in lines[2]
    assert "checked again on the written file: met" in text_out and "{" not in text_out
    report = json.loads(bourse(env, *args, "--out", str(tmp_path / "b.parquet"), "--json").stdout)
    assert report["privacy"]["satisfied"] is True and report["rows_out"] > 0
    assert f"{report['rows_in']} rows in, {report['rows_out']} out" in lines[0]


def test_anonymize_and_reject_json_errors(env: dict[str, str], tmp_path: Path) -> None:
    """An error main() catches (unknown product) and one a command reports (a bad name)."""
    source = tmp_path / "readings.csv"
    source.write_text("a\n1\n")
    done = bourse(env, "anonymize", str(source), "--product", "nope",
                  "--out", str(tmp_path / "out.parquet"), "--json", check=False)  # fmt: skip
    assert done.returncode == 1 and "unknown product 'nope'" in json_error(done)["error"]
    done = bourse(env, "reject", str(uuid4()), "--approver", " ", "--reason", "r", "--json",
                  check=False)  # fmt: skip
    assert done.returncode == 1
    assert json_error(done)["error"].startswith("--approver: answer not sent: the approver is")
    done = bourse(env, "verify", "--json", check=False)  # a command that had --json already
    assert done.returncode == 1 and "PRODUCT@VERSION" in json_error(done)["error"]


def test_audit_verify_json_intact_then_broken(world: World) -> None:
    package(world)
    env = {**world.env, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    intact = json.loads(bourse(env, "audit", "verify", "--json").stdout)
    assert intact["ok"] and intact["events"] > 0 and intact["problems"] == []
    with world.catalog.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'Mallory'"))
    broken = bourse(env, "audit", "verify", "--json", check=False)
    assert broken.returncode == 1
    report = json.loads(broken.stdout)
    assert not report["ok"] and report["problems"]
    error = json_error(broken)
    assert error["error"].startswith("audit chain broken") and error["details"]


@pytest.mark.prefect
def test_approve_json_error_of_an_unknown_run(prefect_api: str, world: World) -> None:
    done = bourse(world.env, "approve", str(uuid4()), "--approver", "Li Wei",
                  "--reference", "R-1", "--json", check=False)  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert "answer not sent" in json_error(done)["error"]


# --- 3. help text everywhere --------------------------------------------------------------------

WALK = """
import typer.main
from bourse.cli import app

def walk(command, path):
    if not (command.help or "").strip():
        print(path, "(the command)")
    for param in command.params:
        if not (getattr(param, "help", None) or "").strip():
            print(path, param.name)
    for name, sub in getattr(command, "commands", {}).items():
        walk(sub, f"{path} {name}")

walk(typer.main.get_command(app), "bourse")
"""


def test_every_command_argument_and_option_has_help(env: dict[str, str]) -> None:
    """One subprocess walks the command tree (importing the CLI there, never here)."""
    done = subprocess.run(
        [sys.executable, "-c", WALK], env=env, cwd=REPO, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    assert done.stdout == "", f"without help text:\n{done.stdout}"


# --- 4. transfer explain ------------------------------------------------------------------------


def test_transfer_explain_refuses_an_unknown_market_and_prints_lines(world: World) -> None:
    version = package(world)
    gate(world, version)
    refused = world.cli("transfer", "explain", f"{PRODUCT}@{version}", "--market", "ZZ")
    assert refused.returncode in (1, 2) and refused.stdout == ""
    assert "ZZ" in refused.stderr and "CN, HK, MY, SG" in refused.stderr
    as_json = world.cli("transfer", "explain", f"{PRODUCT}@{version}", "--market", "zz", "--json")
    assert as_json.returncode == refused.returncode and "ZZ" in json_error(as_json)["error"]

    explained = world.cli("transfer", "explain", f"{PRODUCT}@{version}", "--market", "MY")
    assert explained.returncode == 0, explained.stderr
    lines = explained.stdout.splitlines()
    assert "approval_required by rule cn-sensitive-under-10k" in lines[0]
    assert "{" not in explained.stdout and "'origin'" not in explained.stdout  # no dict repr
    assert "  origin: CN" in lines and "  personal_data: True" in lines
    assert "  sensitive_categories: CN_RESIDENT_ID" in lines


# --- 5. approvals list writes nothing -----------------------------------------------------------


def catalog_rows(cat: Catalog) -> dict[str, list[Any]]:
    """Every row of every table of the catalog."""
    with cat.engine.connect() as conn:
        return {
            t: list(conn.execute(text(f'SELECT * FROM "{t}"')).all())
            for t in inspect(conn).get_table_names()
        }


@pytest.mark.prefect
def test_approvals_list_shows_an_expired_question_and_changes_nothing(
    prefect_api: str, world: World
) -> None:
    version = package(world)
    gate(world, version)
    run_id = str(uuid4())  # a publish run Prefect no longer has (its question timed out)
    world.catalog.open_pending(
        PRODUCT, version, "MY", SCC, "cn-sensitive-under-10k", run_id, "approval-my",
        timeout_seconds=0,
    )  # fmt: skip
    before = catalog_rows(world.catalog)
    where = f"{PRODUCT}@{version} -> MY"

    shown = world.cli("approvals", "list")
    assert shown.returncode == 0, shown.stderr
    [line] = [x for x in shown.stdout.splitlines() if x.startswith(f"expired: {where}")]
    assert run_id in line and "approvals sweep" in line
    assert f"not asked: {where}" not in shown.stdout  # expired, not lost
    listing = json.loads(world.cli("approvals", "list", "--all", "--json").stdout)
    [expired] = listing["expired"]
    assert (expired["market"], expired["run_id"], expired["recorded"]) == ("MY", run_id, False)
    assert catalog_rows(world.catalog) == before  # no expiry, audit event or closed question

    swept = json.loads(world.cli("approvals", "sweep", "--json").stdout)  # the sweep records it
    assert [(e["market"], e["decision"]) for e in swept["expired"]] == [("MY", "expired")]
    assert world.status(version)["MY"] == "expired"
    assert "expired: " not in world.cli("approvals", "list").stdout
