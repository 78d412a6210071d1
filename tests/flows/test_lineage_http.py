"""OpenLineage over HTTP, live: a run's events POSTed to a real HTTP endpoint (as Marquez takes
them), with the API key from the variable the settings name; an endpoint that fails never fails
the run (tasks/lineage.py)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from standards_checks import check_event

KEY = "lineage-live-" + "k" * 24


class Endpoint:
    """A lineage endpoint on a free port: what it was sent, and the status it answers."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 201
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.received.append(
                    {
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "type": self.headers.get("Content-Type"),
                        "event": json.loads(body),
                    }
                )
                self.send_response(endpoint.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    served = Endpoint()
    yield served
    served.close()


@pytest.fixture
def http_project(
    prefect_api: str, tmp_path: Path, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A project of its own whose settings send lineage to `endpoint`, with an API key."""
    from helpers import make_project
    from test_facts_and_grants import project_resources

    from databourse.config import load_config

    path = make_project(tmp_path / "lineage-http")
    settings_file = path / "configs" / "settings.yaml"
    settings = yaml.safe_load(settings_file.read_text()) or {}
    settings["lineage"] = {
        "transport": "http",
        "url": endpoint.url,
        "api_key_env": "LINEAGE_LIVE_KEY",
        "timeout_seconds": 5,
        "retries": 1,
    }
    settings_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    monkeypatch.setenv("LINEAGE_LIVE_KEY", KEY)
    with project_resources(load_config(path / "configs")):
        yield path


@pytest.mark.prefect
def test_a_runs_events_reach_a_live_endpoint_with_its_key(
    http_project: Path, endpoint: Endpoint
) -> None:
    from flows.discover_landing import discover_landing

    discover_landing()
    assert [r["path"] for r in endpoint.received] == ["/api/v1/lineage"] * 2
    assert {r["auth"] for r in endpoint.received} == {f"Bearer {KEY}"}
    assert {r["type"] for r in endpoint.received} == {"application/json"}
    for r in endpoint.received:
        check_event(r["event"])  # the OpenLineage JSON schema
    phases = [(r["event"]["eventType"], r["event"]["job"]["name"]) for r in endpoint.received]
    assert phases == [("START", "discover-landing"), ("COMPLETE", "discover-landing")]
    assert not (http_project / "state" / "lineage" / "events.jsonl").exists()  # http only


@pytest.mark.prefect
def test_an_endpoint_that_fails_never_fails_the_run(
    http_project: Path, endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    from flows.discover_landing import discover_landing

    endpoint.status = 500
    run_logger = logging.getLogger("prefect.flow_runs")  # Prefect may reset the root's handlers
    run_logger.addHandler(caplog.handler)
    try:
        discover_landing()  # completes
    finally:
        run_logger.removeHandler(caplog.handler)
    assert len(endpoint.received) == 4  # both tried, and tried once more (retries: 1)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("OpenLineage START event not emitted (RetryError)" in w for w in warnings), warnings
    assert KEY not in "\n".join(warnings)
