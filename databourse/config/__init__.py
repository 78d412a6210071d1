"""Config models (settings, providers, products, cross-border policy) and their loader.

Configs are data: YAML under `configs/`, loaded into strict pydantic models. `load_config` reads
every file, checks the references between them, and raises one `ConfigError` listing every problem
as `file: key.path: message`. Secrets are never in configs: settings only name where a secret is.

The models are split by the file they read: `settings`, `providers` (datasets and columns),
`products` (column rules, privacy model, aggregation; `corpus` the rules of a text corpus),
`policies` (transfer rules and routes);
`categories` names the kinds of personal data, `strict` is the base they share, `yaml_files`
reads YAML safely, `loading` reads and cross-checks the folder. A provider may come as an Open
Data Contract Standard contract: `odcs` (checked against the standard's schema, converted by
`odcs_reader`; `odcs_export` writes ours as ODCS). Import from here, not from the modules.
"""

from __future__ import annotations

from databourse.config.categories import DIRECT_IDENTIFIERS, SENSITIVE_CATEGORIES, Category
from databourse.config.loading import Config, default_config_dir, load_config
from databourse.config.policies import Condition, CrossBorderPolicy, RouteBasis, RouteSpec, Rule
from databourse.config.products import (
    AggregateSpec,
    ColumnRule,
    LossMetric,
    PrivacyModel,
    ProductSpec,
    UsageTerms,
)
from databourse.config.providers import ColumnSpec, DatasetSpec, ExpectationConfig, ProviderSpec
from databourse.config.settings import (
    CatalogExportSettings,
    IngestLimits,
    RunSettings,
    Settings,
)

__all__ = [
    "DIRECT_IDENTIFIERS",
    "SENSITIVE_CATEGORIES",
    "AggregateSpec",
    "CatalogExportSettings",
    "Category",
    "ColumnRule",
    "ColumnSpec",
    "Condition",
    "Config",
    "CrossBorderPolicy",
    "DatasetSpec",
    "ExpectationConfig",
    "IngestLimits",
    "LossMetric",
    "PrivacyModel",
    "ProductSpec",
    "ProviderSpec",
    "RouteBasis",
    "RouteSpec",
    "Rule",
    "RunSettings",
    "Settings",
    "UsageTerms",
    "default_config_dir",
    "load_config",
]
