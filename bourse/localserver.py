"""The background processes of the embedded setup: a Prefect server and a deployment runner.

`start()` starts what is not running yet (pid files and logs under `state/`), `stop()` stops them.
Each start also recovers from a crash: the zombie-run automation exists, and concurrency slots
whose holders are gone (killed with the server, or since) are freed (tasks/leases.py).
With an external `PREFECT_API_URL` only the runner is ours; the server is somebody else's.
The managed server never starts without its auth string (bourse/runtime.py), and a managed server
found running without authentication (started by an older version) is reported.
A server found at the managed port is used only when it is this checkout's: it answers this
checkout's auth string and names this checkout's PREFECT_HOME; another checkout's is refused.
The runner's start creates the providers' concurrency limits, before any run needs them.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bourse.runtime import (
    API_AUTH_USER,
    SERVER_PID,
    Runtime,
    api_auth_file,
    auth_headers,
    process_alive,
    record_server,
)

RUNNER_READY_DEPLOYMENT = "publish-product/gated"


class LocalServerError(RuntimeError):
    """A background process did not come up; the message points at its log."""


@dataclass(frozen=True)
class Process:
    name: str
    pid_file: Path
    log_file: Path

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if process_alive(pid) else None

    def start(self, argv: list[str]) -> int:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(str(proc.pid))
        tmp.replace(self.pid_file)
        return proc.pid

    def stop(self, grace: float = 15) -> bool:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            _signal_group(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def server(rt: Runtime) -> Process:
    return Process(
        "prefect-server",
        rt.state / SERVER_PID,
        rt.state / "logs" / "prefect-server.log",
    )


def runner(rt: Runtime) -> Process:
    return Process("runner", rt.state / "run" / "runner.pid", rt.state / "logs" / "runner.log")


def healthy(api_url: str) -> bool:
    """True when the Prefect API answers its health check."""
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def open_to_anyone(api_url: str) -> bool:
    """True when the API answers a request without credentials (no authentication)."""
    try:
        return httpx.post(f"{api_url}/flows/count", json={}, timeout=2).status_code != 401
    except httpx.HTTPError:
        return False


def not_ours(rt: Runtime) -> str | None:
    """Why the managed server answering at `rt.api_url` is not this checkout's (None: it is)."""
    try:
        resp = httpx.get(f"{rt.api_url}/admin/settings", headers=auth_headers(), timeout=5)
    except httpx.HTTPError as exc:
        return f"it did not answer who it is ({type(exc).__name__})"
    if resp.status_code in (401, 403):
        return "it refuses this checkout's auth string"
    if resp.status_code != 200:
        return f"it answered {resp.status_code} when asked who it is"
    home = str(resp.json().get("home") or "")
    if Path(home).expanduser().resolve() != Path(os.environ["PREFECT_HOME"]).resolve():
        return f"its PREFECT_HOME is {home}"
    return None


def _refuse_foreign(rt: Runtime, why: str) -> None:
    """Stop: the server at the managed port belongs to another checkout (or to no checkout)."""
    port = rt.api_url.rsplit(":", 1)[-1].split("/")[0]
    choose = (
        f"DATABOURSE_PREFECT_PORT={port} names its port: unset it (this checkout then starts "
        "its own server on a free port, recorded in state/run/prefect-server.json) or set it to "
        "a free port"
        if rt.port_explicit
        else f"stop that server, or set DATABOURSE_PREFECT_PORT to a free port (not {port})"
    )
    raise LocalServerError(
        f"the Prefect server at {rt.api_url} is not this checkout's ({why}): {choose}; to use "
        "that server on purpose, set PREFECT_API_URL and its PREFECT_API_AUTH_STRING"
    )


