"""Data the project generates for its demo and its own evaluation: never imported by the domain.

Modules:
    demo
        Seeded, deterministic sample drops (KL sensor readings, Shenzhen orders) for demo and tests.
    pii_evalset
        A seeded, labelled evaluation table for PII detection: positives, decoys and free text.
"""
