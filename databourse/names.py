"""Names people give the record (buyers, approvers): the one rule of what such a name may hold.

A name is read back by operators in terminals, the Prefect UI and the catalog page. One that is
empty, longer than its column, or that holds characters which draw nothing or move the cursor
(C0/C1 controls, DEL, ESC, bidi overrides, zero-width and line-separator characters) could hide
who decided or repaint the screen of whoever reads the audit trail: it is refused where it
enters. `NAME_PATTERN` and `NAME_MAX_LENGTH` are the same rule for a JSON schema (a form field).
"""

from __future__ import annotations

import unicodedata

from databourse.errors import InvalidName

NAME_MAX_LENGTH = 200  # the catalog's name columns are String(200)
# Unicode categories that draw nothing or move the cursor: controls and DEL (Cc), format
# characters such as U+202E or U+200B (Cf), lone surrogates (Cs), line/paragraph separators.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Characters that draw as blank or only decorate another: marks (Mn, Me) and the fillers and
# blanks that are Default_Ignorable or look empty (Hangul fillers U+115F, U+1160, U+3164, U+FFA0,
# the Braille blank U+2800, U+034F, Mongolian and variation selectors). A name made only of these
# and spaces shows as nothing: it needs one visible letter, digit or symbol (Basic Plane only,
# as NAME_PATTERN; astral fillers are format characters, refused above).
BLANK_CATEGORIES = frozenset({"Mn", "Me", "Zs"})
BLANK_CODE_POINTS = frozenset(
    {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0}
    | set(range(0x180B, 0x1810))
    | set(range(0xFE00, 0xFE10))
    | set(range(0xFFF0, 0xFFF9))
)
_SHOWN = 5  # code points named in a refusal


def is_invisible(char: str) -> bool:
    """True for a character a name may not hold (see INVISIBLE_CATEGORIES)."""
    return unicodedata.category(char) in INVISIBLE_CATEGORIES


def is_blank(char: str) -> bool:
    """True for a character that shows nothing on its own (space, mark, filler; Basic Plane)."""
    code = ord(char)
    return code < 0x10000 and (
        code in BLANK_CODE_POINTS
        or char.isspace()
        or unicodedata.category(char) in BLANK_CATEGORIES
    )


def _bmp_ranges(test: object = is_invisible) -> str:
    """The invisible characters of the Basic Multilingual Plane as regex class ranges.

    `\\uXXXX` escapes read the same in pydantic's Rust regex, Python (the Prefect server's
    jsonschema) and ECMAScript (a browser); surrogates are left out, since ECMAScript would see
    every astral character as two of them. Astral ones are left to `name_problems`.
    """
    ranges: list[tuple[int, int]] = []
    for code in range(0x10000):
        char = chr(code)
        if callable(test) and test(char) and unicodedata.category(char) != "Cs":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)


_RANGES = _bmp_ranges()
_BLANKS = _bmp_ranges(is_blank)
# No invisible character anywhere, and one that is neither invisible nor blank; no look-around,
# which pydantic's Rust regex lacks. (Python's `$` also matches before one final newline:
# `name_problems` refuses that.) With maxLength NAME_MAX_LENGTH, this is the rule as a JSON schema.
NAME_PATTERN = rf"^[^{_RANGES}]*[^\s{_RANGES}{_BLANKS}][^{_RANGES}]*$"


def name_schema(description: str) -> dict[str, object]:
    """JSON-schema keywords of a name field (for a Prefect form's `json_schema_extra`)."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": NAME_MAX_LENGTH,
        "pattern": NAME_PATTERN,
        "description": description,
    }


def name_problems(value: object, what: str) -> list[str]:
    """Why `value` cannot be recorded as the `what` (e.g. "buyer"); empty when it can.

    Problems name the field, lengths and code points, never the name itself.
    """
    if not isinstance(value, str):
        return [f"the {what} must be text, not {type(value).__name__}"]
    if not value.strip():
        return [f"the {what} is empty: give a name or staff id"]
    problems = []
    if len(value) > NAME_MAX_LENGTH:
        problems.append(
            f"the {what} is {len(value)} characters long: at most {NAME_MAX_LENGTH} are allowed"
        )
    hidden = sorted({ord(c) for c in value if is_invisible(c)})
    if hidden:
        shown = ", ".join(f"U+{code:04X}" for code in hidden[:_SHOWN])
        more = f" and {len(hidden) - _SHOWN} more" if len(hidden) > _SHOWN else ""
        problems.append(
            f"the {what} holds control or invisible characters ({shown}{more}): "
            "give it as plain text"
        )
    if not any(not is_invisible(c) and not is_blank(c) for c in value):
        problems.append(
            f"the {what} shows nothing: it holds only spaces, marks or filler characters "
            "(such as U+3164 or U+2800); give a name with a visible letter or digit"
        )
    return problems


def check_name(value: object, what: str) -> str:
    """`value` when it may be recorded as the `what`; else InvalidName saying why."""
    problems = name_problems(value, what)
    if problems:
        raise InvalidName("; ".join(problems), field=what, problems=problems)
    assert isinstance(value, str)
    return value


__all__ = [
    "BLANK_CATEGORIES",
    "BLANK_CODE_POINTS",
    "INVISIBLE_CATEGORIES",
    "NAME_MAX_LENGTH",
    "NAME_PATTERN",
    "check_name",
    "is_blank",
    "is_invisible",
    "name_problems",
    "name_schema",
]