def start(rt: Runtime, timeout: float = 120) -> list[str]:
    """Start the server (if ours and down) and the runner (if down); return what was done."""
    done = []
    if rt.managed and healthy(rt.api_url) and (why := not_ours(rt)):
        _refuse_foreign(rt, why)
    if not healthy(rt.api_url):
        if not rt.managed:
            raise LocalServerError(f"the configured Prefect API {rt.api_url} does not answer")
        if not os.environ.get("PREFECT_SERVER_API_AUTH_STRING"):
            raise LocalServerError(
                "the managed Prefect server needs an auth string and none could be made: "
                f"check the key folder ({api_auth_file() or 'see settings key_dir'}) or set "
                "PREFECT_API_AUTH_STRING"
            )
        port = rt.api_url.rsplit(":", 1)[-1].split("/")[0]
        proc = server(rt)
        proc.start(
            [
                str(Path(sys.executable).parent / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                port,
            ]
        )
        record_server(rt.state, int(port), os.environ["PREFECT_HOME"])
        try:
            _wait(lambda: healthy(rt.api_url), timeout, proc)
        except LocalServerError:
            if rt.port_explicit or "already in use" not in proc.log_tail(5):
                raise
            raise LocalServerError(  # taken between the choice and the start: choose again
                f"port {port} was free when chosen, then taken by another process before the "
                "Prefect server could listen on it: run the command again (this checkout then "
                "chooses another free port), or name one with DATABOURSE_PREFECT_PORT"
            ) from None
        done.append(f"started Prefect server at {rt.ui_url} (log {proc.log_file})")
        done.append(f"its API and UI ask for the auth string: {ui_sign_in()}")
    elif rt.managed and open_to_anyone(rt.api_url):
        done.append(
            f"WARNING: the Prefect server at {rt.api_url} answers without authentication (started "
            "by an older version): restart it (`bourse server stop`, `bourse server start`)"
        )
    served = _deployment(rt.api_url)  # as the API stores it now: who serves it, from where
    if runner(rt).pid() is None and (other := _served_elsewhere(served)):
        raise LocalServerError(  # before anything is changed on that server
            f"the deployments on {rt.api_url} are served by the runner of another databourse "
            f"environment ({other}): this one's runner would take its runs over. Give this "
            "environment a Prefect server of its own (unset PREFECT_API_URL: bourse starts "
            "one), or stop that runner first"
        )
    done += recover(rt)
    pool = served.get("work_pool_name") if served else None
    if pool is not None:  # `prefect deploy` put them there: a runner would take them over
        done.append(f"the deployments are served by the workers of work pool {pool!r}")
        return done
    proc = runner(rt)
    if proc.pid() is None:
        proc.start([sys.executable, "-m", "bourse", "serve"])
        _wait(lambda: _deployment_ready(rt.api_url), timeout, proc)
        done.append(f"started the deployment runner (log {proc.log_file})")
    return done


def recover(rt: Runtime) -> list[str]:
    """Make a (re)started server safe to run on: zombie detection on, the providers' limits
    created, dead holders' slots freed."""
    from prefect.client.orchestration import get_client

    from bourse.automations import ensure_zombie
    from tasks.leases import reclaim
    from tasks.limits import create_provider_limits

    done = [line for line in [ensure_zombie()] if line]
    with get_client(sync_client=True) as client:
        create_provider_limits(client)  # before a run needs them, not when it first asks
        done += reclaim(client, rt.state)
    return done


def slot_report() -> list[str]:
    """Each provider limit's slots in use and who holds them."""
    from prefect.client.orchestration import get_client

    from tasks.leases import holders, provider_limits

    lines = []
    with get_client(sync_client=True) as client:
        for limit in provider_limits(client):
            lines.append(f"{limit.name}: {limit.active_slots} of {limit.limit} slot(s) in use")
            lines += [
                f"  lease {h['lease']} until {h['expires']}: flow run {h['run']} "
                f"({h['run_id']}, {h['state']})"
                for h in holders(client, limit)
            ]
    return lines


def stop(rt: Runtime) -> list[str]:
    """Stop the runner and, if ours, the server."""
    done = []
    if runner(rt).stop():
        done.append("stopped the runner")
    if rt.managed and server(rt).stop():
        done.append("stopped the Prefect server")
    return done


def status(rt: Runtime) -> dict[str, str]:
    up = healthy(rt.api_url)
    foreign = not_ours(rt) if rt.managed and up else None
    return {
        "api": f"{rt.api_url} ({'up' if up else 'down'})"
        + (f", NOT this checkout's server: {foreign}" if foreign else ""),
        "ui": rt.ui_url,
        "server": "external" if not rt.managed else _pid_text(server(rt)),
        "runner": _pid_text(runner(rt)),
        "auth": (
            f"basic auth string (PREFECT_API_AUTH_STRING); {ui_sign_in()}"
            if os.environ.get("PREFECT_API_AUTH_STRING")
            else "NONE: anyone who reaches the API can run code and answer approvals"
        ),
    }


def ui_sign_in() -> str:
    """What to type into the UI's sign-in field (never the secret itself: where it is kept)."""
    where = api_auth_file()
    auth = os.environ.get("PREFECT_API_AUTH_STRING", "")
    try:
        kept = where is not None and auth == f"{API_AUTH_USER}:{where.read_text().strip()}"
    except OSError:
        kept = False
    if not kept:
        return "the UI takes the whole PREFECT_API_AUTH_STRING (user:password)"
    return f"the UI takes `{API_AUTH_USER}:` followed by the contents of {where}"


def _pid_text(proc: Process) -> str:
    pid = proc.pid()
    return f"running (pid {pid})" if pid else "stopped"


def _deployment_ready(api_url: str) -> bool:
    """True once the deployment exists, served by this environment's runner."""
    from bourse.serving import environment_tag

    found = _deployment(api_url)
    return found is not None and environment_tag() in found.get("tags", [])


def _served_elsewhere(found: dict[str, Any] | None) -> str | None:
    """Another environment's tag when its runner serves the deployments now (it polled the API
    within RUNNER_ALIVE_SECONDS); None when they are free to serve from here."""
    from bourse.serving import ENV_TAG, environment_tag

    if found is None or environment_tag() in found.get("tags", []):
        return None
    others = [t for t in found.get("tags", []) if t.startswith(ENV_TAG)]
    polled = found.get("last_polled")
    if not others or not polled:
        return None
    age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(polled)
    return others[0] if age.total_seconds() < RUNNER_ALIVE_SECONDS else None


RUNNER_ALIVE_SECONDS = 90  # a runner polls every few seconds; Prefect says NOT_READY after 60 s


def _deployment(api_url: str) -> dict[str, Any] | None:
    """The deployment the runner is known by, as the API stores it (None: none, or no answer)."""
    flow, name = RUNNER_READY_DEPLOYMENT.split("/")
    try:
        resp = httpx.get(
            f"{api_url}/deployments/name/{flow}/{name}", headers=auth_headers(), timeout=5
        )
    except httpx.HTTPError:
        return None
    return dict(resp.json()) if resp.status_code == 200 else None


def _wait(check: object, timeout: float, proc: Process) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        if proc.pid() is None:
            break
        time.sleep(0.5)
    raise LocalServerError(
        f"{proc.name} did not come up; last lines of {proc.log_file}:\n{proc.log_tail()}"
    )
