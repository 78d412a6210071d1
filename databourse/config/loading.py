"""Loading `configs/`: every file read into its strict model, the references between them
checked, and one `ConfigError` listing every problem as `file: key.path: message`. A provider
may also be an ODCS contract, `configs/providers/<id>.odcs.yaml` (databourse.config.odcs)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from databourse.config.categories import DIRECT_IDENTIFIERS
from databourse.config.policies import CrossBorderPolicy
from databourse.config.products import ColumnRule, ProductSpec
from databourse.config.providers import DatasetSpec, ProviderSpec
from databourse.config.settings import Settings
from databourse.config.yaml_files import read_yaml
from databourse.errors import ConfigError


@dataclass(frozen=True)
class Config:
    """Everything under one `configs/` folder, checked together."""

    root: Path  # the project folder that relative paths in settings resolve against
    settings: Settings
    providers: dict[str, ProviderSpec]
    products: dict[str, ProductSpec]
    policy: CrossBorderPolicy
    files: dict[str, str] = field(default_factory=dict)  # kind/id -> file, for messages

    def dataset(self, provider: str, dataset: str) -> DatasetSpec:
        try:
            return self.providers[provider].datasets[dataset]
        except KeyError:
            raise ConfigError([f"unknown provider/dataset {provider}/{dataset}"]) from None

    def product(self, product_id: str) -> ProductSpec:
        if product_id not in self.products:
            raise ConfigError([f"unknown product {product_id!r}; known: {sorted(self.products)}"])
        return self.products[product_id]

    def products_of(self, provider: str, dataset: str) -> list[ProductSpec]:
        return [
            p
            for p in self.products.values()
            if (p.source.provider, p.source.dataset) == (provider, dataset)
        ]

    def resolve(self, path: str) -> Path:
        """A settings path made absolute against the project folder."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    @property
    def store_root(self) -> str:
        root = os.environ.get("DATABOURSE_STORE_ROOT") or self.settings.storage.root
        return root if root.startswith("s3://") else str(self.resolve(root))

    @property
    def s3_endpoint_url(self) -> str | None:
        return os.environ.get("DATABOURSE_S3_ENDPOINT_URL") or self.settings.storage.endpoint_url

    @property
    def catalog_url(self) -> str:
        url = os.environ.get("DATABOURSE_CATALOG_URL") or self.settings.catalog_url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            url = "sqlite:///" + str(self.resolve(url.removeprefix("sqlite:///")))
        return url

    @property
    def state_dir(self) -> Path:
        return self.resolve(os.environ.get("DATABOURSE_STATE_DIR") or self.settings.state_dir)


def default_config_dir() -> Path:
    """`$DATABOURSE_CONFIG_DIR`, else `configs/` in the current folder or above it."""
    if env := os.environ.get("DATABOURSE_CONFIG_DIR"):
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "configs" / "settings.yaml").is_file():
            return folder / "configs"
    return here / "configs"


def load_config(config_dir: Path | None = None) -> Config:
    """Load and cross-check every config file; raise one ConfigError listing all problems."""
    config_dir = (config_dir or default_config_dir()).resolve()
    problems: list[str] = []
    if not config_dir.is_dir():
        raise ConfigError([f"{config_dir}: config folder not found"])
    settings = _load(config_dir / "settings.yaml", Settings, problems, optional=True) or Settings()
    policy = _load(config_dir / "policies" / "cross_border.yaml", CrossBorderPolicy, problems)
    providers = _load_folder(config_dir / "providers", ProviderSpec, problems, odcs=_load_odcs)
    products = _load_folder(config_dir / "products", ProductSpec, problems)
    for file, product in products.values():
        problems += check_product(file, product, {pid: p for pid, (_, p) in providers.items()})
    if problems or policy is None:
        raise ConfigError(problems)
    return Config(
        root=config_dir.parent,
        settings=settings,
        policy=policy,
        providers={k: p for k, (_, p) in providers.items()},
        products={k: p for k, (_, p) in products.items()},
        files={
            **{f"provider/{k}": f for k, (f, _) in providers.items()},
            **{f"product/{k}": f for k, (f, _) in products.items()},
        },
    )


M = TypeVar("M", bound=BaseModel)
S = TypeVar("S", ProviderSpec, ProductSpec)


def _load(path: Path, model: type[M], problems: list[str], optional: bool = False) -> M | None:
    if not path.is_file():
        if not optional:
            problems.append(f"{path}: file missing")
        return None
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        problems += exc.problems
        return None
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top)"
            problems.append(f"{path}: {where}: {err['msg']}")
        return None


def _load_folder(
    folder: Path,
    model: type[S],
    problems: list[str],
    odcs: Callable[[Path, list[str]], S | None] | None = None,
) -> dict[str, tuple[str, S]]:
    """Every `*.yaml` of a folder; with `odcs`, a `*.odcs.yaml` is read by it instead."""
    found: dict[str, tuple[str, S]] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        stem = path.stem
        if odcs is not None and path.name.endswith(ODCS_SUFFIX):
            stem = path.name.removesuffix(ODCS_SUFFIX)
            item = odcs(path, problems)
        else:
            item = _load(path, model, problems)
        if item is None:
            continue
        if item.id != stem:
            problems.append(f"{path}: id: {item.id!r} must match the file name {stem!r}")
        elif item.id in found:
            problems.append(f"{path}: id: {item.id!r} already defined in {found[item.id][0]}")
        else:
            found[item.id] = (str(path), item)
    return found


ODCS_SUFFIX = ".odcs.yaml"  # a provider handed in as an ODCS data contract (databourse.config.odcs)


