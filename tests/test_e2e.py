"""End to end through the real `bourse` CLI, as a new user runs it (own server, own runner)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import bourse, cli_env, make_project, stop_stack

from databourse.samples import write_bad_drop

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    environment = cli_env(make_project(tmp_path_factory.mktemp("e2e") / "project"))
    yield environment
    stop_stack(environment)


def test_demo_approve_reject_and_rerun(env: dict[str, str]) -> None:
    project = Path(env["DATABOURSE_CONFIG_DIR"]).parent
    demo = bourse(env, "demo", "--scale", "0.2").stdout
    assert "started Prefect server" in demo and "started the deployment runner" in demo
    assert "generated a random local key" in demo
    assert "kl-building-environment@1.0.0: new version" in demo
    assert "sz-retail-baskets@1.0.0 -> MY" in demo and "bourse approve" in demo

    waiting = json.loads(bourse(env, "approvals", "list", "--json").stdout)
    assert [(w["product"], w["market"]) for w in waiting] == [("sz-retail-baskets", "MY")]
    run_id = waiting[0]["run_id"]
    assert waiting[0]["url"].endswith(f"/runs/flow-run/{run_id}")

    approved = bourse(
        env,
        "approve",
        run_id,
        "--approver",
        "Li Wei",
        "--reference",
        "YUE-SC-2026-0042",
        "--valid-until",
        "2029-11-20",
    ).stdout
    assert "approve recorded; publish run is now Suspended" in approved  # SG is next
    rejected = bourse(
        env,
        "reject",
        run_id,
        "--approver",
        "Tan Mei Ling",
        "--reason",
        "no contract with the buyer",
    ).stdout
    assert "publish run is now Completed" in rejected

    shown = json.loads(bourse(env, "catalog", "show", "sz-retail-baskets@1.0.0", "--json").stdout)
    [version] = shown["versions"]
    status = {a["market"]: a["status"] for a in version["availability"]}
    assert status == {"CN": "available", "MY": "available", "SG": "rejected"}
    routes = {a["market"]: a["route"] for a in version["approvals"]}
    assert routes["MY"] == "standard_contract_or_certification"

    again = bourse(env, "demo", "--scale", "0.2").stdout
    assert "identical bytes seen before" in again and "new version" not in again
    listed = json.loads(bourse(env, "catalog", "list", "--json").stdout)
    assert {(p["id"], p["latest_version"], p["version_count"]) for p in listed} == {
        ("kl-building-environment", "1.0.0", 1),
        ("sz-retail-baskets", "1.0.0", 1),
    }
    assert json.loads(bourse(env, "approvals", "list", "--json").stdout) == []
    products = project / "state" / "store" / "products"
    assert sorted(p.name for p in (products / "sz-retail-baskets").iterdir()) == ["1.0.0"]


def test_cli_bad_file_exits_nonzero_with_reason(env: dict[str, str], tmp_path: Path) -> None:
    bad = write_bad_drop(tmp_path / "readings.csv", "missing_column")
    proc = bourse(env, "ingest", "my-buildops", "sensor_readings", str(bad), check=False)
    assert proc.returncode == 1
    assert "readings.csv" in proc.stderr and "co2_ppm" in proc.stderr
    assert "quarantined at" in proc.stderr


def test_cli_config_check_lists_problems(env: dict[str, str], tmp_path: Path) -> None:
    project = make_project(tmp_path / "broken")
    prod = project / "configs" / "products" / "kl-building-environment.yaml"
    prod.write_text(
        prod.read_text()
        .replace("k: 5", "k: 0")
        .replace("markets: [MY, CN, SG]", "markets: [Malaysia]")
    )
    broken = {**env, "DATABOURSE_CONFIG_DIR": str(project / "configs")}
    proc = bourse(broken, "config", "check", check=False)
    assert proc.returncode == 1
    assert "privacy.k" in proc.stderr and "markets.0" in proc.stderr
