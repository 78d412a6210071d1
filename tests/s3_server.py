"""A real S3-compatible server for tests: the `moto_server` executable run as a subprocess.

    with moto_server() as endpoint:          # "http://127.0.0.1:<free port>"
        make_bucket(endpoint, "my-bucket")

Clients need credentials from the environment: call `use_dummy_aws_env(monkeypatch)` in a fixture.
Self-contained (no databourse imports) so flow and end-to-end tests can reuse it.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

REGION = "us-east-1"
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
_UNSET_AWS_ENV = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL")


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


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


def _start(port: int, log: Any) -> subprocess.Popen[bytes]:
    executable = Path(sys.executable).parent / "moto_server"
    return subprocess.Popen(
        [str(executable), "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def moto_server(startup_timeout: float = 30.0) -> Iterator[str]:
    """Run `moto_server` on a free 127.0.0.1 port; yield its endpoint URL; kill it on exit."""
    with tempfile.TemporaryFile() as log:
        for _attempt in range(3):  # another process may grab the free port before moto binds it
            port = _free_port()
            endpoint = f"http://127.0.0.1:{port}"
            process = _start(port, log)
            deadline = time.monotonic() + startup_timeout
            while process.poll() is None and time.monotonic() < deadline:
                if _answers(endpoint):
                    break
                time.sleep(0.1)
            if process.poll() is None and _answers(endpoint):
                try:
                    yield endpoint
                finally:
                    _stop(process)
                return
            _stop(process)
        log.seek(0)
        output = log.read().decode(errors="replace")[-2000:]
        raise RuntimeError(f"moto_server did not start; its last output:\n{output}")


@functools.cache
def client(endpoint: str) -> Any:
    """A boto3 S3 client for test setup, with explicit dummy credentials (no env needed)."""
    return boto3.session.Session().client(
        "s3",
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
