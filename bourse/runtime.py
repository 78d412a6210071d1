"""Process environment for Prefect and databourse, set before Prefect is imported.

Without a configured `PREFECT_API_URL`, the project runs its own local Prefect server (SQLite
under `state/prefect/`) at http://127.0.0.1:4200; with one, that server is used as it is.
The managed server belongs to its checkout: its port is recorded in `state/run/prefect-server.json`
and reused while its process runs. When port 4200 is taken by something else (another checkout's
server), this checkout's own server gets a free port instead (recorded the same way);
`DATABOURSE_PREFECT_PORT` names the port outright, and bourse/localserver.py refuses to use a
server there that is not this checkout's (it answers another PREFECT_HOME, or refuses the auth).

The managed server requires basic authentication: a random auth string in the key folder
(`prefect-api-default.key`, mode 0600, made on first use) is given to the server
(`PREFECT_SERVER_API_AUTH_STRING`) and to every client this process starts or is
(`PREFECT_API_AUTH_STRING`). Whoever can use the Prefect API can answer approvals (the runner and
`bourse worker` run only the project's imported flows, whatever a deployment says): an external
API without an auth string is warned about, once per process tree.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from databourse import keys
from databourse.config import default_config_dir, load_config
from databourse.errors import DataBourseError

MANAGED = "DATABOURSE_MANAGED_PREFECT"
PORT_ENV = "DATABOURSE_PREFECT_PORT"  # the managed server's port, named outright
DEFAULT_PORT_ENV = "DATABOURSE_PREFECT_DEFAULT_PORT"  # the port tried first when none is named
DEFAULT_PORT = 4200
# A checkout's own port (from its path) lies below the OS's ephemeral range (Linux: 32768-60999),
# so a port the OS hands out to a connection or to a free-port probe is never the one derived.
OWN_PORT_BASE, OWN_PORT_SPAN = 24200, 800
SERVER_PID = Path("run") / "prefect-server.pid"
SERVER_RECORD = Path("run") / "prefect-server.json"  # {"port": ..., "home": ...} of our server
LEASE_STORAGE = "prefect.server.concurrency.lease_storage.filesystem"
HEARTBEAT_SECONDS = 30
API_AUTH_PURPOSE = "prefect-api"
API_AUTH_ENV = "DATABOURSE_PREFECT_API_KEY"  # the auth string's password, instead of the file
API_AUTH_USER = "bourse"
_WARNED = "DATABOURSE_API_AUTH_WARNED"
UNAUTHENTICATED_WARNING = (
    "WARNING: the Prefect API {url} is used without an auth string (PREFECT_API_AUTH_STRING "
    "unset): whoever reaches that API can answer transfer approvals and start or cancel runs, "
    "and on a Kubernetes work pool change what its pods run (and so read the keys); they are "
    "only as safe as that API's network access. "
    "Set PREFECT_SERVER_API_AUTH_STRING on the server and PREFECT_API_AUTH_STRING here."
)


@dataclass(frozen=True)
class Runtime:
    project: Path
    state: Path
    api_url: str
    managed: bool  # True when the local server is ours to start and stop
    port_explicit: bool = False  # the managed server's port was named ($DATABOURSE_PREFECT_PORT)

    @property
    def ui_url(self) -> str:
        return os.environ.get("PREFECT_UI_URL") or self.api_url.removesuffix("/api")

    def run_url(self, flow_run_id: str) -> str:
        return f"{self.ui_url}/runs/flow-run/{flow_run_id}"


def configure() -> Runtime:
    """Set the environment once per process; child processes inherit it."""
    config_dir = default_config_dir()
    project = config_dir.parent
    os.environ.setdefault("DATABOURSE_CONFIG_DIR", str(config_dir))
    state = project / os.environ.get("DATABOURSE_STATE_DIR", "state")
    managed = os.environ.get(MANAGED) == "1" or "PREFECT_API_URL" not in os.environ
    if managed:
        os.environ[MANAGED] = "1"
        os.environ.setdefault("PREFECT_HOME", str(state / "prefect"))
        # Prefect makes its home without parents and warns when it cannot (a fresh clone has
        # no state/ yet): make it here, private, before any process imports Prefect.
        Path(os.environ["PREFECT_HOME"]).mkdir(mode=0o700, parents=True, exist_ok=True)
        if "PREFECT_API_URL" not in os.environ:  # a child of ours inherits its parent's choice
            os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{managed_port(state)}/api"
        _set_managed_auth(config_dir)
    elif not os.environ.get("PREFECT_API_AUTH_STRING") and not os.environ.get("PREFECT_API_KEY"):
        _warn_unauthenticated(os.environ["PREFECT_API_URL"])
    defaults = {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_LOCAL_STORAGE_PATH": str(state / "prefect" / "results"),
        "PREFECT_LOGGING_EXTRA_LOGGERS": "databourse",
        # domain code also runs outside flow runs (samples, checks): keep those logs local
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",  # the runner starts a publish run within 1 s
        # Slot leases on disk (PREFECT_HOME/concurrency_leases): a server restart keeps them and a
        # dead holder's lease expires; the default memory storage loses them and leaks the slots.
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": LEASE_STORAGE,
        # A running flow run beats every 30 s (Prefect's minimum); the zombie automation
        # (bourse/automations.py) marks one Crashed when its beats stop.
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
        "GX_ANALYTICS_ENABLED": "false",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    return Runtime(
        project=project,
        state=state,
        api_url=os.environ["PREFECT_API_URL"],
        managed=managed,
        port_explicit=managed and bool(os.environ.get(PORT_ENV)),
    )


def managed_port(state: Path) -> int:
    """The port of this checkout's server: $DATABOURSE_PREFECT_PORT; else the recorded one while
    our server runs; else the first free of: the recorded one, the default (4200, or
    $DATABOURSE_PREFECT_DEFAULT_PORT), one derived from the checkout's path; else any free port.

    A port something else listens on (another checkout's server) is never chosen unnamed, so a
    second checkout never finds the first one's server by accident."""
    if named := os.environ.get(PORT_ENV):
        if not named.isdigit() or not 0 < int(named) < 65536:
            raise SystemExit(f"error: {PORT_ENV}={named!r} is not a port number (1-65535)")
        return int(named)
    recorded = server_record(state).get("port")
    recorded = recorded if isinstance(recorded, int) else None
    default = int(os.environ.get(DEFAULT_PORT_ENV) or DEFAULT_PORT)
    if process_alive(_read_pid(state / SERVER_PID)):
        return recorded or default  # a server started before records existed: the default
    # then one of this checkout's own (from its state path), so the URL stays put across starts
    digest = int(hashlib.sha256(str(state.resolve()).encode()).hexdigest(), 16)
    own = OWN_PORT_BASE + digest % OWN_PORT_SPAN
    for port in (recorded, default, own):
        if port and not _listening(port):
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_record(state: Path) -> dict[str, object]:
    """What this checkout recorded of its managed server ({} when nothing is recorded)."""
    try:
        record = json.loads((state / SERVER_RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def record_server(state: Path, port: int, home: str) -> Path:
    """Record the port and PREFECT_HOME of the server this checkout started."""
    path = state / SERVER_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"port": port, "home": home}))
    tmp.replace(path)
    return path


