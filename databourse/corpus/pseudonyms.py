"""Keyed pseudonyms for personal data inside running text (`redaction: pseudonym`).

Where a placeholder says only that a name was there, a pseudonym says which: every mention of
one person's name, one phone number or one ID number becomes the same token in every document
of every version built under the key (`<PERSON_NAME:kqzbtrmhcw>`), so that a model trained on
the corpus still sees who speaks to whom and who is mentioned again, and nobody without the
key can tell who it is. The token is the HMAC-SHA256 of the normalized value under a key
derived from the pseudonym key for the text pseudonyms of that category (`keys.keyed_digest`,
purpose `text-pseudonym/<CATEGORY>`): the same name in two categories, or in a table product's
pseudonymized column, gives unrelated pseudonyms. 40 bits are written (`text_spans.
pseudonym_token`): two people share a token with a chance of about n^2 / 2^41 among n of one
category, which matters for linking, not for privacy.

Normalized first, so that one value written two ways is one pseudonym: a name or an address
NFKC, case-folded, single spaces (`keys.normalized_name`); an e-mail NFKC, trimmed,
case-folded; every other identifier (ID numbers, phones, cards, IBANs, IPs) its letters and
digits only, upper-cased ("900101-14-5678" and "900101145678"). A phone written with and
without its country code stays two pseudonyms: the text does not say which country a local
number is from.

A pseudonymized corpus still holds personal data (PIPL art. 73: de-identified, not anonymized;
GDPR recital 26): `corpus_facts` counts its pseudonyms as what remains, as a table's
pseudonymized column is.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from databourse.keys import keyed_digest, normalized_name
from databourse.pii.text_spans import pseudonym_token

PURPOSE = "text-pseudonym"
CACHED = 65_536  # values remembered per pseudonymizer (a name recurs across a batch's documents)
_WORDS = frozenset({"PERSON_NAME", "ADDRESS"})


def normalized(category: str, value: str) -> str:
    """The value as it is pseudonymized (see the module docstring)."""
    if category in _WORDS:
        return normalized_name(value)
    text = unicodedata.normalize("NFKC", value)
    if category == "EMAIL":
        return text.strip().casefold()
    return "".join(c for c in text if c.isalnum()).upper()


class TextPseudonyms:
    """The replacement of `text_redact.redact_batch` under one pseudonym key: (category,
    value) -> `<CATEGORY:letters>`. Holds the key; never prints or pickles it."""

    def __init__(self, material: bytes, key_id: str, key_version: str) -> None:
        self.key_id, self.key_version = key_id, key_version
        self._token = lru_cache(maxsize=CACHED)(self._compute)
        self._material = material

    def __call__(self, category: str, value: str) -> str:
        return str(self._token(category, value))

    def __repr__(self) -> str:
        return f"TextPseudonyms(key_id={self.key_id!r}, key_version={self.key_version!r})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a pseudonymizer holds a key and is not pickled")

    def _compute(self, category: str, value: str) -> str:
        digest = keyed_digest(self._material, f"{PURPOSE}/{category}", normalized(category, value))
        return pseudonym_token(category, digest)

    def described(self) -> dict[str, str]:
        """What a manifest records of the key: its version and public id."""
        return {"key_version": self.key_version, "key_id": self.key_id}
