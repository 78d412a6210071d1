"""Running text cut for the detectors: every piece sits at its offset in the text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from databourse.pii.text_segments import OVERLAP_WORDS, WINDOW_WORDS, pieces


def test_lines_and_windows_keep_their_offsets() -> None:
    long_line = " ".join(f"w{i}" for i in range(2 * WINDOW_WORDS))
    text = f"Dear\u00a0John Smith,\nthanks.\r\n{long_line}"
    cut = pieces([text])
    assert cut[0] == (0, 0, "Dear John Smith,")  # the no-break space read as a space
    assert cut[1] == (0, 17, "thanks.")
    windows = [part for _, _, part in cut[2:]]
    assert len(windows) == 3 and all(len(w.split()) <= WINDOW_WORDS for w in windows)
    words = [w.split() for w in windows]
    assert words[0][-OVERLAP_WORDS:] == words[1][:OVERLAP_WORDS]  # a name at an edge is whole
    assert {w for ws in words for w in ws} == set(long_line.split())


CHARS = st.sampled_from("ab \n\t\u00a0\u3000\r")


@given(st.lists(st.text(alphabet=CHARS, max_size=80), max_size=5))
def test_every_piece_is_the_text_at_its_offset(texts: list[str]) -> None:
    for i, offset, part in pieces(texts):
        plain = texts[i][offset : offset + len(part)]
        assert len(plain) == len(part)
        assert all(a == b or b == " " for a, b in zip(plain, part, strict=True))
