"""Anonymization: per-column rules, k-anonymity and its relatives, the lattice search, risk.

Modules:
    aggregate
        Aggregated analytical products: one row per cell of the dimensions, small cells suppressed.
    anonymize
        Per-column anonymization of a table by a product's rules: keep, drop, pseudonymize,
        generalize.
    criteria
        The privacy criteria of one class (k, l, t) and the one rule deciding which classes are
        released.
    generalization
        Generalization of Arrow arrays: numeric bands, date truncation, prefixes, rounding, masks.
    hierarchy
        Generalization hierarchies in ARX's CSV format: one row per value, `value;level1;...;*`.
    k_anonymity
        k-anonymity of a table over its quasi-identifiers: equivalence classes, check, and
        enforcement.
    lattice
        Full-domain generalization search: the lattice node with least information loss meeting a
        model.
    loss_metrics
        ARX's information-loss metrics for the lattice search, each with a lower bound for pruning.
    pseudonyms
        Keyed pseudonyms and noise: HMAC-SHA256 of normalized values, key versions, fingerprints.
    risk
        Re-identification risk of a released table under the prosecutor model.
"""
