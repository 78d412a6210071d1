"""Email addresses as RFC 5321/5322 and internationalized mail (RFC 6531) allow them (vectorised).

The local part may hold any letter, mark, digit or symbol (emoji) of any script and those of
RFC 5322's dot-atoms (! # $ % & ' * + / = ? ^ _ ` { | } ~ -), dots between them; the domain is
labels of letters, marks, digits and inner hyphens in any script, or their punycode (xn--), with
a top-level label that is not all digits. Then the limits email-validator (the oracle of the
tests) applies: 64 octets before the @, 254 in all, 63 per label, no "--" in the third and fourth
characters of a label other than punycode's, no special-use top-level domain (RFC 6761).
Quoted local parts ("john doe"@x.org) and address literals (x@[10.0.0.1]) are not read, and
Chinese, Japanese or Korean characters touching ASCII letters or digits are not one address:
"请联系ab@x.com谢谢" is an address inside text (counted as embedded), though email-validator
would take the whole as one.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from databourse.pii.digits import Mask

# Negated classes: the same characters as letters, marks, digits (and symbols in the local part)
# of every script, but ten times faster for RE2 to compile than \p{L}\p{M}\p{N}\p{S}.
_ATOM = r"[^\x00-\x20\"(),.:;<>@\[\\\]\x7f\p{Z}\p{C}]+"  # RFC 5322 atext, and any non-ASCII
_ALNUM = r"[^\x00-\x2f:-@\[-`{-\x7f\p{Z}\p{C}\p{P}\p{S}]"  # a letter, mark or digit
_LABEL = rf"{_ALNUM}(?:(?:{_ALNUM}|-)*{_ALNUM})?"
_TOP = _LABEL  # but not all digits (email_mask)
# Whole-value shape (RE2). Unbounded repetitions: counted ones over Unicode classes compile slowly.
EMAIL_SHAPE = rf"^{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_TOP}$"
SPECIAL_USE = r"(?i)\.(?:arpa|invalid|local|localhost|onion|test)$"
GLUED = (
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}][A-Za-z0-9]"
    r"|[A-Za-z0-9][\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]"
)
MAX_LOCAL_OCTETS = 64
MAX_OCTETS = 254
MAX_LABEL = 63


def _hits(arr: pa.Array, pattern: str) -> Mask:
    return pc.fill_null(pc.match_substring_regex(arr, pattern), False).to_numpy(False)


def email_mask(values: pa.Array) -> Mask:
    """Which values (already of EMAIL_SHAPE) are addresses within the limits above."""
    arr = values.cast(pa.large_string())
    parts = pc.split_pattern(arr, "@", max_splits=1)
    local = pc.list_element(parts, 0)
    domain = pc.list_element(parts, 1)
    octets = pc.binary_length(pc.cast(arr, pa.large_binary())).to_numpy(False)
    local_octets = pc.binary_length(pc.cast(local, pa.large_binary())).to_numpy(False)
    long_label = _hits(domain, rf"[^.]{{{MAX_LABEL + 1}}}")
    reserved_dashes = _hits(domain, r"(?:^|\.)[^.]{2}--") & ~_hits(domain, r"(?i)(?:^|\.)xn--")
    return (  # type: ignore[no-any-return]
        (octets <= MAX_OCTETS)
        & (local_octets <= MAX_LOCAL_OCTETS)
        & ~long_label
        & ~reserved_dashes
        & ~_hits(domain, SPECIAL_USE)
        & ~_hits(domain, r"\.\d+$")
        & ~_hits(arr, GLUED)
    )
