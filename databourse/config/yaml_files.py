"""Config YAML read safely: no Python tags, no anchors or aliases, an error naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from databourse.errors import ConfigError


class _NoAliasLoader(yaml.SafeLoader):
    """Safe loading (no Python tags) that also refuses anchors and aliases: configs are short,
    and an alias "bomb" small on disk expands to gigabytes once validated or serialized."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in configs", event.start_mark
            )
        return super().compose_node(parent, index)


class _TextDatesLoader(_NoAliasLoader):
    """As `_NoAliasLoader`, but a date stays the text it is, as in JSON (ODCS is checked against
    a JSON schema, where `2022-10-03` is a string)."""


_TextDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _NoAliasLoader.yaml_implicit_resolvers.items()
}


def read_yaml(path: Path, *, text_dates: bool = False) -> Any:
    """A YAML file's data (aliases refused; `text_dates`: dates stay strings); a ConfigError
    naming the file when it cannot be read."""
    try:
        return yaml.load(
            path.read_text(encoding="utf-8"),
            Loader=_TextDatesLoader if text_dates else _NoAliasLoader,
        )
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
