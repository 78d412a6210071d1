"""Exports in open standards: DCAT-AP, Croissant, OpenLineage, and the sealed catalog zone.

Modules:
    croissant
        A product version as a Croissant 1.1 card (JSON-LD) with Responsible-AI (RAI 1.0) fields.
    croissant_checks
        A Croissant card's file objects checked: against a version's folder, and against its
        manifest.
    dcat
        The catalog as DCAT-AP 3.0.1 JSON-LD: a dataset series per product, a dataset per version.
    exports
        Exports of the catalog for outside consumers, written atomically to the `catalog/` zone.
    lineage
        OpenLineage run events of the pipeline's runs: names, types, counts and hashes, never
        values.
    listing_seal
        The listing's seal: an HMAC under the audit key over every object of the `catalog/` zone.
"""
