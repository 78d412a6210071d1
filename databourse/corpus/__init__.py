"""Text corpora as products: language identification, quality filters and de-duplication.

Pure functions over batches of documents (lists of str or Arrow string arrays), no Prefect:
`LanguageIdentification.labels` and `language_counts` (langid), `quality_filter` with
`QualityRules` (filters: Gopher and C4), `DedupIndex.add` with `DedupConfig` (dedup: exact and
MinHash LSH, saved and loaded across product versions), `TextPseudonyms` (pseudonyms: keyed
pseudonyms for the personal data in running text), `build_version` (build: all of it, in
streaming batches, into Parquet shards).
"""

from databourse.corpus.dedup import DedupConfig, DedupIndex, DedupResult
from databourse.corpus.filters import FilterResult, QualityRules, quality_filter
from databourse.corpus.langid import Batch, LanguageIdentification, language_counts

__all__ = [
    "Batch",
    "DedupConfig",
    "DedupIndex",
    "DedupResult",
    "FilterResult",
    "LanguageIdentification",
    "QualityRules",
    "language_counts",
    "quality_filter",
]
