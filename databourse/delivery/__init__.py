"""Delivery to buyers: grants of one exact version, and Delta Sharing.

Modules:
    csv_safety
        CSV that a spreadsheet opens without running anything: formula injection neutralized
        (OWASP).
    grants
        Delivery: a buyer gets time-limited access to one exact version, never a copy of raw data.
    sharing
        Delta Sharing for buyers: a grant is a recipient whose share holds exactly one version.
"""
