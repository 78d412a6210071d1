"""Configs: the shipped ones validate; a bad one lists every problem by file and key path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from databourse.config import load_config
from databourse.errors import ConfigError

REPO_CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def test_shipped_configs_validate() -> None:
    cfg = load_config(REPO_CONFIGS)
    assert set(cfg.providers) == {"my-buildops", "sz-retail", "my-chatdesk"}
    assert {p.jurisdiction for p in cfg.providers.values()} == {"MY", "CN"}
    assert set(cfg.products) == {"kl-building-environment", "sz-retail-baskets", "my-chat-corpus"}
    assert cfg.product("my-chat-corpus").type == "corpus"


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO_CONFIGS, tmp_path / "configs")
    return tmp_path / "configs"


def test_every_problem_listed_with_file_and_key_path(tmp_path: Path) -> None:
    cfg = _copy(tmp_path)
    prov = cfg / "providers" / "sz-retail.yaml"
    prov.write_text(
        prov.read_text()
        .replace("jurisdiction: CN", "jurisdiction: China")
        .replace("type: float64", "type: money")
    )
    prod = cfg / "products" / "kl-building-environment.yaml"
    prod.write_text(
        prod.read_text()
        .replace("k: 5", "k: 1")
        .replace("occupant_phone: drop", "occupant_phone: keep")
    )
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    problems = info.value.problems
    text = "\n".join(problems)
    assert f"{prov}: jurisdiction:" in text
    assert f"{prov}: datasets.customer_orders.columns.9.type:" in text
    assert f"{prod}: privacy.k:" in text
    assert len(problems) >= 3


def test_cross_file_references_checked(tmp_path: Path) -> None:
    cfg = _copy(tmp_path)
    prod = cfg / "products" / "sz-retail-baskets.yaml"
    prod.write_text(
        prod.read_text()
        .replace("mobile: drop", "mobile: keep")
        .replace("district: keep", "distrikt: keep")
    )
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    text = "\n".join(info.value.problems)
    assert "columns.mobile: keeps a direct identifier (PHONE_NUMBER)" in text
    assert "columns.distrikt: not a column of sz-retail/customer_orders" in text
    assert "privacy.quasi_identifiers: 'district' is not an output column" in text


def test_policy_that_leaves_a_case_undecided_is_an_error(tmp_path: Path) -> None:
    cfg = _copy(tmp_path)
    pol = cfg / "policies" / "cross_border.yaml"
    pol.write_text(
        pol.read_text().replace(
            "      - id: hk-transfer\n        decision: allowed",
            "      - id: hk-transfer\n        when: {personal_data: true}\n"
            "        decision: allowed",
        )
    )
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert any("origins.HK.rules" in p and "undecided" in p for p in info.value.problems)


def test_unknown_keys_and_bad_yaml(tmp_path: Path) -> None:
    cfg = _copy(tmp_path)
    (cfg / "settings.yaml").write_text("storage: {root: x, bucket_typo: y}\n")
    (cfg / "products" / "broken.yaml").write_text("id: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    text = "\n".join(info.value.problems)
    assert "settings.yaml: storage.bucket_typo: Extra inputs are not permitted" in text
    assert "broken.yaml: not valid YAML" in text


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    cfg = _copy(tmp_path)
    (cfg / "settings.yaml").write_text("state_dir: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert "not valid YAML" in "\n".join(info.value.problems)


def test_source_roots_are_for_every_provider_or_per_provider() -> None:
    """A list is every provider's; a mapping keeps each provider to its own roots."""
    from databourse.config import Settings

    shared = Settings(source_roots=["/srv/drops"])
    assert shared.roots_of("sz-retail") == shared.roots_of("my-buildops") == ["/srv/drops"]
    apart = Settings(source_roots={"sz-retail": ["/srv/sz"], "my-buildops": ["/srv/my"]})
    assert apart.roots_of("sz-retail") == ["/srv/sz"]
    assert apart.roots_of("my-buildops") == ["/srv/my"]
    assert apart.roots_of("another") == []