def _load_odcs(path: Path, problems: list[str]) -> ProviderSpec | None:
    """A provider from `<id>.odcs.yaml`: the contract checked against the ODCS schema, then
    converted (databourse.config.odcs imports these models, hence the late import)."""
    from databourse.config.odcs import provider_from_odcs

    try:
        return provider_from_odcs(
            read_yaml(path, text_dates=True),
            provider_id=path.name.removesuffix(ODCS_SUFFIX),
            source=str(path),
        )
    except ConfigError as exc:
        problems += exc.problems
        return None


def check_product(file: str, product: ProductSpec, providers: dict[str, ProviderSpec]) -> list[str]:
    """References from a product to its source dataset and between its own keys."""
    src = product.source
    if src.provider not in providers:
        return [f"{file}: source.provider: unknown provider {src.provider!r}"]
    dataset = providers[src.provider].datasets.get(src.dataset)
    if dataset is None:
        return [f"{file}: source.dataset: {src.provider!r} has no dataset {src.dataset!r}"]
    if product.type == "corpus":
        return _check_documents(file, dataset)
    problems: list[str] = []
    outputs = product.output_columns
    partition = product.packaging.partition_by
    if partition is not None and partition not in outputs:
        problems.append(f"{file}: packaging.partition_by: {partition!r} is not an output column")
    for dup in sorted({o for o in outputs if outputs.count(o) > 1}):
        problems.append(f"{file}: columns: output column {dup!r} produced twice (check rename)")
    known = {c.name for c in dataset.columns}
    for name, rule in product.columns.items():
        if name not in known:
            problems.append(f"{file}: columns.{name}: not a column of {src.provider}/{src.dataset}")
            continue
        col = dataset.column(name)
        if rule.action == "keep" and col.personal_data in DIRECT_IDENTIFIERS:
            problems.append(
                f"{file}: columns.{name}: keeps a direct identifier "
                f"({col.personal_data}); drop or pseudonymize it"
            )
        if rule.band is not None and col.type not in ("int64", "float64"):
            problems.append(f"{file}: columns.{name}.band: needs a numeric column, not {col.type}")
        if rule.date is not None and col.type not in ("date", "timestamp"):
            problems.append(f"{file}: columns.{name}.date: needs a date column, not {col.type}")
        if rule.prefix is not None and col.type != "string":
            problems.append(f"{file}: columns.{name}.prefix: needs a string column, not {col.type}")
        problems += _check_rule(file, name, rule, col.type)
    problems += _check_models(file, product)
    return problems


_NUMERIC = ("int64", "float64")
DOCUMENT_TYPES = {"id": "string", "text": "string", "source": "string", "licence": "string"}
DOCUMENT_TYPES |= {"author": "string", "consent": "bool"}


def _check_documents(file: str, dataset: DatasetSpec) -> list[str]:
    """A corpus's source holds documents: a string `text` column; the metadata columns it has
    (id, source, licence, date, author, consent) of their types (date: string, date or time)."""
    columns = {c.name: c.type for c in dataset.columns}
    problems = [] if "text" in columns else [f"{file}: source.dataset: has no `text` column"]
    for name, found in columns.items():
        wanted = DOCUMENT_TYPES.get(name)
        if wanted is not None and found != wanted:
            problems.append(f"{file}: source.dataset: column {name} is {found}, not {wanted}")
    return problems


def _check_rule(file: str, name: str, rule: ColumnRule, col_type: str) -> list[str]:
    """Column types and files the newer rules need (hierarchy file, numeric for round/noise)."""
    where = f"{file}: columns.{name}"
    problems: list[str] = []
    if rule.hierarchy is not None:
        configs = Path(file).resolve().parent.parent
        path = (configs / rule.hierarchy).resolve()  # relative to configs/, and inside it
        if not path.is_relative_to(configs):
            problems.append(f"{where}.hierarchy: {rule.hierarchy!r} is outside configs/")
        elif not path.is_file():
            problems.append(f"{where}.hierarchy: file {rule.hierarchy!r} not found under configs/")
    if rule.round is not None and col_type != "float64":
        problems.append(f"{where}.round: needs a float64 column, not {col_type}")
    for field_name in ("top", "bottom", "noise"):
        if getattr(rule, field_name) is not None and col_type not in _NUMERIC:
            problems.append(f"{where}.{field_name}: needs a numeric column, not {col_type}")
    if rule.mask is not None and col_type != "string":
        problems.append(f"{where}.mask: needs a string column, not {col_type}")
    if rule.embedded == "redact" and col_type != "string":
        problems.append(f"{where}.embedded: redact needs a string column, not {col_type}")
    return problems


def _check_models(file: str, product: ProductSpec) -> list[str]:
    """Privacy model and aggregate section name output columns; searched hierarchies are QIs."""
    problems: list[str] = []
    outputs = product.output_columns
    if product.privacy:
        for key in ("quasi_identifiers", "sensitive_attributes"):
            for col in getattr(product.privacy, key):
                if col not in outputs:
                    problems.append(f"{file}: privacy.{key}: {col!r} is not an output column")
    qis = set(product.privacy.quasi_identifiers) if product.privacy else set()
    for name, rule in product.columns.items():
        if rule.hierarchy is not None and rule.level is None and (rule.rename or name) not in qis:
            problems.append(
                f"{file}: columns.{name}.level: a hierarchy without level is searched, so the "
                "column must be a privacy.quasi_identifiers entry"
            )
    if product.aggregate:
        used = [*product.aggregate.dimensions, *(m.column for m in product.aggregate.measures)]
        for col in used:
            if col not in outputs:
                problems.append(f"{file}: aggregate: {col!r} is not an output column")
    return problems
