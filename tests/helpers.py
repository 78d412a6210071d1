"""Small helpers shared by test modules (kept out of conftest so importing them has no effects)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_project(root: Path) -> Path:
    """A project folder with a copy of the repo's configs and its own state."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "configs", root / "configs", dirs_exist_ok=True)
    return root


# Variables of the test process that must not leak into a CLI run that manages its own stack.
NOT_FOR_CLI = (
    "PREFECT_API_URL",
    "PREFECT_HOME",
    "PREFECT_LOCAL_STORAGE_PATH",
    "DATABOURSE_PSEUDONYM_KEY",
    "DATABOURSE_MANAGED_PREFECT",
)


def cli_env(project: Path, **extra: str) -> dict[str, str]:
    """Environment of a `bourse` run on `project` with its own Prefect server on a free port."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_FOR_CLI}
    env.update(
        {
            "DATABOURSE_CONFIG_DIR": str(project / "configs"),
            "DATABOURSE_PREFECT_PORT": str(free_port()),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def bourse(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess; with check, fail the test with its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "bourse", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"bourse {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def stop_stack(env: dict[str, str]) -> None:
    bourse(env, "server", "stop", check=False)
