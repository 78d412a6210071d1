"""The catalog in SQL: versions, markets, approvals, pending questions, grants, the listing, and
its audit trail (hash-chained events, anchors outside the database, what the trail proves).

Modules:
    access_anchors
        Anchors of the access log's newest row in the store, between the trail's seals.
    access_log
        Buyers' reads through the exchange: a log of its own, chained and keyed, sealed into the
        trail.
    approvals
        The catalog's human decisions on transfers: approvals, rejections, expiries, and their
        reads.
    asked_questions
        The approval questions the pipeline asked, as audited, against the catalog's pending rows.
    database
        The product catalog: versions, availability per market and transfer approvals, in SQL.
    engine
        The catalog's database plumbing: engines, migrations, retried transactions, version lookups.
    gate
        The catalog's cross-border gate: decide every market of a version, carry approvals over.
    grants
        The catalog's grants of access to buyers, and its audit trail.
    listing
        The listing: what buyers and operators are shown is what the authenticated audit trail
        backs.
    markets
        The rows behind a market's status: availability, valid approvals and the exporter's count.
    models
        SQLAlchemy tables of the catalog: products, versions, availability per market, approvals.
    page
        A static HTML catalog page a buyer or an operator opens in a browser (no script, no server).
    pending
        The catalog's open questions: one row per suspension that waits for a person's answer.
    records
        Catalog rows detached into records and JSON: versions, approvals, availability, products.
    shares
        Grants as Delta Sharing recipients: token hashes, revocations and the standing of a grant.
    trail
        The audit trail: an append-only, hash-chained log of every decision, kept in the catalog.
    trail_anchors
        Anchors of the audit trail: write-once objects in the store outside the catalog database.
    trail_fold
        The fold of the authenticated audit trail into what it proves, and a reader's cache of it.
    trail_state
        The state the authenticated audit trail proves, and the catalog rows it contradicts.
    transfers
        The transfer gate's catalog queries: an exporter's yearly count, an earlier decision.
    versioning
        Semantic versions of data products, derived from how their schema changed (pure functions).
"""
