"""Text corpora as products: language identification, quality filters and de-duplication.

Pure functions over batches of documents (lists of str or Arrow string arrays), no Prefect:
`LanguageIdentification.labels` and `language_counts` (langid), `quality_filter` with
`QualityRules` (filters: Gopher and C4), `document_keys` with `DedupConfig` (dedup: exact and
MinHash LSH keys), `DedupIndex.add` (dedup_index: the keys seen, in files of a work folder,
`key_runs`; saved and loaded across product versions), `TextPseudonyms` (pseudonyms: keyed
pseudonyms for the personal data in running text), `build_version` (build: all of it, in
streaming batches, into Parquet shards), its three stages and `CorpusStats` (stages), the
same version built from partitions of the documents through work files (parts).

Imported from their modules: a process that needs one part (the publish run, the pseudonymizer)
does not pay for the others (pandas, the language tables).
"""
