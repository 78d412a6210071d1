"""Product versions: partitions, assembly, packaging, manifests, and a version's transfer facts.

Modules:
    assembly
        The product's files cut from the partitions' segments (pass 3), checked, and their identity.
    corpus_facts
        The transfer facts of a corpus version: what the re-scan still finds in its text.
    facts
        The transfer facts of a version: bound to its content hash, derived from its config and
        files.
    manifest_once
        A version's `manifest.json` is the one this run built, never one found in its place.
    manifest_terms
        A manifest's terms, ODRL policy, markets and lineage, re-derived from what they were built
        from.
    package
        Package a product version: Parquet files, a content hash, and `manifest.json` written last.
    partitions
        Passes over partitions of a staged dataset: plan, count (pass 1), decide, write (pass 2).
    productize
        From a staged dataset to a product table: rules, privacy model, aggregates, risk, re-scan.
"""
