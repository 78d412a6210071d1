"""The standards' own validators, shared by the tests: an offline guard, JSON-LD read as RDF,
pyshacl results by severity (DCAT-AP 3.0.1, ODRL 2.2), the OpenLineage spec and mlcroissant.

Every schema and shape set is vendored under tests/data (sources: its README.md); nothing is
fetched, and the guard makes sure of it.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import mlcroissant as mlc
import pytest
import rdflib
from jsonschema import Draft202012Validator
from pyshacl import validate
from referencing import Registry, Resource

DATA = Path(__file__).parent / "data"
SHACL = DATA / "shacl"
DCAT_AP = [
    SHACL / "dcat-ap-3.0.1" / name
    for name in ("shapes.ttl", "shapes_recommended.ttl", "range.ttl", "deprecateduris.ttl")
]
ODRL = [SHACL / "odrl-2.2" / "odrl-shapes.ttl"]
SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")
OPENLINEAGE = DATA / "openlineage"
# rdflib 7.6's own JSON-LD parser builds a ConjunctiveGraph and warns about it.
RDFLIB_JSONLD_WARNING = pytest.mark.filterwarnings(
    "ignore:ConjunctiveGraph is deprecated:DeprecationWarning:rdflib.*"
)


def refuse_network(monkeypatch: pytest.MonkeyPatch, why: str) -> list[str]:
    """Every network connection refused (OSError saying `why`) and recorded in the list returned,
    until `monkeypatch` is undone: a JSON-LD context or a card must not be fetched."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise OSError(f"network access refused: {why}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def parse(doc: dict[str, Any], attempts: list[str]) -> rdflib.Graph:
    """The JSON-LD document as RDF, parsed with no network (a fetch attempt fails the test)."""
    graph = rdflib.Graph().parse(data=json.dumps(doc), format="json-ld")
    assert attempts == [], f"parsing fetched over the network: {attempts}"
    return graph


def results(data: rdflib.Graph, shapes: list[Path]) -> dict[str, list[str]]:
    """pyshacl's results by severity: one line each (shape's message or path, focus node)."""
    shacl = rdflib.Graph()
    for path in shapes:
        shacl.parse(path)
    # The ODRL shapes nest Offer > Policy > Rule > logical constraint > list > constraint > list:
    # 16 shapes deep on our policies, past pyshacl's default limit of 15.
    _, report, _ = validate(
        data, shacl_graph=shacl, allow_warnings=True, advanced=True, max_validation_depth=32
    )
    found: dict[str, list[str]] = {"Violation": [], "Warning": [], "Info": []}
    for result in report.subjects(rdflib.RDF.type, SH.ValidationResult):
        if (None, SH.detail, result) in report:
            continue  # a nested result: its parent is counted
        severity = str(report.value(result, SH.resultSeverity)).rpartition("#")[2]
        path = report.value(result, SH.resultPath)
        where = (path.n3(report.namespace_manager) + " of ") if path is not None else ""
        focus = report.value(result, SH.focusNode)
        focus_name = (
            focus.n3(report.namespace_manager) if isinstance(focus, rdflib.URIRef) else "[]"
        )
        message = str(report.value(result, SH.resultMessage) or "")[:120]
        found[severity].append(f"{where}{focus_name}: {message}")
    return found


def report(name: str, found: dict[str, list[str]]) -> None:
    """Print the counts and every warning (shown with `pytest -s`)."""
    print(f"\n{name}: {len(found['Violation'])} violations, {len(found['Warning'])} warnings")
    for line in sorted(set(found["Violation"])):
        print(f"  violation: {line}")
    for line in sorted(set(found["Warning"])):
        print(f"  warning: {line}")


def openlineage_registry() -> tuple[Registry, set[str]]:
    """The vendored OpenLineage schemas, by their `$id`, and the set of those ids."""
    schemas = [json.loads(p.read_text()) for p in sorted(OPENLINEAGE.rglob("*.json"))]
    ids = {s["$id"] for s in schemas}
    return Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas), ids


REGISTRY, SCHEMA_IDS = openlineage_registry()


def check_schema(ref: str, instance: Any) -> None:
    """Validate against a vendored schema; a $ref outside them is unresolvable (no network)."""
    validator = Draft202012Validator(
        {"$ref": ref}, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, errors


def check_event(event: dict[str, Any]) -> None:
    """The event against OpenLineage.json, and each facet against its own facet schema."""
    assert event["schemaURL"].split("#")[0] in SCHEMA_IDS
    check_schema(event["schemaURL"], event)
    facets = [*event["run"].get("facets", {}).values(), *event["job"].get("facets", {}).values()]
    for ds in [*event.get("inputs", []), *event.get("outputs", [])]:
        for group in ("facets", "inputFacets", "outputFacets"):
            facets += ds.get(group, {}).values()
    for facet in facets:
        assert facet["_schemaURL"].split("#")[0] in SCHEMA_IDS, facet["_schemaURL"]
        check_schema(facet["_schemaURL"], facet)


def croissant_issues(path: Path) -> tuple[list[str], list[str], str]:
    """mlcroissant's validation of the card at `path`: its errors and warnings (sorted) and its
    report (empty when there are none)."""
    try:
        issues = mlc.Dataset(jsonld=path).metadata.ctx.issues
    except mlc.ValidationError as exc:  # errors that stop the reading come raised
        return [str(exc)], [], str(exc)
    return sorted(issues.errors), sorted(issues.warnings), issues.report()
