"""databourse: the domain of a data exchange pipeline (no Prefect here; see flows/ and tasks/).

The house, each floor importing only the floors below it (the import-linter contracts of
pyproject.toml check this, and that no package or module imports another in a cycle):

    consistency   delivery   migrations       verify --all; buyers' grants, Delta Sharing
    standards                                  DCAT-AP, Croissant, OpenLineage, the sealed listing
    product                                    partitions, assembly, package, manifests, facts
    catalog   corpus   ingest   privacy        SQL catalog + audit trail; text corpora; ingest;
                                               anonymization
    keys   pii   quality   transfer            secret keys; personal data; quality; gate rules
    config   names   readers   storage         configs (+ ODCS); names; file readers; object stores
    clock   errors   grouping                  UTC time; the exception tree; grouped counts

Each package's `__init__` lists its modules. The use cases that drive them (ingest a drop,
validate, build, package, publish) are Prefect tasks in `tasks/`, the CLI in `bourse/`.
Data the project generates for its demo and its own evaluation is in `databourse_samples/`.
"""