def process_alive(pid: int | None) -> bool:
    """Whether `pid` names a running process (an exited, unreaped one is not)."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): trust the signal
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def api_auth_place(config_dir: Path) -> keys.KeyPlace:
    """Where the managed server's auth string is kept: the project's key folder."""
    cfg = load_config(config_dir)
    folder = os.environ.get("DATABOURSE_KEY_DIR") or cfg.settings.key_dir
    key_dir = cfg.resolve(folder) if folder else keys.default_key_dir(cfg.store_root)
    forbidden = [cfg.state_dir, cfg.root / "configs"]
    if not cfg.store_root.startswith("s3://"):
        forbidden.append(Path(cfg.store_root))
    return keys.KeyPlace(API_AUTH_PURPOSE, API_AUTH_ENV, key_dir, tuple(forbidden))


def _set_managed_auth(config_dir: Path) -> None:
    """Give the managed server and its clients the auth string (made on first use)."""
    if os.environ.get("PREFECT_API_AUTH_STRING"):
        os.environ.setdefault(
            "PREFECT_SERVER_API_AUTH_STRING", os.environ["PREFECT_API_AUTH_STRING"]
        )
        return
    try:
        place = api_auth_place(config_dir)
        key = keys.read(place) or keys.create(place)
    except (DataBourseError, OSError) as exc:  # the server then refuses to start (localserver)
        print(f"the Prefect API auth string is not available: {exc}", file=sys.stderr)
        return
    auth = f"{API_AUTH_USER}:{key.material.decode()}"
    os.environ["PREFECT_API_AUTH_STRING"] = auth
    os.environ.setdefault("PREFECT_SERVER_API_AUTH_STRING", auth)


def _warn_unauthenticated(url: str) -> None:
    """Say loudly, once per process tree, that an external API is used without auth."""
    if os.environ.get(_WARNED) == url:
        return
    os.environ[_WARNED] = url
    print(UNAUTHENTICATED_WARNING.format(url=url), file=sys.stderr)


def auth_headers() -> dict[str, str]:
    """The Authorization header for a raw HTTP call to the API ({} without an auth string)."""
    auth = os.environ.get("PREFECT_API_AUTH_STRING")
    if not auth:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def api_auth_file(config_dir: Path | None = None) -> Path | None:
    """The managed server's auth-string file (None when it cannot be placed)."""
    try:
        return api_auth_place(config_dir or default_config_dir()).file(keys.DEFAULT_VERSION)
    except DataBourseError:
        return None
