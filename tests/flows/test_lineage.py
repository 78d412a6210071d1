"""OpenLineage events: the pure builders (databourse.standards.lineage) and the events flows emit,
each checked against the vendored OpenLineage spec (tests/data/openlineage, offline)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from openlineage.client import OpenLineageClient
from standards_checks import check_event, check_schema

from databourse.config.products import ProductSpec
from databourse.standards import lineage

CANARY = "Qzcanary-7f3e9b"  # a cell value: it must never reach an event
NS = "databourse://test"
RUN = "0191c0de-0000-7000-8000-000000000001"
PARENT = "0191c0de-0000-7000-8000-000000000002"


def as_json(event: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(lineage.to_json(event))
    return result


PRODUCT = ProductSpec.model_validate(
    {
        "id": "p-test",
        "name": "Test product",
        "source": {"provider": "prov", "dataset": "people"},
        "columns": {
            "id": {"action": "keep", "rename": "record_id"},
            "name": "drop",
            "phone": "drop",
            "national_id": "pseudonymize",
            "age": {"band": 10},
            "city": "keep",
        },
        "privacy": {"quasi_identifiers": ["age", "city"], "k": 2},
        "terms": {"purposes": ["research"]},
        "markets": ["SG"],
    }
)
SCHEMA = [
    {"name": "record_id", "type": "string"},
    {"name": "national_id", "type": "string"},
    {"name": "age", "type": "int64"},
    {"name": "city", "type": "string"},
]
RECORD = {
    "provider": "prov",
    "dataset": "people",
    "ingest_id": "abc123",
    "sha256": "a" * 64,
    "staged_sha256": "b" * 64,
    "schema": [*SCHEMA[1:], {"name": "id", "type": "string"}, {"name": "name", "type": "string"}],
}
QUALITY = {  # as quality.json holds it: observed values and parameters included
    "success": False,
    "results": [
        {
            "expectation": "ExpectColumnValuesToBeInSet",
            "column": "city",
            "severity": "error",
            "success": False,
            "observed_value": CANARY,
            "unexpected_count": 1,
            "partial_unexpected_list": [CANARY],
        },
        {"expectation": "ExpectTableRowCountToBeBetween", "column": None, "severity": "warning",
         "success": True, "observed_value": 3},
    ],
}  # fmt: skip


def test_schema_facet_has_names_and_types_only() -> None:
    facet = as_json(lineage.raw_dataset(NS, RECORD))["facets"]["schema"]
    fields = [(f["name"], f["type"]) for f in facet["fields"]]
    assert fields == [(c["name"], c["type"]) for c in RECORD["schema"]]
    assert all(
        set(f) <= {"name", "type", "fields"} and not f.get("fields") for f in facet["fields"]
    )
    check_schema(facet["_schemaURL"], facet)


def test_dataset_names_and_versions() -> None:
    raw = as_json(lineage.raw_dataset(NS, RECORD))
    staged = as_json(lineage.staged_output(NS, RECORD))
    product = as_json(lineage.product_output(NS, PRODUCT, SCHEMA, "c" * 64))
    assert (raw["namespace"], raw["name"]) == (NS, "raw/prov/people/abc123")
    assert staged["name"] == "staging/prov/people" and product["name"] == "products/p-test"
    versions = [d["facets"]["version"]["datasetVersion"] for d in (raw, staged, product)]
    assert versions == ["a" * 64, "b" * 64, "c" * 64]
    assert lineage.namespace("demo") == "databourse://demo"


def test_column_lineage_follows_the_column_rules() -> None:
    facet = as_json(lineage.column_lineage(NS, PRODUCT, [c["name"] for c in SCHEMA]))
    fields = facet["fields"]
    assert set(fields) == {"record_id", "national_id", "age", "city"}  # name, phone dropped
    steps = {
        out: [(f["field"], t["type"], t["subtype"], t["masking"], t["description"])
              for f in spec["inputFields"] for t in f["transformations"]]
        for out, spec in fields.items()
    }  # fmt: skip
    assert steps == {
        "record_id": [("id", "DIRECT", "IDENTITY", False, "keep")],
        "national_id": [("national_id", "DIRECT", "TRANSFORMATION", True, "pseudonymize")],
        "age": [("age", "DIRECT", "TRANSFORMATION", True, "generalize")],
        "city": [("city", "DIRECT", "IDENTITY", False, "keep")],
    }
    assert all(f["namespace"] == NS and f["name"] == "staging/prov/people"
               for spec in fields.values() for f in spec["inputFields"])  # fmt: skip
    suppression = {(f["field"], f["transformations"][0]["subtype"]) for f in facet["dataset"]}
    assert suppression == {("age", "FILTER"), ("city", "FILTER")}
    check_schema(facet["_schemaURL"], facet)
    # the written schema limits the fields: a column the build did not write is not claimed
    assert set(lineage.column_lineage(NS, PRODUCT, ["city"]).fields) == {"city"}


def test_quality_assertions_carry_no_values() -> None:
    facet = as_json(lineage.quality_facet(QUALITY))
    assert [(a["assertion"], a.get("column"), a["success"], a["severity"])
            for a in facet["assertions"]] == [
        ("ExpectColumnValuesToBeInSet", "city", False, "error"),
        ("ExpectTableRowCountToBeBetween", None, True, "warning"),
    ]  # fmt: skip
    assert CANARY not in json.dumps(facet)
    assert not any({"expected", "actual", "content"} & set(a) for a in facet["assertions"])


def test_every_event_is_valid_and_carries_no_value() -> None:
    run = lineage.JobRun(RUN, NS, "build-product")
    parent = lineage.JobRun(PARENT, NS, "process-drop")
    events = [
        lineage.run_event("START", run, [lineage.staged_input(NS, RECORD)], parent=parent),
        lineage.run_event(
            "COMPLETE",
            run,
            [lineage.staged_input(NS, RECORD, QUALITY)],
            [lineage.product_output(NS, PRODUCT, SCHEMA, "c" * 64)],
            parent=parent,
        ),
        lineage.run_event("FAIL", run, error="QualityFailed"),
    ]
    for event in map(as_json, events):
        check_event(event)
        assert CANARY not in json.dumps(event)
        assert event["run"]["runId"] == RUN and event["job"] == {
            "namespace": NS, "name": "build-product", "facets": event["job"]["facets"]
        }  # fmt: skip
    start, complete, fail = map(as_json, events)
    assert start["run"]["facets"]["parent"]["run"]["runId"] == PARENT
    assert start["run"]["facets"]["parent"]["job"]["name"] == "process-drop"
    assert [start["eventType"], complete["eventType"], fail["eventType"]] == [
        "START", "COMPLETE", "FAIL"
    ]  # fmt: skip
    assert fail["run"]["facets"]["errorMessage"]["message"] == "QualityFailed"
    assert "parent" not in fail["run"]["facets"]


def test_the_checker_rejects_a_bad_event() -> None:
    """The validation is real: a run id that is no uuid and a schema field without a name fail."""
    event = as_json(lineage.run_event("START", lineage.JobRun(RUN, NS, "x")))
    event["run"]["runId"] = "not-a-uuid"
    with pytest.raises(AssertionError):
        check_event(event)
    facet = as_json(lineage.schema_facet([{"name": "a", "type": "string"}]))
    del facet["fields"][0]["name"]
    with pytest.raises(AssertionError):
        check_schema(facet["_schemaURL"], facet)


# --- the flows against a real Prefect API ------------------------------------------------------


def _events(project: Path, skip: int) -> list[dict[str, Any]]:
    path = project / "state" / "lineage" / "events.jsonl"
    lines = path.read_text().splitlines()[skip:] if path.exists() else []
    return [json.loads(line) for line in lines]


def _seen(project: Path) -> int:
    path = project / "state" / "lineage" / "events.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _flow_name(run_id: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow(client.read_flow_run(run_id).flow_id).name


def _with_canary(source: Path, out: Path) -> Path:
    """The sample drop with a canary as one reading's id (kept by the product) and as one
    occupant's name (dropped)."""
    header, first, *rest = source.read_text().splitlines(keepends=True)
    names = header.rstrip("\r\n").split(",")
    cells = first.rstrip("\r\n").split(",")
    cells[names.index("reading_id")] = CANARY
    cells[names.index("occupant_name")] = f"{CANARY} Vexlorth"
    out.write_text(header + ",".join(cells) + "\n" + "".join(rest))
    return out


