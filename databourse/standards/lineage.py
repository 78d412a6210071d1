"""OpenLineage run events of the pipeline's runs: names, types, counts and hashes, never values.

Datasets live in one namespace per environment, `databourse://<namespace>` (settings
`lineage.namespace`, else the artifact namespace), and are named by zone:

    raw/<provider>/<dataset>/<ingest_id>   the bytes as received (version: their sha256)
    staging/<provider>/<dataset>           the staged table (version: the staged Parquet's sha256)
    products/<product>                     the product (version: the version's content hash)

Jobs share the namespace and are named after their flow (`ingest-dataset`, ...); a run's id is
its Prefect flow run id. The builders here are pure; emitting them is tasks/lineage.py's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    JobFacet,
    RunFacet,
    column_lineage_dataset,
    data_quality_assertions_dataset,
    dataset_version_dataset,
    error_message_run,
    job_type_job,
    parent_run,
    schema_dataset,
)
from openlineage.client.serde import Serde

from databourse.config import ProductSpec

PRODUCER = "urn:databourse:pipeline"  # who wrote the event (a URI, as the spec asks)
SCHEME = "databourse://"
Phase = Literal["START", "RUNNING", "COMPLETE", "FAIL"]  # RUNNING: a resumed run's start

# How a column rule transforms its source column (OpenLineage transformation subtypes).
_DIRECT = {
    "keep": ("IDENTITY", False),
    "pseudonymize": ("TRANSFORMATION", True),
    "generalize": ("TRANSFORMATION", True),
    "mask": ("TRANSFORMATION", True),
    "noise": ("TRANSFORMATION", True),
}


@dataclass(frozen=True)
class JobRun:
    """One run of a job: the Prefect flow run id and the flow's name."""

    run_id: str
    namespace: str
    name: str


def namespace(name: str) -> str:
    """The namespace of an environment's datasets and jobs."""
    return f"{SCHEME}{name}"


def raw_name(provider: str, dataset: str, ingest_id: str) -> str:
    return f"raw/{provider}/{dataset}/{ingest_id}"


def staging_name(provider: str, dataset: str) -> str:
    return f"staging/{provider}/{dataset}"


def product_name(product: str) -> str:
    return f"products/{product}"


def schema_facet(columns: Iterable[Mapping[str, Any]]) -> schema_dataset.SchemaDatasetFacet:
    """Column names and types (each mapping's `name` and `type`), in order."""
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(name=str(c["name"]), type=str(c["type"]))
            for c in columns
        ]
    )


def version_facet(version: str) -> dataset_version_dataset.DatasetVersionDatasetFacet:
    return dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=version)


def quality_facet(
    quality: Mapping[str, Any],
) -> data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet:
    """Each expectation of a `quality.json` report: its name, column, severity, pass or fail."""
    return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=[
            data_quality_assertions_dataset.Assertion(
                assertion=str(r["expectation"]),
                success=bool(r["success"]),
                column=r.get("column"),
                severity=r.get("severity"),
            )
            for r in quality.get("results", [])
        ]
    )


def raw_dataset(ns: str, record: Mapping[str, Any]) -> OutputDataset:
    """The raw ingest an `_ingest.json` record describes."""
    name = raw_name(record["provider"], record["dataset"], record["ingest_id"])
    facets = {"schema": schema_facet(record["schema"]), "version": version_facet(record["sha256"])}
    return OutputDataset(namespace=ns, name=name, facets=facets)  # type: ignore[arg-type]


def staged_facets(record: Mapping[str, Any]) -> dict[str, Any]:
    """The staged table's schema and version (its sha256; the ingest id for older ingests)."""
    version = record.get("staged_sha256") or record["ingest_id"]
    return {"schema": schema_facet(record["schema"]), "version": version_facet(version)}


def staged_input(
    ns: str, record: Mapping[str, Any], quality: Mapping[str, Any] | None = None
) -> InputDataset:
    """The staged table of an ingest as read, with the quality suite's outcomes when given."""
    name = staging_name(record["provider"], record["dataset"])
    input_facets = {"dataQualityAssertions": quality_facet(quality)} if quality else {}
    return InputDataset(
        namespace=ns,
        name=name,
        facets=staged_facets(record),  # type: ignore[arg-type]
        inputFacets=input_facets,  # type: ignore[arg-type]
    )


