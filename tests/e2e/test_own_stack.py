"""One checkout's stack is its own: a second project on the machine never uses the first one's
managed Prefect server, and its artifacts carry its own namespace (bourse/runtime.py,
bourse/localserver.py, tasks/reporting.py)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import (
    API_AUTH,
    API_AUTH_STRING,
    bourse,
    cli_env,
    free_port,
    make_project,
    stop_stack,
)

from databourse.config import load_config
from tasks.limits import limit_name
from tasks.reporting import namespace_of

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A project whose managed server and runner run (on a free port of its own)."""
    env = cli_env(
        make_project(tmp_path_factory.mktemp("first") / "project"),
        PREFECT_API_AUTH_STRING=API_AUTH_STRING,
    )
    try:
        bourse(env, "server", "start")
        yield env
    finally:
        stop_stack(env)


def _second(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A second project on the same auth string: only a server's PREFECT_HOME tells them apart."""
    env = cli_env(make_project(tmp_path / "second"), PREFECT_API_AUTH_STRING=API_AUTH_STRING)
    del env["DATABOURSE_PREFECT_PORT"]
    return {**env, **extra}


def _runs(port: str, flow_name: str) -> list[dict[str, object]]:
    resp = httpx.post(
        f"http://127.0.0.1:{port}/api/flow_runs/filter",
        json={"flows": {"name": {"any_": [flow_name]}}},
        auth=API_AUTH,
        timeout=30,
    )
    resp.raise_for_status()
    return list(resp.json())


def test_a_second_project_starts_its_own_server_when_the_default_port_is_anothers(
    tmp_path: Path, first: dict[str, str]
) -> None:
    """The first project's server holds the default port: the second starts its own on another
    port, records it, says so everywhere, and its runs and artifacts land on its own server."""
    taken = first["DATABOURSE_PREFECT_PORT"]
    env = _second(tmp_path, DATABOURSE_PREFECT_DEFAULT_PORT=taken)
    try:
        started = bourse(env, "server", "start")
        [port] = re.findall(r"Prefect UI: http://127\.0\.0\.1:(\d+)", started.stdout)
        assert port != taken, started.stdout
        project = Path(env["DATABOURSE_CONFIG_DIR"]).parent
        record = json.loads((project / "state/run/prefect-server.json").read_text())
        assert record == {"port": int(port), "home": str(project / "state" / "prefect")}
        status = bourse(env, "server", "status").stdout
        assert f"http://127.0.0.1:{port}/api (up)" in status and "NOT" not in status, status
        limits = httpx.post(  # made at start, before a run needs them (no "do not exist" warning)
            f"http://127.0.0.1:{port}/api/v2/concurrency_limits/filter",
            json={},
            auth=API_AUTH,
            timeout=30,
        ).json()
        providers = load_config(project / "configs").providers
        made = sorted(lim["name"] for lim in limits if lim["name"].startswith(limit_name("")))
        assert made == sorted(limit_name(p) for p in providers)

        bourse(env, "discover")  # a flow run with an artifact
        [run] = _runs(port, "discover-landing")
        assert _runs(taken, "discover-landing") == []  # the first project's server saw nothing
        artifacts = httpx.post(
            f"http://127.0.0.1:{port}/api/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [run["id"]]}}},
            auth=API_AUTH,
            timeout=30,
        ).json()
        namespace = namespace_of(load_config(project / "configs"))  # its store root's hash
        assert [a["key"] for a in artifacts if a["key"]] == [f"{namespace}-landing-all"]
    finally:
        stop_stack(env)


def test_a_named_port_held_by_another_projects_server_stops_with_how_to_choose(
    tmp_path: Path, first: dict[str, str]
) -> None:
    """$DATABOURSE_PREFECT_PORT naming the first project's port: the second refuses to use it."""
    taken = first["DATABOURSE_PREFECT_PORT"]
    env = _second(tmp_path, DATABOURSE_PREFECT_PORT=taken)
    try:
        refused = bourse(env, "discover", check=False)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"the Prefect server at http://127.0.0.1:{taken}/api is not this checkout's" in (
            refused.stderr
        )
        assert "its PREFECT_HOME is" in refused.stderr  # same auth string, another home
        assert f"DATABOURSE_PREFECT_PORT={taken} names its port: unset it" in refused.stderr
        assert _runs(taken, "discover-landing") == []
    finally:
        stop_stack(env)


def test_another_environment_on_a_shared_api_does_not_take_the_runs_over(
    tmp_path: Path, first: dict[str, str]
) -> None:
    """The first project's API named on purpose (PREFECT_API_URL) by a second project: its
    commands would start its own runner, which would re-register the deployments the first
    project's runner serves and take their runs. It stops instead, saying why; the first
    project's runner keeps them."""
    port = first["DATABOURSE_PREFECT_PORT"]
    api = f"http://127.0.0.1:{port}/api"
    env = _second(tmp_path, PREFECT_API_URL=api)
    mine = namespace_of(load_config(Path(first["DATABOURSE_CONFIG_DIR"])))
    before = httpx.get(f"{api}/deployments/name/publish-product/gated", auth=API_AUTH, timeout=30)
    assert f"databourse-env:{mine}" in before.json()["tags"]  # the first runner marks its own
    try:
        refused = bourse(env, "discover", check=False)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert (
            f"served by the runner of another databourse environment (databourse-env:{mine})"
            in (refused.stderr)
        )
        assert "Give this environment a Prefect server of its own" in refused.stderr
        after = httpx.get(
            f"{api}/deployments/name/publish-product/gated", auth=API_AUTH, timeout=30
        )
        assert after.json()["tags"] == before.json()["tags"]
        assert _runs(port, "discover-landing") == []
    finally:
        stop_stack(env)


def test_a_port_taken_between_its_choice_and_the_start_is_named(tmp_path: Path) -> None:
    """The race a free port loses: chosen free, bound by another process before the server
    listens. The start says so (not only "did not come up") and what to do; the next start
    skips the port then listened on (tests/unit/bourse/test_managed_port.py)."""
    port = free_port()
    env = _second(tmp_path, DATABOURSE_PREFECT_DEFAULT_PORT=str(port))
    with socket.socket() as thief:
        thief.bind(("127.0.0.1", port))  # bound, not yet listening: the choice sees it free
        try:
            lost = bourse(env, "server", "start", check=False)
        finally:
            stop_stack(env)
    assert lost.returncode == 1, lost.stdout + lost.stderr
    assert f"port {port} was free when chosen, then taken by another process" in lost.stderr
    assert "run the command again" in lost.stderr and "Traceback" not in lost.stderr
