"""Real S3-compatible servers for tests, run as subprocesses: LocalStack's S3, or moto.

    with s3_server() as server:       # LocalStack if it can be installed, else moto (and says so)
        make_bucket(server.endpoint, "my-bucket")
    with moto_server() as endpoint:   # always moto: starts in under a second
        make_bucket(endpoint, "my-bucket")

LocalStack's S3 provider is checked against AWS by its authors' snapshot tests; here it answers
If-None-Match with 412 on PutObject and CompleteMultipartUpload, refuses parts under 5 MiB
(EntityTooSmall), pages ListObjectsV2 and checks the signature and expiry of presigned URLs. It
checks no signature on ordinary requests: `enforce_iam` turns that on in a moto server instead.
LocalStack pins boto3 1.42 and pyOpenSSL<26, older than the project's, so it gets its own venv
under state/test-s3/, installed once from PyPI with the exact versions below.
DATABOURSE_TEST_S3_SERVER=auto (default) | localstack (fail if unavailable) | moto.

Clients need credentials from the environment: call `use_dummy_aws_env(monkeypatch)` in a fixture.
Self-contained (no databourse imports) so flow and end-to-end tests can reuse it.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any, NamedTuple

import boto3
import pytest
from botocore.config import Config

REGION = "us-east-1"
# "test" is the secret LocalStack checks presigned URLs against for keys it does not know.
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
_UNSET_AWS_ENV = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL")

# The last LocalStack release that runs on Python 3.11 (2026.x needs 3.12), with its whole
# dependency set as resolved by pip (cbor2<6 and pyOpenSSL<26 forced: newer ones break it).
LOCALSTACK_VERSION = "4.13.1"
_LOCALSTACK_FREEZE = """
annotated-types==0.8.0 asn1crypto==1.5.1 attrs==26.1.0 awscrt==0.38.1 boto3==1.42.34
botocore==1.42.34 cachetools==8.0.0 cbor2==5.9.0 certifi==2026.10.18 cffi==2.1.1
charset-normalizer==3.5.2 click==8.5.1 constantly==23.10.4 cryptography==46.0.7 dill==0.3.6
dnslib==0.9.26 dnspython==2.9.2 docker==7.2.0 h11==0.16.0 h2==4.4.1 hpack==4.2.0
Hypercorn==0.18.0 hyperframe==6.1.0 hyperlink==21.0.0 idna==3.20 Incremental==24.11.0
isodate==0.7.2 jmespath==1.1.0 jsonpatch==1.47 jsonpointer==3.12 jsonschema==4.26.0
jsonschema-path==0.4.6 jsonschema-specifications==2025.9.1 lazy-object-proxy==1.13.0
localstack-core==4.13.1 localstack-twisted==26.4.0 markdown-it-py==4.3.0 MarkupSafe==3.0.4
mdurl==0.1.2 more-itertools==11.2.1 openapi-core==0.23.1 openapi-schema-validator==0.8.1
openapi-spec-validator==0.8.5 packaging==26.3 pathable==0.5.0 plux==1.16.0 priority==1.3.0
psutil==7.2.2 pycparser==3.12 pydantic==2.14.3 pydantic-settings==2.16.3
pydantic_core==2.50.4 Pygments==2.21.0 pyOpenSSL==25.3.0 python-dateutil==2.9.0.post0
python-dotenv==1.2.4 PyYAML==6.0.3 readerwriterlock==1.0.10 referencing==0.37.0
requests==2.34.2 requests-aws4auth==1.4.0 rfc3339-validator==0.1.4 rich==15.0.0 rolo==0.8.9
rpds-py==2026.9.1 s3transfer==0.16.1 semver==3.1.1 six==1.17.0 typing-inspection==0.4.5
typing_extensions==4.16.0 urllib3==2.8.0 Werkzeug==3.1.9 wsproto==1.3.2 xmltodict==1.0.4
zope.interface==8.7
"""
LOCALSTACK_PINS = _LOCALSTACK_FREEZE.split()
SERVERS_HOME = Path(__file__).resolve().parents[1] / "state" / "test-s3"
_KEPT_LOGS = 20


@dataclass(frozen=True)
class S3Server:
    """A running server: its endpoint, which kind it is, and where its log goes."""

    endpoint: str
    kind: str  # "localstack" or "moto"
    description: str
    fallback_reason: str | None  # why this is moto although LocalStack was wanted
    log: Path


class IamKeys(NamedTuple):
    """Access keys of two IAM users: one allowed everything on S3, one allowed nothing."""

    allowed: tuple[str, str]
    denied: tuple[str, str]


def use_dummy_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point boto3 at dummy credentials and away from any real AWS config, for this test only."""
    for name, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    for name in _UNSET_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _moto_answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


