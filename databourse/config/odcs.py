"""Open Data Contract Standard (ODCS) v3 contracts <-> provider configs.

A provider may hand in `configs/providers/<provider-id>.odcs.yaml` instead of `<provider-id>.yaml`.
It is first checked against the standard's own JSON schema (`databourse/data/odcs/`, v3.1.0, which
also accepts v3.0.x documents), then converted; anything that says more than a provider config can
hold is refused, every problem listed as `file: field.path: message`.

Decisions:
- One contract = one provider: its `schema` objects are the provider's datasets (object `name` =
  dataset id), their `properties` the columns. The provider id is the file's name, as for a plain
  provider file; the contract's own `id` (often a UUID) and `version` are not used. The contract's
  `name` is the provider's name.
- logicalType string/integer/number/boolean/date/timestamp = string/int64/float64/bool/date/
  timestamp; none given = string. `required` = not nullable, `unique` = unique, `primaryKey` with
  `primaryKeyPosition` = primary_key. logicalTypeOptions: `pattern`; `minimum`/`maximum` of a
  number; `format` of a date/timestamp (a JDK layout such as `dd/MM/yyyy`, one of `formats`).
- Quality rules: library `nullValues`/`duplicateValues`/`invalidValues` (validValues, pattern) with
  `mustBe: 0` = nullable/unique/allowed_values/pattern; `rowCount` = min_rows/max_rows (the
  standard's `mustBeBetween` is exclusive); `custom` with engine `greatExpectations` and an
  implementation `{expectation: <GX class>, kwargs: {...}}` = one of `expectations`, with its
  severity; `text` rules are prose and not enforced. Other rules are refused.
- What ODCS cannot say is a `customProperties` entry whose value is databourse's own shape:
  contract: `jurisdiction` (required, e.g. CN), `publisherType` (an ADMS publisher type IRI);
  schema object: `importantData`, `schemaDrift`,
  `nullValues`, `read`, `ingestLimits`, `freshness` ({column, max_age_hours, severity}); property:
  `personalData` (a category such as PERSON_NAME: ODCS `classification` is free text, so it is
  not read; the export writes `restricted` there for personal data), `trueValues`, `falseValues`,
  `formats` (several layouts), `minValue`/`maxValue` (bounds of a non-numeric column). Other
  custom properties belong to other tools and are ignored.
- Description, business names, tags, examples, team, servers, SLA, pricing, support and the like
  are documentation: ignored. Relationships, nested objects and arrays, `physicalName` unlike
  `name`, and options or rules not listed above are refused.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import ValidationError

from databourse.config.odcs_reader import ContractReader
from databourse.config.providers import ProviderSpec
from databourse.config.yaml_files import read_yaml
from databourse.errors import ConfigError

SCHEMA_FILE = Path(__file__).parents[1] / "data" / "odcs" / "odcs-json-schema-v3.1.0.json"
API_VERSION = "v3.1.0"


@functools.cache
def odcs_schema() -> dict[str, Any]:
    """The vendored ODCS v3 JSON schema."""
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return schema


def schema_problems(document: Any) -> list[str]:
    """Every way `document` breaks the ODCS JSON schema, as `field.path: message`."""
    validator = jsonschema.Draft201909Validator(odcs_schema())
    found = [_deepest(error) for error in validator.iter_errors(document)]
    # A key a failed subschema would have read is "unevaluated" too: that says nothing more.
    real = [tuple(e.absolute_path) for e in found if e.validator != "unevaluatedProperties"]
    problems = {
        f"{field_path(e.absolute_path)}: {schema_message(e)}"
        for e in found
        if e.validator != "unevaluatedProperties"
        or not any(r[: len(e.absolute_path)] == tuple(e.absolute_path) for r in real)
    }
    return sorted(problems)


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Of an error and the errors of its subschemas (oneOf, if/then), the one deepest in the
    document, which says what to change."""
    leaves, todo = [], [error]
    while todo:
        item = todo.pop()
        todo += item.context
        if not item.context:
            leaves.append(item)
    depth = max(len(e.absolute_path) for e in leaves)
    deepest = [e for e in leaves if len(e.absolute_path) == depth]
    return jsonschema.exceptions.best_match(deepest) or error


def read_odcs(path: Path, provider_id: str | None = None) -> ProviderSpec:
    """A provider from an ODCS file; its id defaults to the file name without `.odcs.yaml`."""
    name = provider_id or path.name.removesuffix(".yaml").removesuffix(".odcs")
    return provider_from_odcs(read_yaml(path, text_dates=True), provider_id=name, source=str(path))


def provider_from_odcs(document: Any, *, provider_id: str, source: str) -> ProviderSpec:
    """Check `document` against the ODCS schema and convert it; a ConfigError lists every
    problem as `source: field.path: message`."""
    if problems := schema_problems(document):
        raise ConfigError([f"{source}: {p}" for p in problems])
    reader = ContractReader(source)
    data = reader.provider(document, provider_id)
    if not reader.problems:
        try:
            return ProviderSpec.model_validate(data)
        except ValidationError as exc:
            reader.pydantic_problems(exc)
    raise ConfigError(reader.problems)


def field_path(parts: Any) -> str:
    return ".".join(str(p) for p in parts) or "(top)"


def schema_message(error: jsonschema.ValidationError, limit: int = 240) -> str:
    """The validator's message, cut short; none for `examples`, which hold sample values."""
    if "examples" in error.absolute_path:
        return f"does not match the ODCS schema ({error.validator})"
    message = error.message
    return message if len(message) <= limit else message[: limit - 3] + "..."
