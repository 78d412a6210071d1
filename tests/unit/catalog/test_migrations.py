"""Catalog migrations: fresh database, pre-migration database, models equal to migrations."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from databourse.catalog.database import Catalog
from databourse.catalog.engine import MIGRATIONS, SCHEMA_HEAD
from databourse.catalog.models import Base

PG_URL = os.environ.get(
    "DATABOURSE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # any connection failure means: skip, saying why
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}")
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_fresh_database_is_migrated_to_head(url: str) -> None:
    with Catalog(url) as cat:
        cat.create_schema()
        cat.create_schema()  # idempotent
        assert cat.schema_revision() == "0009"
        columns = {c["name"] for c in inspect(cat.engine).get_columns("versions")}
        assert {"withdrawn_reason", "withdrawn_at", "quality_scores", "transfer_facts"} <= columns
        approvals = {c["name"] for c in inspect(cat.engine).get_columns("approvals")}
        assert {"basis", "rule_id", "carry_over", "carried_over_from", "identity_note"} <= approvals
        assert "exporter_transfers" in inspect(cat.engine).get_table_names()


def test_models_and_migrations_agree(url: str) -> None:
    with Catalog(url) as cat:
        cat.create_schema()
        with cat.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_database_made_before_migrations_is_stamped_and_upgraded(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from databourse.catalog.database import MIGRATIONS

    with Catalog(url) as cat:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with cat.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")
            conn.execute(text("DROP TABLE alembic_version"))  # as create_all left it
            conn.execute(
                text(
                    "INSERT INTO products (id, name, provider, dataset, created_at) "
                    "VALUES ('p', 'P', 'prov', 'ds', CURRENT_TIMESTAMP)"
                )
            )
        cat.create_schema()
        assert cat.schema_revision() == "0009"
        assert [p["id"] for p in cat.list_products()] == ["p"]  # data kept


def test_0006_keeps_earlier_approvals_and_downgrades(url: str) -> None:
    """Approvals recorded before 0006 stay, as decisions that do not carry over; 0006 reverts."""
    from alembic import command
    from alembic.config import Config

    from databourse.catalog.database import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with Catalog(url) as cat:
        with cat.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0005")
            conn.execute(
                text(
                    "INSERT INTO products (id, name, provider, dataset, created_at) "
                    "VALUES ('p', 'P', 'prov', 'ds', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO versions (product_id, version, major, minor, patch, "
                    "content_hash, schema, row_count, status, created_at) VALUES ('p', '1.0.0', "
                    "1, 0, 0, 'c', '[]', 3, 'staged', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO approvals (version_id, market, content_hash, decision, approver, "
                    "decided_at) SELECT id, 'SG', content_hash, 'approved', 'dpo', "
                    "CURRENT_TIMESTAMP FROM versions"
                )
            )
        cat.create_schema()
        assert cat.schema_revision() == "0009"
        [approval] = cat.transfer_decisions("p")
        assert approval["carry_over"] is False and approval["carried_over_from"] is None
        with cat.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005")
        assert cat.schema_revision() == "0005"
        assert "exporter_transfers" not in inspect(cat.engine).get_table_names()


def test_withdraw_keeps_the_version_with_reason_and_time(url: str) -> None:
    with Catalog(url) as cat:
        cat.create_schema()
        cat.ensure_product("p", "P", "prov", "ds")
        cat.reserve_version("p", "a" * 64, [{"name": "x", "type": "string"}], 3)
        cat.set_quality_scores("p", "1.0.0", {"completeness": 1.0, "overall": 0.98})
        cat.withdraw_version("p", "1.0.0", reason="provider revoked consent")
        rec = cat.get_version("p", "1.0.0")
        assert rec.status == "withdrawn" and rec.withdrawn_reason == "provider revoked consent"
        assert rec.withdrawn_at is not None and rec.quality_scores == {
            "completeness": 1.0,
            "overall": 0.98,
        }


def test_withdrawn_version_is_offered_nowhere(url: str) -> None:
    from databourse.errors import CatalogError

    with Catalog(url) as cat:
        cat.create_schema()
        cat.ensure_product("p", "P", "prov", "ds")
        cat.reserve_version("p", "b" * 64, [{"name": "x", "type": "string"}], 3)
        cat.publish_version("p", "1.0.0")
        cat.set_availability("p", "1.0.0", "MY", "available", "domestic")
        assert cat.list_products()[0]["markets"] == ["MY"]
        cat.withdraw_version("p", "1.0.0", reason="wrong data")
        assert cat.list_products()[0]["markets"] == []
        with pytest.raises(CatalogError):
            cat.set_availability("p", "1.0.0", "SG", "available", "domestic")


def test_the_head_known_without_alembic_is_alembics_head(url: str) -> None:
    """create_schema skips Alembic for a database at SCHEMA_HEAD: that must be the newest
    migration, and a database one revision behind is still upgraded."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(cfg)
    assert script.get_current_head() == SCHEMA_HEAD
    behind = script.get_revision(SCHEMA_HEAD).down_revision
    with Catalog(url) as cat:
        cat.create_schema()
        tables = set(inspect(cat.engine).get_table_names())
        with cat.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, str(behind))
        assert cat.schema_revision() == behind
        assert set(inspect(cat.engine).get_table_names()) != tables
        cat.create_schema()
        assert cat.schema_revision() == SCHEMA_HEAD
        assert set(inspect(cat.engine).get_table_names()) == tables
