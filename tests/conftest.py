"""Shared fixtures: an isolated project folder, a real Prefect server, a deployment runner."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import free_port, make_project, seed_prefect_home

REPO = Path(__file__).resolve().parents[1]
# The tests are in folders by kind (unit/<package>, flows, e2e, attacks, structure); some build on
# another file's world (`from test_facts_and_grants import world`), found by its module name as
# pytest finds a collected file's: every test folder is on the path, whichever file runs alone.
for _folder in sorted(Path(__file__).parent.glob("**/")):
    if any(_folder.glob("test_*.py")) and str(_folder) not in sys.path:
        sys.path.append(str(_folder))
BIN = Path(sys.executable).parent
# Throwaway keys for tests (random-looking: weak keys are refused); real keys come from the
# environment or a key file (databourse/keys.py).
TEST_KEY = "qnZqJ2O0k23R7wcW0EkNzUHlPIvUWHpqEOC40FhTS5g1cqKY"
TEST_AUDIT_KEY = "6PYMZ-5rjguQgHkjgJk-rbPYAFmrMmRdDI-olZqWOTCcCYvu"

# Configure before anything imports Prefect: no analytics, results persisted (suspend needs it).
_SESSION = Path(tempfile.mkdtemp(prefix="databourse-tests-"))
os.environ.update(
    {
        "PREFECT_HOME": str(_SESSION / "prefect-client"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_LOCAL_STORAGE_PATH": str(_SESSION / "results"),
        "PREFECT_LOGGING_EXTRA_LOGGERS": "databourse",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "DATABOURSE_PSEUDONYM_KEY": TEST_KEY,
        "DATABOURSE_AUDIT_KEY": TEST_AUDIT_KEY,
        "XDG_CONFIG_HOME": str(_SESSION / "config"),  # key files of CLI runs, not ~/.config
        "DATABOURSE_SCHEDULES": "off",  # a served nightly must not fire during a test run
    }
)
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("DATABOURSE_MANAGED_PREFECT", None)


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"Prefect server did not start: {log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def project() -> Path:
    """One isolated project (configs + state) for the in-process flow tests."""
    path = make_project(_SESSION / "project")
    os.environ["DATABOURSE_CONFIG_DIR"] = str(path / "configs")
    return path


@pytest.fixture(scope="session")
def prefect_api(project: Path) -> Iterator[str]:
    """A real `prefect server start` process on a free port, SQLite in a temp folder."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = free_port()
    home = _SESSION / "prefect-server"
    seed_prefect_home(home)
    log = _SESSION / "prefect-server.log"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "false"}
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/api"
    try:
        wait_healthy(url, proc, log)
        os.environ["PREFECT_API_URL"] = url  # for subprocesses (runner, CLI)
        with temporary_settings(updates={PREFECT_API_URL: url}):  # for this process
            yield url
    finally:
        try:
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=10)  # send queued run logs while the server answers
        finally:  # the server goes whatever happened above
            os.environ.pop("PREFECT_API_URL", None)
            stop_group(proc)


@pytest.fixture(scope="session")
def runner(prefect_api: str, project: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`bourse serve`: serves the deployments, executes publish runs and resumed runs."""
    log = _SESSION / "runner.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bourse", "serve"],
            cwd=project,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if httpx.get(f"{prefect_api}/deployments/name/publish-product/gated").status_code == 200:
            break
        if proc.poll() is not None:
            raise RuntimeError(f"runner exited: {log.read_text()[-3000:]}")
        time.sleep(0.5)
    yield proc
    stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started in its own process group: SIGTERM, then SIGKILL if it is still
    there after 30 s (a loaded CI machine saw `bourse serve` outlive that at the session's end,
    an error charged to the last test of that worker)."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("DATABOURSE_KEEP_TEST_STATE"):
        print(f"\ntest state kept in {_SESSION}")
        return
    shutil.rmtree(_SESSION, ignore_errors=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Importing `bourse.cli` runs `runtime.configure()`, which points this process at a managed
    Prefect server and sets its auth string: every server a later test starts would then refuse
    clients without it (401). Its command modules (`bourse.commands`) configure it when a command
    runs. Tests drive the CLI in subprocesses, never by importing it or its commands."""
    imported = sorted(
        name
        for name in sys.modules
        if name == "bourse.cli" or name == "bourse.commands" or name.startswith("bourse.commands.")
    )
    if imported:
        raise pytest.UsageError(
            f"a test module imported {', '.join(imported)} at collection: run the CLI in a "
            "subprocess (helpers.cli_env / bourse) or import what it needs from bourse.display"
        )
