"""The rules of a corpus product (`configs/products/*.yaml`, `type: corpus`, its `corpus:`
section; or a rules file of `bourse corpus build --rules`): languages kept, the Gopher/C4
quality thresholds, the near-duplicate threshold, licences allowed, opt-outs and the leftover
limit of personal data. The models only: `databourse.corpus` applies them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

GOPHER_STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
SHARD_DOCUMENTS = 50_000
DEDUP_INDEX = "dedup_index.npz"  # a corpus version's dedup index, in its reports folder


@dataclass(frozen=True)
class QualityRules:
    """Thresholds of the Gopher and C4 rules (the papers' defaults); None turns a rule off."""

    min_doc_words: int | None = 50
    max_doc_words: int | None = 100_000
    min_mean_word_length: float | None = 3
    max_mean_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8
    min_stop_words: int | None = 2
    stop_words: Mapping[str, frozenset[str]] = field(
        default_factory=lambda: {"en": GOPHER_STOP_WORDS}
    )
    max_dup_para_frac: float | None = 0.3
    max_dup_para_char_frac: float | None = 0.2
    max_dup_line_frac: float | None = 0.3
    max_dup_line_char_frac: float | None = 0.2
    top_ngram_char_frac: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16))
    dup_ngram_char_frac: tuple[tuple[int, float], ...] = (
        (5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10),
    )  # fmt: skip
    c4_lorem_ipsum: bool = True
    c4_curly_bracket: bool = True
    c4_min_sentences: int | None = 5
    c4_min_words_per_line: int = 3


@dataclass(frozen=True)
class DedupConfig:
    """How near a duplicate is: shingle Jaccard threshold, MinHash size, LSH recall there."""

    threshold: float = 0.8
    num_perm: int = 128
    shingle_size: int = 5
    min_recall: float | None = 0.95
    seed: int = 1


class OptOut(BaseModel):
    """Documents removed from the next version: by id, by author, by domain of the source URL
    (a domain covers its subdomains), by an author's digest (`keys.name_digest`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ids: frozenset[str] = frozenset()
    authors: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    author_digests: frozenset[str] = frozenset()

    def merged(self, other: OptOut) -> OptOut:
        """Both lists."""
        return OptOut(
            ids=self.ids | other.ids,
            authors=self.authors | other.authors,
            domains=self.domains | other.domains,
            author_digests=self.author_digests | other.author_digests,
        )


class CorpusRules(BaseModel):
    """What a corpus product keeps: languages, quality, duplicates, licences, opt-outs, and how
    much personal data may be left.

    `redaction`: personal data in the text becomes a typed placeholder (`<PERSON_NAME>`), or a
    keyed pseudonym (`<PERSON_NAME:kqzbtrmhcw>`, one per person under the pseudonym key of
    `key_version`, default the default key: `corpus.pseudonyms`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    languages: frozenset[str] | None = None  # py3langid codes; None keeps every language
    keep_mixed: bool = True
    quality: QualityRules = QualityRules()
    dedup: DedupConfig = DedupConfig()
    redaction: Literal["placeholder", "pseudonym"] = "placeholder"
    key_version: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    leftover_limit: float = Field(0.005, ge=0.0, le=1.0)
    licences: frozenset[str] | None = None  # the allow-list; None allows any, even none
    opt_out: OptOut = OptOut()
    shard_documents: int = Field(SHARD_DOCUMENTS, ge=1)

    @model_validator(mode="after")
    def _key_for_pseudonyms(self) -> CorpusRules:
        if self.key_version is not None and self.redaction != "pseudonym":
            raise ValueError("key_version only applies to redaction: pseudonym")
        return self

    def as_json(self) -> dict[str, Any]:
        """The rules as JSON with their sets of text (languages, licences, opt-outs, stop words)
        in order: a set's JSON order changes from one process to the next, and the rules are
        part of a product's fingerprint and a card's bytes. `key_version` is left out while
        unset (added after corpus products were published: their fingerprints stay)."""
        data = dict(_sets_sorted(self.model_dump(mode="json")))
        if data["key_version"] is None:
            del data["key_version"]
        return data


def _sets_sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sets_sorted(v) for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(value)
    if isinstance(value, list):
        return [_sets_sorted(v) for v in value]
    return value
