"""End to end through the real `bourse` CLI, as a new user runs it (own server, own runner)."""

from __future__ import annotations

import html
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import standards_checks as checks
from helpers import (
    API_AUTH,
    API_AUTH_STRING,
    bourse,
    chromium_dom,
    cli_env,
    make_project,
    signed_in_ui,
    stop_stack,
)
from rdflib.namespace import DCAT, DCTERMS, RDF

from databourse.config import load_config
from databourse.config.odcs import schema_problems
from databourse.config.yaml_files import read_yaml
from databourse.product.package import read_manifest
from databourse.standards.croissant import card_key
from databourse.standards.dcat import listed_offers
from databourse.standards.exports import JSONLD_KEY
from databourse.storage.opening import open_store
from databourse_samples.demo import write_bad_drop

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    project = make_project(tmp_path_factory.mktemp("e2e") / "project", fresh=True)
    environment = cli_env(project, PREFECT_API_AUTH_STRING=API_AUTH_STRING)
    yield environment
    stop_stack(environment)


@pytest.fixture(scope="module")
def demo_run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`bourse demo` once for the module: leaves sz-retail-baskets@1.0.0 waiting on MY and SG."""
    return bourse(env, "demo", "--scale", "0.2")


@pytest.fixture(scope="module")
def demo(demo_run: subprocess.CompletedProcess[str]) -> str:
    return demo_run.stdout


def test_the_demo_on_a_fresh_project_prints_no_warning_or_traceback(
    env: dict[str, str], demo_run: subprocess.CompletedProcess[str]
) -> None:
    """No WARNING line, printed or in the runs' logs (the UI), and none for a filter to hide.

    A fresh clone has no state/ yet: Prefect could not make its home there and warned. The CLI
    drops Prefect's notice that a task's timeout cannot bind in a worker thread
    (bourse/logfilter.py), so the demo's output cannot show it: the condition that makes it, a
    task with a timeout, is checked itself (tasks/retrying.py: flow runs carry the bounds)."""
    said = demo_run.stdout + demo_run.stderr
    assert "Failed to create the Prefect home directory" not in said
    assert [line for line in said.splitlines() if "WARNING" in line] == []
    assert "Traceback" not in said and "UserWarning" not in said, demo_run.stderr[-3000:]
    logged = httpx.post(
        f"http://127.0.0.1:{env['DATABOURSE_PREFECT_PORT']}/api/logs/filter",
        json={"logs": {"level": {"ge_": 30}}},  # WARNING and above, of every run
        auth=API_AUTH,
        timeout=30,
    )
    assert [log["message"][:200] for log in logged.json()] == []
    assert _tasks_with_a_timeout() == []


def _tasks_with_a_timeout() -> list[str]:
    """Tasks of tasks/ and flows/ that set `timeout_seconds` (Prefect warns on every run of one
    in a worker thread, where the timeout cannot interrupt it)."""
    import importlib
    import pkgutil

    from prefect import Task

    import flows
    import tasks

    found = set()
    for package in (tasks, flows):
        for info in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
            module = importlib.import_module(info.name)
            found |= {
                f"{info.name}:{value.name}"
                for value in vars(module).values()
                if isinstance(value, Task) and value.timeout_seconds is not None
            }
    return sorted(found)


# The flows that emit OpenLineage events (process-drop only sequences them).
DEMO_FLOWS = {"ingest-dataset", "validate-dataset", "build-product", "anonymize-product",
              "publish-product"}  # fmt: skip


@checks.RDFLIB_JSONLD_WARNING
def test_the_demo_outputs_pass_the_standards_own_validators(
    env: dict[str, str], demo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19: the export, every manifest's policy and Croissant card, every OpenLineage event
    and each provider's ODCS contract pass their standard's own validator, offline; a grant
    outside the terms is refused naming the constraint. `pytest -s` prints the counts."""
    from tasks.lineage import EVENTS

    cfg = load_config(Path(env["DATABOURSE_CONFIG_DIR"]))
    store = open_store(cfg.store_root, endpoint_url=cfg.s3_endpoint_url)
    versions = {  # product@version: the markets the catalog shows it available in
        f"{p['id']}@{v['version']}": {a["market"] for a in v["availability"]
                                      if a["status"] == "available"}
        for p in json.loads(bourse(env, "catalog", "list", "--json").stdout)
        for v in json.loads(bourse(env, "catalog", "show", p["id"], "--json").stdout)["versions"]
    }  # fmt: skip
    available = {ref for ref, markets in versions.items() if markets}
    assert {"sz-retail-baskets@1.0.0", "kl-building-environment@1.0.0"} <= available
    for provider in cfg.providers:
        bourse(env, "config", "export-odcs", provider, "--out", str(tmp_path / provider))
    # A purpose the terms do not permit is refused before anything is recorded: the other tests
    # see the same catalog and audit trail.
    refused = bourse(
        env, "grant", "sz-retail-baskets@1.0.0", "--buyer", "SZ Ads", "--market", "CN",
        "--purpose", "advertising", check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "that purpose is not permitted" in refused.stderr
    assert "usage terms permit: market-research, assortment-planning" in refused.stderr

    offline = checks.refuse_network(monkeypatch, "the demo's outputs must be read offline")
    doc = json.loads(store.get_bytes(JSONLD_KEY))
    graph = checks.parse(doc, offline)
    for name, shapes in (("DCAT-AP 3.0.1", checks.DCAT_AP), ("ODRL 2.2", checks.ODRL)):
        found = checks.results(graph, shapes)
        checks.report(f"{name} shapes on the demo's {JSONLD_KEY}", found)
        assert found["Violation"] == []
    datasets = graph.subjects(RDF.type, DCAT.Dataset)
    assert available <= {str(graph.value(d, DCTERMS.identifier)) for d in datasets}
    offers = {(*ref.split("@"), m) for ref, markets in versions.items() for m in markets}
    assert offers <= listed_offers(doc)
    policies = {ref: read_manifest(store, *ref.split("@"))["usage_policy"] for ref in versions}
    for ref, policy in policies.items():
        found = checks.results(checks.parse(policy, offline), checks.ODRL)
        checks.report(f"ODRL 2.2 shapes on {ref}'s usage_policy", found)
        assert found["Violation"] == []
    cards = {ref: store.local_path(card_key(*ref.split("@"))) for ref in available}
    for ref, card in cards.items():
        assert card is not None and card.is_file()
        errors, warnings, said = checks.croissant_issues(card)
        print(f"\nmlcroissant on {ref}: {len(errors)} errors, {len(warnings)} warnings", said)
        assert errors == []
    assert cfg.settings.lineage.transport == "file"
    events = [json.loads(line) for line in (cfg.state_dir / EVENTS).read_text().splitlines()]
    for event in events:
        checks.check_event(event)
    completed = {e["job"]["name"] for e in events if e["eventType"] == "COMPLETE"}
    print(f"\nOpenLineage spec: {len(events)} events, 0 invalid; COMPLETE: {sorted(completed)}")
    assert completed >= DEMO_FLOWS
    contracts = {p: read_yaml(tmp_path / p, text_dates=True) for p in cfg.providers}
    for provider, contract in contracts.items():
        print(f"ODCS v3.1.0 schema on {provider}: {len(schema_problems(contract))} problems")
        assert schema_problems(contract) == []
    broken = [doc, policies["sz-retail-baskets@1.0.0"], events[-1], cards[ref], contract]
    _broken_copies_fail(*broken, tmp_path / "card.json", offline)


def _broken_copies_fail(
    doc: dict[str, Any], policy: dict[str, Any], event: dict[str, Any], card: Path | None,
    contract: dict[str, Any], copy: Path, offline: list[str],
) -> None:  # fmt: skip
    """Each validator refuses a copy missing what it requires: their zeros above mean something."""
    bare = {**doc, "dcat:dataset": [without(d, "dct:description") for d in doc["dcat:dataset"]]}
    assert checks.results(checks.parse(bare, offline), checks.DCAT_AP)["Violation"]
    assert checks.results(checks.parse(without(policy, "uid"), offline), checks.ODRL)["Violation"]
    with pytest.raises(AssertionError):
        checks.check_event(without(event, "eventTime"))
    assert card is not None
    copy.write_text(json.dumps(without(json.loads(card.read_text()), "distribution")))
    assert checks.croissant_issues(copy)[0]
    assert schema_problems(without(contract, "apiVersion"))
    assert offline == []


def without(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != key}


def rendered_text(url: str) -> str:
    """The page as Debian's headless Chromium renders it (scripts run), as plain text."""
    dom = chromium_dom(url, wait_ms=20000)  # let the single-page app fetch and render
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def test_operator_sees_the_suspended_run_and_its_artifacts_in_the_ui(
    env: dict[str, str], demo: str
) -> None:
    """As an operator: the Prefect UI's run page shows the waiting run; its artifact renders."""
    listed = json.loads(bourse(env, "approvals", "list", "--json").stdout)
    [waiting] = [w for w in listed if w["market"] == "MY"]
    server = waiting["url"].split("/runs/")[0]
    assert httpx.post(f"{server}/api/flow_runs/filter", json={}).status_code == 401
    with signed_in_ui(server, API_AUTH_STRING) as ui:  # the managed API requires its auth string
        _check_run_page(waiting, waiting["url"].replace(server, ui), ui)


def _check_run_page(waiting: dict[str, str], url: str, base: str) -> None:
    page = rendered_text(url)
    assert "publish/sz-retail-baskets/1.0.0" in page
    assert "Suspended" in page and "Resume" in page
    assert "market:MY" in page and "awaiting-approval" in page  # tags an operator filters on
    assert "MY waits for approval (route standard_contract_or_certification)" in page
    artifacts = httpx.post(
        f"{base}/api/artifacts/filter",
        json={"artifacts": {"flow_run_id": {"any_": [waiting["run_id"]]}}},
        timeout=30,
        auth=API_AUTH,
    ).json()
    [decisions] = [a for a in artifacts if (a["key"] or "").endswith("-transfer-sz-retail-baskets")]
    table = rendered_text(f"{base}/artifacts/artifact/{decisions['id']}")
    assert "Cross-border decisions for sz-retail-baskets@1.0.0" in table
    assert "MY approval_required pending_approval cn-sensitive-under-10k" in table
    assert "publish/sz-retail-baskets/1.0.0" in table  # linked to its flow run


def test_demo_approve_reject_and_rerun(env: dict[str, str], demo: str) -> None:
    project = Path(env["DATABOURSE_CONFIG_DIR"]).parent
    assert "started Prefect server" in demo and "started the deployment runner" in demo
    assert "generated a random local key" in demo
    assert "kl-building-environment@1.0.0: new version" in demo
    assert "my-chat-corpus@1.0.0: new version" in demo and " documents; publish run" in demo
    assert "sz-retail-baskets@1.0.0 -> MY" in demo and "sz-retail-baskets@1.0.0 -> SG" in demo
    assert "bourse approve" in demo

    listed = json.loads(bourse(env, "approvals", "list", "--json").stdout)
    waiting = {w["market"]: w for w in listed if w["product"] == "sz-retail-baskets"}
    assert sorted(waiting) == ["MY", "SG"]  # every waiting market at once, each on its own run
    assert waiting["MY"]["run_id"] != waiting["SG"]["run_id"]
    # While MY and SG wait, the export already lists the version where it is available (CN).
    dcat = json.loads((project / "state/store/catalog/dcat.jsonld").read_text())
    assert ("sz-retail-baskets", "1.0.0", "CN") in listed_offers(dcat)
    for w in waiting.values():
        assert w["url"].endswith(f"/runs/flow-run/{w['run_id']}")

    rejected = bourse(  # answered in any order: SG first
        env,
        "reject",
        waiting["SG"]["run_id"],
        "--approver",
        "Tan Mei Ling",
        "--reason",
        "no contract with the buyer",
    ).stdout
    assert "publish run is now Completed" in rejected
    approved = bourse(
        env,
        "approve",
        waiting["MY"]["run_id"],
        "--approver",
        "Li Wei",
        "--reference",
        "YUE-SC-2026-0042",
        "--valid-until",
        "2029-11-20",
    ).stdout
    assert "approve recorded; publish run is now Completed" in approved

    shown = json.loads(bourse(env, "catalog", "show", "sz-retail-baskets@1.0.0", "--json").stdout)
    [version] = shown["versions"]
    status = {a["market"]: a["status"] for a in version["availability"]}
    assert status == {"CN": "available", "MY": "available", "SG": "rejected"}
    routes = {a["market"]: a["route"] for a in version["approvals"]}
    assert routes["MY"] == "standard_contract_or_certification"
    # The resumed runs listed MY in the export at once (a cached export kept the one from before).
    dcat = json.loads((project / "state/store/catalog/dcat.jsonld").read_text())
    assert ("sz-retail-baskets", "1.0.0", "MY") in listed_offers(dcat)
    assert ("sz-retail-baskets", "1.0.0", "SG") not in listed_offers(dcat)
    # Nothing a resumed run must do afresh came from the cache of its first start (issue 19).
    lineage = [json.loads(line) for line in (project / "state/lineage/events.jsonl").open()]
    for run in waiting.values():
        assert _cached_tasks(env, run["run_id"], {"sweep-approvals", "export-catalog"}) == []
        phases = [e["eventType"] for e in lineage if e["run"]["runId"] == run["run_id"]]
        assert phases == ["START", "RUNNING", "COMPLETE"], phases  # one START, resumed once
        tags = _run(env, run["run_id"])["tags"]  # answered: no longer listed as waiting
        assert f"market:{run['market']}" in tags and "awaiting-approval" not in tags, tags
    # The approvals given on the forms verify against the answers Prefect stored (issue 15 R3).
    clean = verify_all(env)
    kinds = {f["kind"] for f in clean["findings"]}
    assert not kinds & {"approval-unverified", "approvals-unchecked", "facts-mismatch"}, clean
    assert "listing-behind" not in kinds, clean
    assert clean["checked"]["approvals"] >= 2 and clean["checked"]["facts_rederived"] >= 2

    again = bourse(env, "demo", "--scale", "0.2").stdout
    assert "identical bytes seen before" in again and "new version" not in again
    listed = json.loads(bourse(env, "catalog", "list", "--json").stdout)
    assert {(p["id"], p["latest_version"], p["version_count"]) for p in listed} == {
        ("kl-building-environment", "1.0.0", 1),
        ("sz-retail-baskets", "1.0.0", 1),
        ("my-chat-corpus", "1.0.0", 1),  # the same ingest again: the version that holds it
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


def test_operations_on_the_published_demo(env: dict[str, str], demo: str, tmp_path: Path) -> None:
    """Verify, grant, export, audit, profile, anonymize, withdraw: as an operator runs them."""
    import sqlite3

    project = Path(env["DATABOURSE_CONFIG_DIR"]).parent
    assert "all verified" in bourse(env, "verify", "kl-building-environment@1.0.0").stdout
    explained = bourse(env, "transfer", "explain", "sz-retail-baskets@1.0.0", "--market", "SG")
    assert "approval_required by rule cn-sensitive-under-10k" in explained.stdout
    assert "cn-anonymized: skipped: personal_data wants False, fact is True" in explained.stdout
    granted = json.loads(
        bourse(
            env,
            "grant",
            "sz-retail-baskets@1.0.0",
            "--buyer",
            "KL Mart",
            "--market",
            "MY",
            "--purpose",
            "market-research",
            "--expires",
            "24h",
            "--json",
        ).stdout
    )
    assert granted["market"] == "MY" and len(granted["files"][0]["sha256"]) == 64
    assert "file://" not in json.dumps(granted)  # no link: the exchange delivers
    refused = bourse(
        env, "grant", "sz-retail-baskets@1.0.0", "--buyer", "SG Shop", "--market", "SG",
        "--purpose", "market-research", check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "not offered in SG" in refused.stderr

    exported = bourse(env, "catalog", "export").stdout
    page = project / "state/store/catalog/index.html"
    assert "catalog/index.html" in exported and "sz-retail-baskets" in page.read_text()
    dcat = json.loads((project / "state/store/catalog/dcat.jsonld").read_text())
    types = [d["@type"] for d in dcat["dcat:dataset"]]  # a series is a dataset too (DCAT 3)
    assert {t if isinstance(t, str) else tuple(t) for t in types} == {
        ("dcat:DatasetSeries", "dcat:Dataset"),
        "dcat:Dataset",
    }

    history = json.loads(bourse(env, "audit", "show", "sz-retail-baskets", "--json").stdout)
    kinds = [e["kind"] for e in history]
    assert {"version", "publication", "approval", "rejection", "grant"} <= set(kinds)
    assert "audit chain intact" in bourse(env, "audit", "verify").stdout

    profile = bourse(env, "quality", "profile", "my-buildops", "sensor_readings").stdout
    assert "ExpectColumnValuesToBeBetween" in profile and "reading_id" in profile
    readings = next((project / "state/samples/my-buildops/sensor_readings").glob("*.csv"))
    mykads = {line.split(",")[8] for line in readings.read_text().splitlines()[1:50]} - {""}
    assert not any(m in profile for m in mykads)  # personal values never proposed

    scanned = json.loads(bourse(env, "scan", str(readings), "--json").stdout)
    categories = {c["name"]: c["category"] for c in scanned["columns"]}
    assert categories["occupant_mykad"] == "MY_NRIC" and categories["co2_ppm"] is None
    assert not any(m in json.dumps(scanned) for m in mykads)
    out = tmp_path / "kl.parquet"
    report = json.loads(
        bourse(
            env,
            "anonymize",
            str(readings),
            "--product",
            "kl-building-environment",
            "--out",
            str(out),
            "--json",
        ).stdout
    )
    assert report["rows_out"] > 0 and out.is_file() and report["privacy"]["smallest_class"] >= 5

    bourse(env, "catalog", "withdraw", "kl-building-environment@1.0.0", "--reason", "test")
    listed = {p["id"]: p for p in json.loads(bourse(env, "catalog", "list", "--json").stdout)}
    assert listed["kl-building-environment"]["markets"] == []

    with sqlite3.connect(project / "state/catalog.db") as db:  # tamper with the trail
        db.execute("UPDATE audit_events SET actor = 'Mallory' WHERE kind = 'approval'")
    broken = bourse(env, "audit", "verify", check=False)
    assert broken.returncode == 1 and "edited" in broken.stderr


def verify_all(env: dict[str, str]) -> dict[str, Any]:
    proc = bourse(env, "verify", "--all", "--json", check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return dict(json.loads(proc.stdout))


def test_approval_rows_an_insider_adds_or_edits_are_flagged(env: dict[str, str], demo: str) -> None:
    """The demo's real approval edited in the database, and one forged: verify --all names both."""
    import sqlite3

    project = Path(env["DATABOURSE_CONFIG_DIR"]).parent
    with sqlite3.connect(project / "state" / "catalog.db") as db:
        db.execute("UPDATE approvals SET reference = 'YUE-SC-2026-9999' WHERE market = 'MY'")
        db.execute(
            "INSERT INTO approvals (version_id, market, content_hash, decision, approver, route,"
            " reference, valid_until, flow_run_id, decided_at, carry_over)"
            " SELECT version_id, 'SG', content_hash, 'approved', 'Mallory', route, 'FORGED',"
            " valid_until, flow_run_id, decided_at, carry_over FROM approvals WHERE market = 'MY'"
        )
    findings = verify_all(env)["findings"]
    forged = [f["message"] for f in findings if f["kind"] == "approval-unverified"]
    assert any("(MY, approved)" in m and "reference differs" in m for m in forged), forged
    assert any("(SG, approved)" in m and "no answer on a SG approval form" in m for m in forged)


def _cached_tasks(env: dict[str, str], run_id: str, names: set[str]) -> list[str]:
    """The task runs named in `names` of a flow run that were taken from the cache."""
    runs = httpx.post(
        f"http://127.0.0.1:{env['DATABOURSE_PREFECT_PORT']}/api/task_runs/filter",
        json={"flow_runs": {"id": {"any_": [run_id]}}},
        auth=API_AUTH,
        timeout=30,
    ).json()
    return [
        r["name"]
        for r in runs
        if any(r["name"].startswith(n) for n in names)
        and (r.get("state") or {}).get("name") == "Cached"
    ]


def _run(env: dict[str, str], run_id: str) -> dict[str, Any]:
    """The flow run as the Prefect API returns it."""
    return dict(
        httpx.get(
            f"http://127.0.0.1:{env['DATABOURSE_PREFECT_PORT']}/api/flow_runs/{run_id}",
            auth=API_AUTH,
            timeout=30,
        ).json()
    )


def test_corpus_drops_through_bourse_run_nothing_new_and_a_broken_line(
    env: dict[str, str], demo: str, tmp_path: Path
) -> None:
    """A data engineer's `bourse run` of transcripts the corpus already holds says there is no
    new version (never `None`), and of a file with a broken line names the file and the line,
    quarantines it and publishes nothing."""
    project = Path(env["DATABOURSE_CONFIG_DIR"]).parent
    sample = project / "state" / "samples" / "my-chatdesk" / "chats-2026-11-20.jsonl"
    lines = sample.read_text(encoding="utf-8").splitlines(keepends=True)
    old = tmp_path / "old.jsonl"
    old.write_text("".join(lines[:20]), encoding="utf-8")
    ran = bourse(env, "run", "my-chatdesk", "chat_transcripts", str(old)).stdout
    assert "my-chat-corpus: no new version" in ran and "None" not in ran
    bad = tmp_path / "broken.jsonl"
    bad.write_text(lines[0] + "not json at all\n", encoding="utf-8")
    refused = bourse(env, "run", "my-chatdesk", "chat_transcripts", str(bad), check=False)
    assert refused.returncode == 1
    assert "broken.jsonl: line 2: invalid JSON" in refused.stderr + refused.stdout
    assert "Traceback" not in refused.stderr
    quarantined = project / "state" / "store" / "quarantine" / "my-chatdesk" / "chat_transcripts"
    assert any(p.name == "broken.jsonl" for p in quarantined.rglob("*"))
    listed = json.loads(bourse(env, "catalog", "show", "my-chat-corpus", "--json").stdout)
    assert [v["version"] for v in listed["versions"]] == ["1.0.0"]
