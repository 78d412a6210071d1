"""Artifacts an operator reads in the Prefect UI: tables and markdown, never cell values."""

from __future__ import annotations

import re
from typing import Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact


def artifact_key(*parts: str) -> str:
    """A valid artifact key (lowercase letters, digits, dashes) from names."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")[:100]


def table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    """A table artifact (latest version under `key`)."""
    create_table_artifact(key=artifact_key(key), table=rows, description=description)


def markdown(key: str, text: str, description: str = "") -> None:
    """A markdown artifact."""
    create_markdown_artifact(key=artifact_key(key), markdown=text, description=description)


def link(key: str, uri: str, description: str) -> None:
    """A link artifact to a file or object."""
    create_link_artifact(key=artifact_key(key), link=uri, description=description)
