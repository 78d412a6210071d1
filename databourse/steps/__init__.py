"""The use cases: ingest a drop, validate it, build, package and publish a version.

Each step is a plain function taking the resources it works with (`Resources`: config, store,
catalog) and explicit arguments, and returning a typed result. A Prefect task wraps one step
(resources, the step, logging, artifacts); the CLI and `benchmarks/` call the same steps, so what
they run and measure is the code that runs.

Modules:
    approving
        Record an approver's answer on the form that asked for it, or refuse it (audited).
    assembling
        A product build's last passes on local work files: lay out the files, write each, finish.
    building
        A product build's first passes on local work files: plan, count, decide, write.
    corpus
        Build a corpus product's version from an ingest's documents and give it a version.
    ingesting
        Take drops in: which landing drops are new, and one file into raw and staging, audited.
    packaging
        Give a built product's staged content a version: its files, manifest and catalog record.
    publishing
        Publish a version and decide its markets through the transfer gate, or one market again.
    resources
        What a step works with, handed in by its caller, and the audit of a failed gate.
    scanning
        Validate in partitions: the plan, and the personal-data scan of one partition.
    validating
        Validate an ingest: its quality suite and its personal-data scan, gates that quarantine.
"""
