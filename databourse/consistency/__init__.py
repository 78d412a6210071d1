"""Consistency of the store and the catalog: everything `bourse verify --all` checks.

Modules:
    gate
        What `bourse verify --all` checks of the gate's evidence, beyond the store and the catalog.
    products
        The consistency walk's checks of the products zone: version folders and their manifests.
    report
        What a consistency walk reports: its findings, each with a severity, kind and place.
    verify
        Consistency of the object store and the catalog: everything `bourse verify --all` checks.
    walk
        One consistency walk's state and the helpers its checks share (hashes, ages, records).
    zones
        The consistency walk's checks of the raw, quarantine and staging zones.
"""
