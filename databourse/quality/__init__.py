"""Data quality: a dataset's contract as expectations, run in batches, scored and reported.

Modules:
    batches
        Validate a dataset of any size in batches of at most N rows, one result per expectation.
    counts
        Expectations counted by pyarrow over every batch: row count, unique, min-max, nulls,
        between.
    docs
        What operators read of a validation: an HTML page, artifact rows and a markdown summary.
    expectations
        One expectation: its spec, the columns it names, and its result (counts and names only).
    gx
        Expectations that GX runs on each batch, their counts combined into one result each.
    gx_inputs
        What GX is given: expectation objects built from specs, and each batch as a pandas
        DataFrame.
    history
        A dataset's validation history, read back from the reports zone.
    page
        The quality page of one validation: its suite with every parameter, scores and history.
    primary_key
        Primary-key checks on a stream of batches with memory that does not grow with the file.
    profile
        Propose a starting expectation suite from a sample of a dataset, as YAML to paste and
        review.
    report
        A validation's report: GX results reduced to counts and safe observations, never a cell
        value.
    score
        Quality scores per dimension (completeness, validity, uniqueness, timeliness, consistency).
    suite
        Data-quality gate: a dataset contract as a Great Expectations suite, run on Arrow/Parquet.
    tally
        What one part of a dataset adds to each expectation, and a validation finished from the
        parts.
"""
