"""Printing data to a terminal safely: no markup parsed, no control character let through.

Names, references, conditions, file names and keys come from buyers, approvers, providers and
whoever can write the catalog. Printed as rich markup, `[/]` crashes the command; printed raw,
`\\x1b[2J` clears the operator's screen, `\\x1b]8;;...` plants a link and U+202E reverses the
text. Everything the CLI prints that it did not write itself goes through `safe` (or `cells` for
table rows): a rich `Text`, never parsed as markup, with each control or invisible character
shown as a visible escape such as `\\x1b` or `\\u202e`.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from databourse.names import is_invisible


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape_controls(text: object, keep: str = "") -> str:
    """`str(text)` with every control or invisible character (but those in `keep`) escaped."""
    value = str(text)
    if not any(is_invisible(c) for c in value):  # the common case, kept cheap
        return value
    return "".join(_escape(c) if is_invisible(c) and c not in keep else c for c in value)


def safe(text: object, style: str = "", keep: str = "") -> Text:
    """Data as a rich Text: markup never parsed, controls escaped (`keep="\\n"`: lines stay)."""
    return Text(escape_controls("" if text is None else text, keep), style=style)


def cells(*values: object) -> list[Text]:
    """A table row of data: each value `safe` (None prints as empty)."""
    return [safe(v) for v in values]


def assemble(*parts: object) -> Text:
    """One printed line from parts: data (escaped), (data, style) pairs, or `safe` Texts."""
    out = Text()
    for part in parts:
        if isinstance(part, Text):
            out.append_text(part)
        elif isinstance(part, tuple):
            out.append_text(safe(part[0], style=part[1]))
        else:
            out.append_text(safe(part))
    return out


class PlainConsole(Console):
    """A Console on which every printed string is plain text: no markup, no emoji, no controls.

    The net under `safe`: a string printed or put in a table cell by code that forgot it is
    still never parsed as markup, and its controls (but newlines and tabs) are escaped. Styled
    output is built as `Text` (see `assemble`).
    """

    def render_str(self, text: str, **options: Any) -> Text:
        """Like Console.render_str with markup and emoji off and controls escaped."""
        options.update(markup=False, emoji=False)
        return super().render_str(escape_controls(text, keep="\n\t"), **options)


def json_text(data: Any, **dumps: Any) -> str:
    """JSON that stays exact and readable (CJK kept) with controls and bidi as `\\uXXXX`."""
    text = json.dumps(data, ensure_ascii=False, **dumps)
    if not any(is_invisible(c) and c != "\n" for c in text):
        return text
    # A raw newline is indentation (inside a string json.dumps writes \n). Any other such
    # character is inside a string, where a \u escape (a surrogate pair above the BMP) means
    # the same.
    return "".join(_json_escape(c) if is_invisible(c) and c != "\n" else c for c in text)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def yaml_text(text: str) -> str:
    """YAML text made terminal-safe: leading comments escaped, a body with controls re-dumped.

    PyYAML writes U+202E and C1 controls raw even in quoted scalars when `allow_unicode` is on;
    re-dumped ASCII-only, every such character becomes a YAML escape and the data is the same.
    """
    lines = text.splitlines(keepends=True)
    head = 0
    while head < len(lines) and lines[head].startswith("#"):
        head += 1
    header = "".join(escape_controls(x, keep="\n") for x in lines[:head])
    body = "".join(lines[head:])
    if not any(is_invisible(c) and c not in "\n\t" for c in body):
        return header + body
    return header + yaml.safe_dump(yaml.safe_load(body), sort_keys=False, allow_unicode=False)


def minute(timestamp: str) -> str:
    """An ISO timestamp to the minute, `T` as a space: `2026-12-06 01:02`."""
    return timestamp[:16].replace("T", " ")


def fold_all_but_the_run(table: Table) -> None:
    """Long cells fold, except the run id an operator copies into `approve`/`retry`: whole."""
    for column in table.columns:
        column.overflow = "fold"
    table.columns[0].no_wrap = True
    table.columns[0].min_width = 36  # a UUID