@pytest.fixture
def own_project(prefect_api: str, tmp_path: Path) -> Iterator[Path]:
    """A project of its own for the in-process flows: builds here never move the versions the
    session project's flow tests expect (kl-building-environment 1.0.0)."""
    from helpers import make_project
    from test_facts_and_grants import project_resources

    from databourse.config import load_config

    path = make_project(tmp_path / "lineage-project")
    with project_resources(load_config(path / "configs")):
        yield path


@pytest.mark.prefect
def test_flows_emit_start_and_complete_events(
    prefect_api: str, own_project: Path, tmp_path: Path
) -> None:
    from databourse_samples.demo import generate_drops
    from flows.build_product import build_product
    from flows.ingest_dataset import ingest_dataset
    from flows.publish_product import publish_product
    from flows.validate_dataset import validate_dataset

    [drop] = [
        d for d in generate_drops(tmp_path / "drops", scale=0.1) if d.provider == "my-buildops"
    ]
    source = _with_canary(drop.path, tmp_path / "readings-lineage.csv")
    skip = _seen(own_project)
    ingested = ingest_dataset("my-buildops", "sensor_readings", str(source))
    ingest_id = ingested["ingest_id"]
    validate_dataset("my-buildops", "sensor_readings", ingest_id)
    built = build_product("kl-building-environment", ingest_id)
    publish_product("kl-building-environment", built["version"])  # allowed in every market

    staged_table = pq.read_table(own_project / "state" / "store" / ingested["staged_key"])
    assert CANARY in staged_table.column("reading_id").to_pylist()  # the canary is data
    path = own_project / "state" / "lineage" / "events.jsonl"
    text = path.read_text()
    assert CANARY not in text  # nor any other value: names, types and hashes only
    assert path.stat().st_mode & 0o044 == 0o044  # readable by other consumers
    events = _events(own_project, skip)
    for event in events:
        check_event(event)
    runs: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        runs.setdefault(event["run"]["runId"], []).append(event)
    by_job = {e[0]["job"]["name"]: e for e in runs.values()}
    assert set(by_job) == {"ingest-dataset", "validate-dataset", "build-product",
                           "anonymize-product", "publish-product"}  # fmt: skip
    ns = events[0]["job"]["namespace"]
    assert ns.startswith("databourse://")
    for job, pair in by_job.items():
        assert [e["eventType"] for e in pair] == ["START", "COMPLETE"], job
        assert _flow_name(pair[0]["run"]["runId"]) == job  # the Prefect flow run's own id
        assert {e["job"]["namespace"] for e in pair} == {ns}

    staged = ("staging/my-buildops/sensor_readings", ns)
    ingest_end = by_job["ingest-dataset"][1]
    assert ingest_end["inputs"] == []
    raw, staged_out = ingest_end["outputs"]
    assert raw["name"] == f"raw/my-buildops/sensor_readings/{ingest_id}"
    assert raw["facets"]["version"]["datasetVersion"] == ingested["sha256"]
    assert (staged_out["name"], staged_out["namespace"]) == staged
    assert staged_out["facets"]["version"]["datasetVersion"] == ingested["staged_sha256"]
    assert [f["name"] for f in staged_out["facets"]["schema"]["fields"]] == [
        c["name"] for c in ingested["schema"]
    ]

    quality_json = json.loads(
        (
            own_project
            / "state/store/reports/my-buildops/sensor_readings"
            / ingest_id
            / "quality.json"
        ).read_text()
    )
    validate_start, validate_end = by_job["validate-dataset"]
    assert (
        "inputFacets" not in validate_start["inputs"][0]
        or not validate_start["inputs"][0]["inputFacets"]
    )
    [checked] = validate_end["inputs"]
    assert (checked["name"], checked["namespace"]) == staged
    assertions = checked["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert len(assertions) == len(quality_json["results"]) and all(a["success"] for a in assertions)

    build_start, build_end = by_job["build-product"]
    anonymize_start, anonymize_end = by_job["anonymize-product"]
    for event in (build_start, build_end, anonymize_start, anonymize_end):
        assert [(d["name"], d["namespace"]) for d in event["inputs"]] == [staged]
    assert build_start["outputs"] == [] and anonymize_start["outputs"] == []
    for end in (build_end, anonymize_end):
        [product] = end["outputs"]
        assert product["name"] == "products/kl-building-environment"
        assert product["facets"]["version"]["datasetVersion"] == built["content_hash"]
        lineage_fields = product["facets"]["columnLineage"]["fields"]
        assert set(lineage_fields) == {
            "reading_id",
            "site_id",
            "floor",
            "reading_time",
            "temperature_c",
            "humidity_pct",
            "co2_ppm",
        }  # fmt: skip  (the occupant's columns are dropped)
        [used] = lineage_fields["reading_time"]["inputFields"]
        assert used["field"] == "reading_time" and used["transformations"][0]["masking"]
    # parents: the subflow names the build run; the top-level runs have none
    for event in by_job["anonymize-product"]:
        parent = event["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == build_start["run"]["runId"]
        assert parent["job"] == {"namespace": ns, "name": "build-product", "facets": {}}
    for job in ("ingest-dataset", "validate-dataset", "build-product", "publish-product"):
        assert all("parent" not in e["run"]["facets"] for e in by_job[job])
    for event in by_job["publish-product"]:  # reads the version it decides on
        [read] = event["inputs"]
        assert read["name"] == "products/kl-building-environment" and event["outputs"] == []
        assert read["facets"]["version"]["datasetVersion"] == built["content_hash"]


@pytest.mark.prefect
def test_a_failed_run_emits_fail_with_the_error_type_only(
    prefect_api: str, own_project: Path
) -> None:
    from databourse.errors import IngestRejected
    from databourse_samples.demo import write_bad_drop
    from flows.ingest_dataset import ingest_dataset

    bad = write_bad_drop(own_project / "bad-lineage" / "ragged.csv", "ragged")
    skip = _seen(own_project)
    with pytest.raises(IngestRejected):
        ingest_dataset("my-buildops", "sensor_readings", str(bad))
    events = _events(own_project, skip)
    for event in events:
        check_event(event)
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("ingest-dataset", "START"),
        ("ingest-dataset", "FAIL"),
    ]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"]
    error = events[1]["run"]["facets"]["errorMessage"]
    assert error["message"] == "IngestRejected" and "stackTrace" not in error


@pytest.mark.prefect
def test_an_emission_failure_never_fails_the_run(
    prefect_api: str, own_project: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The events file cannot be written (a folder stands in its place): the run completes and
    logs a warning naming the error's type."""
    from databourse_samples.demo import generate_drops
    from flows.ingest_dataset import ingest_dataset

    [drop] = [
        d for d in generate_drops(tmp_path / "drops", scale=0.05) if d.provider == "my-buildops"
    ]
    path = own_project / "state" / "lineage" / "events.jsonl"
    kept = path.with_name("events.jsonl.kept")
    if path.exists():
        path.rename(kept)
    path.mkdir(parents=True)
    # Prefect configures logging at its first run, which drops caplog's root handler when this
    # test runs first: listen on the run logger itself.
    run_logger = logging.getLogger("prefect.flow_runs")
    run_logger.addHandler(caplog.handler)
    try:
        ingested = ingest_dataset("my-buildops", "sensor_readings", str(drop.path))
    finally:
        run_logger.removeHandler(caplog.handler)
        path.rmdir()
        if kept.exists():
            kept.rename(path)
    assert ingested["rows"] > 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("OpenLineage START event not emitted (IsADirectoryError)" in w for w in warnings)
    assert any("OpenLineage COMPLETE event not emitted (IsADirectoryError)" in w for w in warnings)


def test_lineage_settings_pick_the_transport(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """file by default, none, or http with the API key read from the named variable only."""
    from types import SimpleNamespace

    from pydantic import ValidationError

    from databourse.config.settings import LineageSettings
    from tasks.lineage import EVENTS, JsonLinesTransport, client

    def cfg(**lineage_settings: Any) -> Any:
        settings = SimpleNamespace(lineage=LineageSettings(**lineage_settings))
        return SimpleNamespace(settings=settings, state_dir=tmp_path)

    file_client = client(cfg())
    assert isinstance(file_client, OpenLineageClient)
    assert isinstance(file_client.transport, JsonLinesTransport)
    assert file_client.transport.path == tmp_path / EVENTS
    assert client(cfg(transport="none")) is None
    with pytest.raises(ValidationError, match="needs a url"):
        LineageSettings(transport="http")
    http = {"transport": "http", "url": "http://127.0.0.1:9", "api_key_env": "LINEAGE_TEST_KEY"}
    monkeypatch.delenv("LINEAGE_TEST_KEY", raising=False)
    with pytest.raises(KeyError, match=r"\$LINEAGE_TEST_KEY is not set"):
        client(cfg(**http))
    monkeypatch.setenv("LINEAGE_TEST_KEY", "k" * 24)
    http_client = client(cfg(**http))
    assert http_client is not None and http_client.transport.kind == "http"


@pytest.mark.prefect
def test_an_orchestrating_flow_emits_its_own_events_without_datasets(
    prefect_api: str, own_project: Path
) -> None:
    """discover-landing (like process-drop and nightly) reads and writes nothing itself: a START
    and a COMPLETE of its job, with no datasets."""
    from flows.discover_landing import discover_landing

    skip = _seen(own_project)
    discover_landing()
    events = _events(own_project, skip)
    for event in events:
        check_event(event)
    seen = [(e["eventType"], e["job"]["name"], e.get("inputs"), e.get("outputs")) for e in events]
    assert seen == [("START", "discover-landing", [], []), ("COMPLETE", "discover-landing", [], [])]
