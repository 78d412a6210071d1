"""Ingest: landing discovery, a drop's contract, raw copies byte for byte, typed staging,
quarantine, and the checks that what is reused is what was ingested.

Modules:
    contract
        A dataset's contract applied to the columns of a drop: names, drift, types, layouts, nulls.
    files
        Ingest: a provider file into the raw zone byte for byte, then typed Parquet into staging.
    held_source
        A source held for ingest: read once, through one descriptor, into a private copy.
    landing
        Landing discovery: which provider drops under `landing/` are new, decided by content hash.
    landing_bounds
        Where an ingest may read a source from: the landing zone, the configured roots, the CLI's
        paths.
    landing_drops
        The landing zone's drops: what discover says of each object (status, hash, ingest id, why).
    landing_index
        The landing hash cache: object key -> size, change stamp, sha256, so discovery reads each
        landing object once, not every night.
    landing_manifest
        Sidecar manifests in landing: their format, and the holds they put on the files they list.
    landing_state
        A landing drop's state by its content: ingested, quarantined or new, once per content.
    quarantine
        Quarantine: a file that failed a gate copied aside with `_reason.json` saying why.
    records
        The record of one ingest (`_ingest.json`), and the checks that raw and staged still match
        it.
    staged_integrity
        Staged and raw data are what was ingested: each reuse checks them against the audit trail.
    staging
        A source read through its dataset's contract into typed Parquet for the staging zone.
"""
