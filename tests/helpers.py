"""Small helpers shared by test modules (kept out of conftest so importing them has no effects)."""

from __future__ import annotations

import shutil
import socket
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
