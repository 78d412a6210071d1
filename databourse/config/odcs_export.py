"""A provider config written as an ODCS v3 contract, checked to convert back (`standards.odcs`)."""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import BaseModel

from databourse.config.odcs import API_VERSION, provider_from_odcs, schema_problems
from databourse.config.odcs_reader import COLUMN_PROPS, DATASET_PROPS, LOGICAL
from databourse.config.providers import ColumnSpec, DatasetSpec, ProviderSpec
from databourse.errors import ConfigError


def odcs_yaml(provider: ProviderSpec) -> str:
    """The provider as ODCS YAML, checked: it passes the ODCS schema and converts back to
    `provider` (ConfigError otherwise)."""
    document = provider_to_odcs(provider)
    source = f"{provider.id} (ODCS export)"
    if problems := schema_problems(document):
        raise ConfigError([f"{source}: {p}" for p in problems])
    if provider_from_odcs(document, provider_id=provider.id, source=source) != provider:
        raise ConfigError([f"{source}: does not convert back to the same provider config"])
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def provider_to_odcs(provider: ProviderSpec) -> dict[str, Any]:
    """A provider's datasets as one ODCS v3 contract (the mapping of the module docstring)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "DataContract",
        "id": provider.id,
        "name": provider.name,
        "version": "1.0.0",
        "status": "active",
        "customProperties": [{"property": "jurisdiction", "value": provider.jurisdiction}]
        + ([{"property": "publisherType", "value": provider.type}] if provider.type else []),
        "schema": [_schema_object(name, spec) for name, spec in provider.datasets.items()],
    }


def _schema_object(name: str, spec: DatasetSpec) -> dict[str, Any]:
    obj: dict[str, Any] = {"name": name, "logicalType": "object"}
    if spec.description:
        obj["description"] = spec.description
    obj["properties"] = [_property(col, spec.primary_key) for col in spec.columns]
    quality: list[dict[str, Any]] = [
        {"metric": "rowCount", "mustBeGreaterOrEqualTo": spec.min_rows}
    ]
    if spec.max_rows is not None:
        quality.append({"metric": "rowCount", "mustBeLessOrEqualTo": spec.max_rows})
    quality += [
        {
            "type": "custom",
            "engine": "greatExpectations",
            "implementation": {"expectation": e.expectation, "kwargs": e.kwargs},
            "severity": e.severity,
        }
        for e in spec.expectations
    ]
    obj["quality"] = quality
    if custom := _custom(spec, DATASET_PROPS):
        obj["customProperties"] = custom
    return obj


def _property(col: ColumnSpec, key: list[str]) -> dict[str, Any]:
    prop: dict[str, Any] = {"name": col.name, "logicalType": LOGICAL[col.type]}
    prop["physicalType"] = col.type
    if not col.nullable:
        prop["required"] = True
    if col.unique:
        prop["unique"] = True
    if col.name in key:
        prop.update(primaryKey=True, primaryKeyPosition=key.index(col.name) + 1)
    if col.personal_data:
        prop["classification"] = "restricted"
    numeric = col.type in ("int64", "float64")
    bounds = {"minimum": col.min_value, "maximum": col.max_value} if numeric else {}
    options: dict[str, Any] = {k: v for k, v in bounds.items() if v is not None}
    if col.pattern is not None and col.type == "string":
        options["pattern"] = col.pattern
    if len(col.formats) == 1:
        options["format"] = jdk_pattern(col.formats[0])
    if options:
        prop["logicalTypeOptions"] = options
    rules: list[dict[str, Any]] = []
    if col.allowed_values is not None:
        rules.append({"validValues": list(col.allowed_values)})
    if col.pattern is not None and col.type != "string":
        rules.append({"pattern": col.pattern})
    if rules:
        prop["quality"] = [{"metric": "invalidValues", "arguments": a, "mustBe": 0} for a in rules]
    skip = {"min_value", "max_value"} if numeric else set()
    skip |= {"formats"} if len(col.formats) == 1 else set()
    if custom := _custom(col, {k: v for k, v in COLUMN_PROPS.items() if v not in skip}):
        prop["customProperties"] = custom
    return prop


def _custom(spec: BaseModel, names: dict[str, str]) -> list[dict[str, Any]]:
    """customProperties for the fields of `spec` named in `names` that are not their default."""
    entries = []
    for name, field in names.items():
        value = getattr(spec, field)
        if value == type(spec).model_fields[field].get_default(call_default_factory=True):
            continue
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json", exclude_defaults=True)
        entries.append({"property": name, "value": value})
    return entries


def jdk_pattern(layout: str) -> str:
    """A strftime layout (the directives `layout_problem` allows) as a JDK pattern."""
    back = {"%Y": "yyyy", "%m": "MM", "%d": "dd", "%H": "HH", "%M": "mm", "%S": "ss", "%%": "%"}
    parts = []
    for piece in re.split(r"(%.)", layout):
        if piece in back:
            parts.append(back[piece])
        elif re.search(r"[A-Za-z']", piece):
            parts.append("'" + piece.replace("'", "''") + "'")
        else:
            parts.append(piece)
    return "".join(parts)
