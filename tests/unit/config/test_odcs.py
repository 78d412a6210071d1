"""ODCS v3 data contracts: the shipped providers round-trip through the standard's own JSON schema,
the standard's published examples are read or refused by field path, a broken contract is named
by file and field path, and `bourse config export-odcs` writes a contract the loader accepts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from helpers import REPO, bourse, cli_env, make_project

from databourse.config import ProviderSpec, load_config
from databourse.config.odcs import SCHEMA_FILE, provider_from_odcs, read_odcs
from databourse.config.odcs_export import odcs_yaml
from databourse.errors import ConfigError

EXAMPLES = Path(__file__).parents[2] / "data" / "odcs"
JURISDICTION = {"property": "jurisdiction", "value": "SG"}


def _official_validator() -> jsonschema.Draft201909Validator:
    """The vendored schema as the standard publishes it, used without databourse's reading."""
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["properties"]["apiVersion"]["default"] == "v3.1.0"
    return jsonschema.Draft201909Validator(schema)


def _text_dates(text: str) -> Any:
    """YAML as a JSON document: a date stays a string (how the standard's validator reads it)."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return yaml.load(text, Loader=Loader)


@pytest.mark.parametrize("provider_id", ["sz-retail", "my-buildops"])
def test_shipped_provider_round_trips_through_the_official_schema(
    provider_id: str, tmp_path: Path
) -> None:
    loaded = load_config(REPO / "configs").providers[provider_id]
    text = odcs_yaml(loaded)
    document = _text_dates(text)
    _official_validator().validate(document)
    assert document["apiVersion"] == "v3.1.0" and document["kind"] == "DataContract"
    path = tmp_path / f"{provider_id}.odcs.yaml"
    path.write_text(text, encoding="utf-8")
    assert read_odcs(path) == loaded
    # In configs/providers the contract replaces the provider file, and loads to the same config.
    configs = tmp_path / "configs"
    shutil.copytree(REPO / "configs", configs)
    (configs / "providers" / f"{provider_id}.yaml").unlink()
    shutil.copy(path, configs / "providers")
    cfg = load_config(configs)
    assert cfg.providers == load_config(REPO / "configs").providers
    assert cfg.files[f"provider/{provider_id}"] == str(configs / "providers" / path.name)


def test_every_provider_field_round_trips() -> None:
    provider = ProviderSpec.model_validate(
        {
            "id": "kl-everything",
            "name": "Every field",
            "jurisdiction": "MY",
            "datasets": {
                "visits": {
                    "description": "All of the contract.",
                    "primary_key": ["site", "visit_no"],
                    "important_data": True,
                    "min_rows": 5,
                    "max_rows": 900,
                    "freshness": {"column": "seen_at", "max_age_hours": 48, "severity": "error"},
                    "expectations": [
                        {
                            "expectation": "ExpectColumnValueLengthsToBeBetween",
                            "kwargs": {"column": "site", "min_value": 2, "max_value": 8},
                            "severity": "warning",
                        }
                    ],
                    "schema_drift": "additive",
                    "null_values": ["NA", "-"],
                    "read": {"encoding": "gb18030", "delimiter": ";", "header": "present"},
                    "limits": {"max_file_bytes": 1 << 20},
                    "columns": [
                        {"name": "site", "nullable": False, "pattern": "^[A-Z]+$"},
                        {"name": "visit_no", "type": "int64", "nullable": False, "min_value": 1},
                        {"name": "visited", "type": "date", "formats": ["%d/%m/%Y"]},
                        {
                            "name": "seen_at",
                            "type": "timestamp",
                            "formats": ["%Y-%m-%dT%H:%M:%S", "%Y年%m月%d日 %H:%M:%S"],
                            "min_value": 0,
                        },
                        {"name": "score", "type": "float64", "min_value": 0, "max_value": 9.5},
                        {"name": "level", "type": "int64", "allowed_values": [1, 2, 3]},
                        {"name": "code", "type": "int64", "pattern": "^[0-9]{3}$"},
                        {"name": "kind", "allowed_values": ["a", "b"], "unique": True},
                        {"name": "ok", "type": "bool", "true_values": ["Y"], "false_values": ["N"]},
                        {"name": "guest_phone", "personal_data": "PHONE_NUMBER"},
                    ],
                }
            },
        }
    )
    text = odcs_yaml(provider)
    document = _text_dates(text)
    _official_validator().validate(document)
    props = {p["name"]: p for p in document["schema"][0]["properties"]}
    assert props["visited"]["logicalTypeOptions"]["format"] == "dd/MM/yyyy"
    assert props["visit_no"]["logicalTypeOptions"] == {"minimum": 1}
    assert props["guest_phone"]["classification"] == "restricted"
    assert provider_from_odcs(document, provider_id=provider.id, source="x") == provider


def test_a_published_example_validates_and_converts_with_a_jurisdiction() -> None:
    path = EXAMPLES / "table-column-description.odcs.yaml"
    document = _text_dates(path.read_text(encoding="utf-8"))
    _official_validator().validate(document)  # the standard's own example, unchanged
    with pytest.raises(ConfigError) as info:  # ODCS cannot say where the provider is
        read_odcs(path)
    assert info.value.problems == [
        f"{path}: customProperties: no `jurisdiction` entry (e.g. value: CN)"
    ]
    document["customProperties"] = [JURISDICTION]
    provider = provider_from_odcs(document, provider_id="quantum", source=str(path))
    assert (provider.id, provider.name, provider.jurisdiction) == ("quantum", "my_quantum", "SG")
    dataset = provider.datasets["tbl"]
    assert dataset.description == "Provides core payment metrics"
    assert [(c.name, c.type, c.nullable) for c in dataset.columns] == [("txn_ref_dt", "date", True)]


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        (
            "full-example.odcs.yaml",
            [
                "name: missing: the provider's name",
                "schema.0.relationships: not supported",
                "schema.0.properties.0.physicalName: differs from name",
                "schema.0.properties.1.relationships: not supported",
                "schema.1.properties.3.relationships: not supported",
            ],
        ),
        (
            "all-data-types.odcs.yaml",
            [
                "schema.0.properties.0.logicalTypeOptions.minLength: not supported",
                "schema.0.properties.0.logicalTypeOptions.maxLength: not supported",
                "schema.0.properties.1.logicalTypeOptions.exclusiveMinimum: not supported",
                "schema.0.properties.1.logicalTypeOptions.maximum: not supported",
                "schema.0.properties.2.logicalTypeOptions.minimum: not supported",
                "schema.0.properties.2.logicalTypeOptions.maximum: not supported",
                "schema.0.properties.3.logicalTypeOptions.minimum: not supported",
                "schema.0.properties.3.logicalTypeOptions.maximum: not supported",
                "schema.0.properties.3.logicalTypeOptions.format: 'yyyy-MM-dd HH:mm:ssZ'",
                "schema.0.properties.3.logicalTypeOptions.timezone: not supported",
                "schema.0.properties.3.logicalTypeOptions.defaultTimezone: not supported",
                "schema.0.properties.4.logicalType: 'time' has no column type",
                "schema.0.properties.6.logicalTypeOptions.exclusiveMaximum: not supported",
                "schema.0.properties.8.logicalType: 'array' has no column type",
                "schema.0.properties.9.logicalType: 'object' has no column type",
            ],
        ),
    ],
)
def test_published_examples_we_cannot_map_are_refused_by_field_path(
    example: str, expected: list[str]
) -> None:
    path = EXAMPLES / example
    document = _text_dates(path.read_text(encoding="utf-8"))
    _official_validator().validate(document)  # valid ODCS: refused for what it says, not its form
    document["customProperties"] = [*document.get("customProperties", []), JURISDICTION]
    with pytest.raises(ConfigError) as info:
        provider_from_odcs(document, provider_id="example", source=str(path))
    for part in expected:
        assert any(p.startswith(f"{path}: {part}") for p in info.value.problems), part
    assert len(info.value.problems) == len(expected)


def test_a_schema_violation_names_the_file_and_field_path(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(REPO / "configs", configs)
    path = configs / "providers" / "kl-sensors.odcs.yaml"
    text = odcs_yaml(load_config(REPO / "configs").providers["my-buildops"])
    document = yaml.safe_load(text)
    document["schema"][0]["properties"][2]["required"] = "yes"
    document["schema"][0]["properties"][3]["nullable"] = False  # our key, not the standard's
    document["schema"][0]["quality"][0]["mustBeBetween"] = [5]
    del document["schema"][0]["quality"][0]["mustBeGreaterOrEqualTo"]
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(configs)
    assert info.value.problems == [
        f"{path}: schema.0.properties.2.required: 'yes' is not of type 'boolean'",
        f"{path}: schema.0.properties.3: Unevaluated properties are not allowed "
        "('nullable' was unexpected)",
        f"{path}: schema.0.quality.0.mustBeBetween: [5] is too short",
    ]


def test_a_jdk_date_layout_becomes_a_format_and_a_bad_one_is_refused() -> None:
    def contract(layout: str) -> dict[str, Any]:
        prop = {"name": "day", "logicalType": "date", "logicalTypeOptions": {"format": layout}}
        return {
            "apiVersion": "v3.0.2",
            "kind": "DataContract",
            "id": "c1",
            "version": "1",
            "status": "active",
            "name": "Days",
            "customProperties": [JURISDICTION],
            "schema": [{"name": "days", "properties": [prop]}],
        }

    provider = provider_from_odcs(contract("dd.MM.yyyy 'r.'"), provider_id="p", source="f")
    assert provider.datasets["days"].columns[0].formats == ["%d.%m.%Y r."]
    with pytest.raises(ConfigError) as info:
        provider_from_odcs(contract("dd/MM/yy"), provider_id="p", source="f.odcs.yaml")
    assert info.value.problems == [
        "f.odcs.yaml: schema.0.properties.0.logicalTypeOptions.format: "
        "'dd/MM/yy': use yyyy MM dd HH mm ss and quoted text only"
    ]


def test_cli_export_odcs_writes_a_contract_the_loader_accepts(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    env = cli_env(project)
    out = tmp_path / "sz-retail.odcs.yaml"
    done = bourse(env, "config", "export-odcs", "sz-retail", "--out", str(out))
    assert "sz-retail: ODCS contract written to" in done.stdout
    _official_validator().validate(_text_dates(out.read_text(encoding="utf-8")))
    printed = bourse(env, "config", "export-odcs", "sz-retail").stdout
    assert printed == out.read_text(encoding="utf-8")
    providers = project / "configs" / "providers"
    (providers / "sz-retail.yaml").unlink()
    shutil.move(out, providers / out.name)
    assert "ok: 3 provider(s)" in bourse(env, "config", "check").stdout
    unknown = bourse(env, "config", "export-odcs", "nobody", check=False)
    assert unknown.returncode == 1
    assert "unknown provider 'nobody'" in unknown.stderr


def test_a_value_the_config_refuses_is_named_by_its_contract_path() -> None:
    document = yaml.safe_load(odcs_yaml(load_config(REPO / "configs").providers["sz-retail"]))
    document["customProperties"] = [{"property": "jurisdiction", "value": "China"}]
    document["schema"][0]["properties"][1]["customProperties"][0]["value"] = "CN_ID"
    document["schema"][0]["customProperties"] = [{"property": "read", "value": {"sheet": 3}}]
    with pytest.raises(ConfigError) as info:
        provider_from_odcs(document, provider_id="sz-retail", source="c.odcs.yaml")
    assert [p.split(": ")[1] for p in info.value.problems] == [
        "customProperties.0.value",
        "schema.0.properties.1.customProperties.0.value",
        "schema.0.customProperties.0.value.sheet",
    ]


def test_a_schema_error_in_examples_does_not_echo_the_sample_values() -> None:
    document = yaml.safe_load(odcs_yaml(load_config(REPO / "configs").providers["sz-retail"]))
    document["schema"][0]["properties"][2]["examples"] = "Wang Xiaoming"
    with pytest.raises(ConfigError) as info:
        provider_from_odcs(document, provider_id="sz-retail", source="c.odcs.yaml")
    assert info.value.problems == [
        "c.odcs.yaml: schema.0.properties.2.examples: does not match the ODCS schema (type)"
    ]