def staged_output(ns: str, record: Mapping[str, Any]) -> OutputDataset:
    name = staging_name(record["provider"], record["dataset"])
    return OutputDataset(namespace=ns, name=name, facets=staged_facets(record))  # type: ignore[arg-type]


def product_input(ns: str, product_id: str, content_hash: str) -> InputDataset:
    """A product version as read (by a publication): its name and content hash."""
    facets = {"version": version_facet(content_hash)}
    return InputDataset(namespace=ns, name=product_name(product_id), facets=facets)  # type: ignore[arg-type]


def column_lineage(
    ns: str, product: ProductSpec, columns: Sequence[str] | None = None
) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """Which staged columns each product column comes from, by the product's column rules.

    Dropped columns are absent. `columns` (the written schema's names) limits the fields to those
    present; an aggregate's measure columns (`<column>_<stat>`) aggregate their source column,
    and its dimensions group the records. Suppression by the privacy model filters records on
    the quasi-identifiers: that is the dataset-wide (indirect) lineage."""
    source = staging_name(product.source.provider, product.source.dataset)

    def field(column: str, kind: str, subtype: str, masking: bool, description: str) -> Any:
        step = column_lineage_dataset.Transformation(
            type=kind, subtype=subtype, description=description, masking=masking
        )
        return column_lineage_dataset.InputField(
            namespace=ns, name=source, field=column, transformations=[step]
        )

    fields: dict[str, column_lineage_dataset.Fields] = {}
    for column, rule in product.columns.items():
        if rule.action in _DIRECT:
            subtype, masking = _DIRECT[rule.action]
            used = field(column, "DIRECT", subtype, masking, rule.action)
            fields[rule.rename or column] = column_lineage_dataset.Fields(inputFields=[used])
    indirect: list[Any] = []
    origin = {(rule.rename or column): column for column, rule in product.columns.items()}
    if product.aggregate is not None:
        for measure in product.aggregate.measures:
            for stat in measure.stats:
                source_column = origin.get(measure.column, measure.column)
                used = field(source_column, "DIRECT", "AGGREGATION", True, stat)
                fields[f"{measure.column}_{stat}"] = column_lineage_dataset.Fields(
                    inputFields=[used]
                )
        indirect += [
            field(origin.get(d, d), "INDIRECT", "GROUP_BY", False, "dimension")
            for d in product.aggregate.dimensions
        ]
    if product.privacy is not None:
        indirect += [
            field(origin.get(q, q), "INDIRECT", "FILTER", False, "suppression")
            for q in product.privacy.quasi_identifiers
        ]
    if columns is not None:
        fields = {name: fields[name] for name in columns if name in fields}
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields, dataset=indirect)


def product_output(
    ns: str, product: ProductSpec, schema: Sequence[Mapping[str, Any]], content_hash: str
) -> OutputDataset:
    """A product version: its schema, column lineage and content hash."""
    facets = {
        "schema": schema_facet(schema),
        "columnLineage": column_lineage(ns, product, [str(c["name"]) for c in schema]),
        "version": version_facet(content_hash),
    }
    return OutputDataset(namespace=ns, name=product_name(product.id), facets=facets)  # type: ignore[arg-type]


def run_event(
    phase: Phase,
    run: JobRun,
    inputs: Sequence[InputDataset] = (),
    outputs: Sequence[OutputDataset] = (),
    parent: JobRun | None = None,
    error: str | None = None,
    when: dt.datetime | None = None,
) -> RunEvent:
    """A START (RUNNING when resumed), COMPLETE or FAIL event of one flow run. `error` names
    the exception's type only (a message might quote data)."""
    run_facets: dict[str, RunFacet] = {}
    if parent is not None:
        run_facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent.run_id),
            job=parent_run.Job(namespace=parent.namespace, name=parent.name),
        )
    if error is not None:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=error, programmingLanguage="python"
        )
    job_facets: dict[str, JobFacet] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="PREFECT", jobType="FLOW"
        )
    }
    return RunEvent(
        eventType=RunState[phase],
        eventTime=(when or dt.datetime.now(dt.UTC)).isoformat(),
        run=Run(runId=run.run_id, facets=run_facets),
        job=Job(namespace=run.namespace, name=run.name, facets=job_facets),
        inputs=list(inputs),
        outputs=list(outputs),
        producer=PRODUCER,
    )


def to_json(event: RunEvent) -> str:
    """The event as one line of JSON."""
    return Serde.to_json(event)