def _localstack_answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=1) as response:
            services = json.load(response).get("services", {})
    except (OSError, ValueError):
        return False
    return services.get("s3") in {"running", "available"}


def _stop(process: subprocess.Popen[bytes], grace: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def _serving(
    name: str,
    command: Callable[[int], list[str]],
    env: Callable[[int], dict[str, str]] | None,
    answers: Callable[[str], bool],
    log: IO[bytes],
    startup_timeout: float,
    grace: float = 5.0,
) -> Iterator[str]:
    """Start `command(port)` on a free port until `answers(endpoint)`; yield the endpoint."""
    for _attempt in range(3):  # another process may grab the free port before the server binds it
        port = _free_port()
        endpoint = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            command(port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env(port) if env else None,
        )
        deadline = time.monotonic() + startup_timeout
        while process.poll() is None and time.monotonic() < deadline and not answers(endpoint):
            time.sleep(0.1)
        if process.poll() is None and answers(endpoint):
            try:
                yield endpoint
            finally:
                _stop(process, grace)
            return
        _stop(process, grace)
    log.flush()
    log.seek(0)
    output = log.read().decode(errors="replace")[-2000:]
    raise RuntimeError(f"{name} did not start; its last output:\n{output}")


def _moto_command(port: int) -> list[str]:
    executable = Path(sys.executable).parent / "moto_server"
    return [str(executable), "-H", "127.0.0.1", "-p", str(port)]


@contextmanager
def moto_server(startup_timeout: float = 30.0) -> Iterator[str]:
    """Run `moto_server` on a free 127.0.0.1 port; yield its endpoint URL; kill it on exit."""
    with (
        tempfile.TemporaryFile() as log,
        _serving("moto_server", _moto_command, None, _moto_answers, log, startup_timeout) as url,
    ):
        yield url


def install_localstack() -> Path:
    """Install the pinned LocalStack into its own venv under state/test-s3 once; its python."""
    digest = hashlib.sha256(" ".join(LOCALSTACK_PINS).encode()).hexdigest()[:8]
    home = SERVERS_HOME / f"localstack-{LOCALSTACK_VERSION}-{digest}"
    python, done = home / "bin" / "python", home / ".installed"
    if done.exists():
        return python
    SERVERS_HOME.mkdir(parents=True, exist_ok=True)
    with (SERVERS_HOME / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test sessions install it once
        if done.exists():
            return python
        shutil.rmtree(home, ignore_errors=True)  # a half-finished earlier attempt
        pip = ["-m", "pip", "install", "--quiet", "--no-deps", "--only-binary=:all:"]
        pip += ["--disable-pip-version-check", "--timeout", "20", "--retries", "1"]
        try:
            _install_step([sys.executable, "-m", "venv", str(home)])
            _install_step([str(python), *pip, *LOCALSTACK_PINS])
            # The service catalog index, built at every start otherwise (4 s): LocalStack's
            # images build it into the static libs folder, which the server only reads.
            _static_libs(home).mkdir(parents=True)
            env = os.environ | {"OVERRIDE_IN_DOCKER": "0", "FILESYSTEM_ROOT": str(home / "fs")}
            _install_step([str(python), "-m", "localstack.aws.spec"], env)
        except RuntimeError:
            shutil.rmtree(home, ignore_errors=True)
            raise
        done.write_text(LOCALSTACK_VERSION)
    return python


def _install_step(command: list[str], env: dict[str, str] | None = None) -> None:
    step = " ".join(Path(part).name for part in command[:3])
    try:
        subprocess.run(command, capture_output=True, check=True, timeout=900, env=env)
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"installing LocalStack failed at `{step}`: {last}") from exc
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"installing LocalStack failed at `{step}`: {exc}") from exc


