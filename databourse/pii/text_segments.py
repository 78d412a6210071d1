"""Running text cut into the pieces the name and address detectors read: lines, then windows.

The detectors of `text_mentions` were written for cells: they split a value on single spaces and
read its first `MAX_TOKENS` tokens. A document is not a cell. A name at the end of a line glues
to the first word of the next ("Smith\\nabout"), one joined by a no-break space or a tab is not
two words, and a name after the 400th word of a letter is never read. So, for the detectors
only, each text is read as:
- its horizontal spaces (tab, no-break space, the Unicode spaces) as plain spaces: one character
  for one, so every offset in the piece is an offset in the text;
- cut at line breaks (a name never spans two lines);
- each line in windows of `WINDOW_WORDS` words that overlap by `OVERLAP_WORDS`, so a name at a
  window's edge is whole in one of them.
The spans found in a piece are moved back by its offset; the text itself is never rewritten here.
"""

from __future__ import annotations

import regex

__all__ = ["OVERLAP_WORDS", "WINDOW_WORDS", "Piece", "pieces"]

WINDOW_WORDS = 300  # under text_mentions.MAX_TOKENS (400), which a window must never reach
OVERLAP_WORDS = 12  # longer than any name with its title, or address with its street
_SPACES = regex.compile(r"[\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_LINE = regex.compile(r"[^\n\r\v\f\u0085\u2028\u2029]+")
_WORD = regex.compile(r"\S+")

Piece = tuple[int, int, str]  # the text's index, the piece's offset in it, the piece


def pieces(texts: list[str]) -> list[Piece]:
    """Every text's lines and windows, each with the offset where it starts in its text."""
    out: list[Piece] = []
    for i, text in enumerate(texts):
        plain = _SPACES.sub(" ", text)
        for line in _LINE.finditer(plain):
            out += [(i, line.start() + at, part) for at, part in _windows(line.group())]
    return out


def _windows(line: str) -> list[tuple[int, str]]:
    """(offset, window) of a line: the line itself when it is short enough."""
    starts = [m.start() for m in _WORD.finditer(line)]
    if len(starts) <= WINDOW_WORDS:
        return [(0, line)]
    out = []
    for first in range(0, len(starts), WINDOW_WORDS - OVERLAP_WORDS):
        last = first + WINDOW_WORDS
        end = starts[last] if last < len(starts) else len(line)
        out.append((starts[first], line[starts[first] : end].rstrip()))
        if last >= len(starts):
            break
    return out