def _static_libs(filesystem_root_parent: Path) -> Path:
    return filesystem_root_parent / "fs" / "usr" / "lib" / "localstack"


@functools.cache
def _choice() -> tuple[Path | None, str | None]:
    """LocalStack's python, or None with the reason moto is used instead (once per process)."""
    wanted = os.environ.get("DATABOURSE_TEST_S3_SERVER", "auto")
    if wanted == "moto":
        return None, "DATABOURSE_TEST_S3_SERVER=moto"
    try:
        return install_localstack(), None
    except RuntimeError as exc:
        if wanted == "localstack":
            raise
        return None, str(exc)


def _localstack_env(python: Path, root: Path) -> Callable[[int], dict[str, str]]:
    """LocalStack's environment: S3 only, every file it writes under `root`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCALSTACK_"))}
    (root / "tmp").mkdir()
    _static_libs(root).parent.mkdir(parents=True)
    _static_libs(root).symlink_to(_static_libs(python.parents[1]))

    def env(port: int) -> dict[str, str]:
        return base | {
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "GATEWAY_SERVER": "hypercorn",  # twisted would need service_identity
            "SERVICES": "s3",
            "EAGER_SERVICE_LOADING": "1",
            "S3_SKIP_SIGNATURE_VALIDATION": "0",  # check presigned URLs
            "OVERRIDE_IN_DOCKER": "0",  # else it writes to /var/lib/localstack
            "FILESYSTEM_ROOT": str(root / "fs"),
            "TMPDIR": str(root / "tmp"),  # where large objects spill (it warns: harmless)
            "DNS_ADDRESS": "0",
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
        }

    return env


def _log_file(kind: str) -> Path:
    """A new log file under state/test-s3/logs, kept after the run; only the newest few stay."""
    logs = SERVERS_HOME / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in sorted(logs.glob("*.log"), key=lambda p: p.stat().st_mtime)[:-_KEPT_LOGS]:
        old.unlink(missing_ok=True)
    return logs / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


@contextmanager
def s3_server(startup_timeout: float = 120.0) -> Iterator[S3Server]:
    """The most faithful S3 server available here (see the module docstring), stopped on exit."""
    python, reason = _choice()
    kind = "moto" if python is None else "localstack"
    log_path = _log_file(kind)
    with log_path.open("w+b") as log, tempfile.TemporaryDirectory(prefix="s3-server-") as root:
        if python is None:
            serving = _serving("moto_server", _moto_command, None, _moto_answers, log, 30.0)
            description = f"moto {version('moto')} (LocalStack not used: {reason})"
        else:
            command = [str(python), "-m", "localstack.runtime.main"]
            env = _localstack_env(python, Path(root))
            serving = _serving(
                "LocalStack", lambda _: command, env, _localstack_answers, log, startup_timeout, 1.0
            )
            description = f"LocalStack {LOCALSTACK_VERSION} S3"
        with serving as endpoint:
            yield S3Server(endpoint, kind, f"{description}, log {log_path}", reason, log_path)


def report_server(config: pytest.Config, server: S3Server) -> None:
    """Print which S3 server the tests run against on the terminal, even under output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"S3 server: {server.description}")


@functools.cache
def client(endpoint: str) -> Any:
    """A boto3 S3 client for test setup, with explicit dummy credentials (no env needed)."""
    return _client("s3", endpoint)


def _client(service: str, endpoint: str) -> Any:
    session: Any = boto3.session.Session()  # the stubs type `client` per literal service name
    return session.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=DUMMY_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"},
        ),
    )


def make_bucket(endpoint: str, name: str) -> None:
    """Create bucket `name` on the server at `endpoint`."""
    client(endpoint).create_bucket(Bucket=name)


def enforce_iam(endpoint: str) -> IamKeys:
    """Make a moto server check every request's signature and IAM policy from now on."""
    iam = _client("iam", endpoint)
    keys = []
    for user, actions in (("s3-writer", ["s3:*"]), ("s3-nobody", ["sqs:ListQueues"])):
        iam.create_user(UserName=user)
        statement = {"Effect": "Allow", "Action": actions, "Resource": "*"}
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        keys.append((key["AccessKeyId"], key["SecretAccessKey"]))
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=b"0",  # unauthenticated requests still allowed: none
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass
    return IamKeys(allowed=keys[0], denied=keys[1])
